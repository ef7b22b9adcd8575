"""The strict front door (docs/http.md, "Requests that are ambiguous about
their framing"), through the real binary on raw loopback sockets, one class
per rule: trailers, the chunk-size line, bare LF (and stray CR), Host, which
upgrades reach the WebSocket, answers written before a WebSocket hand-off,
and maxHttpConnections.

Every refusal here is checked for its status, its JSON error, that the
connection then closes and that nothing else is answered on it (a
request smuggled behind a malformed one would show up as a second
response). Every wait is bounded."""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CLOSE_S = 5.0   # a refused connection closes at once; this only bounds the wait

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def chunked_post(chunks, path=b"/v1/rpc/health"):
    """A chunked POST whose body is `chunks` as sent (sizes, extensions,
    trailers and all)."""
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)


def ws_upgrade(path=b"/", version=b"1.1", extra=b""):
    return (b"GET " + path + b" HTTP/" + version + b"\r\nHost: 127.0.0.1\r\n"
            b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + WS_KEY + b"\r\n" + extra + b"\r\n")


class FrontDoor(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\n"

    def assertRefused(self, data, status=400, message=None, answered=0):
        """`data` on a fresh connection: `answered` ordinary answers, then
        one refusal with `status` (InvalidRequest unless 413), then the
        connection closes with nothing more."""
        with self.server.raw(timeout=CLOSE_S) as c:
            c.send(data)
            for _ in range(answered):
                self.assertEqual(c.read_response().status, 200)
            r = c.read_response()
            self.assertEqual(r.status, status, (data, r.body))
            self.assertStandardHeaders(r.headers)
            self.assertEqual(r.headers.get("connection", "").lower(), "close")
            code = "PayloadTooLarge" if status == 413 else "InvalidRequest"
            self.assertError(r.status, r.json(), code, status, message=message)
            self.assertTrue(c.wait_closed(timeout=CLOSE_S), "still open after a refusal: %r" % data)

    def assertServed(self, data, answers=1):
        """`data` is answered `answers` times with 200, and the connection
        stays usable."""
        with self.server.raw(timeout=CLOSE_S) as c:
            c.send(data)
            for _ in range(answers):
                r = c.read_response()
                self.assertEqual(r.status, 200, (data, r.body))
                self.assertNotEqual(r.headers.get("connection", "").lower(), "close")
            c.send(HEALTH)
            self.assertEqual(c.read_response().status, 200)


class Trailers(FrontDoor):
    """Trailer lines are header fields (then ignored), never anything else."""

    def test_last_chunk_without_its_crlf_does_not_swallow_the_next_request(self):
        # "0\r\n" and then, where the final CRLF belongs, another request:
        # read as trailers it would vanish (and its bytes be trusted by
        # whatever reads the stream differently). It is refused, alone.
        for nxt in (b"POST /v1/rpc/cancelRun HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
                    HEALTH):
            with self.subTest(next=nxt):
                self.assertRefused(chunked_post(b"2\r\n{}\r\n0\r\n" + nxt),
                                   message="Malformed chunked body")

    def test_malformed_trailers_are_refused(self):
        for trailer in (b"NoColon\r\n", b": empty-name\r\n", b"X Bad: v\r\n", b"X : v\r\n",
                        b" folded\r\n", b"X: a\x01b\r\n", b"X: a\x7fb\r\n"):
            with self.subTest(trailer=trailer):
                self.assertRefused(chunked_post(b"2\r\n{}\r\n0\r\n" + trailer + b"\r\n"))

    def test_framing_and_routing_trailers_are_refused(self):
        for trailer in (b"Content-Length: 5", b"transfer-encoding: chunked", b"Host: other",
                        b"Trailer: X"):
            with self.subTest(trailer=trailer):
                self.assertRefused(chunked_post(b"2\r\n{}\r\n0\r\n" + trailer + b"\r\n\r\n"))

    def test_well_formed_trailers_are_ignored(self):
        self.assertServed(chunked_post(b"2\r\n{}\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n"
                                       b"X-Content-Length: 9\r\n\r\n"))


class ChunkSizeLine(FrontDoor):
    """chunk-size is hex digits; only a well-formed extension may follow."""

    def test_junk_in_or_around_the_size_is_refused(self):
        for line in (b"2 5", b" 2", b"\t2", b"2x", b"0x2", b"+2", b"-2", b"2 ", b"2 x", b""):
            with self.subTest(line=line):
                self.assertRefused(chunked_post(line + b"\r\n{}\r\n0\r\n\r\n"),
                                   message="Malformed chunked body")

    def test_overflowing_size_is_refused(self):
        # 2^64 does not fit: malformed, not some smaller number.
        self.assertRefused(chunked_post(b"10000000000000000\r\n{}\r\n0\r\n\r\n"))
        self.assertRefused(chunked_post(b"000000000000000000000000000000001ffffffffffffffff\r\n"))
        # A size that fits but passes maxBodyBytes is 413 at once.
        self.assertRefused(chunked_post(b"FFFFFFFFFFFFFFFF\r\n"), status=413)

    def test_malformed_extensions_are_refused(self):
        for ext in (b";", b"; ", b";=v", b";a=", b";a ", b";a=b ", b";a=b c", b";a b",
                    b";a\x01", b";a=\"x", b";a=\"x\"y", b";a=\"\x01\"", b";a@b"):
            with self.subTest(ext=ext):
                self.assertRefused(chunked_post(b"2" + ext + b"\r\n{}\r\n0\r\n\r\n"))

    def test_well_formed_extensions_are_ignored(self):
        self.assertServed(chunked_post(b"2 ; name=value;flag\r\n{}\r\n"
                                       b"0;q=\"quoted \\\" text\"\r\n\r\n"))
        self.assertServed(chunked_post(b"0002\r\n{}\r\n000\r\n\r\n"))


class BareLineEnds(FrontDoor):
    """Every line ends in CRLF: a bare LF (or a CR without its LF) is refused
    wherever a line can end."""

    BARE_LF = "lines must end with CRLF, not a bare LF"

    def test_bare_lf_in_the_head(self):
        for head in (b"GET /health HTTP/1.1\nHost: x\r\n\r\n",      # request line
                     b"GET /health HTTP/1.1\r\nHost: x\n\r\n",      # header line
                     b"GET /health HTTP/1.1\r\nHost: x\r\n\n",      # the empty line
                     b"GET /health HTTP/1.1\nHost: x\n\n"):
            with self.subTest(head=head):
                self.assertRefused(head, message=self.BARE_LF)

    def test_stray_cr_in_the_head(self):
        for head in (b"GET /health HTTP/1.1\r\r\nHost: x\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"):
            with self.subTest(head=head):
                self.assertRefused(head, message="a CR must be followed by LF")

    def test_bare_lf_head_swallows_nothing(self):
        # A bare-LF head is refused at its first empty line (never searched
        # for a CRLFCRLF further on, which once took the next request into
        # it), at once rather than after headersTimeout.
        for head in (b"GET /health HTTP/1.1\nHost: x\n\n",
                     b"POST /v1/rpc/health HTTP/1.1\nHost: x\nContent-Length: 2\n\r\n{}"):
            with self.subTest(head=head):
                self.assertRefused(head + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", message=self.BARE_LF)

    def test_bare_lf_in_a_chunked_body(self):
        for body in (b"2\n{}\r\n0\r\n\r\n",          # chunk-size line
                     b"2;a=b\n{}\r\n0\r\n\r\n",      # ... with an extension
                     b"2\r\n{}\n0\r\n\r\n",          # after the data
                     b"2\r\n{}\r\n0\n\r\n",          # last-chunk line
                     b"2\r\n{}\r\n0\r\nX: y\n\r\n",  # a trailer
                     b"2\r\n{}\r\n0\r\n\n"):         # the final empty line
            with self.subTest(body=body):
                self.assertRefused(chunked_post(body), message="Malformed chunked body")

    def test_between_pipelined_requests_only_crlf_is_skipped(self):
        # RFC 9112 2.2: an empty line before a request may be ignored; only
        # a real CRLF counts as one.
        self.assertServed(HEALTH + b"\r\n\r\n" + HEALTH, answers=2)
        self.assertRefused(HEALTH + b"\n" + HEALTH, answered=1, message=self.BARE_LF)
        self.assertRefused(HEALTH + b"\r\n\n" + HEALTH, answered=1, message=self.BARE_LF)
        self.assertRefused(HEALTH + b"\r" + HEALTH, answered=1, message="a CR must be followed by LF")


class HostHeader(FrontDoor):
    """RFC 9112 3.2: exactly one valid Host on HTTP/1.1; HTTP/1.0 may omit it."""

    def test_missing_host_on_http11(self):
        self.assertRefused(b"GET /health HTTP/1.1\r\n\r\n",
                           message="missing Host header (required in HTTP/1.1)")
        self.assertRefused(b"POST /v1/rpc/health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
                           message="missing Host header (required in HTTP/1.1)")

    def test_repeated_host(self):
        for hosts in (b"Host: a\r\nHost: b\r\n", b"Host: a\r\nHost: a\r\n", b"Host: a\r\nhOST: a\r\n"):
            for version in (b"1.1", b"1.0"):
                with self.subTest(hosts=hosts, version=version):
                    self.assertRefused(b"GET /health HTTP/" + version + b"\r\n" + hosts + b"\r\n",
                                       message="more than one Host header")

    def test_invalid_host(self):
        for host in (b"", b"a b", b"user@a", b"a/b", b"a?b", b"a:b:c", b":80", b"a:", b"a:65536",
                     b"[::1", b"[::1]x", b"a%zz"):
            with self.subTest(host=host):
                self.assertRefused(b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                                   message="invalid Host header (expected host or host:port)")

    def test_valid_hosts(self):
        for host in (b"localhost", b"127.0.0.1:%d" % self.server.port, b"[::1]:7331", b"example.com"):
            with self.subTest(host=host):
                self.assertServed(b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")

    def test_http10_without_host(self):
        with self.server.raw(timeout=CLOSE_S) as c:
            c.send(b"GET /health HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertIs(r.json()["ok"], True)


def read_ws_frame(conn):
    """One unmasked server frame from a RawConn's buffer: (opcode, payload)."""
    def need(n):
        while len(conn.buf) < n:
            if not conn._fill():
                raise EOFError("connection closed inside a WebSocket frame")
    need(2)
    b0, b1 = conn.buf[0], conn.buf[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        need(4)
        n, off = struct.unpack("!H", conn.buf[2:4])[0], 4
    elif n == 127:
        need(10)
        n, off = struct.unpack("!Q", conn.buf[2:10])[0], 10
    need(off + n)
    payload, conn.buf = conn.buf[off:off + n], conn.buf[off + n:]
    return b0 & 0x0F, payload


class SlowConn(harness.RawConn):
    """A RawConn with a small receive buffer: what the server writes backs
    up on its side until the test reads."""

    def __init__(self, port, rcvbuf=4096):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(harness.IO_TIMEOUT_S)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""


class Upgrades(FrontDoor):
    """Only a websocket upgrade (GET, HTTP/1.1) on the WebSocket's path `/`
    reaches the WebSocket; and answers pipelined before it are written first."""

    def assertHandedOver(self, c):
        """The 101, then a live WebSocket: the first frame is connect.challenge."""
        r = c.read_response(head_request=True)
        self.assertEqual(r.status, 101)
        self.assertEqual(r.headers.get("upgrade", "").lower(), "websocket")
        opcode, payload = read_ws_frame(c)
        self.assertEqual(opcode, 1)
        self.assertEqual(json.loads(payload)["event"], "connect.challenge")

    def test_pipelined_answers_are_written_before_the_upgrade(self):
        with self.server.raw() as c:
            c.send(HEALTH + b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nx-request-id: second\r\n"
                   b"Content-Length: 2\r\n\r\n{}" + ws_upgrade())
            self.assertEqual(c.read_response().status, 200)
            r = c.read_response()
            self.assertOk(r.status, r.json())
            self.assertEqual(r.json()["id"], "second")
            self.assertHandedOver(c)

    def test_many_queued_answers_survive_a_slow_reader(self):
        # A client that reads slowly keeps the answers queued in the server
        # when the upgrade is read: the hand-off must wait for all of them.
        n = 300
        with SlowConn(self.server.port) as c:
            c.send(b"".join(b"GET /health?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
                   + ws_upgrade())
            time.sleep(0.3)   # let the server fill its side and read the upgrade
            for i in range(n):
                r = c.read_response()
                self.assertEqual(r.status, 200, "answer %d" % i)
                self.assertIs(r.json()["ok"], True)
            self.assertHandedOver(c)

    def test_h2c_is_plain_http(self):
        # h2c (or any non-websocket Upgrade) is ignored, as RFC 9110 7.8
        # allows: answered over HTTP/1.1 on a connection that stays usable,
        # on /health and on the WebSocket's own path alike.
        for path in (b"/health", b"/"):
            with self.subTest(path=path), self.server.raw(timeout=CLOSE_S) as c:
                c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200 if path == b"/health" else 404)
                self.assertNotIn("upgrade", r.headers)
                c.send(HEALTH)
                self.assertEqual(c.read_response().status, 200)

    def test_websocket_upgrade_on_another_path_is_plain_http(self):
        with self.server.raw(timeout=CLOSE_S) as c:
            c.send(ws_upgrade(b"/health"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertIs(r.json()["ok"], True)
            c.send(ws_upgrade(b"/nope"))
            r = c.read_response()
            self.assertEqual(r.status, 404)
            self.assertEqual(r.json()["error"]["code"], "NotFound")
            c.send(HEALTH)   # still an HTTP connection
            self.assertEqual(c.read_response().status, 200)

    def test_websocket_upgrade_must_be_http11_get(self):
        # RFC 9110 7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
        for data in (ws_upgrade(version=b"1.0"),
                     b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     b"Content-Length: 0\r\n\r\n"):
            with self.subTest(data=data), self.server.raw(timeout=CLOSE_S) as c:
                c.send(data)
                r = c.read_response()
                self.assertIn(r.status, (404, 405))
                self.assertIn(r.json()["error"]["code"], ("NotFound",))

    def test_websocket_upgrade_on_its_path_with_a_query(self):
        with self.server.raw() as c:
            c.send(ws_upgrade(b"/?client=test"))
            self.assertHandedOver(c)


class ConnectionCap(harness.ServerTestCase):
    """maxHttpConnections: past it, a JSON 503 Busy and the connection closes;
    WebSockets do not count."""
    CONFIG = "listen: 127.0.0.1:0\nmaxHttpConnections: 4\n"

    def wait_for_room(self):
        deadline = time.monotonic() + 10
        while True:
            with self.server.raw(timeout=CLOSE_S) as c:
                c.send(HEALTH)
                if c.read_response().status == 200:
                    return
            self.assertLess(time.monotonic(), deadline, "the cap never freed up")
            time.sleep(0.05)

    def test_http_connection_cap(self):
        held = [self.server.raw() for _ in range(4)]
        try:
            for c in held:   # each is served: the cap counts open connections
                c.send(HEALTH)
                self.assertEqual(c.read_response().status, 200)
            for _ in range(2):   # refused ones do not count either
                with self.server.raw(timeout=CLOSE_S) as extra:
                    r = extra.read_response()
                    self.assertEqual(r.status, 503)
                    self.assertStandardHeaders(r.headers)
                    self.assertTrue(r.headers.get("content-type", "").startswith("application/json"))
                    self.assertEqual(r.headers.get("connection", "").lower(), "close")
                    self.assertError(r.status, r.json(), "Busy", 503,
                                     message="Too many HTTP connections (maxHttpConnections 4)")
                    self.assertTrue(extra.wait_closed(timeout=CLOSE_S))
        finally:
            for c in held:
                c.close()
        self.wait_for_room()   # room again once they are gone

    def test_websockets_do_not_count(self):
        self.wait_for_room()
        sockets = []
        try:
            for _ in range(6):   # one at a time: each counts until it is handed over
                c = self.server.raw()
                sockets.append(c)
                c.send(ws_upgrade())
                r = c.read_response(head_request=True)
                self.assertEqual(r.status, 101, c.buf)
            self.wait_for_room()
        finally:
            for c in sockets:
                c.close()


if __name__ == "__main__":
    harness.main()
