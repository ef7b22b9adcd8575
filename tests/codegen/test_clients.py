"""Adding a method to the spec and regenerating updates the Python and
TypeScript clients with no hand edit (CTest codegen.clients).

The test copies tests/codegen/fixture.yaml, adds the method `echoNote` to the
copy (operation, inline request and response schemas, one declared error),
and runs the generator on both. Against a loopback stub gateway that records
what it is sent, it then checks that:

- the client of the unchanged fixture has no echoNote, the new one has it;
- Python: `echo_note` is typed with the generated TypedDicts, POSTs
  /v1/rpc/echoNote with the params and returns the payload; the declared
  error comes back as its own exception class with its HTTP status;
- TypeScript: a caller of `echoNote` type-checks under `tsc --strict` (and a
  call with a wrong member type does not), then runs under Bun against the
  stub with the same results.

Usage: test_clients.py PYTHON_WITH_JINJA2 (the CTest command passes it).
"""
import copy
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import typing
import unittest

import yaml

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
CODEGEN = os.path.join(SOURCE, "codegen", "anvil_codegen.py")
FIXTURE = os.path.join(HERE, "fixture.yaml")
BIN = os.path.join(SOURCE, "tests", "client", "node_modules", ".bin")
TIMEOUT_S = 120

ECHO_NOTE = {
    "post": {
        "operationId": "echoNote", "summary": "Echo a note",
        "description": "Answer with the note and its length.",
        "x-smithers-method": "echoNote", "x-smithers-required-scope": "greet:read",
        "x-smithers-transport": "http+websocket", "x-smithers-errors": ["InvalidRequest", "Teapot"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "required": ["note"],
            "properties": {"note": {"type": "string", "maxLength": 40},
                           "shout": {"type": "boolean"}}}}}},
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "properties": {"payload": {
                "type": "object", "additionalProperties": False, "required": ["note", "length"],
                "properties": {"note": {"type": "string"}, "length": {"type": "integer"}}}}}}}}},
    }
}

TS_CALLER = """\
import { SmithersGatewayClient, GatewayRpcError, GATEWAY_METHODS } from "%(client)s";

declare const process: { argv: string[]; exit(code: number): never };

const client = new SmithersGatewayClient({ baseUrl: process.argv[2], token: "t" });
const answer: { note: string; length: number } = await client.echoNote({ note: "hi", shout: true });
if (answer.note !== "hi" || answer.length !== 2) {
  throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
}
if (GATEWAY_METHODS.echoNote.scope !== "greet:read") {
  throw new Error("scope");
}
try {
  await client.echoNote({ note: "teapot" });
  throw new Error("no error");
} catch (error) {
  if (!(error instanceof GatewayRpcError) || error.code !== "Teapot" || error.status !== 418) {
    throw error;
  }
}
export async function neverCalled() {
  // @ts-expect-error note is a string in the spec
  await client.echoNote({ note: 5 });
}
console.log("ok");
process.exit(0);
"""


class Stub(http.server.BaseHTTPRequestHandler):
    """A gateway that answers echoNote from the params, Teapot for "teapot"."""
    seen = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        Stub.seen.append((self.path, body, self.headers.get("Authorization")))
        if body.get("note") == "teapot":
            status, frame = 418, {"type": "res", "id": "x", "ok": False, "apiVersion": "v1",
                                  "error": {"version": "v1", "code": "Teapot", "message": "short and stout"}}
        else:
            status, frame = 200, {"type": "res", "id": "x", "ok": True, "apiVersion": "v1",
                                  "payload": {"note": body.get("note"), "length": len(body.get("note", ""))}}
        data = json.dumps(frame).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def generate(python, spec, out):
    proc = subprocess.run([python, CODEGEN, "--spec", spec, "--out", out], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise AssertionError("generator failed on %s:\n%s" % (spec, proc.stderr))


class AddedMethod(unittest.TestCase):
    PYTHON = sys.executable

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anvil-codegen-clients-")
        with open(FIXTURE, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        grown = copy.deepcopy(spec)
        grown["paths"]["/v1/rpc/echoNote"] = ECHO_NOTE
        cls.spec = os.path.join(cls.tmp, "grown.yaml")
        with open(cls.spec, "w", encoding="utf-8") as f:
            yaml.safe_dump(grown, f, sort_keys=False)
        cls.base_out = os.path.join(cls.tmp, "base")
        cls.out = os.path.join(cls.tmp, "grown")
        generate(cls.PYTHON, FIXTURE, cls.base_out)
        generate(cls.PYTHON, cls.spec, cls.out)
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
        cls.httpd.daemon_threads = True
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.url = "http://127.0.0.1:%d" % cls.httpd.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def load_python(self, out, name):
        spec = importlib.util.spec_from_file_location(name, os.path.join(out, "clients", "python", "anvil_client.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod     # TypedDicts resolve their names in their module
        spec.loader.exec_module(mod)
        return mod

    def test_only_the_grown_spec_has_it(self):
        for rel in ("clients/python/anvil_client.py", "clients/typescript/anvil_client.ts"):
            with open(os.path.join(self.base_out, rel), encoding="utf-8") as f:
                self.assertNotIn("echoNote", f.read(), rel)
            with open(os.path.join(self.out, rel), encoding="utf-8") as f:
                self.assertIn("echoNote", f.read(), rel)

    def test_python_client_calls_it(self):
        base = self.load_python(self.base_out, "fixture_base_client")
        self.assertFalse(hasattr(base.AnvilClient, "echo_note"))
        mod = self.load_python(self.out, "fixture_grown_client")
        hints = typing.get_type_hints(mod.AnvilClient.echo_note)
        self.assertIs(hints["params"], mod.EchoNoteRequest)
        self.assertIs(hints["return"], mod.EchoNoteResponse)
        self.assertEqual(set(mod.EchoNoteRequest.__required_keys__), {"note"})
        self.assertEqual(set(mod.EchoNoteRequest.__optional_keys__), {"shout"})
        self.assertEqual(mod.METHODS["echoNote"]["errors"], ["InvalidRequest", "Teapot"])
        Stub.seen.clear()
        client = mod.AnvilClient(self.url, token="t")
        self.assertEqual(client.echo_note({"note": "hi"}), {"note": "hi", "length": 2})
        self.assertEqual(Stub.seen, [("/v1/rpc/echoNote", {"note": "hi"}, "Bearer t")])
        with self.assertRaises(mod.TeapotError) as ctx:
            client.echo_note({"note": "teapot"})
        self.assertEqual((ctx.exception.code, ctx.exception.status), ("Teapot", 418))

    def test_typescript_client_typechecks_and_calls_it(self):
        for tool in ("tsc", "bun"):
            self.assertTrue(os.access(os.path.join(BIN, tool), os.X_OK),
                            "%s missing: run scripts/install-deps.sh (npm ci in tests/client)" % tool)
        caller = os.path.join(self.out, "caller.ts")
        with open(caller, "w", encoding="utf-8") as f:
            f.write(TS_CALLER % {"client": "./clients/typescript/anvil_client.ts"})
        tsc = subprocess.run([os.path.join(BIN, "tsc"), "--strict", "--noEmit", "--target", "es2022",
                              "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom",
                              "--erasableSyntaxOnly", "--allowImportingTsExtensions", caller],
                             capture_output=True, text=True, timeout=TIMEOUT_S)
        self.assertEqual(tsc.returncode, 0, "tsc --strict:\n%s%s" % (tsc.stdout, tsc.stderr))
        Stub.seen.clear()
        bun = subprocess.run([os.path.join(BIN, "bun"), caller, self.url], capture_output=True, text=True,
                             timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        self.assertEqual(bun.returncode, 0, "bun:\n%s%s" % (bun.stdout, bun.stderr))
        self.assertEqual(bun.stdout.strip(), "ok")
        self.assertEqual([(p, b) for p, b, _ in Stub.seen],
                         [("/v1/rpc/echoNote", {"note": "hi", "shout": True}),
                          ("/v1/rpc/echoNote", {"note": "teapot"})])


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        AddedMethod.PYTHON = sys.argv.pop(1)
    unittest.main(verbosity=2)
