"""Time travel through the real binary: versioned workspaces, getNodeDiff,
rewindRun with every failure code, the audit trail, and crash safety of a
rewind (kill -9 during it, and a leftover in_progress row at startup).

Workflows are written into each server's directory. Waits are bounded
polling; nothing depends on how long something took."""
import os
import random
import sqlite3
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402

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
}


def config(extra=""):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **v), sort_keys=False)
             for k, v in WORKFLOWS.items()}
    return text, files


class TimeTravelBase(harness.ServerTestCase):
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

    def call(self, method, params, token=OWNER):
        status, _, doc = self.server.rpc(method, params, token=token)
        return status, doc

    def ok(self, method, params, token=OWNER):
        status, doc = self.call(method, params, token)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["ok"], doc)
        return doc["payload"]

    def error(self, method, params, code, http, token=OWNER):
        status, doc = self.call(method, params, token)
        self.assertEqual((status, doc.get("ok")), (http, False), doc)
        self.assertEqual(doc["error"]["code"], code, doc)
        return doc["error"]

    def launch(self, workflow, run_id):
        return self.ok("launchRun", {"workflow": workflow, "input": {}, "options": {"runId": run_id}})["runId"]

    def wait_status(self, run_id, *statuses):
        deadline = time.monotonic() + WAIT_S
        while True:
            run = self.ok("getRun", {"runId": run_id})
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                self.fail("run %s stayed %s (wanted %s)" % (run_id, run["status"], statuses))
            time.sleep(POLL_S)

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
