"""Bounds: body size (Content-Length and chunked), JSON depth, array
length, string length, frame id length, malformed bodies, and slow
clients (headersTimeout / requestTimeout answered 408 and closed)."""
import json
import os
import resource
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MAX_BODY = 100000
OP = "op-token"
AUTH = {"Authorization": "Bearer " + OP}


W_WF = """root:
  task: { id: only, output: { ok: true } }
"""
RUN_ID_RE = r"^run_[0-9a-f]{32}$"


class Limits(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
maxBodyBytes: %d
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"] }
workflows:
  w: { file: workflows/w.yaml }
""" % MAX_BODY
    FILES = {"workflows/w.yaml": W_WF}

    def assertLaunched(self, status, doc):
        """launchRun of workflow w succeeded (the request passed every bound)."""
        run = self.assertOk(status, doc)
        self.assertEqual(run["workflow"], "w")
        self.assertRegex(run["runId"], RUN_ID_RE)
        return run["runId"]

    def run_input(self, run_id):
        status, _, doc = self.server.rpc("getRun", {"runId": run_id}, token=OP)
        return self.assertOk(status, doc)["input"]

    def assertRunNotFound(self, status, doc, run_id):
        self.assertError(status, doc, "RunNotFound", 404, message="Run not found: %s" % run_id)

    def launch(self, input_value, frame_extra=None):
        frame = {"method": "launchRun", "params": {"workflow": "w", "input": {"v": input_value}}}
        frame.update(frame_extra or {})
        return self.server.rpc_frame(frame, token=OP)

    def assert413(self, r, request_id=None):
        self.assertEqual(r.status, 413)
        self.assertStandardHeaders(r.headers)
        doc = r.json()
        err = self.assertError(r.status, doc, "PayloadTooLarge", 413,
                               message="Request payload exceeds %d bytes." % MAX_BODY)
        self.assertEqual(err.get("maxBytes"), MAX_BODY)
        if request_id:
            self.assertEqual(doc["id"], request_id)

    # -- body size ---------------------------------------------------------

    def test_413_by_content_length(self):
        for path in ("/rpc", "/v1/rpc/launchRun"):
            with self.subTest(path=path), self.server.raw() as c:
                # Only the head: the server must answer without reading a body.
                c.send("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "x-request-id: big-1\r\nContent-Length: %d\r\n\r\n" % (path, OP, MAX_BODY + 1))
                self.assert413(c.read_response(), request_id="big-1")
                self.assertTrue(c.wait_closed(timeout=10), "connection stays open after 413")

    def test_413_with_overlong_x_request_id(self):
        with self.server.raw() as c:
            c.send("POST /rpc HTTP/1.1\r\nHost: x\r\nx-request-id: %s\r\nContent-Length: %d\r\n\r\n"
                   % ("q" * 300, MAX_BODY + 1))
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertLessEqual(len(r.json()["id"]), 128, "frame ids are bounded to 128 characters")

    def test_413_before_authentication(self):
        with self.server.raw() as c:
            c.send("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * MAX_BODY))
            self.assert413(c.read_response())

    def test_body_of_exactly_max_bytes_is_accepted(self):
        body = json.dumps({"method": "getRun", "params": {"runId": "r1"}})
        body = body + " " * (MAX_BODY - len(body))
        self.assertEqual(len(body), MAX_BODY)
        status, _, data = self.server.request("POST", "/rpc", body, AUTH)
        self.assertRunNotFound(status, json.loads(data), "r1")

    def test_413_by_chunked_body(self):
        piece = b"x" * 30000
        with self.server.raw() as c:
            c.send(b"POST /v1/rpc/launchRun HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"x-request-id: chunk-1\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(3):             # 90000 bytes so far: still allowed
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            c.send(b"%x\r\n" % len(piece))  # would reach 120000 > 100000
            self.assert413(c.read_response(), request_id="chunk-1")
            self.assertTrue(c.wait_closed(timeout=10))

    def test_413_by_one_huge_chunk(self):
        with self.server.raw() as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"%x\r\n" % (MAX_BODY + 1))
            self.assert413(c.read_response())
            self.assertTrue(c.wait_closed(timeout=10))

    def test_chunked_body_under_the_limit_is_accepted(self):
        body = json.dumps({"method": "launchRun", "params": {"workflow": "w", "input": {"s": "y" * 60000}}}).encode()
        with self.server.raw() as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 9000):
                part = body[i:i + 9000]
                c.send(b"%x\r\n%s\r\n" % (len(part), part))
            c.send(b"0\r\n\r\n")
            r = c.read_response()
        run_id = self.assertLaunched(r.status, r.json())
        self.assertEqual(self.run_input(run_id), {"s": "y" * 60000}, "the decoded body reached the run intact")

    def test_bad_content_length(self):
        for value in ("abc", "-1", "1 2", "0x10"):
            with self.subTest(value=value), self.server.raw() as c:
                c.send("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{}" % value)
                r = c.read_response()
                self.assertEqual(r.status, 400)
                self.assertStandardHeaders(r.headers)
                self.assertError(r.status, r.json(), "InvalidRequest")

    def test_malformed_chunked_body(self):
        with self.server.raw() as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertError(r.status, r.json(), "InvalidRequest")
            self.assertTrue(c.wait_closed(timeout=10))

    def test_oversized_head_is_refused(self):
        with self.server.raw() as c:
            try:
                c.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % ("a" * 20000))
            except (BrokenPipeError, ConnectionResetError):
                pass   # the server may answer and close before reading it all
            r = c.read_response()
            self.assertEqual(r.status, 431)
            self.assertStandardHeaders(r.headers)

    # -- JSON shape bounds -------------------------------------------------

    def nested(self, levels):
        v = 1
        for _ in range(levels):
            v = {"a": v}
        return v

    def test_depth_limit(self):
        # frame (1) > params (2) > input (3) > `levels` more objects under "v"
        status, _, doc = self.launch(self.nested(29))          # depth 32
        run_id = self.assertLaunched(status, doc)
        self.assertEqual(self.run_input(run_id), {"v": self.nested(29)})
        status, _, doc = self.launch(self.nested(30))          # depth 33
        err = self.assertError(status, doc, "InvalidRequest")
        self.assertIn("32", err["message"])
        self.assertEqual(err.get("maxDepth"), 32)

    def test_depth_limit_with_arrays(self):
        v = 1
        for _ in range(200):
            v = [v]
        status, _, doc = self.launch(v)
        err = self.assertError(status, doc, "InvalidRequest")
        self.assertEqual(err.get("maxDepth"), 32)

    def test_deep_raw_text_never_parsed(self):
        body = "[" * 100000
        status, _, data = self.server.request("POST", "/rpc", body[:MAX_BODY], AUTH)
        err = self.assertError(status, json.loads(data), "InvalidRequest")
        self.assertEqual(err.get("maxDepth"), 32)

    def test_brackets_inside_strings_are_not_depth(self):
        status, _, doc = self.launch("[{" * 500)
        run_id = self.assertLaunched(status, doc)
        self.assertEqual(self.run_input(run_id), {"v": "[{" * 500})

    def test_array_length_limit(self):
        status, _, doc = self.launch(list(range(256)))
        run_id = self.assertLaunched(status, doc)
        self.assertEqual(self.run_input(run_id), {"v": list(range(256))})
        status, _, doc = self.launch(list(range(257)))
        err = self.assertError(status, doc, "InvalidRequest", path="$.params.input.v")
        self.assertIn("256", err["message"])

    def test_string_length_limit(self):
        status, _, doc = self.launch("s" * 65536)
        run_id = self.assertLaunched(status, doc)
        self.assertEqual(self.run_input(run_id), {"v": "s" * 65536})
        status, _, doc = self.launch("s" * 65537)
        err = self.assertError(status, doc, "InvalidRequest", path="$.params.input.v")
        self.assertIn("65536", err["message"])

    def test_string_length_counts_bytes(self):
        body = json.dumps({"method": "launchRun", "params": {"workflow": "w", "input": {
            "v": "\u00e9" * 32769}}}, ensure_ascii=False).encode("utf-8")   # 65538 UTF-8 bytes
        status, _, data = self.server.request("POST", "/rpc", body, AUTH)
        err = self.assertError(status, json.loads(data), "InvalidRequest", path="$.params.input.v")
        self.assertIn("65536", err["message"])

    def test_long_member_name(self):
        status, _, doc = self.server.rpc_frame({"method": "launchRun", "params": {
            "workflow": "w", "input": {"k" * 65537: 1}}}, token=OP)
        err = self.assertError(status, doc, "InvalidRequest")
        self.assertIn("65536", err["message"])

    def test_bounds_apply_to_every_string_including_bare_params(self):
        status, _, doc = self.server.rpc("getRun", {"runId": "r" * 65537}, token=OP)
        self.assertError(status, doc, "InvalidRequest", path="$.runId")

    def test_frame_id_length(self):
        status, _, doc = self.launch(1, {"id": "i" * 128})
        self.assertLaunched(status, doc)
        self.assertEqual(doc["id"], "i" * 128)
        status, _, doc = self.launch(1, {"id": "i" * 129})
        err = self.assertError(status, doc, "InvalidRequest", path="$.id")
        self.assertIn("128", err["message"])
        self.assertNotEqual(doc["id"], "i" * 129)

    # -- malformed bodies --------------------------------------------------

    def test_invalid_json(self):
        for body in ['{"method": "health"', "{method: health}", "", "nul", "{'a': 1}", '{"a":1,}']:
            with self.subTest(body=body):
                status, h, data = self.server.request("POST", "/rpc", body, AUTH)
                self.assertStandardHeaders(h)
                err = self.assertError(status, json.loads(data), "InvalidRequest")
                self.assertEqual(err["message"], "Request body is not valid JSON")

    def test_trailing_garbage_is_invalid_json(self):
        for body in ['{"runId": "a"} xyz', '{"runId": "a"}{"runId": "b"}', '{"runId": "a"}]']:
            with self.subTest(body=body):
                status, _, data = self.server.request("POST", "/v1/rpc/getRun", body, AUTH)
                err = self.assertError(status, json.loads(data), "InvalidRequest")
                self.assertTrue(err["message"].startswith("Request body is not valid JSON"), err)

    def test_nul_in_strings_is_refused(self):
        # cJSON would cut "a\u0000b" down to "a": the call would act on a
        # different run than the one the client named.
        for body in ['{"runId":"a\\u0000b"}', '{"runId":"ok","x\\u0000":1}']:
            with self.subTest(body=body):
                status, _, data = self.server.request("POST", "/v1/rpc/getRun", body, AUTH)
                err = self.assertError(status, json.loads(data), "InvalidRequest")
                self.assertIn("u0000", err["message"])
        # An escaped backslash followed by "u0000" is ordinary text.
        status, _, data = self.server.request("POST", "/v1/rpc/getRun", '{"runId":"a\\\\u0000b"}', AUTH)
        self.assertRunNotFound(status, json.loads(data), "a\\u0000b")

    def test_empty_body_means_no_params_on_method_paths(self):
        for body in ["", " \r\n"]:
            with self.subTest(body=body):
                status, _, data = self.server.request("POST", "/v1/rpc/health", body, AUTH)
                doc = json.loads(data)
                self.assertEqual(status, 200, doc)
                self.assertTrue(doc["ok"])
        # ...but a method that needs params still says which one is missing.
        status, _, data = self.server.request("POST", "/v1/rpc/getRun", "", AUTH)
        self.assertError(status, json.loads(data), "InvalidRequest", path="$.params.runId")

    def test_trailing_whitespace_is_fine(self):
        status, _, data = self.server.request("POST", "/v1/rpc/getRun", '{"runId": "a"} \r\n\t', AUTH)
        self.assertRunNotFound(status, json.loads(data), "a")

    def test_non_object_bodies(self):
        for body in ["[]", "[1]", '"str"', "1", "null", "true"]:
            for path in ("/rpc", "/v1/rpc/health"):
                with self.subTest(body=body, path=path):
                    status, _, data = self.server.request("POST", path, body, AUTH)
                    err = self.assertError(status, json.loads(data), "InvalidRequest")
                    self.assertEqual(err["message"], "Request body must be a JSON object")

    def test_server_survives_all_of_the_above(self):
        status, _, body = self.server.request("GET", "/health")
        self.assertEqual(status, 200)


class SlowClients(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
headersTimeout: 300
requestTimeout: 500
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"] }
"""

    def assert408(self, c, word):
        r = c.read_response()   # bounded by the socket timeout
        self.assertEqual(r.status, 408)
        self.assertStandardHeaders(r.headers)
        doc = r.json()
        self.assertFrame(doc)
        self.assertIs(doc["ok"], False)
        self.assertIn(word, doc["error"]["message"])
        self.assertEqual(r.headers.get("connection", "").lower(), "close")
        self.assertTrue(c.wait_closed(timeout=10), "connection stays open after 408")

    def test_headers_timeout(self):
        with self.server.raw(timeout=10) as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Le")
            self.assert408(c, "headersTimeout")

    def test_headers_deadline_not_extended_by_trickling(self):
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
        with self.server.raw(timeout=10) as c:
            # one byte every 50 ms; the server must answer 408 long before
            # the head (about 50 s of trickle) could finish
            deadline = time.monotonic() + 15
            answered = False
            for b in head:
                if time.monotonic() > deadline:
                    break
                try:
                    c.send(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    answered = True
                    break
                r, _, _ = select.select([c.sock], [], [], 0.05)
                if r:
                    answered = True
                    break
            self.assertTrue(answered, "no answer to a trickling head")
            self.assert408(c, "headersTimeout")

    def test_request_timeout(self):
        with self.server.raw(timeout=10) as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"Content-Length: 100\r\n\r\n{\"method\":")
            self.assert408(c, "requestTimeout")

    def test_request_timeout_chunked(self):
        with self.server.raw(timeout=10) as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"met\r\n")
            self.assert408(c, "requestTimeout")

    def test_silent_connection_is_closed(self):
        with self.server.raw(timeout=10) as c:
            deadline = time.monotonic() + 15
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    data = c.sock.recv(65536)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
                if not data:
                    closed = True
                else:
                    c.buf += data
            self.assertTrue(closed, "a connection that never sends is never closed")
            if c.buf:   # an answer is allowed, but then it is a 408
                self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"), c.buf)

    def test_normal_requests_still_work(self):
        status, _, doc = self.server.rpc("health", {}, token=OP)
        self.assertOk(status, doc)


class RefusedBodies(harness.ServerTestCase):
    """A refusal sent while the client is still sending must reach it."""
    CONFIG = """listen: 127.0.0.1:0
maxBodyBytes: %d
""" % MAX_BODY

    def test_413_reaches_a_client_that_sends_its_whole_body(self):
        # The server refuses at the head and never reads the body. Closing
        # with unread input made the kernel reset the connection, so a client
        # still writing its body got ECONNRESET instead of the 413. Now the
        # server half-closes and discards the rest for a moment.
        body = b"x" * (24 * 1024 * 1024)
        with self.server.raw(timeout=20) as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertEqual(r.json()["error"]["code"], "PayloadTooLarge")
            self.assertTrue(c.wait_closed(timeout=10))


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class NonReadingClients(harness.ServerTestCase):
    """Clients that send requests but never read the answers."""
    CONFIG = """listen: 127.0.0.1:0
requestTimeout: 500
"""

    def test_client_that_never_reads_is_bounded_and_dropped(self):
        # Each request was answered into an unbounded output buffer (about
        # 10x the request size), and the keep-alive timer restarted with every
        # request: the connection lived, and memory grew, as long as the
        # client kept sending (1.9 GB in 8 s).
        pid = self.server.proc.pid
        rss_before = _rss_kib(pid)
        req = harness.build_request("GET", "/health", content_length=False) * 1000
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.server.port))
        sock.setblocking(False)
        dropped = False
        deadline = time.monotonic() + 6
        try:
            while time.monotonic() < deadline and not dropped:
                _, w, _ = select.select([], [sock], [], 0.2)
                if not w:
                    continue
                try:
                    sock.send(req)
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
            growth_mib = (_rss_kib(pid) - rss_before) / 1024
        finally:
            sock.close()
        self.assertTrue(dropped, "a client that never reads is never dropped")
        self.assertLess(growth_mib, 300, "server memory grew by %.0f MiB" % growth_mib)
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)


class SlowReaders(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\n"

    def test_answers_survive_the_keep_alive_timeout(self):
        # The 5 s keep-alive timer started when the last answer was queued,
        # not written: a client still reading after 5 s lost the rest.
        n = 20000
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(harness.IO_TIMEOUT_S)
            sock.connect(("127.0.0.1", self.server.port))
            sock.sendall(harness.build_request("GET", "/health", content_length=False) * n)
            time.sleep(5.5)
            data = b""
            while data.count(b"HTTP/1.1 200 OK\r\n") < n:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 OK\r\n"), n)


class OutOfDescriptors(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\n"

    def test_accept_failure_does_not_spin(self):
        # With no descriptor left, accept() fails with EMFILE while the
        # listening socket stays readable: libevent retried at once, forever,
        # logging a line each time (100% CPU and ~50 MB of log a second).
        if not hasattr(resource, "prlimit"):
            self.skipTest("needs resource.prlimit (Linux)")
        pid = self.server.proc.pid
        in_use = len(os.listdir("/proc/%d/fd" % pid))
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 4, old[1]))
        socks = []
        try:
            for _ in range(16):
                socks.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=5))
            log_before = len(self.server.stderr())
            ticks_before = _cpu_ticks(pid)
            time.sleep(1.5)
            ticks = _cpu_ticks(pid) - ticks_before
            logged = len(self.server.stderr()) - log_before
        finally:
            for s in socks:
                s.close()
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        self.assertLess(ticks, 40, "server busy for %d ticks in 1.5 s" % ticks)
        self.assertLess(logged, 16384, "server logged %d bytes in 1.5 s" % logged)
        time.sleep(0.5)    # accepting resumes after the back-off
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.main()
