"""Every engine event kind reaches a WebSocket client through the real
binary, and an oversize WebSocket message closes the socket with 1009.

One workflow exercises them all: a task that fails once and is retried
(node.failed with willRetry), a task that writes to stdout and stderr and
runs long enough for heartbeats (task.output, task.heartbeat), an approval
(approval.requested, approval.decided), a signal wait, and the run's end
(run.completed exactly once). Uses Debian's python3-websockets; every wait
is bounded.
"""
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_ws import Client, WsTestCase, run  # noqa: E402

import websockets  # noqa: E402
import yaml  # noqa: E402

OP = "op-token"
WORKFLOW = {"name": "everything", "root": {"sequence": [
    {"task": {"id": "flaky", "retries": 1,
              "run": "test -f tried || { touch tried; echo first-try-fails >&2; exit 3; }; echo '{\"ok\":true}'"}},
    {"task": {"id": "talk",
              "run": "echo out-line; echo err-line >&2; sleep 0.5; echo '{\"said\":\"hi\"}'"}},
    {"approval": {"id": "gate", "title": "Go?"}},
    {"signal": {"id": "wait", "name": "ping", "correlationKey": "${input.k}"}},
    {"task": {"id": "done", "output": {"got": "${outputs.wait.x}"}}},
]}}


def config(extra):
    text = ("listen: 127.0.0.1:0\n" + extra +
            "auth:\n  mode: token\n  tokens:\n"
            "    op-token: { role: operator, scopes: [\"*\"], userId: \"user:op\" }\n"
            "workflows:\n  everything: { file: wf/everything.yaml }\n")
    return text, {"wf/everything.yaml": yaml.safe_dump(WORKFLOW, sort_keys=False)}


class WsEveryEvent(WsTestCase):
    CONFIG, FILES = config("heartbeatMs: 100\n")

    def test_every_event_kind_reaches_the_socket(self):
        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            res = await c.call("launchRun", {"workflow": "everything", "input": {"k": "7"}})
            run_id = self.assertWsOk(res)["runId"]
            await c.wait_event("approval.requested", run_id)
            self.assertWsOk(await c.call("submitApproval", {
                "runId": run_id, "nodeId": "gate", "decision": {"approved": True, "note": "go"}}))
            self.assertWsOk(await c.call("submitSignal", {
                "runId": run_id, "correlationKey": "7", "signalName": "ping", "payload": {"x": 42}}))
            await c.wait_event("run.completed", run_id)
            await c.close()
            return run_id, c.events

        run_id, events = run(go())
        self.assertSeqContiguous(events)
        mine = [e for e in events if e.get("payload", {}).get("runId") == run_id]
        names = {e["event"] for e in mine}
        for kind in ("run.started", "node.started", "node.failed", "node.finished", "task.output",
                     "task.heartbeat", "approval.requested", "approval.decided", "run.completed"):
            self.assertIn(kind, names, "%s never reached the socket" % kind)
        self.assertIn("tick", {e["event"] for e in events})
        self.assertEqual([e["event"] for e in mine].count("run.completed"), 1)
        completed = [e for e in mine if e["event"] == "run.completed"][0]
        self.assertEqual(completed["payload"]["status"], "finished")
        retried = [e["payload"] for e in mine if e["event"] == "node.failed"]
        self.assertEqual([(p["nodeId"], p["willRetry"]) for p in retried], [("flaky", True)])
        out = "".join(e["payload"]["data"] for e in mine
                      if e["event"] == "task.output" and e["payload"]["nodeId"] == "talk")
        self.assertIn("out-line", out)
        self.assertIn("err-line", out)
        beats = [e["payload"] for e in mine if e["event"] == "task.heartbeat"]
        self.assertTrue(all(b["nodeId"] in ("flaky", "talk") for b in beats))
        for e in events:
            self.assertEqual(e["apiVersion"], "v1")
            self.assertIsInstance(e["stateVersion"], int)


class WsOversize(WsTestCase):
    CONFIG, FILES = config("maxPayload: 4096\n")

    def test_oversize_message_closes_with_1009(self):
        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            small = await c.call("health", {})
            self.assertWsOk(small)
            await c.send('{"type":"req","id":"big","method":"health","params":{"pad":"%s"}}' % ("x" * 10000))
            await c.wait_closed()
            return c.ws.close_code, c.ws.close_reason

        code, reason = run(go())
        self.assertEqual(code, 1009)
        self.assertIn("maxPayload", reason)
        # The server is still serving.
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.main()
