"""Integration-test harness: runs the real `anvil` binary on a loopback port.

Every test file imports this module and ends with `harness.main()`, so each
file runs on its own:

    python3 tests/integration/test_http_surface.py --anvil build/anvil

The binary comes from `--anvil PATH`, else $ANVIL_BIN, else build/anvil in
the source tree. Only the standard library and python3-yaml (for reading
openapi.yaml) are used.

`Server` writes a config into a fresh temporary directory, starts
`anvil serve --config ... --port-file ...` (the config listens on port 0),
waits (bounded) for the port file, and on stop sends SIGTERM, waits up to
10 s (then SIGKILL) and checks the exit status is 0, so a crash, a hang on
shutdown or a sanitizer report at exit fails the test that owns the server.
"""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
OPENAPI = os.path.join(SOURCE_DIR, "openapi.yaml")

START_TIMEOUT_S = 20.0      # ASan builds start slower; this is only a safety bound
STOP_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 20.0

# An event's payload as recorded, in SQL: rows marked `compact` are stored
# without the leading runId their run_id column holds
# (runtime/store/store_compact.h), and a reader puts it back.
PAYLOAD_SQL = ("CASE WHEN compact = 1 THEN '{\"runId\":\"' || run_id || '\"'"
               " || CASE WHEN payload_json = '{}' THEN '}' ELSE ',' || substr(payload_json, 2) END"
               " ELSE payload_json END")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STANDARD_HEADERS = {
    "x-smithers-api-version": "v1",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def _binary_from_argv():
    """Take `--anvil PATH` / `--anvil=PATH` out of sys.argv (unittest must not see it)."""
    path = None
    argv = [sys.argv[0]]
    args = sys.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--anvil" and i + 1 < len(args):
            path = args[i + 1]
            i += 2
            continue
        if a.startswith("--anvil="):
            path = a.split("=", 1)[1]
            i += 1
            continue
        argv.append(a)
        i += 1
    sys.argv[:] = argv
    return path


_ARG_BIN = _binary_from_argv()


def unused_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def anvil_bin():
    path = _ARG_BIN or os.environ.get("ANVIL_BIN") or os.path.join(SOURCE_DIR, "build", "anvil")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise RuntimeError("anvil binary not found or not executable: %s "
                           "(pass --anvil PATH or set ANVIL_BIN)" % path)
    return path


def main():
    unittest.main(verbosity=2)


# --------------------------------------------------------------------------
# the contract
# --------------------------------------------------------------------------

_CONTRACT = None


def contract():
    """openapi.yaml, parsed once."""
    global _CONTRACT
    if _CONTRACT is None:
        import yaml  # python3-yaml; the build already requires it
        with open(OPENAPI, encoding="utf-8") as f:
            _CONTRACT = yaml.safe_load(f)
    return _CONTRACT


def contract_methods():
    """[{name, scope, transport, errors, example, schema}] from the RPC paths."""
    c = contract()
    out = []
    for path, item in c["paths"].items():
        op = item.get("post")
        if not op or "x-smithers-method" not in op:
            continue
        body = op["requestBody"]["content"]["application/json"]
        out.append({
            "name": op["x-smithers-method"],
            "path": path,
            "scope": op["x-smithers-required-scope"],
            "transport": op["x-smithers-transport"],
            "errors": list(op.get("x-smithers-errors", [])),
            "example": body["example"],
            "schema": resolve(body["schema"]),
        })
    return out


def resolve(schema):
    """Follow a local $ref."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        node = contract()
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


def http_methods():
    return [m for m in contract_methods() if "http" in m["transport"].split("+")]


def websocket_only_methods():
    return [m for m in contract_methods() if m["transport"] == "websocket"]


def legacy_aliases():
    return dict(contract()["x-smithers-legacy-aliases"])


def error_status(code):
    return contract()["x-smithers-errors"][code]["httpStatus"]


# --------------------------------------------------------------------------
# raw HTTP
# --------------------------------------------------------------------------

class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # {lower-case name: value}
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class RawConn:
    """A plain socket with a buffered HTTP/1.1 response reader, for framing,
    pipelining and slow-client tests."""

    def __init__(self, port, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_response(self, head_request=False):
        """Read exactly one response; raises EOFError if the peer closed first."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed before a response head (got %r)" % self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_request else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise EOFError("connection closed inside a response body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return RawResponse(status, reason, headers, body)

    def wait_closed(self, timeout=IO_TIMEOUT_S):
        """True once the peer closes (EOF or reset) within `timeout` seconds,
        False if it is still open then. Extra bytes are an error."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
            raise AssertionError("unexpected bytes while waiting for close: %r" % self.buf)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method, path, body=b"", headers=None, content_length=True):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
    elif isinstance(body, str):
        body = body.encode("utf-8")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if content_length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

class Server:
    """One `anvil serve` process with its own directory, config and database.

    config: the YAML text of anvil.yaml (use `listen: 127.0.0.1:0`).
    files:  {relative path: text} written next to it (workflow files).
    """

    def __init__(self, config, files=None):
        self.dir = tempfile.mkdtemp(prefix="anvil-it-")
        self.config_path = os.path.join(self.dir, "anvil.yaml")
        for rel, text in (files or {}).items():
            p = os.path.join(self.dir, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config)
        self.db_path = os.path.join(self.dir, "anvil.db")
        self.port_file = os.path.join(self.dir, "port")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.proc = None
        self.port = None
        self.preexec = None     # run in the child before exec (resource limits)

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """Start (or, after stop()/kill(), restart on the same directory,
        config and database). Logs are appended across restarts."""
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [anvil_bin(), "serve", "--config", self.config_path, "--port-file", self.port_file],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            preexec_fn=self.preexec)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            rc = self.proc.poll()
            if rc is not None:
                self._out.close()
                self._err.close()
                self.proc = None
                raise AssertionError("anvil serve exited with %s before listening:\n%s"
                                     % (rc, self.stderr()))
            time.sleep(0.02)
        self.kill()
        raise AssertionError("anvil serve did not write its port file within %.0f s:\n%s"
                             % (START_TIMEOUT_S, self.stderr()))

    def stop(self):
        """SIGTERM, bounded wait (SIGKILL after 10 s). Returns the exit status
        and raises AssertionError unless it is 0."""
        if self.proc is None:
            return None
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        rc = self.proc.returncode
        self._out.close()
        self._err.close()
        self.proc = None
        if killed:
            raise AssertionError("anvil serve ignored SIGTERM for %.0f s:\n%s"
                                 % (STOP_TIMEOUT_S, self.stderr()))
        if rc != 0:
            raise AssertionError("anvil serve exited with status %s:\n%s" % (rc, self.stderr()))
        return rc

    def kill(self):
        """SIGKILL (a crash: no shutdown code runs) and reap the process."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._out.close()
        self._err.close()
        self.proc = None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # -- HTTP --------------------------------------------------------------

    def request(self, method, path, body=None, headers=None):
        """One request on a fresh connection. Returns (status, headers, body
        bytes); header names are lower-case."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT_S)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            hdrs = dict(headers or {})
            if body is not None and not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def post_json(self, path, body, token=None, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        status, h, data = self.request("POST", path, body, hdrs)
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:
            raise AssertionError("non-JSON response %d to POST %s: %r" % (status, path, data))
        return status, h, doc

    def rpc(self, method, params=None, token=None, headers=None):
        """POST /v1/rpc/{method} with bare params."""
        return self.post_json("/v1/rpc/" + method, {} if params is None else params,
                              token=token, headers=headers)

    def rpc_frame(self, frame, token=None, headers=None, path="/rpc"):
        """POST a full request frame (to /rpc unless path says otherwise)."""
        return self.post_json(path, frame, token=token, headers=headers)

    def sql(self, statement):
        """Run one statement on the server's database from outside (fault
        injection: a trigger that makes SQLite refuse a write)."""
        import sqlite3
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            db.execute(statement)
            db.commit()
        finally:
            db.close()

    def raw(self, timeout=IO_TIMEOUT_S):
        return RawConn(self.port, timeout=timeout)

    # -- CLI ---------------------------------------------------------------

    def cli(self, *args, env=None, timeout=60):
        return run_cli(*args, env=env, timeout=timeout, cwd=self.dir)


def run_cli(*args, env=None, timeout=60, cwd=None):
    """Run `anvil ARGS...`; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    for k in ("ANVIL_URL", "ANVIL_TOKEN"):
        full_env.pop(k, None)
    full_env.update(env or {})
    return subprocess.run([anvil_bin()] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)


class ServerTestCase(unittest.TestCase):
    """One server per test class: CONFIG (YAML text, listen on port 0) and
    FILES; the server is stopped (exit status 0 required) after the class."""

    CONFIG = "listen: 127.0.0.1:0\n"
    FILES = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.CONFIG, cls.FILES).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    # -- calls shared by the files ------------------------------------------
    # TOKEN is the bearer token these use unless a call names another.

    TOKEN = None
    WAIT_S = 20.0
    POLL_S = 0.05

    def call(self, method, params, token=None):
        """(HTTP status, parsed frame) of one RPC."""
        status, _, doc = self.server.rpc(method, params, token=token or self.TOKEN)
        return status, doc

    def ok(self, method, params, token=None):
        """The payload of a call that must succeed."""
        status, doc = self.call(method, params, token)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["ok"], doc)
        return doc["payload"]

    def error(self, method, params, code, http, token=None):
        """The error object of a call that must fail with `code` and HTTP status `http`."""
        status, doc = self.call(method, params, token)
        self.assertEqual((status, doc.get("ok")), (http, False), doc)
        self.assertEqual(doc["error"]["code"], code, doc)
        return doc["error"]

    def launch(self, workflow, run_id, input=None):
        return self.ok("launchRun", {"workflow": workflow, "input": input or {},
                                     "options": {"runId": run_id}})["runId"]

    def wait_status(self, run_id, *statuses):
        """getRun until the run's status is one of `statuses` (bounded)."""
        deadline = time.monotonic() + self.WAIT_S
        while True:
            run = self.ok("getRun", {"runId": run_id})
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                self.fail("run %s stayed %s (wanted %s)" % (run_id, run["status"], statuses))
            time.sleep(self.POLL_S)

    # -- assertions shared by the files ------------------------------------

    def assertStandardHeaders(self, headers):
        for name, value in STANDARD_HEADERS.items():
            self.assertEqual(headers.get(name), value, "header %s on every response" % name)

    def assertFrame(self, doc):
        self.assertEqual(doc.get("type"), "res", doc)
        self.assertEqual(doc.get("apiVersion"), "v1", doc)
        self.assertIsInstance(doc.get("id"), str, doc)
        self.assertIsInstance(doc.get("ok"), bool, doc)

    def assertError(self, status, doc, code, http_status=None, path=None, message=None):
        """An error ResponseFrame with this code, the contract's HTTP status,
        and optionally the JSON path detail / exact message."""
        self.assertFrame(doc)
        self.assertIs(doc["ok"], False, doc)
        self.assertNotIn("payload", doc)
        err = doc.get("error")
        self.assertIsInstance(err, dict, doc)
        self.assertEqual(err.get("code"), code, doc)
        self.assertEqual(err.get("version"), "v1", doc)
        self.assertEqual(err.get("legacyCode"), contract()["x-smithers-errors"][code]["legacyCode"], doc)
        self.assertIsInstance(err.get("message"), str, doc)
        self.assertEqual(status, http_status if http_status is not None else error_status(code), doc)
        if path is not None:
            self.assertEqual(err.get("path"), path, doc)
            self.assertTrue(err["message"].startswith(path + ": "), doc)
        if message is not None:
            self.assertEqual(err["message"], message, doc)
        return err

    def assertOk(self, status, doc):
        self.assertFrame(doc)
        self.assertEqual(status, 200, doc)
        self.assertIs(doc["ok"], True, doc)
        self.assertNotIn("error", doc)
        self.assertIn("payload", doc)
        return doc["payload"]

    def assertNotAvailable(self, status, doc, method):
        """The placeholder answer of a method whose handler is not written yet
        (the STUBBED set): it proves the request passed auth, scope and
        validation."""
        return self.assertError(status, doc, "Internal", 500,
                                message="%s is not available yet" % method)

    def assertPassedValidation(self, status, doc, method):
        """The request got past bounds, auth, scope and schema validation and
        reached `method`'s handler.

        For a STUBBED method that is exactly the "not available yet" Internal
        error. For an implemented one it is a success frame, or an error the
        handler itself decides (RunNotFound, InvalidInput for an unknown
        workflow, NodeNotFound, Busy, ...): never one of PRE_HANDLER_CODES,
        never Internal (a valid request must not break a real handler, and a
        regression back to the placeholder must show), always a code of the
        contract's error map with its HTTP status. Returns the payload or the
        error object."""
        if method in STUBBED:
            return self.assertNotAvailable(status, doc, method)
        self.assertFrame(doc)
        if doc["ok"]:
            return self.assertOk(status, doc)
        err = doc.get("error")
        self.assertIsInstance(err, dict, doc)
        code = err.get("code")
        if code == "InvalidRequest" and str(err.get("message", "")).startswith(
                HANDLER_INVALID_REQUEST.get(method, ())):
            return self.assertError(status, doc, code)   # the handler's own check
        self.assertNotIn(code, PRE_HANDLER_CODES, "%s did not reach its handler: %r" % (method, doc))
        self.assertNotEqual(code, "Internal", "%s answered Internal to a valid request: %r" % (method, doc))
        self.assertIn(code, contract()["x-smithers-errors"], doc)
        return self.assertError(status, doc, code)

    def assertPassedScope(self, status, doc, method):
        """The call got past the scope check: it answered ok, or an error
        only the handler gives (see assertPassedValidation)."""
        self.assertPassedValidation(status, doc, method)

    def assertForbidden(self, status, doc, scope, called=None):
        err = self.assertError(status, doc, "Forbidden")
        self.assertEqual(err.get("requiredScope"), scope, doc)
        if called is not None:
            self.assertEqual(err["message"], "Missing required scope %s for %s" % (scope, called))
        return err


# Methods whose handler is still the placeholder: after bounds, auth, scope
# and validation they answer Internal "<method> is not available yet".
# Every other HTTP method of the contract is implemented.
STUBBED = set()

# Error codes produced before a request reaches its handler.
# InvalidRequest answers that only a handler gives, by message prefix: checks
# the contract's schema cannot express (a cron pattern's syntax, a
# registered workflow, "cronId or workflow", a verdict given in one of two
# places). They prove the handler ran.
HANDLER_INVALID_REQUEST = {
    "cronCreate": ("$.params.pattern: Invalid cron pattern: ", "$.params.workflow: Unknown workflow: "),
    "cronRun": ("$.params: cronRun needs cronId or workflow",),
    "rewindRun": ("$.params.runId: must match ",),
    "submitApproval": ('$.params.decision.approved: required property "approved" is missing',),
}
PRE_HANDLER_CODES = ("InvalidRequest", "Unauthorized", "Forbidden", "MethodNotFound")
