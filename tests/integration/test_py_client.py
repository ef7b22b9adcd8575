"""The generated Python client (generated/clients/python/anvil_client.py)
against the real binary.

- every method of openapi.yaml has its typed function, and each one, called
  with the contract's example, reaches the server and comes back as a
  payload or as the typed error of a declared code with its HTTP status;
- the method families end to end: runs, run control (pause, resume, hijack,
  rewind), approvals, signals, cron, the inspection methods, the WebSocket
  session;
- typed errors: the subclass per code, `code`, `status`, `required_scope`
  (and `requiredScope`), `refresh`, the JSON path of a bad request, and a
  transport failure;
- stream_run_events: a stream cut twice mid-way (a loopback proxy resets
  its connection) reconnects and resumes after the last seq: every event of
  the run's log exactly once, in order; a GapResync when the window has moved
  on; a stream of an ended run ends; errors the server answers are raised,
  not retried;
- stream_dev_tools: the snapshot, then the next frame.

Uses Debian's python3-websockets through the client; every wait is bounded.
"""
import os
import sys
import time
import typing
import unittest

sys.dont_write_bytecode = True   # nothing written into generated/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "generated", "clients", "python"))
import harness  # noqa: E402
import anvil_client as ac  # noqa: E402
from cut_proxy import CutProxy  # noqa: E402

import yaml  # noqa: E402

OP = "op-token"
READER = "reader-token"
EXPIRED = "expired-token"

GATE = {"name": "gate", "root": {"sequence": [
    {"task": {"id": "build", "output": {"built": "${input.k}"}}},
    {"approval": {"id": "approve", "title": "Ship it?"}},
    {"signal": {"id": "review", "name": "review.done", "correlationKey": "${input.k}"}},
    {"task": {"id": "ship", "output": {"shipped": True}}},
]}}
MANY = {"name": "many", "root": {"sequence": [
    {"task": {"id": "t%d" % i, "output": {"i": i}}} for i in range(5)]}}


def config(extra=""):
    text = ("listen: 127.0.0.1:0\n" + extra +
            "auth:\n  mode: token\n  tokens:\n"
            "    op-token: { role: operator, scopes: [\"*\"], userId: \"user:op\" }\n"
            "    reader-token: { role: viewer, scopes: [run:read], userId: \"user:reader\" }\n"
            "    expired-token: { role: viewer, scopes: [run:read], tokenId: old, expiresAtMs: 1000 }\n"
            "workflows:\n  gate: { file: wf/gate.yaml }\n  many: { file: wf/many.yaml }\n")
    return text, {"wf/gate.yaml": yaml.safe_dump(GATE, sort_keys=False),
                  "wf/many.yaml": yaml.safe_dump(MANY, sort_keys=False)}


class ClientCase(harness.ServerTestCase):
    CONFIG, FILES = config()
    TOKEN = OP

    def client(self, token=OP, url=None):
        return ac.AnvilClient(url or self.server.url, token=token, timeout=harness.IO_TIMEOUT_S)

    def wait_for(self, client, run_id, *statuses):
        """get_run until the status is one of `statuses` (bounded)."""
        deadline = time.monotonic() + self.WAIT_S
        while True:
            run = client.get_run({"runId": run_id})
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                self.fail("run %s stayed %s (wanted %s)" % (run_id, run["status"], statuses))
            time.sleep(self.POLL_S)

    def launch_gate(self, client, key):
        return client.launch_run({"workflow": "gate", "input": {"k": key}})["runId"]


class Methods(ClientCase):
    def test_one_typed_function_per_contract_method(self):
        methods = harness.contract_methods()
        self.assertEqual(sorted(ac.METHODS), sorted(m["name"] for m in methods))
        for m in methods:
            fn_name = _py_name(m["name"])
            fn = getattr(ac.AnvilClient, fn_name, None)
            self.assertTrue(callable(fn), "no client function %s for %s" % (fn_name, m["name"]))
            hints = typing.get_type_hints(fn)
            self.assertIn("params", hints, m["name"])
            self.assertEqual(ac.METHODS[m["name"]]["scope"], m["scope"])
            self.assertEqual(ac.METHODS[m["name"]]["errors"], m["errors"])

    def test_every_example_reaches_the_server(self):
        """Each method called with its contract example: a payload, or the
        typed error of a code the method declares, with its HTTP status."""
        client = self.client()
        outcomes = {}
        for m in harness.http_methods():
            fn = getattr(client, _py_name(m["name"]))
            try:
                payload = fn(m["example"])
                outcomes[m["name"]] = "ok"
                self.assertIsNotNone(payload, m["name"])
            except ac.AnvilRpcError as e:
                outcomes[m["name"]] = e.code
                self.assertNotIsInstance(e, ac.AnvilTransportError, m["name"])
                self.assertIn(e.code, m["errors"], "%s answered an undeclared %s: %s" % (m["name"], e.code, e))
                self.assertEqual(e.status, harness.error_status(e.code), e)
                self.assertIs(type(e), ac.ERROR_CLASSES[e.code], e)
                if not e.message.startswith(harness.HANDLER_INVALID_REQUEST.get(m["name"], ())):
                    self.assertNotIn(e.code, harness.PRE_HANDLER_CODES,
                                     "%s's example did not reach its handler: %s" % (m["name"], e))
        self.assertEqual(outcomes["health"], "ok")
        self.assertEqual(outcomes["getRun"], "RunNotFound")

    def test_runs_approvals_signals_and_inspection(self):
        c = self.client()
        self.assertTrue(c.health()["ok"])
        self.assertIn("gate", [w["key"] for w in c.list_workflows()])
        run_id = self.launch_gate(c, "k1")
        run = self.wait_for(c, run_id, "waiting-approval")
        self.assertEqual(run["workflowKey"], "gate")
        self.assertIn(run_id, [r["runId"] for r in c.list_runs({"filter": {"workflow": "gate"}})])
        pending = [a for a in c.list_approvals() if a["runId"] == run_id]
        self.assertEqual([a["nodeId"] for a in pending], ["approve"])
        decided = c.submit_approval({"runId": run_id, "nodeId": "approve", "decision": {"approved": True}})
        self.assertTrue(decided["approved"])
        self.wait_for(c, run_id, "waiting-event")
        c.submit_signal({"runId": run_id, "correlationKey": "k1", "signalName": "review.done",
                         "payload": {"ok": True}})
        run = self.wait_for(c, run_id, "finished")
        out = c.get_node_output({"runId": run_id, "nodeId": "build"})
        self.assertEqual((out["status"], out["row"]), ("produced", {"built": "k1"}))
        frames = c.frames_list({"runId": run_id})
        self.assertTrue(frames["frames"], frames)
        frame_no = frames["frames"][-1]["frameNo"]
        self.assertEqual(c.frames_get({"runId": run_id, "frameNo": frame_no})["frameNo"], frame_no)
        attempts = c.attempts_list({"runId": run_id, "nodeId": "build"})
        self.assertEqual(attempts["attempts"][0]["attempt"], 1)
        self.assertEqual(c.attempts_get({"runId": run_id, "nodeId": "build", "attempt": 1})["nodeId"], "build")
        self.assertEqual(c.get_dev_tools_snapshot({"runId": run_id})["runId"], run_id)
        self.assertIn("files", c.get_node_diff({"runId": run_id, "nodeId": "build"}))
        self.assertEqual(c.runs_diff({"runId": run_id})["runId"], run_id)
        again = c.runs_rerun({"runId": run_id})["runId"]
        self.assertNotEqual(again, run_id)
        self.assertEqual(c.cancel_run({"runId": again})["status"], "cancelling")
        self.wait_for(c, again, "cancelled")
        self.assertEqual(c.delete_run({"runId": again}), {"runId": again, "deleted": True})
        with self.assertRaises(ac.RunNotFoundError):
            c.get_run({"runId": again})

    def test_run_control(self):
        """pause, resume, hijack, the accounts, the diffs, rewind."""
        c = self.client()
        run_id = self.launch_gate(c, "c1")
        self.wait_for(c, run_id, "waiting-approval")
        self.assertEqual(c.pause_run({"runId": run_id}), {"runId": run_id, "status": "pausing"})
        self.assertEqual(c.resume_run({"runId": run_id})["status"], "resume_requested")
        hijack = c.hijack_run({"runId": run_id})
        self.assertEqual((hijack["runId"], hijack["status"]), (run_id, "hijack-ready"))
        self.assertTrue(hijack["sessionId"])
        told = c.what_happened({"runId": run_id})
        self.assertEqual((told["scope"], told["source"]), ("run", "facts"))
        self.assertEqual(c.list_run_descendants({"runId": run_id}),
                         [{"runId": run_id, "parentRunId": None, "depth": 0}])
        self.assertIsInstance(c.get_run_diff({"runId": run_id})["baseRef"], str)
        jump = c.rewind_run({"runId": run_id, "frameNo": 1, "confirm": True})
        self.assertEqual((jump["ok"], jump["newFrameNo"]), (True, 1))
        self.assertEqual(c.resume_run({"runId": run_id})["status"], "resume_requested")
        self.wait_for(c, run_id, "waiting-approval")

    def test_approve_shorthand(self):
        c = self.client()
        run_id = self.launch_gate(c, "k2")
        self.wait_for(c, run_id, "waiting-approval")
        self.assertTrue(c.approve({"runId": run_id, "nodeId": "approve"})["approved"])
        with self.assertRaises(ac.AlreadyDecidedError) as ctx:
            c.approve({"runId": run_id, "nodeId": "approve"})
        self.assertEqual(ctx.exception.status, 409)

    def test_cron(self):
        c = self.client()
        row = c.cron_create({"workflow": "many", "pattern": "0 3 * * *"})
        self.assertEqual((row["workflow"], row["pattern"]), ("many", "0 3 * * *"))
        self.assertIn(row["cronId"], [r["cronId"] for r in c.cron_list()])
        fired = c.cron_run({"cronId": row["cronId"]})
        self.wait_for(c, fired["runId"], "finished")
        c.cron_delete({"cronId": row["cronId"]})
        self.assertNotIn(row["cronId"], [r["cronId"] for r in c.cron_list()])

    def test_websocket_session(self):
        c = self.client()
        session = c.connect()
        try:
            self.assertEqual(session.hello["protocol"], 1)
            self.assertEqual(session.hello["auth"]["userId"], "user:op")
            self.assertTrue(session.request("health", {})["ok"])
            with self.assertRaises(ac.RunNotFoundError) as ctx:
                session.request("getRun", {"runId": "nope"})
            self.assertIsNone(ctx.exception.status)   # no HTTP status over the socket
        finally:
            session.close()


def _py_name(method):
    out = ""
    for ch in method.replace(".", "_"):
        out += "_" + ch.lower() if ch.isupper() else ch
    return out


class Errors(ClientCase):
    def test_not_found(self):
        with self.assertRaises(ac.RunNotFoundError) as ctx:
            self.client().get_run({"runId": "missing"})
        e = ctx.exception
        self.assertIsInstance(e, ac.AnvilRpcError)
        self.assertEqual((e.code, e.status, e.method), ("RunNotFound", 404, "getRun"))
        self.assertTrue(e.message)

    def test_forbidden_names_the_scope(self):
        with self.assertRaises(ac.ForbiddenError) as ctx:
            self.client(READER).launch_run({"workflow": "gate"})
        e = ctx.exception
        self.assertEqual((e.code, e.status), ("Forbidden", 403))
        self.assertEqual(e.required_scope, "run:write")
        self.assertEqual(e.requiredScope, "run:write")

    def test_unauthorized_and_refresh(self):
        with self.assertRaises(ac.UnauthorizedError) as ctx:
            self.client("no-such-token").health()
        self.assertEqual((ctx.exception.status, ctx.exception.refresh), (401, None))
        with self.assertRaises(ac.UnauthorizedError) as ctx:
            self.client(EXPIRED).health()
        self.assertEqual(ctx.exception.refresh, "anvil token issue")

    def test_invalid_request_carries_the_path(self):
        with self.assertRaises(ac.InvalidRequestError) as ctx:
            self.client().get_run({"runId": 7})
        self.assertEqual(ctx.exception.details.get("path"), "$.params.runId")
        self.assertEqual(ctx.exception.status, 400)

    def test_transport_error(self):
        with socket_closed_port() as port:
            with self.assertRaises(ac.AnvilTransportError) as ctx:
                ac.AnvilClient("http://127.0.0.1:%d" % port, token=OP, timeout=5).health()
        self.assertEqual(ctx.exception.code, "TRANSPORT_ERROR")


class socket_closed_port:
    """A loopback port nothing listens on (bound, never listening)."""

    def __enter__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


class Streams(ClientCase):
    def test_cut_twice_resumes_after_the_last_seq(self):
        direct = self.client()
        proxy = CutProxy(self.server.port)
        self.addCleanup(proxy.close)
        via_proxy = self.client(url=proxy.url)
        run_id = self.launch_gate(direct, "s1")
        self.wait_for(direct, run_id, "waiting-approval")

        reconnects = []   # (the reconnect's afterSeq, the last seq yielded before it)
        seen = []
        stream = via_proxy.stream_run_events(
            {"runId": run_id, "afterSeq": 0}, backoff=lambda attempt: 0.05,
            on_reconnect=lambda r: reconnects.append((r["afterSeq"], seen[-1]["seq"])))

        def read_until(event):
            for ev in stream:
                seen.append(ev)
                if ev["event"] == event:
                    return
            self.fail("stream ended before %s" % event)

        read_until("approval.requested")
        self.assertGreaterEqual(proxy.cut(), 1)              # cut 1: during the replay's tail
        direct.submit_approval({"runId": run_id, "nodeId": "approve", "decision": {"approved": True}})
        read_until("approval.decided")
        self.assertGreaterEqual(proxy.cut(), 1)              # cut 2: on the live stream
        self.wait_for(direct, run_id, "waiting-event")
        direct.submit_signal({"runId": run_id, "correlationKey": "s1", "signalName": "review.done"})
        for ev in stream:                                    # ends after run.completed
            seen.append(ev)

        final = direct.get_run({"runId": run_id})
        self.assertEqual(final["status"], "finished")
        seqs = [ev["seq"] for ev in seen]
        self.assertEqual(seqs, list(range(1, final["lastSeq"] + 1)), "lost or repeated events")
        self.assertEqual(seen[-1]["event"], "run.completed")
        # Frames already read before a cut are still yielded; the resume is
        # after the last one yielded.
        self.assertEqual(len(reconnects), 2, reconnects)
        for after_seq, last_yielded in reconnects:
            self.assertEqual(after_seq, last_yielded)
        self.assertGreaterEqual(proxy.accepted, 3)
        # The same events as an uncut stream of the whole log.
        whole = list(direct.stream_run_events({"runId": run_id, "afterSeq": 0}))
        self.assertEqual([(e["seq"], e["event"], e["payload"]) for e in whole],
                         [(e["seq"], e["event"], e["payload"]) for e in seen])

    def test_ended_run_with_nothing_left_ends_at_once(self):
        c = self.client()
        run_id = c.launch_run({"workflow": "many"})["runId"]
        last = self.wait_for(c, run_id, "finished")["lastSeq"]
        self.assertEqual(list(c.stream_run_events({"runId": run_id, "afterSeq": last})), [])
        tail = list(c.stream_run_events({"runId": run_id, "afterSeq": last - 1}))
        self.assertEqual([(e["seq"], e["event"]) for e in tail], [(last, "run.completed")])

    def test_server_errors_are_raised_not_retried(self):
        reconnects = []
        with self.assertRaises(ac.RunNotFoundError):
            next(self.client().stream_run_events({"runId": "missing"}, on_reconnect=reconnects.append))
        c = self.client()
        run_id = c.launch_run({"workflow": "many"})["runId"]
        last = self.wait_for(c, run_id, "finished")["lastSeq"]
        with self.assertRaises(ac.SeqOutOfRangeError):
            next(c.stream_run_events({"runId": run_id, "afterSeq": last + 5}, on_reconnect=reconnects.append))
        with self.assertRaises(ac.ForbiddenError) as ctx:
            next(self.client(READER).stream_dev_tools({"runId": run_id}))
        self.assertEqual(ctx.exception.required_scope, "observability:read")
        self.assertEqual(reconnects, [])

    def test_gives_up_after_max_reconnects(self):
        with socket_closed_port() as port:
            c = ac.AnvilClient("http://127.0.0.1:%d" % port, token=OP, timeout=5)
            reconnects = []
            with self.assertRaises(ac.AnvilStreamError):
                next(c.stream_run_events({"runId": "r"}, max_reconnects=2, backoff=lambda a: 0.01,
                                         on_reconnect=reconnects.append))
        self.assertEqual([r["attempt"] for r in reconnects], [0, 1])

    def test_dev_tools_stream(self):
        c = self.client()
        run_id = self.launch_gate(c, "d1")
        self.wait_for(c, run_id, "waiting-approval")
        stream = c.stream_dev_tools({"runId": run_id})
        first = next(stream)
        self.assertEqual((first["runId"], first["event"]["kind"]), (run_id, "snapshot"))
        base = first["event"]["snapshot"]["frameNo"]
        c.submit_approval({"runId": run_id, "nodeId": "approve", "decision": {"approved": True}})
        nxt = next(stream)
        ev = nxt["event"]
        self.assertIn(ev["kind"], ("delta", "snapshot"))
        self.assertGreater(ev["delta"]["seq"] if ev["kind"] == "delta" else ev["snapshot"]["frameNo"], base)
        stream.close()


class GapResync(ClientCase):
    CONFIG, FILES = config("eventWindowSize: 3\n")

    def test_gap_then_the_window(self):
        c = self.client()
        run_id = c.launch_run({"workflow": "many"})["runId"]
        last = self.wait_for(c, run_id, "finished")["lastSeq"]
        self.assertGreater(last, 4)
        items = list(c.stream_run_events({"runId": run_id, "afterSeq": 0}))
        gap = items[0]
        self.assertEqual(gap["type"], "GapResync")
        self.assertEqual((gap["fromSeq"], gap["toSeq"]), (1, last - 3))
        self.assertEqual(gap["snapshot"]["status"], "finished")
        self.assertEqual([e["seq"] for e in items[1:]], [last - 2, last - 1, last])
        self.assertEqual(items[-1]["event"], "run.completed")

    def test_gap_inside_a_resumed_stream(self):
        """Cut while the run goes on past the window: the resumed stream
        starts with a GapResync for what is gone, then the window; no event
        twice, none missing but the gap's."""
        direct = self.client()
        proxy = CutProxy(self.server.port)
        self.addCleanup(proxy.close)
        run_id = self.launch_gate(direct, "g1")
        waiting = self.wait_for(direct, run_id, "waiting-approval")["lastSeq"]
        stream = self.client(url=proxy.url).stream_run_events(
            {"runId": run_id, "afterSeq": waiting}, backoff=lambda attempt: 0.05)
        direct.submit_approval({"runId": run_id, "nodeId": "approve", "decision": {"approved": True}})
        before = []
        for ev in stream:
            before.append(ev)
            if ev["event"] == "approval.decided":
                break
        self.assertGreaterEqual(proxy.cut(), 1)
        waiting_signal = self.wait_for(direct, run_id, "waiting-event")["lastSeq"]
        direct.submit_signal({"runId": run_id, "correlationKey": "g1", "signalName": "review.done"})
        last = self.wait_for(direct, run_id, "finished")["lastSeq"]
        # The signal's part of the run alone is longer than the window.
        self.assertGreater(last - waiting_signal, 3)
        after = list(stream)
        # Frames read before the cut come first, then the gap, then the window.
        gaps = [i for i, e in enumerate(after) if e["type"] == "GapResync"]
        self.assertEqual(len(gaps), 1, after)
        got = before + after[:gaps[0]]
        self.assertEqual([e["seq"] for e in got], list(range(waiting + 1, waiting + 1 + len(got))))
        gap = after[gaps[0]]
        self.assertEqual((gap["fromSeq"], gap["toSeq"]), (got[-1]["seq"] + 1, last - 3))
        self.assertEqual(gap["snapshot"]["status"], "finished")
        self.assertEqual([e["seq"] for e in after[gaps[0] + 1:]], [last - 2, last - 1, last])
        self.assertEqual(after[-1]["event"], "run.completed")


if __name__ == "__main__":
    harness.main()
