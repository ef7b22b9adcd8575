"""The generated TypeScript client (generated/clients/typescript/) against
the real binary, under Bun and under Node.

tests/clients/ts_client_check.ts does the calls (see its header); this file
starts what it talks to — a server, a second one with a replay window of 3
events for GapResync, and a loopback proxy to the first that the script cuts
through a control endpoint — then:

- compiles the client and the script with `tsc --strict` (erasable syntax
  only; tests/clients/tsconfig.json) and runs the JavaScript under Node;
- runs the TypeScript itself under Bun;
- checks each run's report: every check passed, the client's method table is
  the contract's, and every method's example came back as a payload or as a
  declared error with its HTTP status (the same rules as test_py_client.py);
- compares the client's members with the upstream's SmithersGatewayClient
  (tests/clients/ts_surface_check.ts under Bun).

Needs tests/client/node_modules (bun, tsc) from scripts/install-deps.sh;
fails, never skips, without it. Every wait is bounded.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from cut_proxy import CutProxy  # noqa: E402
from test_py_client import EXPIRED, OP, READER, config  # noqa: E402

SOURCE = harness.SOURCE_DIR
BIN = os.path.join(SOURCE, "tests", "client", "node_modules", ".bin")
SCRIPT = os.path.join(SOURCE, "tests", "clients", "ts_client_check.ts")
TSCONFIG = os.path.join(SOURCE, "tests", "clients", "tsconfig.json")
RUN_TIMEOUT_S = 180
CHECKS = ["methods", "examples", "lifecycle", "run-control", "errors", "resilient-stream-cut-twice", "gap-resync",
          "devtools-stream"]


def tool(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s missing: run scripts/install-deps.sh (npm ci in tests/client)" % path)
    return path


class TsClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anvil-ts-client-")
        text, files = config()
        cls.server = harness.Server(text, files).start()
        gap_text, gap_files = config("eventWindowSize: 3\n")
        cls.gap_server = harness.Server(gap_text, gap_files).start()
        cls.proxy = CutProxy(cls.server.port)
        control = cls.proxy.serve_control()
        cls.args_path = os.path.join(cls.tmp, "args.json")
        with open(cls.args_path, "w", encoding="utf-8") as f:
            json.dump({
                "url": cls.server.url, "gapUrl": cls.gap_server.url, "proxyUrl": cls.proxy.url,
                "controlUrl": control, "token": OP, "reader": READER, "expired": EXPIRED,
                "examples": [{"name": m["name"], "example": m["example"]} for m in harness.http_methods()],
            }, f)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        try:
            cls.server.stop()
            cls.gap_server.stop()
        finally:
            cls.server.cleanup()
            cls.gap_server.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_script(self, argv, label):
        proc = subprocess.run(argv + [self.args_path], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, cwd=SOURCE, stdin=subprocess.DEVNULL)
        reports = {}
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                doc = json.loads(line)
                reports[doc["check"]] = doc
        self.assertEqual(proc.returncode, 0, "%s failed:\n%s\n%s" % (label, proc.stdout, proc.stderr))
        self.assertEqual(sorted(reports), sorted(CHECKS), proc.stdout)
        for name, doc in reports.items():
            self.assertIs(doc["ok"], True, "%s: %s" % (label, doc))
        self.check_report(reports, label)
        return reports

    def check_report(self, reports, label):
        contract = harness.contract_methods()
        self.assertEqual(sorted(reports["methods"]["methods"]), sorted(m["name"] for m in contract), label)
        declared = {m["name"]: m["errors"] for m in contract}
        outcomes = {o["name"]: o for o in reports["examples"]["outcomes"]}
        self.assertEqual(sorted(outcomes), sorted(m["name"] for m in harness.http_methods()), label)
        for name, o in outcomes.items():
            if o["ok"]:
                continue
            self.assertIn(o["code"], declared[name], "%s: %s answered an undeclared code: %s" % (label, name, o))
            self.assertEqual(o["status"], harness.error_status(o["code"]), o)
            self.assertEqual(o["declaredStatus"], o["status"], o)
            if not o["message"].startswith(harness.HANDLER_INVALID_REQUEST.get(name, ())):
                self.assertNotIn(o["code"], harness.PRE_HANDLER_CODES, "%s: %s did not reach its handler: %s"
                                 % (label, name, o))
        self.assertTrue(outcomes["health"]["ok"])
        self.assertEqual(outcomes["getRun"]["code"], "RunNotFound")
        self.assertEqual(len(reports["resilient-stream-cut-twice"]["reconnects"]), 2, label)

    def test_the_upstream_clients_surface(self):
        """Every member of the upstream's SmithersGatewayClient whose method
        the contract defines (and the generic ones: rpc, connect, streams,
        close) exists on the generated client, with the same fields."""
        proc = subprocess.run([tool("bun"), os.path.join(SOURCE, "tests", "clients", "ts_surface_check.ts")],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=SOURCE,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(report["missing"], [], report)
        for name in ("rpc", "rpcRaw", "connect", "close", "closed", "streamRunEvents",
                     "streamRunEventsResilient", "streamDevTools", "launchRun", "getRun", "cronRun"):
            self.assertIn(name, report["shared"], report)

    def test_bun_runs_the_typescript(self):
        self.run_script([tool("bun"), SCRIPT], "bun")

    def test_node_runs_what_tsc_strict_compiled(self):
        out = os.path.join(self.tmp, "node-out")
        proc = subprocess.run([tool("tsc"), "-p", TSCONFIG, "--outDir", out], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, cwd=SOURCE, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, "tsc --strict:\n%s%s" % (proc.stdout, proc.stderr))
        with open(os.path.join(out, "package.json"), "w", encoding="utf-8") as f:
            f.write('{"type": "module"}\n')
        # Node 22 from npm (tests/client/package.json): the client needs a
        # WebSocket global, which Debian 12's Node 18 lacks.
        node = tool("node")
        flags = []
        probe = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 3)"],
                               timeout=30, capture_output=True)
        if probe.returncode == 3:
            flags = ["--experimental-websocket"]    # Node 21 and early 22; a global since 22.4
        self.run_script([node] + flags + [os.path.join(out, "tests", "clients", "ts_client_check.js")], "node")


if __name__ == "__main__":
    harness.main()
