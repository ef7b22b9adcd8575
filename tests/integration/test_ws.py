"""The WebSocket protocol through the real binary (path `/`).

connect.challenge on open; nothing but `connect` before connect; the connect
deadline; protocol negotiation; token auth via auth.token and via the
upgrade request's headers; hello with its snapshot; RPC over the socket with
the same validation as HTTP; many requests in flight; engine events with a
contiguous per-connection seq, exactly once, filtered by the subscription
set; tick; many clients; maxConnections; allowedOrigins; the upgrade's
API-version header; streamRunEvents (replay from the durable log after the
response, then live with neither gap nor duplicate, gap resync beyond the
window, heartbeats, several streams per connection, resume after a
restart); streamDevTools (the upstream's node shape and event envelope,
snapshot first, deltas that rebuild the final tree, a snapshot when the run
status changes, re-baseline after 50 deltas, errors, scope); backpressure (a client that stops reading gets the
BackpressureDisconnect event, then close 1008, while a healthy one gets the
whole run); SIGTERM (close 1001 to every socket, in-flight RPC answered,
exit 0).

Uses Debian's python3-websockets (asyncio API, 10.4). Every wait is bounded
(asyncio.wait_for); nothing depends on how long something took, except
that the SIGTERM test gives the server 0.2 s to read the in-flight RPC.
"""
import asyncio
import copy
import json
import os
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import UUID_RE  # noqa: E402
from test_engine import schema_errors  # noqa: E402

import yaml  # noqa: E402
import websockets  # noqa: E402  (python3-websockets)

WAIT_S = 20.0
OP = "op-token"

TOKENS = {
    "op-token": '{ role: operator, scopes: ["*"], userId: "user:op" }',
    "read-token": '{ role: viewer, scopes: ["run:read"], userId: "user:viewer" }',
    "old-token": '{ role: operator, scopes: ["*"], userId: "user:old", expiresAtMs: 1000 }',
}

WORKFLOWS = {
    "gate": {"name": "gate", "root": {"sequence": [
        {"task": {"id": "build", "output": {"built": True}}},
        {"approval": {"id": "approve", "title": "Ship it?"}},
        {"task": {"id": "ship", "output": {"shipped": True}}},
    ]}},
    "quick": {"name": "quick", "root": {"sequence": [
        {"task": {"id": "only", "output": {"x": 1}}},
    ]}},
    "long": {"name": "long", "root": {"sequence": [
        {"task": {"id": "step%02d" % i, "output": {"i": i}}} for i in range(30)
    ]}},
}


def make_config(extra):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(v, sort_keys=False) for k, v in WORKFLOWS.items()}
    return text, files


def run(coro, timeout=60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client:
    """One WebSocket connection with a reader that sorts frames into
    responses (by id) and events (in arrival order)."""

    def __init__(self, ws):
        self.ws = ws
        self.events = []
        self.responses = {}
        self.res_at = {}          # response id -> number of events received before it
        self.cond = asyncio.Condition()
        self.closed = False
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, port, headers=None):
        ws = await asyncio.wait_for(
            websockets.connect("ws://127.0.0.1:%d/" % port, extra_headers=headers or {},
                               ping_interval=None, close_timeout=2, compression=None),
            WAIT_S)
        return cls(ws)

    async def _read(self):
        try:
            async for msg in self.ws:
                frame = json.loads(msg)
                async with self.cond:
                    if frame.get("type") == "res":
                        self.responses[frame["id"]] = frame
                        self.res_at[frame["id"]] = len(self.events)
                    else:
                        self.events.append(frame)
                    self.cond.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            async with self.cond:
                self.closed = True
                self.cond.notify_all()

    async def wait_for(self, pred, timeout=WAIT_S):
        async with self.cond:
            await asyncio.wait_for(self.cond.wait_for(pred), timeout)

    async def send(self, frame):
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def call(self, method, params=None, id=None, timeout=WAIT_S):
        id = id or "r%d-%f" % (id_counter(), time.monotonic())
        frame = {"type": "req", "id": id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.send(frame)
        await self.wait_for(lambda: id in self.responses or self.closed, timeout)
        if id not in self.responses:
            raise AssertionError("connection closed before the answer to %s" % method)
        return self.responses.pop(id)

    async def connect(self, token=OP, subscribe=None, min_p=1, max_p=1):
        params = {"minProtocol": min_p, "maxProtocol": max_p, "client": {"name": "test"}}
        if token is not None:
            params["auth"] = {"token": token}
        if subscribe is not None:
            params["subscribe"] = subscribe
        return await self.call("connect", params)

    async def wait_event(self, name, run_id=None, timeout=WAIT_S):
        def find():
            for e in self.events:
                if e["event"] == name and (run_id is None or e["payload"].get("runId") == run_id):
                    return e
            return None
        await self.wait_for(lambda: find() is not None or self.closed, timeout)
        e = find()
        if e is None:
            raise AssertionError("connection closed before %s" % name)
        return e

    def stream(self, stream_id, names=("run.event", "run.gap_resync")):
        return [e for e in self.events
                if e["event"] in names and e["payload"].get("streamId") == stream_id]

    async def open_stream(self, run_id, after_seq=None):
        params = {"runId": run_id}
        if after_seq is not None:
            params["afterSeq"] = after_seq
        id = "s%d" % id_counter()
        r = await self.call("streamRunEvents", params, id=id)
        return r, self.res_at.get(id)

    async def wait_stream_seq(self, stream_id, seq, timeout=WAIT_S):
        """Until the stream delivered run seq `seq` (or the connection closed)."""
        def seen():
            return any(e["event"] == "run.event" and e["payload"]["seq"] >= seq
                       for e in self.stream(stream_id))
        await self.wait_for(lambda: seen() or self.closed, timeout)
        if not seen():
            raise AssertionError("connection closed before seq %d of stream %s" % (seq, stream_id))

    async def wait_closed(self, timeout=WAIT_S):
        await self.wait_for(lambda: self.closed, timeout)
        return self.ws.close_code, self.ws.close_reason

    async def close(self):
        await self.ws.close()
        await asyncio.wait_for(self.reader, WAIT_S)


_ids = [0]


def id_counter():
    _ids[0] += 1
    return _ids[0]


def upgrade_request(path="/", headers=None):
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    h.update(headers or {})
    return harness.build_request("GET", path, headers=h, content_length=False)


class WsTestCase(harness.ServerTestCase):
    def assertWsError(self, frame, code, path=None, message=None):
        self.assertEqual(frame.get("type"), "res", frame)
        self.assertEqual(frame.get("apiVersion"), "v1", frame)
        self.assertIs(frame.get("ok"), False, frame)
        self.assertNotIn("payload", frame)
        err = frame["error"]
        self.assertEqual(err["code"], code, frame)
        self.assertEqual(err["version"], "v1", frame)
        if path is not None:
            self.assertEqual(err.get("path"), path, frame)
        if message is not None:
            self.assertEqual(err["message"], message, frame)
        return err

    def assertWsOk(self, frame):
        self.assertEqual(frame.get("type"), "res", frame)
        self.assertEqual(frame.get("apiVersion"), "v1", frame)
        self.assertIs(frame.get("ok"), True, frame)
        self.assertNotIn("error", frame)
        return frame["payload"]

    def assertSeqContiguous(self, events):
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)), events)
        for e in events:
            self.assertEqual(e["type"], "event", e)
            self.assertEqual(e["apiVersion"], "v1", e)
            self.assertIsInstance(e["stateVersion"], int, e)


_CFG, _FILES = make_config("headersTimeout: 1000\nheartbeatMs: 200\nmaxConnections: 200\n")


class WsProtocol(WsTestCase):
    CONFIG = _CFG
    FILES = _FILES

    def test_challenge_on_open(self):
        async def go():
            c = await Client.open(self.server.port)
            e = await c.wait_event("connect.challenge")
            await c.close()
            return e
        e = run(go())
        self.assertEqual(e["type"], "event")
        self.assertEqual(e["seq"], 1)
        self.assertEqual(e["apiVersion"], "v1")
        self.assertRegex(e["payload"]["nonce"], UUID_RE)
        self.assertIsInstance(e["payload"]["ts"], int)
        self.assertLess(abs(e["payload"]["ts"] - time.time() * 1000), 60000)

    def test_methods_before_connect_refused(self):
        async def go():
            c = await Client.open(self.server.port)
            r1 = await c.call("health", id="h1")
            r2 = await c.call("launchRun", {"workflow": "quick"}, id="h2")
            await c.send("not json")
            await c.send({"type": "req", "method": "connect"})
            await c.wait_for(lambda: len(c.responses) >= 2)
            rest = dict(c.responses)
            c.responses.clear()
            hello = await c.connect()
            ok = await c.call("health")
            await c.close()
            return r1, r2, rest, hello, ok
        r1, r2, rest, hello, ok = run(go())
        self.assertWsError(r1, "Unauthorized", message="The first request must be connect")
        self.assertEqual(r1["id"], "h1")
        self.assertWsError(r2, "Unauthorized")
        self.assertEqual(r2["id"], "h2")
        codes = sorted(f["error"]["code"] for f in rest.values())
        self.assertEqual(codes, ["InvalidRequest", "InvalidRequest"], rest)
        self.assertIn("$.id", [f["error"].get("path") for f in rest.values()], rest)
        self.assertWsOk(hello)
        self.assertTrue(self.assertWsOk(ok)["ok"])

    def test_connect_timeout_closes(self):
        async def go():
            c = await Client.open(self.server.port)
            return await c.wait_closed(timeout=10)
        code, reason = run(go())
        self.assertEqual(code, 1008)
        self.assertEqual(reason, "connect timeout")

    def test_protocol_negotiation(self):
        async def go():
            c = await Client.open(self.server.port)
            bad = await c.connect(min_p=2, max_p=3)
            bad2 = await c.connect(min_p=0, max_p=0)
            good = await c.connect(min_p=0, max_p=5)
            again = await c.connect()
            await c.close()
            return bad, bad2, good, again
        bad, bad2, good, again = run(go())
        self.assertWsError(bad, "ProtocolUnsupported")
        self.assertEqual(bad["error"]["legacyCode"], "PROTOCOL_UNSUPPORTED")
        self.assertWsError(bad2, "ProtocolUnsupported")
        self.assertEqual(self.assertWsOk(good)["protocol"], 1)
        self.assertWsError(again, "InvalidRequest", message="already connected")

    def test_connect_params_validated(self):
        async def go():
            c = await Client.open(self.server.port)
            r1 = await c.call("connect", {"maxProtocol": 1})
            r2 = await c.call("connect", {"minProtocol": 1, "maxProtocol": "1"})
            r3 = await c.call("connect", {"minProtocol": 1, "maxProtocol": 1, "subscribe": [1]})
            r4 = await c.call("connect", {"minProtocol": 1, "maxProtocol": 1, "bogus": 1})
            await c.close()
            return r1, r2, r3, r4
        r1, r2, r3, r4 = run(go())
        self.assertWsError(r1, "InvalidRequest", path="$.params.minProtocol")
        self.assertWsError(r2, "InvalidRequest", path="$.params.maxProtocol")
        self.assertWsError(r3, "InvalidRequest", path="$.params.subscribe[0]")
        self.assertWsError(r4, "InvalidRequest", path="$.params.bogus")

    def test_auth_token_and_headers(self):
        async def go():
            out = []
            c = await Client.open(self.server.port)
            out.append(await c.connect(token="read-token"))
            out.append(await c.call("launchRun", {"workflow": "quick"}))
            await c.close()
            c = await Client.open(self.server.port, headers={"Authorization": "Bearer " + OP})
            out.append(await c.connect(token=None))
            await c.close()
            c = await Client.open(self.server.port, headers={"x-smithers-key": "read-token"})
            out.append(await c.connect(token=None))
            await c.close()
            return out
        viewer, forbidden, header_op, key_viewer = run(go())
        a = self.assertWsOk(viewer)["auth"]
        self.assertEqual((a["role"], a["scopes"], a["userId"]), ("viewer", ["run:read"], "user:viewer"))
        self.assertIsInstance(a["tokenId"], str)
        self.assertRegex(a["sessionToken"], UUID_RE)
        err = self.assertWsError(forbidden, "Forbidden")
        self.assertEqual(err["requiredScope"], "run:write")
        self.assertEqual(self.assertWsOk(header_op)["auth"]["userId"], "user:op")
        self.assertEqual(self.assertWsOk(key_viewer)["auth"]["role"], "viewer")

    def test_bad_and_expired_token(self):
        async def go():
            out = []
            for tok in ("nope", "old-token", None):
                c = await Client.open(self.server.port)
                r = await c.connect(token=tok)
                closed = await c.wait_closed(timeout=10)
                out.append((r, closed))
            return out
        (bad, c1), (old, c2), (none, c3) = run(go())
        self.assertWsError(bad, "Unauthorized")
        err = self.assertWsError(old, "Unauthorized")
        self.assertIn("refresh", err)
        self.assertWsError(none, "Unauthorized")
        for code, reason in (c1, c2, c3):
            self.assertEqual(code, 1008)
            self.assertEqual(reason, "Unauthorized")

    def _launch_waiting(self):
        st, _, doc = self.server.rpc("launchRun", {"workflow": "gate"}, token=OP)
        run_id = self.assertOk(st, doc)["runId"]
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            st, _, doc = self.server.rpc("getRun", {"runId": run_id}, token=OP)
            if self.assertOk(st, doc)["status"] == "waiting-approval":
                return run_id
            time.sleep(0.05)
        self.fail("run %s never waited for its approval" % run_id)

    def test_hello_snapshot(self):
        run_id = self._launch_waiting()

        async def go():
            c = await Client.open(self.server.port)
            h = await c.connect()
            await c.close()
            return h
        hello = self.assertWsOk(run(go()))
        self.assertEqual(set(hello), {"protocol", "features", "policy", "auth", "snapshot"})
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["features"], ["streaming", "runs"])
        self.assertEqual(hello["policy"], {"heartbeatMs": 200})
        self.assertEqual(set(hello["auth"]), {"sessionToken", "role", "scopes", "userId", "tokenId"})
        snap = hello["snapshot"]
        self.assertEqual(set(snap), {"runs", "approvals", "stateVersion"})
        self.assertIsInstance(snap["stateVersion"], int)
        self.assertGreater(snap["stateVersion"], 0)
        runs = {r["runId"]: r for r in snap["runs"]}
        self.assertIn(run_id, runs)
        self.assertEqual(set(runs[run_id]), {"runId", "workflowKey", "status", "createdAtMs", "system"})
        self.assertIs(runs[run_id]["system"], False)
        self.assertEqual(runs[run_id]["workflowKey"], "gate")
        self.assertEqual(runs[run_id]["status"], "waiting-approval")
        for r in snap["runs"]:
            self.assertNotIn(r["status"], ("finished", "failed", "cancelled"))
        appr = [a for a in snap["approvals"] if a["runId"] == run_id]
        self.assertEqual(len(appr), 1, snap)
        a = appr[0]
        self.assertEqual(set(a), {"runId", "workflowKey", "nodeId", "iteration", "requestTitle",
                                  "requestedAtMs"})
        self.assertEqual((a["workflowKey"], a["nodeId"], a["iteration"], a["requestTitle"]),
                         ("gate", "approve", 0, "Ship it?"))
        self.assertIsInstance(a["requestedAtMs"], int)

    def test_rpc_same_validation_as_http(self):
        cases = [
            ("getRun", {"runId": "does-not-exist"}),
            ("getRun", {}),
            ("listRuns", {"limit": "ten"}),
            ("launchRun", {"workflow": "quick", "bogus": 1}),
            ("launchRun", {"workflow": "nope"}),
            ("noSuchMethod", {}),
            ("listWorkflows", None),
        ]

        async def go():
            c = await Client.open(self.server.port)
            await c.connect()
            out = [await c.call(m, p) for m, p in cases]
            await c.send({"type": "req", "method": "health"})
            await c.send({"type": "req", "id": 7, "method": "health"})
            await c.send({"type": "req", "id": "x1", "method": "health", "extra": 1})
            await c.send({"type": "req", "id": "x2", "method": "health", "params": []})
            await c.wait_for(lambda: len(c.responses) >= 4)
            framing = list(c.responses.values())
            await c.close()
            return out, framing
        ws_out, framing = run(go())
        for (method, params), ws in zip(cases, ws_out):
            frame = {"id": "same", "method": method}
            if params is not None:
                frame["params"] = params
            st, _, http = self.server.rpc_frame(frame, token=OP)
            self.assertEqual(ws["ok"], http["ok"], (ws, http))
            if not http["ok"]:
                self.assertEqual(ws["error"]["code"], http["error"]["code"], (ws, http))
                self.assertEqual(ws["error"].get("path"), http["error"].get("path"), (ws, http))
                self.assertEqual(ws["error"]["message"], http["error"]["message"], (ws, http))
            else:
                self.assertEqual(type(ws["payload"]), type(http["payload"]))
                if isinstance(ws["payload"], dict):
                    self.assertEqual(set(ws["payload"]), set(http["payload"]))
        self.assertEqual(ws_out[2]["error"]["path"], "$.params.limit")
        self.assertEqual(ws_out[5]["error"]["code"], "MethodNotFound")
        paths = sorted(f["error"].get("path") for f in framing)
        self.assertEqual(paths, ["$.extra", "$.id", "$.id", "$.params"], framing)

    def test_many_requests_in_flight(self):
        async def go():
            c = await Client.open(self.server.port)
            await c.connect()
            ids = ["m%d" % i for i in range(50)]
            for i, rid in enumerate(ids):
                method = ("health", "listRuns", "listWorkflows", "listApprovals")[i % 4]
                await c.send({"type": "req", "id": rid, "method": method, "params": {}})
            await c.wait_for(lambda: all(i in c.responses for i in ids))
            got = {i: c.responses[i] for i in ids}
            await c.close()
            return got
        got = run(go())
        self.assertEqual(len(got), 50)
        for rid, frame in got.items():
            self.assertEqual(frame["id"], rid)
            self.assertWsOk(frame)

    def test_events_exactly_once_and_filtered(self):
        async def go():
            a = await Client.open(self.server.port)
            b = await Client.open(self.server.port)
            s = await Client.open(self.server.port)
            self.assertWsOk(await a.connect())
            self.assertWsOk(await b.connect(subscribe=["some-other-run"]))
            self.assertWsOk(await s.connect(subscribe=[]))
            launched = self.assertWsOk(await a.call("launchRun", {"workflow": "gate"}))
            run_id = launched["runId"]
            req = await a.wait_event("approval.requested", run_id)
            decided = await a.call("submitApproval", {"runId": run_id, "nodeId": "approve",
                                                      "decision": {"approved": True}})
            self.assertWsOk(decided)
            await a.wait_event("run.completed", run_id)
            # s launches its own run: subscribed by the call, it sees it all.
            own = self.assertWsOk(await s.call("launchRun", {"workflow": "quick"}))["runId"]
            await s.wait_event("run.completed", own)
            await a.wait_event("run.completed", own)
            # Ticks keep flowing; give duplicates a chance to show up.
            n = len(a.events)
            await a.wait_for(lambda: sum(1 for e in a.events[n:] if e["event"] == "tick") >= 2)
            await b.wait_for(lambda: sum(1 for e in b.events if e["event"] == "tick") >= 2)
            for c in (a, b, s):
                await c.close()
            return run_id, own, req, a.events, b.events, s.events
        run_id, own, req, ea, eb, es = run(go())
        self.assertEqual(req["payload"]["nodeId"], "approve")
        for evs in (ea, eb, es):
            self.assertEqual(evs[0]["event"], "connect.challenge")
            self.assertSeqContiguous(evs)
            ticks = [e for e in evs if e["event"] == "tick"]
            for t in ticks:
                self.assertIsInstance(t["payload"]["ts"], int)
        mine = [e for e in ea if e["payload"].get("runId") == run_id]
        names = [e["event"] for e in mine]
        for name in ("run.started", "node.started", "approval.requested", "approval.decided",
                     "run.completed"):
            self.assertEqual(names.count(name), 1 if name != "node.started" else 3, names)
        self.assertLess(names.index("run.started"), names.index("approval.requested"))
        self.assertLess(names.index("approval.requested"), names.index("approval.decided"))
        self.assertEqual(names[-1], "run.completed", names)
        svs = [e["stateVersion"] for e in mine]
        self.assertEqual(svs, sorted(set(svs)), "stateVersion strictly increasing")
        allsv = [e["stateVersion"] for e in ea]
        self.assertEqual(allsv, sorted(allsv), "stateVersion never goes back")
        # b subscribed to another run only: no run events at all.
        self.assertEqual([e for e in eb if e["event"] not in ("connect.challenge", "tick")], [])
        # s: exactly its own run, from run.started on, once each.
        s_runs = {e["payload"].get("runId") for e in es if e["event"] not in ("connect.challenge", "tick")}
        self.assertEqual(s_runs, {own})
        s_names = [e["event"] for e in es if e["payload"].get("runId") == own]
        self.assertEqual(s_names[0], "run.started", s_names)
        self.assertEqual(s_names.count("run.completed"), 1, s_names)
        a_own = [e["event"] for e in ea if e["payload"].get("runId") == own]
        self.assertEqual(a_own, s_names)

    def test_tick(self):
        async def go():
            c = await Client.open(self.server.port)
            await c.connect()
            t = await c.wait_event("tick", timeout=10)
            await c.close()
            return t
        t = run(go())
        self.assertIsInstance(t["payload"]["ts"], int)
        self.assertEqual(t["apiVersion"], "v1")
        self.assertGreaterEqual(t["seq"], 2)

    def test_fifty_clients(self):
        async def one(i):
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            for j in range(5):
                r = await c.call(("health", "listRuns", "listWorkflows")[j % 3], {}, id="c%d-%d" % (i, j))
                self.assertEqual(r["id"], "c%d-%d" % (i, j))
                self.assertWsOk(r)
            await c.close()
            return True

        async def go():
            return await asyncio.gather(*[one(i) for i in range(50)])
        self.assertEqual(run(go(), timeout=120), [True] * 50)

    def test_upgrade_headers_and_path(self):
        with self.server.raw() as conn:
            conn.send(upgrade_request("/"))
            r = conn.read_response()
            self.assertEqual(r.status, 101)
            self.assertEqual(r.headers.get("x-smithers-api-version"), "v1")
        with self.server.raw() as conn:
            conn.send(upgrade_request("/elsewhere"))
            r = conn.read_response()
            self.assertEqual(r.status, 404)
            self.assertEqual(r.headers.get("x-smithers-api-version"), "v1")
            self.assertEqual(r.json()["error"]["code"], "NotFound")


_CFG2, _FILES2 = make_config("maxConnections: 5\nallowedOrigins: [\"http://app.example\"]\n")


class WsLimits(WsTestCase):
    CONFIG = _CFG2
    FILES = _FILES2

    def test_max_connections(self):
        async def go():
            clients = []
            deadline = time.monotonic() + WAIT_S
            while len(clients) < 5:
                try:
                    c = await Client.open(self.server.port)
                    self.assertWsOk(await c.connect())
                    clients.append(c)
                except websockets.InvalidStatusCode as e:
                    # Connections of earlier tests may still be counted.
                    self.assertEqual(e.status_code, 503)
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
            return clients

        async def main():
            clients = await go()
            try:
                loop = asyncio.get_running_loop()
                r = await loop.run_in_executor(None, self._raw_upgrade, {})
            finally:
                for c in clients:
                    await c.close()
            return r
        r = run(main())
        self.assertEqual(r.status, 503)
        self.assertEqual(r.headers.get("x-smithers-api-version"), "v1")
        self.assertEqual(r.json()["error"]["code"], "Busy")

    def _raw_upgrade(self, headers):
        with self.server.raw() as conn:
            conn.send(upgrade_request("/", headers))
            return conn.read_response()

    def test_allowed_origins(self):
        port = self.server.port
        cases = [
            ({"Origin": "http://evil.example"}, 403),
            ({"Origin": "http://127.0.0.1:%d" % port, "Host": "127.0.0.1:%d" % port}, 101),
            ({"Origin": "http://app.example"}, 101),
            ({}, 101),
        ]
        for headers, want in cases:
            with self.subTest(headers=headers):
                h = dict(headers)
                raw = upgrade_request("/", {k: v for k, v in h.items() if k != "Host"})
                if "Host" in h:
                    raw = raw.replace(b"Host: 127.0.0.1\r\n", ("Host: %s\r\n" % h["Host"]).encode())
                deadline = time.monotonic() + WAIT_S
                while True:
                    with self.server.raw() as conn:
                        conn.send(raw)
                        r = conn.read_response()
                    if r.status != 503 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                self.assertEqual(r.status, want, r.body)
                self.assertEqual(r.headers.get("x-smithers-api-version"), "v1")
                if want == 403:
                    self.assertEqual(r.json()["error"]["code"], "Forbidden")


class StreamMixin:
    def launch_waiting(self):
        st, _, doc = self.server.rpc("launchRun", {"workflow": "gate"}, token=OP)
        run_id = self.assertOk(st, doc)["runId"]
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            view = self.get_run(run_id)
            if view["status"] == "waiting-approval":
                return run_id, view["lastSeq"]
            time.sleep(0.05)
        self.fail("run %s never waited for its approval" % run_id)

    def get_run(self, run_id):
        st, _, doc = self.server.rpc("getRun", {"runId": run_id}, token=OP)
        return self.assertOk(st, doc)

    def approve(self, run_id):
        st, _, doc = self.server.rpc("submitApproval", {"runId": run_id, "nodeId": "approve",
                                                        "decision": {"approved": True}}, token=OP)
        self.assertOk(st, doc)

    def wait_finished(self, run_id):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            view = self.get_run(run_id)
            if view["status"] == "finished":
                return view["lastSeq"]
            time.sleep(0.05)
        self.fail("run %s never finished" % run_id)

    def assertRunEvents(self, frames, stream_id, run_id, seqs):
        self.assertEqual([f["payload"]["seq"] for f in frames], list(seqs), frames)
        prev_sv = 0
        for f in frames:
            self.assertEqual(f["type"], "event")
            self.assertEqual(f["event"], "run.event", f)
            p = f["payload"]
            self.assertEqual(set(p), {"streamId", "apiVersion", "type", "runId", "event", "payload",
                                      "seq", "stateVersion"}, p)
            self.assertEqual(p["streamId"], stream_id)
            self.assertEqual(p["apiVersion"], "v1")
            self.assertEqual(p["type"], "RunEvent")
            self.assertEqual(p["runId"], run_id)
            self.assertIsInstance(p["event"], str)
            self.assertIsInstance(p["payload"], dict)
            self.assertEqual(p["payload"].get("runId"), run_id, p)
            self.assertGreater(p["stateVersion"], prev_sv)
            self.assertEqual(f["stateVersion"], p["stateVersion"])
            prev_sv = p["stateVersion"]

    def assertStreamResponse(self, res, run_id, after_seq, current_seq):
        p = self.assertWsOk(res)
        self.assertEqual(set(p), {"streamId", "runId", "afterSeq", "currentSeq"}, p)
        self.assertRegex(p["streamId"], UUID_RE)
        self.assertEqual(p["runId"], run_id)
        self.assertEqual(p["afterSeq"], after_seq)
        self.assertEqual(p["currentSeq"], current_seq)
        return p["streamId"]


_CFG3, _FILES3 = make_config("")


class WsRunStreams(WsTestCase, StreamMixin):
    CONFIG = _CFG3
    FILES = _FILES3

    def test_replay_then_live(self):
        run_id, last = self.launch_waiting()
        self.assertGreater(last, 3)

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            res, res_at = await c.open_stream(run_id, after_seq=2)
            sid = self.assertStreamResponse(res, run_id, 2, last)
            await c.wait_stream_seq(sid, last)
            replay = c.stream(sid)
            first_idx = c.events.index(replay[0])
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.approve, run_id)
            await c.wait_for(lambda: any(e["payload"]["event"] == "run.completed" for e in c.stream(sid))
                             or c.closed)
            final = await loop.run_in_executor(None, self.wait_finished, run_id)
            await c.wait_stream_seq(sid, final)
            await c.close()
            return sid, res_at, first_idx, replay, c.stream(sid), final, c.events
        sid, res_at, first_idx, replay, frames, final, events = run(go())
        # The response came first, then the replay.
        self.assertLessEqual(res_at, first_idx)
        self.assertRunEvents(replay, sid, run_id, range(3, last + 1))
        # Live continues at last+1: no gap, no duplicate, through run.completed.
        self.assertRunEvents(frames, sid, run_id, range(3, final + 1))
        self.assertGreater(final, last)
        self.assertEqual(frames[-1]["payload"]["event"], "run.completed")
        names = [f["payload"]["event"] for f in frames]
        self.assertEqual(names.count("run.completed"), 1)
        self.assertIn("approval.decided", names)
        # Stream frames are ordinary event frames: one contiguous connection seq.
        self.assertSeqContiguous(events)

    def test_live_only_and_heartbeat(self):
        run_id, last = self.launch_waiting()

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            res, _ = await c.open_stream(run_id)
            sid = self.assertStreamResponse(res, run_id, None, last)
            hb = await c.wait_event("run.heartbeat", timeout=10)
            before = list(c.stream(sid))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.approve, run_id)
            final = await loop.run_in_executor(None, self.wait_finished, run_id)
            await c.wait_stream_seq(sid, final)
            await c.close()
            return sid, hb, before, c.stream(sid), final
        sid, hb, before, frames, final = run(go())
        self.assertEqual(before, [], "no replay without afterSeq")
        self.assertRunEvents(frames, sid, run_id, range(last + 1, final + 1))
        p = hb["payload"]
        self.assertEqual(set(p), {"apiVersion", "type", "streamId", "runId", "ts"}, p)
        self.assertEqual(p["type"], "Heartbeat")
        self.assertEqual(p["apiVersion"], "v1")
        self.assertEqual(p["streamId"], sid)
        self.assertEqual(p["runId"], run_id)
        self.assertIsInstance(p["ts"], int)

    def test_errors(self):
        run_id, last = self.launch_waiting()

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            ahead, _ = await c.open_stream(run_id, after_seq=last + 5)
            missing, _ = await c.open_stream("no-such-run", after_seq=0)
            bad, _ = await c.open_stream(run_id, after_seq=-1)
            ok, _ = await c.open_stream(run_id, after_seq=last)
            await c.close()
            return ahead, missing, bad, ok
        ahead, missing, bad, ok = run(go())
        self.assertWsError(ahead, "SeqOutOfRange",
                           message="afterSeq %d is newer than current seq %d" % (last + 5, last))
        self.assertWsError(missing, "RunNotFound")
        self.assertWsError(bad, "InvalidRequest")
        self.assertStreamResponse(ok, run_id, last, last)

    def test_two_streams_one_connection(self):
        run_id, last = self.launch_waiting()
        other, other_last = self.launch_waiting()

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            r1, _ = await c.open_stream(run_id, after_seq=0)
            r2, _ = await c.open_stream(run_id, after_seq=1)
            r3, _ = await c.open_stream(other, after_seq=other_last)
            s1 = self.assertStreamResponse(r1, run_id, 0, last)
            s2 = self.assertStreamResponse(r2, run_id, 1, last)
            s3 = self.assertStreamResponse(r3, other, other_last, other_last)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.approve, run_id)
            final = await loop.run_in_executor(None, self.wait_finished, run_id)
            await c.wait_stream_seq(s1, final)
            await c.wait_stream_seq(s2, final)
            await c.close()
            return s1, s2, s3, c.stream(s1), c.stream(s2), c.stream(s3), final, c.events
        s1, s2, s3, f1, f2, f3, final, events = run(go())
        self.assertEqual(len({s1, s2, s3}), 3)
        self.assertRunEvents(f1, s1, run_id, range(1, final + 1))
        self.assertRunEvents(f2, s2, run_id, range(2, final + 1))
        self.assertEqual(f3, [], "the other run did not move")
        self.assertEqual([f["payload"]["payload"] for f in f1[1:]], [f["payload"]["payload"] for f in f2])
        self.assertSeqContiguous(events)


_CFG4, _FILES4 = make_config("eventWindowSize: 3\n")


class WsRunStreamWindow(WsTestCase, StreamMixin):
    CONFIG = _CFG4
    FILES = _FILES4

    def test_gap_resync(self):
        run_id, _ = self.launch_waiting()
        self.approve(run_id)
        last = self.wait_finished(run_id)
        self.assertGreater(last, 5)

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            out = []
            for after in (0, last - 4, last - 3, last - 1):
                res, res_at = await c.open_stream(run_id, after_seq=after)
                sid = self.assertStreamResponse(res, run_id, after, last)
                await c.wait_stream_seq(sid, last)
                out.append((after, sid, res_at, c.stream(sid)))
            await c.close()
            return out
        for after, sid, res_at, frames in run(go()):
            with self.subTest(after=after):
                if after < last - 3:
                    gap, frames = frames[0], frames[1:]
                    self.assertEqual(gap["event"], "run.gap_resync")
                    p = gap["payload"]
                    self.assertEqual(set(p), {"apiVersion", "type", "streamId", "runId", "fromSeq",
                                              "toSeq", "snapshot"}, p)
                    self.assertEqual(p["type"], "GapResync")
                    self.assertEqual(p["apiVersion"], "v1")
                    self.assertEqual(p["streamId"], sid)
                    self.assertEqual(p["runId"], run_id)
                    self.assertEqual(p["fromSeq"], after + 1)
                    self.assertEqual(p["toSeq"], last - 3)
                    self.assertEqual(p["snapshot"]["runId"], run_id)
                    self.assertEqual(p["snapshot"]["status"], "finished")
                    self.assertEqual(p["snapshot"]["lastSeq"], last)
                    self.assertIn("summary", p["snapshot"])
                # The window: never more than the last 3 events.
                self.assertRunEvents(frames, sid, run_id, range(max(after, last - 3) + 1, last + 1))

    def test_window_read_is_a_range_scan(self):
        """The log read behind the replay walks the (run_id, seq) key from
        the window's start: it is bounded by the window, not by the log."""
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True)
        try:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT seq, event, payload_json, state_version, created_at_ms"
                " FROM events WHERE run_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
                ("r", 0, 10, -1)).fetchall()
        finally:
            db.close()
        detail = " ".join(str(row[-1]) for row in plan)
        self.assertIn("SEARCH", detail)
        self.assertRegex(detail, r"run_id=\? AND seq>\? AND seq<\?")
        self.assertNotIn("TEMP B-TREE", detail)


_CFG5, _FILES5 = make_config("")


class WsRunStreamRestart(WsTestCase, StreamMixin):
    CONFIG = _CFG5
    FILES = _FILES5

    def test_resume_after_restart(self):
        run_id, last = self.launch_waiting()

        async def first():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            res, _ = await c.open_stream(run_id, after_seq=0)
            sid = self.assertStreamResponse(res, run_id, 0, last)
            await c.wait_stream_seq(sid, last)
            await c.close()
            return c.stream(sid)
        seen = run(first())
        self.assertEqual([f["payload"]["seq"] for f in seen], list(range(1, last + 1)))
        self.server.stop()
        self.server.start()
        current = self.get_run(run_id)["lastSeq"]
        resume_from = 2

        async def second():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect())
            res, _ = await c.open_stream(run_id, after_seq=resume_from)
            sid = self.assertStreamResponse(res, run_id, resume_from, current)
            await c.wait_stream_seq(sid, current)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.approve, run_id)
            final = await loop.run_in_executor(None, self.wait_finished, run_id)
            await c.wait_stream_seq(sid, final)
            await c.close()
            return sid, c.stream(sid), final
        sid, frames, final = run(second())
        self.assertRunEvents(frames, sid, run_id, range(resume_from + 1, final + 1))
        # What was logged before the restart comes back identical.
        before = {f["payload"]["seq"]: f["payload"] for f in seen}
        for f in frames:
            p = f["payload"]
            if p["seq"] in before:
                self.assertEqual({k: v for k, v in p.items() if k != "streamId"},
                                 {k: v for k, v in before[p["seq"]].items() if k != "streamId"})
        self.assertEqual(frames[-1]["payload"]["event"], "run.completed")


# -------------------------------------------------------------- backpressure

def dt_apply(root, ops):
    """Apply DevTools delta ops to a tree, as the upstream protocol applies
    them (DevToolsDeltaOp; docs/websocket.md#streamdevtools): nodes by their
    numeric id, props and task replaced whole. Strict: an op that does not
    fit the tree fails the test."""
    def find(node, id, parent=None):
        if node["id"] == id:
            return node, parent
        for c in node["children"]:
            hit = find(c, id, node)
            if hit:
                return hit
        return None

    root = copy.deepcopy(root)
    for op in ops:
        kind = op["op"]
        if kind == "replaceRoot":
            root = copy.deepcopy(op["node"])
        elif kind == "removeNode":
            node, parent = find(root, op["id"])
            assert parent is not None, "removeNode of the root"
            parent["children"].remove(node)
        elif kind == "addNode":
            parent, _ = find(root, op["parentId"])
            assert 0 <= op["index"] <= len(parent["children"]), op
            parent["children"].insert(op["index"], copy.deepcopy(op["node"]))
        elif kind == "updateProps":
            find(root, op["id"])[0]["props"] = copy.deepcopy(op["props"])
        elif kind == "updateTask":
            node = find(root, op["id"])[0]
            if "task" in op:
                node["task"] = copy.deepcopy(op["task"])
            else:
                node.pop("task", None)
        else:
            raise AssertionError("unknown op %r" % op)
    return root


def dt_flatten(node, out=None):
    """{Anvil node id: node} of a DevTools tree (the workflow root, which
    has none, is left out)."""
    out = {} if out is None else out
    if "id" in node["props"]:
        out[node["props"]["id"]] = node
    for c in node["children"]:
        dt_flatten(c, out)
    return out


def dt_ids(node, out=None):
    """{Anvil node id (the root: None): numeric id} of a DevTools tree."""
    out = {} if out is None else out
    out[node["props"].get("id")] = node["id"]
    for c in node["children"]:
        dt_ids(c, out)
    return out


# Anvil's node state -> DevToolsTask.state (docs/runs.md#devtools-nodes).
DT_TASK_STATE = {"running": "in-progress"}
DT_WAITING = {"approval": "waiting-approval", "signal": "waiting-event"}
# Anvil's run status -> DevToolsRunState.state.
DT_RUN_STATE = {"finished": "succeeded", "needs_attention": "paused"}


def dt_task_state(kind, state):
    if state == "waiting":
        return DT_WAITING.get(kind, "waiting")
    return DT_TASK_STATE.get(state, state)


class WsDevTools(WsTestCase, StreamMixin):
    CONFIG = _CFG3
    FILES = _FILES3

    async def open_dt(self, c, run_id, after_seq=None, **extra):
        params = {"runId": run_id}
        if after_seq is not None:
            params["afterSeq"] = after_seq
        params.update(extra)
        id = "d%d" % id_counter()
        r = await c.call("streamDevTools", params, id=id)
        return r, c.res_at.get(id)

    def dt_events(self, c, sid):
        return [e for e in c.events if e["event"] == "devtools.event" and e["payload"].get("streamId") == sid]

    def assertDtResponse(self, res, run_id, after_seq):
        p = self.assertWsOk(res)
        # afterSeq and fromSeq (the same frame) are always present, null
        # when the request had neither (as the reference server answers).
        self.assertEqual(set(p), {"streamId", "runId", "afterSeq", "fromSeq"}, p)
        self.assertRegex(p["streamId"], UUID_RE)
        self.assertEqual(p["runId"], run_id)
        self.assertEqual(p["afterSeq"], after_seq)
        self.assertEqual(p["fromSeq"], after_seq)
        return p["streamId"]

    def replay(self, events, run_id):
        """Check each event's shape (the contract's DevToolsEventPayload) and
        the seq chain; return (tree, kinds, last seq, snapshot statuses)."""
        tree, seq, kinds, statuses = None, None, [], []
        payload_schema = {"$ref": "#/components/schemas/DevToolsEventPayload"}
        for e in events:
            p = e["payload"]
            self.assertEqual(set(p), {"streamId", "runId", "event"}, p)
            self.assertEqual(p["runId"], run_id, p)
            self.assertEqual(schema_errors(payload_schema, p), [], p)
            ev = p["event"]
            self.assertEqual(ev["version"], 1, ev)
            kinds.append(ev["kind"])
            if ev["kind"] == "snapshot":
                self.assertEqual(set(ev), {"version", "kind", "snapshot"}, ev)
                snap = ev["snapshot"]
                self.assertEqual(set(snap), {"version", "runId", "frameNo", "seq", "status", "runState", "root"},
                                 snap)
                self.assertEqual(snap["version"], 1)
                self.assertEqual(snap["runId"], run_id)
                self.assertEqual(snap["seq"], snap["frameNo"])
                self.assertEqual(snap["runState"]["runId"], run_id)
                self.assertEqual(snap["runState"]["state"], DT_RUN_STATE.get(snap["status"], snap["status"]))
                if seq is not None:
                    self.assertEqual(snap["seq"], seq + 1, "snapshots continue the frame sequence")
                    self.assertEqual(dt_ids(snap["root"]), dt_ids(tree), "node ids are stable")
                tree, seq = copy.deepcopy(snap["root"]), snap["seq"]
                statuses.append(snap["status"])
            else:
                self.assertEqual(ev["kind"], "delta", ev)
                self.assertEqual(set(ev), {"version", "kind", "delta"}, ev)
                d = ev["delta"]
                self.assertEqual(set(d), {"version", "baseSeq", "seq", "ops"}, d)
                self.assertEqual(d["version"], 1)
                self.assertIsNotNone(tree, "a delta before any snapshot")
                self.assertEqual(d["baseSeq"], seq)
                self.assertEqual(d["seq"], seq + 1, "one delta per frame, no gap")
                tree, seq = dt_apply(tree, d["ops"]), d["seq"]
        return tree, kinds, seq, statuses

    def assertTreeMatchesRun(self, tree, view):
        """The DevTools tree is the run as getRun shows it: every node, in
        Anvil's words (props) and the upstream's (task)."""
        self.assertEqual((tree["type"], tree["name"], tree["depth"]), ("workflow", view["workflowKey"], 0))
        nodes = dt_flatten(tree)
        self.assertEqual(set(nodes), {n["nodeId"] for n in view["nodes"]})
        for n in view["nodes"]:
            node = nodes[n["nodeId"]]
            self.assertEqual(node["props"]["state"], n["state"], n)
            if n["kind"] in ("sequence", "parallel"):
                self.assertEqual((node["type"], node["name"]), (n["kind"], n["kind"]))
                self.assertNotIn("task", node)
                continue
            task = node["task"]
            self.assertEqual((task["nodeId"], task["iteration"]), (n["nodeId"], 0))
            self.assertEqual(task["state"], dt_task_state(n["kind"], n["state"]), n)
            if n["kind"] == "task":
                self.assertEqual(task.get("attempt"), n.get("attempts") or None, n)

    def expected_kinds(self, run_id, first_no, last_no):
        """The events a stream from frame first_no to last_no must send, from
        the run status each frame recorded (frames.get): a snapshot first,
        where the status changed (a delta cannot carry runState) and after 50
        deltas in a row; deltas otherwise (none of these trees gets a delta
        larger than its snapshot)."""
        status = {}
        for no in range(first_no, last_no + 1):
            st, _, doc = self.server.rpc("frames.get", {"runId": run_id, "frameNo": no}, token=OP)
            status[no] = self.assertOk(st, doc)["tree"]["status"]
        kinds, deltas = ["snapshot"], 0
        for no in range(first_no + 1, last_no + 1):
            if status[no] != status[no - 1] or deltas == 50:
                kinds.append("snapshot")
                deltas = 0
            else:
                kinds.append("delta")
                deltas += 1
        return kinds

    def test_snapshot_first_then_deltas_rebuild_the_tree(self):
        run_id, _ = self.launch_waiting()
        view = self.get_run(run_id)

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            res, res_at = await self.open_dt(c, run_id)
            sid = self.assertDtResponse(res, run_id, None)
            await c.wait_for(lambda: self.dt_events(c, sid) or c.closed)
            first = list(self.dt_events(c, sid))
            first_idx = c.events.index(first[0])
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.approve, run_id)
            await loop.run_in_executor(None, self.wait_finished, run_id)
            done = await loop.run_in_executor(None, self.get_run, run_id)

            def finished():
                evs = self.dt_events(c, sid)
                ev = evs[-1]["payload"]["event"] if evs else {}
                return ev.get(ev.get("kind"), {}).get("seq") == done["frameNo"]
            await c.wait_for(lambda: finished() or c.closed)
            await c.close()
            return sid, res_at, first_idx, first, self.dt_events(c, sid), done, c.events
        sid, res_at, first_idx, first, events, done, all_events = run(go())
        self.assertLessEqual(res_at, first_idx, "the response comes first")
        self.assertEqual(len(first), 1, first)
        snap = first[0]["payload"]["event"]
        self.assertEqual(snap["kind"], "snapshot")
        self.assertEqual(snap["snapshot"]["status"], "waiting-approval")
        self.assertEqual(snap["snapshot"]["runState"]["state"], "waiting-approval")
        self.assertEqual(snap["snapshot"]["frameNo"], view["frameNo"])
        self.assertTreeMatchesRun(snap["snapshot"]["root"], view)
        tree, kinds, seq, statuses = self.replay(events, run_id)
        self.assertEqual(seq, done["frameNo"])
        # A snapshot where the frame's run status changed (approved ->
        # running, then finished), else deltas.
        self.assertEqual(kinds, self.expected_kinds(run_id, view["frameNo"], seq))
        self.assertIn("delta", kinds)
        self.assertEqual(statuses, ["waiting-approval", "running", "finished"])
        self.assertTreeMatchesRun(tree, done)
        self.assertEqual(dt_flatten(tree)["ship"]["task"]["attempt"], 1)
        self.assertEqual(dt_ids(tree), dt_ids(snap["snapshot"]["root"]), "the same node ids in every frame")
        # the final tree is what getDevToolsSnapshot answers for that frame
        st, _, doc = self.server.rpc("getDevToolsSnapshot", {"runId": run_id}, token=OP)
        self.assertEqual(self.assertOk(st, doc)["root"], tree)
        self.assertSeqContiguous(all_events)

    def test_after_seq_rebaselines_after_fifty_deltas(self):
        st, _, doc = self.server.rpc("launchRun", {"workflow": "long"}, token=OP)
        run_id = self.assertOk(st, doc)["runId"]
        self.wait_finished(run_id)
        view = self.get_run(run_id)

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            res, _ = await self.open_dt(c, run_id, after_seq=0)
            sid = self.assertDtResponse(res, run_id, 0)
            # a frame per task start and finish, and more: > 61 frames; the
            # stream sends every recorded frame, 1..frameNo
            await c.wait_for(lambda: len(self.dt_events(c, sid)) >= view["frameNo"] or c.closed)
            res2, _ = await self.open_dt(c, run_id, after_seq=5)
            sid2 = self.assertDtResponse(res2, run_id, 5)
            # frames 5..frameNo (no fixed sleep: wait for the count itself)
            await c.wait_for(lambda: len(self.dt_events(c, sid2)) >= view["frameNo"] - 4 or c.closed)
            await c.close()
            return self.dt_events(c, sid), self.dt_events(c, sid2)
        events, events2 = run(go())
        tree, kinds, seq, statuses = self.replay(events, run_id)
        self.assertGreater(len(kinds), 61)
        # snapshot, 50 deltas, then the re-baseline snapshot at position 51;
        # the run stays `running` until it finishes, which is a snapshot too
        self.assertEqual(kinds[0], "snapshot")
        self.assertEqual(kinds[1:51], ["delta"] * 50)
        self.assertEqual(kinds[51], "snapshot")
        self.assertEqual(events[0]["payload"]["event"]["snapshot"]["frameNo"], 1)
        self.assertEqual(events[51]["payload"]["event"]["snapshot"]["frameNo"], 52)
        self.assertEqual(kinds, self.expected_kinds(run_id, 1, seq))
        self.assertEqual(statuses, ["running", "running", "finished"])
        self.assertTreeMatchesRun(tree, view)
        self.assertEqual(dt_flatten(tree)["sequence@root"]["props"]["state"], "finished")
        last = [e["payload"]["event"]["snapshot"] for e in events if e["payload"]["event"]["kind"] == "snapshot"][-1]
        self.assertEqual(last["runState"]["state"], "succeeded")
        # afterSeq N: the snapshot is frame N, then the frames after it
        self.assertEqual(events2[0]["payload"]["event"]["snapshot"]["frameNo"], 5)
        tree2, kinds2, seq2, _ = self.replay(events2, run_id)
        self.assertEqual(seq2, seq)
        self.assertEqual(tree2, tree)

    def test_errors_and_scope(self):
        run_id, _ = self.launch_waiting()
        latest = None

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            missing, _ = await self.open_dt(c, "no-such-run")
            probe, _ = await self.open_dt(c, run_id)
            sid = self.assertDtResponse(probe, run_id, None)
            await c.wait_for(lambda: self.dt_events(c, sid) or c.closed)
            top = self.dt_events(c, sid)[0]["payload"]["event"]["snapshot"]["frameNo"]
            ahead, _ = await self.open_dt(c, run_id, after_seq=top + 1)
            same, _ = await self.open_dt(c, run_id, after_seq=top)
            from_seq, _ = await self.open_dt(c, run_id, fromSeq=1)
            sid_same = self.assertDtResponse(same, run_id, top)
            await c.wait_for(lambda: self.dt_events(c, sid_same) or c.closed)
            same_events = self.dt_events(c, sid_same)
            r = await Client.open(self.server.port)
            self.assertWsOk(await r.connect(token="read-token"))
            denied, _ = await self.open_dt(r, run_id)
            await r.close()
            await c.close()
            return missing, ahead, from_seq, same_events, denied, top
        missing, ahead, from_seq, same_events, denied, top = run(go())
        self.assertWsError(missing, "RunNotFound")
        self.assertWsError(ahead, "SeqOutOfRange",
                           message="afterSeq %d is newer than the latest frame %d" % (top + 1, top))
        self.assertDtResponse(from_seq, run_id, 1)   # fromSeq: afterSeq's other name
        # afterSeq = the latest frame: still a snapshot first (the baseline)
        self.assertEqual(len(same_events), 1)
        self.assertEqual(same_events[0]["payload"]["event"]["kind"], "snapshot")
        self.assertEqual(same_events[0]["payload"]["event"]["snapshot"]["frameNo"], top)
        err = self.assertWsError(denied, "Forbidden")
        self.assertEqual(err.get("requiredScope"), "observability:read", err)

    def test_http_refused(self):
        run_id, _ = self.launch_waiting()
        st, _, doc = self.server.rpc("streamDevTools", {"runId": run_id}, token=OP)
        err = self.assertError(st, doc, "InvalidRequest")
        self.assertIn("WebSocket", err["message"])


class RawWs:
    """A hand-made WebSocket client on a plain socket with a tiny receive
    buffer, so it can stop reading for real (python3-websockets keeps
    reading into its own buffers)."""

    def __init__(self, port, rcvbuf=4096):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.sock.sendall(upgrade_request("/"))
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("upgrade refused: %r" % head)
        self.messages = []        # decoded text messages (JSON)
        self.close_code = None
        self.close_reason = None
        self.eof = False

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def send_text(self, text):
        data = text.encode("utf-8")
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def send_close(self, code=1000):
        mask = os.urandom(4)
        payload = struct.pack("!H", code)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        try:
            self.sock.sendall(struct.pack("!BB", 0x88, 0x80 | len(payload)) + mask + body)
        except OSError:
            pass

    def _frame(self):
        """One frame from self.buf, or None when incomplete."""
        if len(self.buf) < 2:
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if len(self.buf) < 4:
                return None
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            if len(self.buf) < 10:
                return None
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        if b1 & 0x80:
            raise AssertionError("server frames must not be masked")
        if len(self.buf) < off + n:
            return None
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x80, b0 & 0x0F, payload

    def read_until(self, pred, deadline):
        """Read frames until pred() holds, the close frame came, or EOF."""
        partial = b""
        while not pred() and self.close_code is None:
            f = self._frame()
            if f is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out reading the slow client")
                self.sock.settimeout(left)
                try:
                    self._fill()
                except (EOFError, ConnectionResetError):
                    self.eof = True
                    return
                continue
            fin, op, payload = f
            if op in (0x1, 0x0):
                partial += payload
                if fin:
                    self.messages.append(json.loads(partial.decode("utf-8")))
                    partial = b""
            elif op == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode("utf-8", "replace")
                self.send_close(self.close_code)
            # pings (0x9) are not answered: this client is "stuck"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# Each task writes 1,000,000 bytes to stdout and to stderr (the default
# capture limit is 1 MiB per stream): 12 MB of task.output for the run,
# far beyond the 1 MiB queue limit plus what the kernel buffers absorb.
_FLOOD_TASKS = 6
_FLOOD_CMD = ("yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
              " | head -c 1000000; yes 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy'"
              " | head -c 1000000 >&2")
_FILES6 = dict(_FILES)
_FILES6["wf/flood.yaml"] = yaml.safe_dump({"name": "flood", "root": {"sequence": [
    {"task": {"id": "t%d" % i, "run": _FLOOD_CMD}} for i in range(_FLOOD_TASKS)]}},
    sort_keys=False)
# maxPayload 65536 -> per-connection outbound limit max(4 * 65536, 1 MiB) = 1 MiB.
_CFG6 = _CFG.replace("heartbeatMs: 200\n", "heartbeatMs: 200\nmaxPayload: 65536\n") + \
    "  flood: { file: wf/flood.yaml }\n"


class WsBackpressure(WsTestCase):
    CONFIG = _CFG6
    FILES = _FILES6

    def test_slow_subscriber_is_disconnected(self):
        port = self.server.port
        slow = RawWs(port)
        try:
            connect = {"type": "req", "id": "c1", "method": "connect",
                       "params": {"minProtocol": 1, "maxProtocol": 1, "client": {"name": "slow"},
                                  "auth": {"token": OP}}}
            slow.send_text(json.dumps(connect))
            slow.read_until(lambda: any(m.get("id") == "c1" for m in slow.messages),
                            time.monotonic() + WAIT_S)
            hello = [m for m in slow.messages if m.get("id") == "c1"][0]
            self.assertWsOk(hello)
            # From here on the slow client does not read.

            async def healthy():
                ws = await asyncio.wait_for(
                    websockets.connect("ws://127.0.0.1:%d/" % port, ping_interval=None,
                                       close_timeout=2, compression=None, max_size=None),
                    WAIT_S)
                c = Client(ws)
                self.assertWsOk(await c.connect())
                r = await c.call("launchRun", {"workflow": "flood"})
                run_id = self.assertWsOk(r)["runId"]
                done = await c.wait_event("run.completed", run_id, timeout=120)
                await c.close()
                return run_id, done, c.events
            run_id, done, events = run(healthy(), timeout=180)
            self.assertEqual(done["payload"]["status"], "finished", done)

            # Now read everything the slow client was sent.
            slow.read_until(lambda: False, time.monotonic() + WAIT_S)
        finally:
            slow.close()

        # The healthy client got every event of the run, in order, no gap.
        self.assertSeqContiguous(events)
        mine = [e for e in events if e["payload"].get("runId") == run_id]
        self.assertEqual(mine[0]["event"], "run.started")
        self.assertEqual(mine[-1]["event"], "run.completed")
        out = {}
        for e in mine:
            if e["event"] == "task.output":
                key = (e["payload"]["nodeId"], e["payload"]["stream"])
                out[key] = out.get(key, 0) + len(e["payload"]["data"])
        self.assertEqual(out, {("t%d" % i, s): 1000000
                               for i in range(_FLOOD_TASKS) for s in ("stdout", "stderr")})

        # The slow one: its frames in order, then the reason, then 1008.
        self.assertEqual(slow.close_code, 1008, (slow.close_code, slow.eof))
        self.assertEqual(slow.close_reason, "BackpressureDisconnect")
        evs = [m for m in slow.messages if m.get("type") == "event"]
        self.assertSeqContiguous(evs)
        last = evs[-1]
        self.assertIs(slow.messages[-1], last)
        self.assertEqual(last["event"], "run.error", last)
        err = last["payload"]["error"]
        self.assertEqual(err["code"], "BackpressureDisconnect", last)
        self.assertEqual(err["legacyCode"], "BACKPRESSURE_DISCONNECT", last)
        self.assertEqual(err["version"], "v1", last)
        self.assertIn("1048576 bytes", err["message"])
        self.assertIn("afterSeq", err["message"])
        # It was cut off before the end of the run.
        self.assertFalse(any(e["event"] == "run.completed" for e in evs))


class WsShutdown(WsTestCase):
    CONFIG = _CFG
    FILES = _FILES

    def test_sigterm_closes_sockets_1001(self):
        async def go():
            clients = []
            for _ in range(3):
                c = await Client.open(self.server.port)
                self.assertWsOk(await c.connect())
                clients.append(c)
            # One RPC in flight when the signal arrives: sent, not answered
            # yet when SIGTERM is sent (the short pause lets the server read
            # it; its answer must still come before the close frame).
            await clients[0].send({"type": "req", "id": "last", "method": "listRuns",
                                   "params": {}})
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            self.server.proc.send_signal(signal.SIGTERM)
            closes = []
            for c in clients:
                closes.append(await c.wait_closed(timeout=10))
            loop = asyncio.get_running_loop()
            rc = await loop.run_in_executor(None, lambda: self.server.proc.wait(timeout=10))
            return clients, closes, rc, time.monotonic() - t0

        clients, closes, rc, took = run(go())
        try:
            self.assertEqual(rc, 0, self.server.stderr())
            self.assertLess(took, 10.0)
            for code, reason in closes:
                self.assertEqual((code, reason), (1001, "server shutting down"))
            self.assertWsOk(clients[0].responses["last"])
        finally:
            # Let tearDownClass see a stopped server.
            self.server.proc = None
            self.server._out.close()
            self.server._err.close()


if __name__ == "__main__":
    harness.main()
