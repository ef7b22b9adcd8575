#!/usr/bin/env python3
"""Structured logs (docs/config.md#logs): `logFormat: json` makes every line
of the server's stderr a JSON object with time, level and msg, plus the
request id, connection id, method and run id where they exist; `accessLog`
adds a line per HTTP request (off by default); text lines carry the same
fields as key=value; a bad logFormat is a config error.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOKEN = "log-token-0001"
WORKFLOW = "name: one\nroot:\n  task: { id: t, output: { v: done } }\n"


def config(extra):
    return ("listen: 127.0.0.1:0\ndatabase: anvil.db\n%s"
            "auth:\n  mode: token\n  tokens:\n    %s: { role: operator, scopes: [\"*\"] }\n"
            "workflows:\n  one: { file: one.yaml }\n" % (extra, TOKEN))


def exercise(server):
    """Calls whose lines the tests look for; returns the run id deleted."""
    server.rpc("health", {}, token=TOKEN, headers={"x-request-id": "req-health-1"})
    status, _, doc = server.rpc("launchRun", {"workflow": "one", "input": {}}, token=TOKEN)
    assert status == 200, doc
    run_id = doc["payload"]["runId"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, _, got = server.rpc("getRun", {"runId": run_id}, token=TOKEN)
        if got.get("ok") and got["payload"]["status"] == "finished":
            break
        time.sleep(0.05)
    status, _, doc = server.rpc("deleteRun", {"runId": run_id}, token=TOKEN,
                                headers={"x-request-id": "req-delete-1"})
    assert status == 200, doc
    server.request("POST", "/v1/rpc/getRun", b"{not json", {"Authorization": "Bearer " + TOKEN})
    return run_id


class JsonLogs(harness.ServerTestCase):
    CONFIG = config("logFormat: json\naccessLog: true\n")
    FILES = {"one.yaml": WORKFLOW}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_id = exercise(cls.server)
        cls.server.stop()
        with open(cls.server.stderr_path, encoding="utf-8") as f:
            cls.lines = [ln for ln in f.read().splitlines() if ln.strip()]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def docs(self):
        return [json.loads(ln) for ln in self.lines]

    def test_every_line_is_json_with_time_level_msg(self):
        self.assertGreater(len(self.lines), 5)
        for ln in self.lines:
            d = json.loads(ln)
            self.assertRegex(d["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(d["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(d["msg"], str)

    def test_access_line_per_request(self):
        access = [d for d in self.docs() if "status" in d and "httpMethod" in d]
        health = [d for d in access if d.get("requestId") == "req-health-1"]
        self.assertEqual(len(health), 1, access)
        h = health[0]
        self.assertEqual((h["httpMethod"], h["path"], h["status"], h["method"]),
                         ("POST", "/v1/rpc/health", "200", "health"))
        self.assertRegex(h["connId"], r"^http-\d+$")
        self.assertRegex(h["durationMs"], r"^\d+$")
        self.assertGreater(int(h["bytes"]), 0)
        self.assertEqual(h["msg"], "POST /v1/rpc/health 200")
        bad = [d for d in access if d["status"] == "400" and d["path"] == "/v1/rpc/getRun"]
        self.assertEqual(len(bad), 1)
        # One per request: health, launch, the getRun polls, delete, the bad one.
        self.assertGreaterEqual(len(access), 5)

    def test_run_line_names_run_request_connection_and_method(self):
        deleted = [d for d in self.docs() if d["msg"] == "run %s deleted" % self.run_id]
        self.assertEqual(len(deleted), 1, self.lines[-10:])
        d = deleted[0]
        self.assertEqual(d["runId"], self.run_id)
        self.assertEqual(d["method"], "deleteRun")
        self.assertEqual(d["requestId"], "req-delete-1")
        self.assertRegex(d["connId"], r"^http-\d+$")

    def test_lines_outside_a_call_have_no_call_fields(self):
        start = [d for d in self.docs() if d["msg"].startswith("anvil listening on")]
        self.assertEqual(len(start), 1)
        for key in ("requestId", "connId", "method", "runId"):
            self.assertNotIn(key, start[0])


class TextLogs(harness.ServerTestCase):
    CONFIG = config("")
    FILES = {"one.yaml": WORKFLOW}

    def test_text_lines_carry_fields_and_no_access_log_by_default(self):
        run_id = exercise(self.server)
        lines = self.server.stderr().splitlines()
        line = [ln for ln in lines if "run %s deleted" % run_id in ln]
        self.assertEqual(len(line), 1, lines[-10:])
        self.assertRegex(line[0], r"^\d{4}-\d\d-\d\dT[\d:.]+Z info  run \S+ deleted ")
        self.assertIn("requestId=req-delete-1", line[0])
        self.assertIn("method=deleteRun", line[0])
        self.assertIn("runId=%s" % run_id, line[0])
        self.assertTrue(re.search(r"connId=http-\d+", line[0]))
        self.assertFalse([ln for ln in lines if "httpMethod=" in ln])


class BadFormat(harness.ServerTestCase):
    def test_unknown_log_format_is_refused(self):
        d = os.path.join(self.server.dir, "bad")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "anvil.yaml"), "w", encoding="utf-8") as f:
            f.write("listen: 127.0.0.1:0\nlogFormat: yaml\n")
        p = harness.run_cli("check-config", os.path.join(d, "anvil.yaml"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("logFormat: expected text or json", p.stdout + p.stderr)


if __name__ == "__main__":
    harness.main()
