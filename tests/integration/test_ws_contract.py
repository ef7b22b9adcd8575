#!/usr/bin/env python3
"""tests/integration/test_ws_contract.py — the WebSocket protocol as
openapi.yaml's x-anvil-websocket describes it, through the real binary.

- Frames and connect params are read by the generic codec against the
  contract's WsRequestFrame and ConnectParams: each kind of mistake is
  InvalidRequest with the codec's message and the JSON path, answered with
  the frame's id when it had a usable one.
- Every method flagged x-anvil-subscribes-run subscribes the connection to
  the run its answer names (a connection subscribed to nothing then gets
  that run's events), and an unflagged method does not. The list of
  methods comes from the spec: flagging another method without a recipe
  here fails the test.
- Every event frame the server sends during runs of every kind (approval,
  signal, failing and retried task, cancel, streams) is an EventFrame whose
  event is declared and whose payload validates against its schema; hello
  validates against Hello.
"""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_engine import schema_errors  # noqa: E402
from test_ws import OP, TOKENS, Client, WsTestCase, run  # noqa: E402

import yaml  # noqa: E402

WORKFLOWS = {
    "gate": {"name": "gate", "root": {"sequence": [
        {"task": {"id": "build", "output": {"built": True}}},
        {"approval": {"id": "approve", "title": "Ship it?"}},
        {"task": {"id": "ship", "output": {"shipped": True}}},
    ]}},
    "quick": {"name": "quick", "root": {"sequence": [
        {"task": {"id": "only", "output": {"x": 1}}},
    ]}},
    "signalled": {"name": "signalled", "root": {"sequence": [
        {"signal": {"id": "wait", "name": "go", "correlationKey": "k1"}},
        {"task": {"id": "after", "output": {"done": True}}},
    ]}},
    "shell": {"name": "shell", "root": {"sequence": [
        {"task": {"id": "flaky", "run": "echo oops >&2; echo '{\"n\":1}'; exit 3", "retries": 1}},
    ]}},
    "hold": {"name": "hold", "root": {"sequence": [
        {"task": {"id": "sleepy", "run": "sleep 60"}},
    ]}},
}


def make_config():
    text = "listen: 127.0.0.1:0\nheartbeatMs: 200\nauth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(v, sort_keys=False) for k, v in WORKFLOWS.items()}
    return text, files


_CFG, _FILES = make_config()


def ws_contract():
    return harness.contract()["x-anvil-websocket"]


def schema_ref(name):
    return {"$ref": "#/components/schemas/" + name}


def subscribing_methods():
    """{method: "payload.runId"} from the operations' x-anvil-subscribes-run."""
    out = {}
    for item in harness.contract()["paths"].values():
        op = item.get("post") or {}
        if "x-anvil-subscribes-run" in op:
            out[op["x-smithers-method"]] = op["x-anvil-subscribes-run"]
    return out


class WsContractCase(WsTestCase):
    CONFIG = _CFG
    FILES = _FILES

    def http_ok(self, method, params):
        status, _, doc = self.server.rpc(method, params, token=OP)
        return self.assertOk(status, doc)

    def wait_http(self, method, params, pred, what):
        """Poll an HTTP method until pred(payload) holds (bounded)."""
        for _ in range(400):
            p = self.http_ok(method, params)
            if pred(p):
                return p
            asyncio.run(asyncio.sleep(0.05))
        self.fail("never: " + what)

    def waiting_run(self, workflow, status):
        run_id = self.http_ok("launchRun", {"workflow": workflow})["runId"]
        self.wait_http("getRun", {"runId": run_id}, lambda p: p["status"] == status,
                       "%s reaches %s" % (run_id, status))
        return run_id

    def assertEventConforms(self, frame):
        """One event frame against EventFrame and its event's payload schema."""
        events = ws_contract()["events"]
        self.assertEqual(schema_errors(schema_ref(ws_contract()["frames"]["event"]), frame), [], frame)
        self.assertIn(frame["event"], events, "event %s is not declared in x-anvil-websocket" % frame["event"])
        payload_schema = schema_ref(events[frame["event"]]["payload"])
        self.assertEqual(schema_errors(payload_schema, frame["payload"]), [], frame)
        if frame["event"] == "run.event":
            # The logged event inside is the same event as it went out live.
            inner = frame["payload"]
            self.assertIn(inner["event"], events, inner)
            self.assertEqual(schema_errors(schema_ref(events[inner["event"]]["payload"]), inner["payload"]),
                             [], inner)


class WsFrameValidation(WsContractCase):
    def exchange(self, frames, connect=True):
        async def go():
            c = await Client.open(self.server.port)
            if connect:
                self.assertWsOk(await c.connect())
            c.responses.clear()
            for f in frames:
                await c.send(f)
            await c.wait_for(lambda: len(c.responses) >= len(frames) or c.closed)
            out = dict(c.responses)
            await c.close()
            return out
        return run(go())

    def test_frame_members_from_the_contract(self):
        """WsRequestFrame: type, id, method, params, nothing else."""
        out = self.exchange([
            '{"type":"res","id":"t1","method":"health"}',
            '{"type":"req","id":"t2","method":"health","params":[]}',
            '{"type":"req","id":"t3","method":7}',
            '{"type":"req","id":"t4","method":"health","extra":true}',
            '{"type":"req","id":"t5"}',
            '{"type":"req","id":"' + "x" * 129 + '","method":"health"}',
            '{"type":"req","id":5,"method":"health"}',
            '{"type":"req","id":"t8","method":"Health"}',
            '{"id":"t9","method":"health"}',
        ])
        self.assertEqual(len(out), 9, out)
        by_id = dict(out)
        cases = [
            ("t1", "$.type", 'must be "req"'),
            ("t2", "$.params", "expected object, got array"),
            ("t3", "$.method", "expected string, got integer"),
            ("t4", "$.extra", 'unknown property "extra" (allowed: type, id, method, params)'),
            ("t5", "$.method", 'required property "method" is missing'),
        ]
        for fid, path, msg in cases:
            self.assertWsError(by_id.pop(fid), "InvalidRequest", path=path, message="%s: %s" % (path, msg))
        # An unusable id: answered under a fresh one, with the codec's reason.
        rest = [f for f in by_id.values() if not f["ok"]]
        fresh = sorted((f for f in rest if f["error"].get("path") == "$.id"), key=lambda f: f["error"]["message"])
        self.assertEqual([f["error"]["message"] for f in fresh],
                         ["$.id: expected string, got integer", "$.id: must be at most 128 characters"], rest)
        for f in fresh:
            self.assertRegex(f["id"], harness.UUID_RE)
        # The method name's pattern (x-smithers-bounds) after the schema.
        self.assertWsError(by_id.pop("t8"), "InvalidRequest", path="$.method")
        # type may be left out, as the contract says.
        self.assertTrue(self.assertWsOk(by_id.pop("t9"))["ok"])

    def test_connect_params_from_the_contract(self):
        """ConnectParams, through the generic codec, before authentication."""
        base = {"minProtocol": 1, "maxProtocol": 1}
        cases = [
            ({"maxProtocol": 1}, "$.params.minProtocol", 'required property "minProtocol" is missing'),
            ({"minProtocol": "1", "maxProtocol": 1}, "$.params.minProtocol", "expected integer, got string"),
            ({"minProtocol": -1, "maxProtocol": 1}, "$.params.minProtocol", "must be >= 0"),
            ({"minProtocol": 1, "maxProtocol": 1.5}, "$.params.maxProtocol", "expected integer, got number"),
            (dict(base, client=[]), "$.params.client", "expected object or null, got array"),
            (dict(base, auth="tok"), "$.params.auth", "expected object, got string"),
            (dict(base, auth={"token": 5}), "$.params.auth.token", "expected string, got integer"),
            (dict(base, auth={"token": OP, "user": "u"}), "$.params.auth.user",
             'unknown property "user" (allowed: token)'),
            (dict(base, subscribe="r1"), "$.params.subscribe", "expected array, got string"),
            (dict(base, subscribe=["r1", 1]), "$.params.subscribe[1]", "expected string, got integer"),
            (dict(base, bogus=1), "$.params.bogus",
             'unknown property "bogus" (allowed: minProtocol, maxProtocol, client, auth, subscribe)'),
        ]
        frames = ['{"type":"req","id":"c%d","method":"connect","params":%s}' % (i, json.dumps(p))
                  for i, (p, _, _) in enumerate(cases)]
        frames.append('{"type":"req","id":"cx","method":"connect"}')
        # null where the contract allows it, then a good connect: the socket
        # was never spoilt by the refusals.
        frames.append('{"type":"req","id":"ok","method":"connect","params":%s}' % json.dumps(
            dict(base, client=None, auth={"token": OP}, subscribe=None)))
        out = self.exchange(frames, connect=False)
        for i, (_, path, msg) in enumerate(cases):
            self.assertWsError(out["c%d" % i], "InvalidRequest", path=path, message="%s: %s" % (path, msg))
        self.assertWsError(out["cx"], "InvalidRequest", path="$.params")
        hello = self.assertWsOk(out["ok"])
        self.assertEqual(schema_errors(schema_ref(ws_contract()["connect"]["result"]), hello), [], hello)


class WsSubscribingMethods(WsContractCase):
    def recipes(self):
        """A successful call per flagged method, on a run it creates: {method:
        (params, the run the call should subscribe to or None = from payload)}."""
        gate1 = self.waiting_run("gate", "waiting-approval")
        gate2 = self.waiting_run("gate", "waiting-approval")
        sig = self.waiting_run("signalled", "waiting-event")
        done = self.http_ok("launchRun", {"workflow": "quick"})["runId"]
        self.wait_http("getRun", {"runId": done}, lambda p: p["status"] == "finished", done + " finishes")
        cron = self.http_ok("cronCreate", {"workflow": "quick", "pattern": "0 0 1 1 *", "enabled": False})
        return {
            "launchRun": ({"workflow": "quick"}, None),
            "runs.rerun": ({"runId": done}, None),
            "submitApproval": ({"runId": gate1, "nodeId": "approve", "decision": {"approved": True}}, gate1),
            "approve": ({"runId": gate2, "nodeId": "approve"}, gate2),
            "submitSignal": ({"runId": sig, "correlationKey": "k1", "signalName": "go"}, sig),
            "cronRun": ({"cronId": cron["cronId"]}, None),
        }

    def test_flagged_methods_subscribe_and_others_do_not(self):
        flagged = subscribing_methods()
        recipes = self.recipes()
        self.assertEqual(set(flagged), set(recipes),
                         "every method with x-anvil-subscribes-run needs a recipe here")
        self.assertNotIn("getRun", flagged)
        # A run the unflagged call is about, ended later by another client.
        other = self.waiting_run("gate", "waiting-approval")

        async def go():
            results = {}
            for method, (params, expect_run) in sorted(recipes.items()):
                c = await Client.open(self.server.port)
                self.assertWsOk(await c.connect(subscribe=[]))   # subscribed to no run
                payload = self.assertWsOk(await c.call(method, params))
                self.assertEqual(flagged[method], "payload.runId")
                run_id = payload["runId"]
                if expect_run:
                    self.assertEqual(run_id, expect_run)
                done = await c.wait_event("run.completed", run_id)
                results[method] = (run_id, done, list(c.events))
                await c.close()
            # Unflagged: getRun on `other` subscribes nothing. Another client
            # approves it; our connection then launches a run of its own,
            # whose run.completed comes after anything published before it.
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            self.assertWsOk(await c.call("getRun", {"runId": other}))
            watch = await Client.open(self.server.port)
            self.assertWsOk(await watch.connect(subscribe=[other]))
            self.http_ok("submitApproval", {"runId": other, "nodeId": "approve", "decision": {"approved": True}})
            await watch.wait_event("run.completed", other)
            own = self.assertWsOk(await c.call("launchRun", {"workflow": "quick"}))["runId"]
            await c.wait_event("run.completed", own)
            unflagged = [e for e in c.events if e["payload"].get("runId") == other]
            await c.close()
            await watch.close()
            return results, unflagged
        results, unflagged = run(go(), timeout=120)
        for method, (run_id, done, events) in results.items():
            self.assertEqual(done["payload"]["runId"], run_id, method)
            self.assertEqual(done["payload"]["status"], "finished", (method, done))
            runs = {e["payload"].get("runId") for e in events if e["event"] not in ("connect.challenge", "tick")}
            self.assertEqual(runs, {run_id}, "%s delivered only its own run's events" % method)
        self.assertEqual(unflagged, [], "getRun (not flagged) must not subscribe")


class WsEventsMatchContract(WsContractCase):
    def test_every_event_and_payload_is_declared(self):
        async def go():
            c = await Client.open(self.server.port)
            hello = self.assertWsOk(await c.connect())   # every run's events
            gate = self.assertWsOk(await c.call("launchRun", {"workflow": "gate"}))["runId"]
            sig = self.assertWsOk(await c.call("launchRun", {"workflow": "signalled"}))["runId"]
            await c.wait_event("approval.requested", gate)
            s1 = self.assertWsOk(await c.call("streamRunEvents", {"runId": gate, "afterSeq": 0}))
            s2 = self.assertWsOk(await c.call("streamDevTools", {"runId": gate}))
            shell = self.assertWsOk(await c.call("launchRun", {"workflow": "shell"}))["runId"]
            held = self.assertWsOk(await c.call("launchRun", {"workflow": "hold"}))["runId"]
            self.assertWsOk(await c.call("submitApproval", {"runId": gate, "nodeId": "approve",
                                                            "decision": {"approved": True, "note": "ok"}}))
            self.assertWsOk(await c.call("submitSignal", {"runId": sig, "correlationKey": "k1",
                                                          "signalName": "go"}))
            await c.wait_event("node.started", held)
            self.assertWsOk(await c.call("cancelRun", {"runId": held}))
            for r in (gate, sig, shell, held):
                await c.wait_event("run.completed", r)
            await c.wait_for(lambda: any(e["event"] == "run.heartbeat" for e in c.events))
            await c.wait_for(lambda: any(e["event"] == "tick" for e in c.events))
            self.assertWsOk(await c.call("deleteRun", {"runId": sig}))
            await c.wait_event("run.deleted", sig)
            await c.close()
            return hello, s1, s2, list(c.events)
        hello, s1, s2, events = run(go(), timeout=120)
        self.assertEqual(schema_errors(schema_ref(ws_contract()["connect"]["result"]), hello), [], hello)
        names = set()
        for e in events:
            self.assertEventConforms(e)
            names.add(e["event"])
        # What these runs must have produced, so the check above covered them.
        for must in ("connect.challenge", "tick", "run.started", "node.started", "node.finished",
                     "node.failed", "task.output", "approval.requested", "approval.decided",
                     "run.cancelling", "run.completed", "run.deleted", "run.event", "run.heartbeat",
                     "devtools.event"):
            self.assertIn(must, names)


if __name__ == "__main__":
    harness.main()
