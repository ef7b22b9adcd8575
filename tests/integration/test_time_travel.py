"""Time travel through the real binary: versioned workspaces, getNodeDiff,
rewindRun with every failure code, the audit trail, the re-baseline of
streamDevTools subscribers, and crash safety of a rewind (kill -9 during it,
and a leftover in_progress row at startup).

Workflows are written into each server's directory. Waits are bounded
polling; nothing depends on how long something took."""
import asyncio
import json
import os
import random
import threading
import sqlite3
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402
from test_ws import Client, dt_apply, dt_ids, run as run_async  # noqa: E402

WAIT_S = 20.0
POLL_S = 0.05

TOKENS = {
    "owner-token": '{ role: operator, scopes: ["*"], userId: "user:owner" }',
    "admin-token": '{ role: admin, scopes: ["run:admin"], userId: "user:admin" }',
    "other-token": '{ role: operator, scopes: ["*"], userId: "user:other" }',
    "reader-token": '{ role: viewer, scopes: ["run:read"], userId: "user:reader" }',
}
OWNER = "owner-token"

TT = {"sequence": [
    {"task": {"id": "one", "run": "printf 'alpha\\nbeta\\ngamma\\n' > a.txt && printf 'bee\\n' > b.txt"
                                  " && echo '{\"step\":1}'"}},
    {"task": {"id": "two", "run": "printf 'alpha\\nBETA\\ngamma\\n' > a.txt && rm b.txt"
                                  " && echo '{\"step\":2}'"}},
    {"task": {"id": "three", "run": "printf 'C\\0B\\0I\\0N\\n' > c.bin && echo '{\"step\":3}'"}},
]}

FILL = "head -c 3145728 /dev/urandom | split -a 4 -b 4096 - r"

WORKFLOWS = {
    "tt": {"root": TT},
    "plain": {"versionWorkspace": False, "root": TT},
    "gated": {"root": {"sequence": [
        {"task": {"id": "before", "run": "echo one > f.txt"}},
        {"approval": {"id": "gate"}},
        {"task": {"id": "after", "run": "echo two >> f.txt"}},
    ]}},
    "slow": {"root": {"task": {"id": "nap", "run": "sleep 30"}}},
    # 2,000 files written, then every one rewritten: a rewind to frame 1
    # removes them all, long enough for a kill to land in the middle.
    "big": {"root": {"sequence": [
        {"task": {"id": "make", "run": "i=0; while [ $i -lt 2000 ]; do echo $i > f$i.txt; i=$((i+1)); done"}},
        {"task": {"id": "edit", "run": "for f in f*.txt; do echo x >> $f; done"}},
    ]}},
    "many": {"root": {"task": {"id": "lines", "run": "seq 1 200000 > big.txt"}}},
    # 768 files of random bytes, then all of them rewritten: a rewind to the gate
    # writes every file back, which keeps the rewind in flight long enough
    # for other requests to arrive meanwhile.
    "heavy": {"root": {"sequence": [
        {"task": {"id": "fill", "run": FILL}},
        {"approval": {"id": "gate"}},
        {"task": {"id": "refill", "run": FILL}},
    ]}},
}


def config(extra=""):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **v), sort_keys=False)
             for k, v in WORKFLOWS.items()}
    return text, files


class TimeTravelBase(harness.ServerTestCase):
    TOKEN = OWNER
    EXTRA = "maxPayload: 65536\n"

    @classmethod
    def setUpClass(cls):
        text, files = config(cls.EXTRA)
        cls.server = harness.Server(text, files)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def workspace(self, run_id):
        return os.path.join(self.server.dir, "workspaces", run_id)

    def files(self, run_id):
        d = self.workspace(run_id)
        out = {}
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
        return out

    def audit(self, run_id):
        con = sqlite3.connect(self.server.db_path)
        try:
            return con.execute("SELECT caller, from_frame_no, to_frame_no, result, code, message"
                               " FROM rewind_audit WHERE run_id = ? ORDER BY audit_id", (run_id,)).fetchall()
        finally:
            con.close()

    def object_path(self, run_id, sha):
        return os.path.join(self.server.dir, "workspaces", run_id + ".git", "objects", sha[:2], sha[2:])

    def tree_of(self, run_id, commit):
        with open(self.object_path(run_id, commit), "rb") as f:
            raw = zlib.decompress(f.read())
        body = raw.split(b"\0", 1)[1].decode()
        return body.split("\n", 1)[0].split(" ")[1]


def diff_shape(bundle):
    return (bundle["summary"], [(f["path"], f["status"], f["binary"], f["insertions"], f["deletions"], f["patch"])
                                for f in bundle["files"]])


class DiffsAndRewind(TimeTravelBase):

    def test_diff_each_node_rewind_resume_same_state(self):
        run = self.launch("tt", "tt-1")
        self.wait_status(run, "finished")
        one = self.ok("getNodeDiff", {"runId": run, "nodeId": "one"})
        two = self.ok("getNodeDiff", {"runId": run, "nodeId": "two", "iteration": 0})
        three = self.ok("devtools.getNodeDiff", {"runId": run, "nodeId": "three"})
        self.assertEqual(one["summary"], {"filesChanged": 2, "insertions": 4, "deletions": 0})
        self.assertEqual([(f["path"], f["status"]) for f in one["files"]], [("a.txt", "added"), ("b.txt", "added")])
        self.assertIsNone(one["baseCommit"])
        self.assertEqual(two["baseCommit"], one["commit"])
        self.assertEqual([(f["path"], f["status"]) for f in two["files"]], [("a.txt", "modified"), ("b.txt", "deleted")])
        self.assertIn("-beta\n+BETA\n", two["files"][0]["patch"])
        self.assertEqual((two["summary"]["insertions"], two["summary"]["deletions"]), (1, 2))
        self.assertTrue(three["files"][0]["binary"])
        self.assertIn("Binary files", three["files"][0]["patch"])
        final_files = self.files(run)
        before = self.ok("getRun", {"runId": run})

        jump = self.ok("rewindRun", {"runId": run, "frameNo": 1, "confirm": True})
        self.assertEqual(jump["ok"], True)
        self.assertEqual(jump["newFrameNo"], 1)
        self.assertEqual(jump["deletedFrames"], before["frameNo"] - 1)
        self.assertEqual((jump["deletedAttempts"], jump["invalidatedDiffs"], jump["revertedSandboxes"]), (3, 3, 1))
        self.assertEqual([w["nodeId"] for w in jump["effectBoundary"]["warnings"]], ["one", "two", "three"])
        # held at frame 1: nothing ran, the workspace is empty, outputs gone
        held = self.ok("getRun", {"runId": run})
        self.assertEqual((held["status"], held["frameNo"]), ("running", 1))
        self.assertEqual(self.files(run), {})
        self.assertEqual(self.ok("getNodeOutput", {"runId": run, "nodeId": "one"})["status"], "pending")
        empty = self.ok("getNodeDiff", {"runId": run, "nodeId": "one"})
        self.assertEqual((empty["attempt"], empty["commit"], empty["files"]), (None, None, []))
        time.sleep(0.3)
        self.assertEqual(self.ok("getRun", {"runId": run})["frameNo"], 1, "a held run starts nothing")

        self.assertEqual(self.ok("resumeRun", {"runId": run})["status"], "resume_requested")
        after = self.wait_status(run, "finished")
        self.assertEqual(after["frameNo"], before["frameNo"] + 0, "the same steps recorded again")
        self.assertEqual(self.files(run), final_files)
        for node, first in (("one", one), ("two", two), ("three", three)):
            again = self.ok("getNodeDiff", {"runId": run, "nodeId": node})
            self.assertEqual(diff_shape(again), diff_shape(first), node)
        rows = self.audit(run)
        self.assertEqual(rows, [("user:owner", before["frameNo"], 1, "success", None, None)])

    def test_rewind_event_log_and_frames(self):
        run = self.launch("tt", "tt-events")
        self.wait_status(run, "finished")
        self.ok("rewindRun", {"runId": run, "frameNo": 3, "confirm": True})
        con = sqlite3.connect(self.server.db_path)
        try:
            frames = [r[0] for r in con.execute("SELECT frame_no FROM frames WHERE run_id = ? ORDER BY frame_no", (run,))]
            events = [r[0] for r in con.execute("SELECT event FROM events WHERE run_id = ? ORDER BY seq", (run,))]
        finally:
            con.close()
        self.assertEqual(frames, [1, 2, 3])
        self.assertEqual(events[-1], "run.time_travel_jumped")
        self.assertNotIn("run.completed", events)

    def test_rewind_rebaselines_devtools_streams(self):
        """A streamDevTools subscriber gets a fresh snapshot of the target
        frame on run.time_travel_jumped, in the upstream's node shape with the
        same node ids, and follows the resumed run from there."""
        run = self.launch("tt", "tt-devtools")
        before = self.wait_status(run, "finished")

        async def go():
            c = await Client.open(self.server.port)
            try:
                await c.connect(token=OWNER)
                sid = (await c.call("streamDevTools", {"runId": run}))["payload"]["streamId"]

                def evs():
                    return [e["payload"]["event"] for e in c.events
                            if e["event"] == "devtools.event" and e["payload"]["streamId"] == sid]

                def last_seq():
                    return evs()[-1][evs()[-1]["kind"]]["seq"] if evs() else None
                await c.wait_for(lambda: evs() or c.closed)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.ok, "rewindRun", {"runId": run, "frameNo": 3, "confirm": True})
                await c.wait_for(lambda: len(evs()) >= 2 or c.closed)
                at3 = await loop.run_in_executor(None, self.ok, "getDevToolsSnapshot", {"runId": run, "frameNo": 3})
                await loop.run_in_executor(None, self.ok, "resumeRun", {"runId": run})
                after = await loop.run_in_executor(None, self.wait_status, run, "finished")
                await c.wait_for(lambda: last_seq() == after["frameNo"] or c.closed)
                latest = await loop.run_in_executor(None, self.ok, "getDevToolsSnapshot", {"runId": run})
                return evs(), at3, latest
            finally:
                await c.close()
        events, at3, latest = run_async(go())
        first, rebase = events[0], events[1]
        self.assertEqual((first["kind"], first["snapshot"]["frameNo"], first["snapshot"]["status"]),
                         ("snapshot", before["frameNo"], "finished"))
        self.assertEqual(rebase["kind"], "snapshot", "a rewind re-baselines with a snapshot")
        self.assertEqual(rebase["snapshot"], at3)
        self.assertEqual((at3["status"], at3["runState"]["state"]), ("running", "running"))
        self.assertEqual(dt_ids(rebase["snapshot"]["root"]), dt_ids(first["snapshot"]["root"]))
        # from the target on, the stream rebuilds the resumed run's tree
        tree, seq = rebase["snapshot"]["root"], 3
        for ev in events[2:]:
            if ev["kind"] == "snapshot":
                self.assertEqual(ev["snapshot"]["seq"], seq + 1)
                tree, seq = ev["snapshot"]["root"], ev["snapshot"]["seq"]
            else:
                self.assertEqual((ev["delta"]["baseSeq"], ev["delta"]["seq"]), (seq, seq + 1))
                tree, seq = dt_apply(tree, ev["delta"]["ops"]), ev["delta"]["seq"]
        self.assertEqual(tree, latest["root"])
        self.assertEqual(latest["runState"]["state"], "succeeded")

    def test_approval_decided_later_waits_again(self):
        run = self.launch("gated", "gated-1")
        self.wait_status(run, "waiting-approval")
        waiting_frame = self.ok("getRun", {"runId": run})["frameNo"]
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")
        self.assertEqual(self.files(run)["f.txt"], b"one\ntwo\n")
        self.ok("rewindRun", {"runId": run, "frameNo": waiting_frame, "confirm": True})
        run_view = self.ok("getRun", {"runId": run})
        self.assertEqual(run_view["status"], "waiting-approval")
        self.assertEqual(self.files(run)["f.txt"], b"one\n")
        pending = self.ok("listApprovals", {"filter": {"runId": run}})
        self.assertEqual([a["nodeId"] for a in pending], ["gate"])
        self.ok("resumeRun", {"runId": run})
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")
        self.assertEqual(self.files(run)["f.txt"], b"one\ntwo\n")


class Failures(TimeTravelBase):

    def test_invalid_requests(self):
        run = self.launch("tt", "tt-bad")
        self.wait_status(run, "finished")
        self.error("rewindRun", {"runId": run, "frameNo": 1}, "InvalidRequest", 400)
        self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": False}, "InvalidRequest", 400)
        self.error("rewindRun", {"runId": run, "frameNo": -1, "confirm": True}, "InvalidRequest", 400)
        err = self.error("rewindRun", {"runId": "Bad Id!", "frameNo": 1, "confirm": True}, "InvalidRequest", 400)
        self.assertEqual(err.get("path"), "$.params.runId")
        self.error("rewindRun", {"runId": "no-such-run", "frameNo": 1, "confirm": True}, "RunNotFound", 404)
        self.error("jumpToFrame", {"runId": run, "frameNo": 999, "confirm": True}, "FrameOutOfRange", 400)
        self.error("devtools.jumpToFrame", {"runId": run, "frameNo": 0, "confirm": True}, "FrameOutOfRange", 400)
        self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "Forbidden", 403, token="reader-token")
        self.error("getNodeDiff", {"runId": "no-such-run", "nodeId": "one"}, "RunNotFound", 404)
        self.error("getNodeDiff", {"runId": run, "nodeId": "nope"}, "NodeNotFound", 404)
        self.error("getNodeDiff", {"runId": run, "nodeId": "one", "iteration": 2}, "IterationNotFound", 404)

    def test_unauthorized_caller_gets_an_audit_row_and_admin_may(self):
        run = self.launch("tt", "tt-auth")
        self.wait_status(run, "finished")
        err = self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "Unauthorized", 401,
                         token="other-token")
        self.assertIn("owner", err["message"])
        self.assertEqual(self.audit(run)[-1][:5], ("user:other", self.ok("getRun", {"runId": run})["frameNo"], 1,
                                                   "failed", "Unauthorized"))
        self.ok("rewindRun", {"runId": run, "frameNo": 2, "confirm": True}, token="admin-token")
        self.assertEqual(self.audit(run)[-1][3], "success")

    def test_rate_limited_after_ten(self):
        run = self.launch("tt", "tt-quota")
        self.wait_status(run, "finished")
        for _ in range(10):
            self.ok("rewindRun", {"runId": run, "frameNo": 1, "confirm": True})
        err = self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "RateLimited", 429)
        self.assertIn("10", err["message"])
        # the quota is per caller: an admin may still rewind
        self.ok("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, token="admin-token")
        self.assertEqual(self.audit(run)[-2][3:5], ("failed", "RateLimited"))

    def test_busy_while_a_task_executes(self):
        run = self.launch("slow", "slow-1")
        self.wait_status(run, "running")
        deadline = time.monotonic() + WAIT_S
        while self.ok("getRun", {"runId": run})["frameNo"] < 3 and time.monotonic() < deadline:
            time.sleep(POLL_S)
        err = self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "Busy", 409)
        self.assertIn("executing", err["message"])
        self.assertEqual(self.audit(run)[-1][3:5], ("failed", "Busy"))
        self.ok("cancelRun", {"runId": run})
        self.wait_status(run, "cancelled")
        # once it stopped, the run can be rewound and runs again from frame 1
        self.ok("rewindRun", {"runId": run, "frameNo": 1, "confirm": True})
        self.assertEqual(self.ok("getRun", {"runId": run})["status"], "running")
        self.ok("cancelRun", {"runId": run})
        self.wait_status(run, "cancelled")

    def test_unsupported_sandbox_when_not_versioned(self):
        run = self.launch("plain", "plain-1")
        self.wait_status(run, "finished")
        err = self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "UnsupportedSandbox", 501)
        self.assertIn("versionWorkspace", err["message"])
        self.error("getNodeDiff", {"runId": run, "nodeId": "one"}, "VcsError", 500)
        self.assertFalse(os.path.exists(os.path.join(self.server.dir, "workspaces", run + ".git")))

    def test_missing_repository_is_unsupported_and_vcs_error(self):
        run = self.launch("tt", "tt-norepo")
        self.wait_status(run, "finished")
        git = os.path.join(self.server.dir, "workspaces", run + ".git")
        os.rename(git, git + ".moved")
        try:
            self.error("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "UnsupportedSandbox", 501)
            self.error("getNodeDiff", {"runId": run, "nodeId": "two"}, "VcsError", 500)
        finally:
            os.rename(git + ".moved", git)
        self.ok("getNodeDiff", {"runId": run, "nodeId": "two"})

    def test_vcs_error_rolls_back_cleanly(self):
        run = self.launch("tt", "tt-vcs")
        self.wait_status(run, "finished")
        before = self.ok("getRun", {"runId": run})
        files = self.files(run)
        # frame 4 (after `one`) saw one's commit; break that commit's tree
        one = self.ok("getNodeDiff", {"runId": run, "nodeId": "one"})
        tree = self.object_path(run, self.tree_of(run, one["commit"]))
        os.rename(tree, tree + ".x")
        try:
            frame = next(f for f in range(1, before["frameNo"] + 1)
                         if self.frame_ref(run, f) == one["commit"])
            err = self.error("rewindRun", {"runId": run, "frameNo": frame, "confirm": True}, "VcsError", 500)
            self.assertIn("put back", err["message"])
        finally:
            os.rename(tree + ".x", tree)
        after = self.ok("getRun", {"runId": run})
        self.assertEqual((after["status"], after["frameNo"]), (before["status"], before["frameNo"]))
        self.assertEqual(self.files(run), files)
        self.assertEqual(self.audit(run)[-1][3:5], ("failed", "VcsError"))

    def test_rewind_failed_marks_needs_attention(self):
        run = self.launch("tt", "tt-rf")
        self.wait_status(run, "finished")
        two = self.ok("getNodeDiff", {"runId": run, "nodeId": "two"})
        three = self.ok("getNodeDiff", {"runId": run, "nodeId": "three"})
        frame = next(f for f in range(1, 20) if self.frame_ref(run, f) == two["commit"])
        # The rows cannot be written, and the workspace cannot be put back.
        self.server.sql("CREATE TRIGGER no_truncate BEFORE DELETE ON frames WHEN old.run_id = '%s'"
                        " BEGIN SELECT RAISE(ABORT, 'frames are kept'); END" % run)
        head_tree = self.object_path(run, self.tree_of(run, three["commit"]))
        os.rename(head_tree, head_tree + ".x")
        try:
            err = self.error("rewindRun", {"runId": run, "frameNo": frame, "confirm": True}, "RewindFailed", 500)
            self.assertIn("needs_attention", err["message"])
        finally:
            os.rename(head_tree + ".x", head_tree)
            self.server.sql("DROP TRIGGER no_truncate")
        self.assertEqual(self.ok("getRun", {"runId": run})["status"], "needs_attention")
        self.assertEqual(self.audit(run)[-1][3:5], ("partial", "RewindFailed"))

    def test_payload_too_large(self):
        run = self.launch("many", "many-1")
        self.wait_status(run, "finished")
        err = self.error("getNodeDiff", {"runId": run, "nodeId": "lines"}, "PayloadTooLarge", 413)
        self.assertEqual(err.get("maxBytes"), 65536)

    def frame_ref(self, run, frame_no):
        con = sqlite3.connect(self.server.db_path)
        try:
            row = con.execute("SELECT workspace_ref FROM frames WHERE run_id = ? AND frame_no = ?",
                              (run, frame_no)).fetchone()
        finally:
            con.close()
        return row[0] if row else None


class InFlight(TimeTravelBase):
    """A rewind's checkout runs off the loop and the call is answered when
    it is done: meanwhile the run answers Busy, everything else is served,
    and the answer reaches HTTP (pipelined too) and WebSocket callers."""

    def heavy_run(self, run_id):
        """A finished heavy run, and the frame where its gate waited."""
        self.launch("heavy", run_id)
        self.wait_status(run_id, "waiting-approval")
        self.ok("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run_id, "finished")
        con = sqlite3.connect(self.server.db_path)
        try:
            rows = con.execute("SELECT frame_no, tree_json FROM frames WHERE run_id = ? ORDER BY frame_no",
                               (run_id,)).fetchall()
        finally:
            con.close()
        for frame_no, tree in rows:
            gate = [n for n in json.loads(tree)["root"]["children"] if n["id"] == "gate"][0]
            if gate["state"] == "waiting":
                return frame_no
        self.fail("no frame of %s shows the gate waiting" % run_id)

    def rewind_body(self, run_id, frame_no):
        return json.dumps({"runId": run_id, "frameNo": frame_no, "confirm": True}).encode()

    def test_busy_while_a_rewind_is_in_flight(self):
        run = "inflight-busy"
        frame = self.heavy_run(run)
        before = self.files(run)
        answer = {}

        def rewind():
            answer["status"], answer["doc"] = self.call("rewindRun", {"runId": run, "frameNo": frame,
                                                                     "confirm": True})
        t = threading.Thread(target=rewind)
        t.start()
        # The rewind's checks and audit row happen before its checkout
        # starts; wait for the row so the probes below land in flight.
        deadline = time.monotonic() + WAIT_S
        while not any(r[3] == "in_progress" for r in self.audit(run)) and t.is_alive():
            self.assertLess(time.monotonic(), deadline, "no in_progress audit row")
            time.sleep(0.001)
        probes = [
            ("rewindRun", {"runId": run, "frameNo": 1, "confirm": True}, "admin-token"),
            ("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}}, OWNER),
            ("submitSignal", {"runId": run, "signalName": "go", "correlationKey": "k"}, OWNER),
            ("resumeRun", {"runId": run}, OWNER),
            ("cancelRun", {"runId": run}, OWNER),
        ]
        got = []
        for method, params, token in probes:
            status, doc = self.call(method, params, token)
            got.append((method, status, doc.get("error", {}).get("code")))
        # Served meanwhile: the loop is not blocked by the checkout.
        health = self.ok("health", {})
        still = self.ok("getRun", {"runId": run})
        in_flight = t.is_alive()
        t.join(WAIT_S)
        self.assertFalse(t.is_alive())
        self.assertTrue(in_flight, "the rewind finished before the probes; the workspace is too small")
        self.assertEqual(got, [(m, 409, "Busy") for m, _, _ in probes])
        self.assertTrue(health["ok"])
        self.assertEqual(still["status"], "finished")   # as before, until the rewind is done
        self.assertEqual(answer["status"], 200, answer)
        self.assertEqual(answer["doc"]["payload"]["newFrameNo"], frame)
        print("rewind in flight for %d ms" % answer["doc"]["payload"]["durationMs"], file=sys.stderr)
        self.assertNotEqual(self.files(run), before)
        # The refused admin rewind has its own audit row.
        rows = self.audit(run)
        self.assertIn(("user:admin", 1, "failed", "Busy"), [(r[0], r[2], r[3], r[4]) for r in rows])
        self.assertEqual([r[3] for r in rows if r[0] == "user:owner"], ["success"])
        # Let go, the run ends as it did before.
        self.assertEqual(self.ok("getRun", {"runId": run})["status"], "waiting-approval")
        self.ok("resumeRun", {"runId": run})
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")

    def test_pipelined_and_websocket_answers(self):
        run = "inflight-wire"
        frame = self.heavy_run(run)
        # HTTP: a request pipelined behind the rewind waits for its turn and
        # the answers come in order.
        rewind = harness.build_request("POST", "/v1/rpc/rewindRun", self.rewind_body(run, frame),
                                       {"Authorization": "Bearer " + OWNER,
                                        "Content-Type": "application/json"})
        health = harness.build_request("POST", "/v1/rpc/health", b"{}",
                                       {"Authorization": "Bearer " + OWNER,
                                        "Content-Type": "application/json"})
        with self.server.raw() as raw:
            raw.send(rewind + health)
            first = raw.read_response()
            second = raw.read_response()
        self.assertEqual(first.status, 200, first.body)
        self.assertEqual(first.json()["payload"]["newFrameNo"], frame)
        self.assertEqual(second.status, 200, second.body)
        self.assertTrue(second.json()["payload"]["ok"])
        self.ok("resumeRun", {"runId": run})
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")

        # WebSocket: the connection's other calls are answered while the
        # rewind is in flight; its answer comes later under its own id.
        async def go():
            c = await Client.open(self.server.port)
            try:
                await c.connect(token=OWNER)
                await c.send({"type": "req", "id": "rw", "method": "rewindRun",
                              "params": {"runId": run, "frameNo": frame, "confirm": True}})
                await c.send({"type": "req", "id": "hi", "method": "health"})
                await c.wait_for(lambda: "rw" in c.responses and "hi" in c.responses)
                order = [k for k in c.responses if k in ("rw", "hi")]
                return order, c.responses["rw"], c.responses["hi"]
            finally:
                await c.close()
        order, rw, hi = run_async(go())
        self.assertEqual(order, ["hi", "rw"])
        self.assertTrue(hi["ok"], hi)
        self.assertTrue(rw["ok"], rw)
        self.assertEqual(rw["payload"]["newFrameNo"], frame)

    def test_caller_gone_before_the_answer(self):
        run = "inflight-gone"
        frame = self.heavy_run(run)
        req = harness.build_request("POST", "/v1/rpc/rewindRun", self.rewind_body(run, frame),
                                    {"Authorization": "Bearer " + OWNER,
                                     "Content-Type": "application/json"})
        with self.server.raw() as raw:
            raw.send(req)
            deadline = time.monotonic() + WAIT_S
            while not self.audit(run):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.001)
        # The caller hung up; the rewind still completes and the server
        # goes on serving.
        deadline = time.monotonic() + WAIT_S
        while self.audit(run)[-1][3] == "in_progress":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(POLL_S)
        self.assertEqual(self.audit(run)[-1][3], "success")
        self.assertEqual(self.ok("getRun", {"runId": run})["frameNo"], frame)

        # The same over a WebSocket that closes before the answer.
        self.ok("resumeRun", {"runId": run})
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")

        async def go():
            c = await Client.open(self.server.port)
            await c.connect(token=OWNER)
            await c.send({"type": "req", "id": "rw", "method": "rewindRun",
                          "params": {"runId": run, "frameNo": frame, "confirm": True}})
            await c.close()
        run_async(go())
        deadline = time.monotonic() + WAIT_S
        while [r[3] for r in self.audit(run)] != ["success", "success"]:
            self.assertLess(time.monotonic(), deadline, self.audit(run))
            time.sleep(POLL_S)
        self.assertEqual(self.ok("getRun", {"runId": run})["frameNo"], frame)
        self.assertTrue(self.ok("health", {})["ok"])


class CrashSafety(TimeTravelBase):
    """kill -9 during a rewind leaves the run as before or as after; the
    audit row says which after the restart."""

    def state(self, run):
        con = sqlite3.connect(self.server.db_path)
        try:
            frames = con.execute("SELECT count(*) FROM frames WHERE run_id = ?", (run,)).fetchone()[0]
            head = con.execute("SELECT workspace_head FROM runs WHERE run_id = ?", (run,)).fetchone()[0]
            rows = con.execute("SELECT result, message FROM rewind_audit WHERE run_id = ? ORDER BY audit_id",
                               (run,)).fetchall()
        finally:
            con.close()
        return frames, head, rows

    def test_leftover_in_progress_row_is_settled_as_before(self):
        run = self.launch("tt", "tt-crash-row")
        self.wait_status(run, "finished")
        files = self.files(run)
        frames, head, _ = self.state(run)
        # What a crash between the checkout and the commit leaves: the row
        # in_progress, the workspace at the target, the rows as before.
        self.server.stop()
        con = sqlite3.connect(self.server.db_path)
        con.execute("INSERT INTO rewind_audit(run_id, caller, role, from_frame_no, to_frame_no, result,"
                    " started_at_ms) VALUES (?, 'user:owner', 'operator', ?, 1, 'in_progress', 1)",
                    (run, frames))
        con.commit()
        con.close()
        for name in os.listdir(self.workspace(run)):
            os.unlink(os.path.join(self.workspace(run), name))
        self.server.start()
        self.assertEqual(self.files(run), files)
        frames2, head2, rows = self.state(run)
        self.assertEqual((frames2, head2), (frames, head))
        self.assertEqual(rows[-1][0], "partial")
        self.assertIn("as before", rows[-1][1])
        self.assertEqual(self.ok("getRun", {"runId": run})["status"], "finished")

    def test_kill_during_rewind(self):
        rng = random.Random(1234)
        outcomes = []
        for i in range(4):
            run = self.launch("big", "big-%d" % i)
            self.wait_status(run, "finished")
            full = self.files(run)
            frames_before, head_before, _ = self.state(run)
            delay = rng.uniform(0.0, 0.05)
            body = ('{"runId":"%s","frameNo":1,"confirm":true}' % run).encode()
            req = harness.build_request("POST", "/v1/rpc/rewindRun", body,
                                        {"Authorization": "Bearer " + OWNER, "Content-Type": "application/json"})
            with self.server.raw() as raw:
                raw.send(req)
                time.sleep(delay)
                self.server.kill()
            self.server.start()
            frames, head, rows = self.state(run)
            result = rows[-1][0] if rows else None
            if result == "success":
                self.assertEqual((frames, head), (1, None))
                self.assertEqual(self.files(run), {})
                self.assertEqual(self.ok("getRun", {"runId": run})["frameNo"], 1)
            else:
                # never started (no row) or interrupted (partial): as before
                self.assertIn(result, (None, "partial"), rows)
                self.assertEqual((frames, head), (frames_before, head_before))
                self.assertEqual(self.files(run), full)
            outcomes.append(result)
        print("kill during rewind: outcomes %s" % outcomes, file=sys.stderr)


if __name__ == "__main__":
    harness.main()
