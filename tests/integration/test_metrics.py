#!/usr/bin/env python3
"""GET /metrics (docs/metrics.md): Prometheus text that the Prometheus
client's own parser reads (Debian's python3-prometheus-client), behind
observability:read unless `metrics.open`, with values that follow what the
server did: calls by method and outcome with their durations, connections,
authentication failures by reason, runs started and finished, approvals,
signals, cron fires, webhook deliveries and commits.
"""
import os
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OP, VIEWER, OBS = "op-token-0001", "viewer-token-0001", "obs-token-0001"
TOKENS = ("auth:\n  mode: token\n  tokens:\n"
          "    %s: { role: operator, scopes: [\"*\"] }\n"
          "    %s: { role: viewer, scopes: [run:read] }\n"
          "    %s: { role: bot, scopes: [observability:read] }\n" % (OP, VIEWER, OBS))
WORKFLOWS = ("workflows:\n  one: { file: one.yaml }\n  gate: { file: gate.yaml }\n"
             "  sig: { file: sig.yaml }\n")
FILES = {
    "one.yaml": "name: one\nroot:\n  task: { id: t, output: { v: done } }\n",
    "gate.yaml": "name: gate\nroot:\n  approval: { id: ok, title: Go? }\n",
    "sig.yaml": "name: sig\nroot:\n  signal: { id: s, name: go, correlationKey: \"${input.k}\" }\n",
}


def scrape(server, token=OP):
    status, headers, body = server.request(
        "GET", "/metrics", headers={"Authorization": "Bearer " + token} if token else {})
    return status, headers, body.decode("utf-8")


def samples(text):
    """{(name, frozenset(labels.items())): value} through the reference parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


class Metrics(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\ndatabase: anvil.db\n" + TOKENS + WORKFLOWS
    FILES = FILES

    def wait_status(self, run_id, want):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, _, doc = self.server.rpc("getRun", {"runId": run_id}, token=OP)
            if doc.get("ok") and doc["payload"]["status"] == want:
                return
            time.sleep(0.05)
        self.fail("run %s never reached %s" % (run_id, want))

    def test_scope_and_format(self):
        status, _, _ = scrape(self.server, None)
        self.assertEqual(status, 401)
        status, _, body = scrape(self.server, VIEWER)
        self.assertEqual(status, 403)
        self.assertIn('"requiredScope":"observability:read"', body)
        status, headers, body = scrape(self.server, OBS)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        fams = {f.name: f.type for f in text_string_to_metric_families(body)}
        for name, kind in (("anvil_rpc_calls", "counter"), ("anvil_rpc_duration_seconds", "histogram"),
                           ("anvil_http_connections_open", "gauge"), ("anvil_auth_failures", "counter"),
                           ("anvil_runs_started", "counter"), ("anvil_runs_finished", "counter"),
                           ("anvil_approvals_decided", "counter"), ("anvil_signals_received", "counter"),
                           ("anvil_cron_fires", "counter"), ("anvil_webhook_deliveries", "counter"),
                           ("anvil_store_commit_duration_seconds", "histogram")):
            self.assertEqual(fams.get(name), kind, name)
        status, _, _ = self.server.request("POST", "/metrics", b"{}", {"Authorization": "Bearer " + OBS})
        self.assertEqual(status, 405)

    def test_values_follow_what_the_server_did(self):
        _, _, before = scrape(self.server)
        # Calls: one ok, one RunNotFound, one unknown method, one bad token.
        self.server.rpc("health", {}, token=OP)
        self.server.rpc("getRun", {"runId": "nope"}, token=OP)
        self.server.rpc("noSuchMethod", {}, token=OP)
        self.server.rpc("health", {}, token="wrong-token")
        # Runs: one finishes, one waits on an approval that is approved,
        # one on a signal that comes.
        _, _, d1 = self.server.rpc("launchRun", {"workflow": "one", "input": {}}, token=OP)
        one = d1["payload"]["runId"]
        _, _, d2 = self.server.rpc("launchRun", {"workflow": "gate", "input": {}}, token=OP)
        gate = d2["payload"]["runId"]
        _, _, d3 = self.server.rpc("launchRun", {"workflow": "sig", "input": {"k": "k1"}}, token=OP)
        sig = d3["payload"]["runId"]
        self.wait_status(one, "finished")
        self.wait_status(gate, "waiting-approval")
        status, _, doc = self.server.rpc("submitApproval", {"runId": gate, "nodeId": "ok",
                                                            "decision": {"approved": True}}, token=OP)
        self.assertEqual(status, 200, doc)
        self.wait_status(gate, "finished")
        self.wait_status(sig, "waiting-event")
        status, _, doc = self.server.rpc("submitSignal", {"runId": sig, "signalName": "go",
                                                          "correlationKey": "k1", "payload": {}}, token=OP)
        self.assertEqual(status, 200, doc)
        self.wait_status(sig, "finished")
        # A cron fired by hand.
        status, _, doc = self.server.rpc("cronCreate", {"workflow": "one", "pattern": "0 0 1 1 *"},
                                         token=OP)
        self.assertEqual(status, 200, doc)
        status, _, doc = self.server.rpc("cronRun", {"cronId": doc["payload"]["cronId"]}, token=OP)
        self.assertEqual(status, 200, doc)
        _, _, after = scrape(self.server)

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("anvil_rpc_calls_total", method="health", outcome="ok"), 1)
        self.assertEqual(delta("anvil_rpc_calls_total", method="getRun", outcome="RunNotFound"), 1)
        self.assertEqual(delta("anvil_rpc_calls_total", method="(unknown)", outcome="MethodNotFound"), 1)
        self.assertEqual(delta("anvil_auth_failures_total", reason="invalid"), 1)
        self.assertGreaterEqual(delta("anvil_rpc_duration_seconds_count", method="launchRun"), 3)
        self.assertEqual(value(after, "anvil_rpc_duration_seconds_bucket", method="launchRun", le="+Inf"),
                         value(after, "anvil_rpc_duration_seconds_count", method="launchRun"))
        self.assertGreater(value(after, "anvil_rpc_duration_seconds_sum", method="launchRun"), 0)
        self.assertGreaterEqual(delta("anvil_runs_started_total"), 4)   # three, and the cron's
        self.assertGreaterEqual(delta("anvil_runs_finished_total", status="finished"), 3)
        self.assertEqual(delta("anvil_approvals_requested_total"), 1)
        self.assertEqual(delta("anvil_approvals_decided_total", decision="approved"), 1)
        self.assertEqual(delta("anvil_signals_received_total"), 1)
        self.assertEqual(delta("anvil_cron_fires_total", trigger="manual", result="launched"), 1)
        self.assertGreater(delta("anvil_store_commits_total"), 0)
        self.assertGreater(delta("anvil_store_commit_duration_seconds_count"), 0)
        self.assertGreater(delta("anvil_http_responses_total", code="2xx"), 10)
        self.assertGreaterEqual(delta("anvil_http_responses_total", code="4xx"), 2)
        self.assertGreaterEqual(value(after, "anvil_http_connections_open"), 1)

    def test_websocket_connections_and_frames(self):
        import asyncio
        import json
        import websockets

        async def answer_to(ws, id_):
            while True:   # events (connect.challenge, ...) come between
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("type") == "res" and frame.get("id") == id_:
                    return frame

        async def session():
            async with websockets.connect("ws://127.0.0.1:%d/" % self.server.port, ping_interval=None,
                                          close_timeout=2, compression=None, open_timeout=10) as ws:
                await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
                    "minProtocol": 1, "maxProtocol": 1, "client": {"name": "metrics-test"},
                    "auth": {"token": OP}}}))
                hello = await answer_to(ws, "c")
                await ws.send(json.dumps({"type": "req", "id": "h", "method": "health", "params": {}}))
                answer = await answer_to(ws, "h")
                _, _, during = scrape(self.server)
                return hello, answer, during

        _, _, before = scrape(self.server)
        hello, answer, during = asyncio.run(session())
        self.assertTrue(hello["ok"] and answer["ok"])

        def delta(name, **labels):
            return value(during, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("anvil_ws_connections_accepted_total"), 1)
        self.assertEqual(delta("anvil_ws_connections_open"), 1)
        self.assertEqual(delta("anvil_ws_frames_received_total"), 2)
        self.assertGreaterEqual(delta("anvil_ws_frames_sent_total"), 2)
        self.assertEqual(delta("anvil_rpc_calls_total", method="health", outcome="ok"), 1)
        self.assertGreaterEqual(value(during, "anvil_ws_outbound_queued_bytes"), 0)

    def test_webhook_deliveries_are_counted(self):
        _, _, before = scrape(self.server)
        status, _, _ = self.server.request("POST", "/webhooks/one", b"{}", {})
        _, _, after = scrape(self.server)
        cls = "%dxx" % (status // 100)
        self.assertEqual(value(after, "anvil_webhook_deliveries_total", code=cls) -
                         value(before, "anvil_webhook_deliveries_total", code=cls), 1)


class OpenMetrics(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\ndatabase: anvil.db\nmetrics: { open: true }\n" + TOKENS
    FILES = {}

    def test_open_metrics_need_no_token(self):
        status, _, body = scrape(self.server, None)
        self.assertEqual(status, 200)
        self.assertTrue(list(text_string_to_metric_families(body)))


if __name__ == "__main__":
    harness.main()
