#!/usr/bin/env python3
"""The conformance kit (tests/conformance/conformance.py) against the real
binary serving the example workflows: every check passes, the report says how
to run it against another server, and the kit does fail when the server and
the contract disagree (a contract that no longer declares an error the
server answers).

Runs the kit as a user would, as a separate process over loopback.
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = harness.SOURCE_DIR
KIT = os.path.join(ROOT, "tests", "conformance", "conformance.py")
EXAMPLES = os.path.join(ROOT, "examples")
OP, VIEWER = "dev-operator-token", "dev-viewer-token"


def example_config():
    """examples/anvil.yaml on a free port and a database of its own, with
    the example workflow files next to it."""
    with open(os.path.join(EXAMPLES, "anvil.yaml"), encoding="utf-8") as f:
        config = f.read()
    config = re.sub(r"(?m)^listen: .*$", "listen: 127.0.0.1:0", config)
    config = re.sub(r"(?m)^database: .*$", "database: anvil.db", config)
    files = {}
    wf_dir = os.path.join(EXAMPLES, "workflows")
    for name in os.listdir(wf_dir):
        with open(os.path.join(wf_dir, name), encoding="utf-8") as f:
            files["workflows/" + name] = f.read()
    return config, files


def run_kit(server, *extra, spec=None):
    report = tempfile.NamedTemporaryFile("r", suffix=".md", delete=False)
    report.close()
    args = [sys.executable, KIT, "--url", server.url, "--token", OP,
            "--weak-token", VIEWER, "--weak-scopes", "run:read", "--report", report.name]
    if spec:
        args += ["--spec", spec]
    p = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=240)
    with open(report.name, encoding="utf-8") as f:
        text = f.read()
    os.unlink(report.name)
    return p.returncode, text, p.stderr


class Conformance(harness.ServerTestCase):
    CONFIG, FILES = example_config()

    def rows(self, text, section=None, method=None):
        out = []
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 5 and cells[3] in ("pass", "FAIL", "not provoked"):
                if (section is None or cells[0] == section) and (method is None or cells[1] == method):
                    out.append(cells)
        return out

    def test_anvil_conforms(self):
        rc, text, err = run_kit(self.server)
        failures = [r for r in self.rows(text) if r[3] == "FAIL"]
        self.assertEqual(failures, [], text[:4000])
        self.assertEqual(rc, 0, err)
        self.assertIn("Against another v1 gateway", text)
        methods = {m["name"] for m in harness.contract_methods()}
        # Every method's example went over HTTP (and the WebSocket where it speaks it).
        http_examples = {r[1] for r in self.rows(text, "examples") if r[2].startswith("HTTP example")}
        self.assertEqual(http_examples, {m["name"] for m in harness.http_methods()})
        ws_examples = {r[1] for r in self.rows(text, "examples") if r[2].startswith("WebSocket example")}
        self.assertTrue(ws_examples and ws_examples <= methods)
        # Success answers were validated too, on the run the kit launched.
        live_ok = [r for r in self.rows(text, "examples") if "on the live runId -> ok" in r[2]]
        self.assertGreaterEqual(len(live_ok), 5, text[:4000])
        # The scope matrix covered every method with a scope outside run:read.
        refused = {r[1] for r in self.rows(text, "scopes") if r[2].startswith("refused without")}
        self.assertIn("launchRun", refused)
        self.assertIn("deleteRun", refused)
        self.assertNotIn("getRun", refused)
        for code in ("Unauthorized", "InvalidRequest", "RunNotFound"):
            self.assertTrue([r for r in self.rows(text, "errors") if r[2].startswith(code)
                             and r[3] == "pass"], code)
        self.assertTrue([r for r in self.rows(text, "frames", "connect") if r[2] == "hello frame"
                         and r[3] == "pass"])

    def test_kit_fails_when_the_contract_and_server_disagree(self):
        with open(os.path.join(ROOT, "openapi.yaml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        op = doc["paths"]["/v1/rpc/getRun"]["post"]
        op["x-smithers-errors"] = [c for c in op["x-smithers-errors"] if c != "RunNotFound"]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(doc, f)
        try:
            rc, text, _ = run_kit(self.server, spec=f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 1)
        bad = [r for r in self.rows(text, method="getRun") if r[3] == "FAIL"]
        self.assertTrue(any("does not declare" in r[4] for r in bad), text[:3000])

    def test_kit_fails_on_a_scope_it_was_told_wrongly(self):
        # Claiming the viewer token holds run:write: launchRun's refusal is
        # then a failure the kit must report.
        report = tempfile.NamedTemporaryFile("r", suffix=".md", delete=False)
        report.close()
        p = subprocess.run([sys.executable, KIT, "--url", self.server.url, "--token", OP,
                            "--weak-token", VIEWER, "--weak-scopes", "run:read,run:write",
                            "--report", report.name], capture_output=True, text=True, timeout=240)
        with open(report.name, encoding="utf-8") as f:
            text = f.read()
        os.unlink(report.name)
        self.assertEqual(p.returncode, 1)
        self.assertTrue([r for r in self.rows(text, "scopes", "launchRun") if r[3] == "FAIL"])


if __name__ == "__main__":
    harness.main()
