"""Removing runs through the real binary: deleteRun removes every row of
the run (read back from the SQLite file) and its workspace directory and
repository (read back from the filesystem); it refuses runs that have not
ended, unknown runs and callers without run:admin; open WebSocket streams
on the run end with a typed RunNotFound error; the state version never goes
back after a restart; and a removal the server did not finish before a
crash (rows gone, files left, the queue row committed with them) is
finished by the next start.

Waits are bounded polling; nothing depends on how long something took."""
import asyncio
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402
from test_ws import Client, run as run_async  # noqa: E402

WAIT_S = 20.0
POLL_S = 0.05

TOKENS = {
    "admin-token": '{ role: admin, scopes: ["run:admin", "observability:read", "approval:submit", "signal:submit"], userId: "user:admin" }',
    "writer-token": '{ role: operator, scopes: ["run:write"], userId: "user:writer" }',
}
ADMIN = "admin-token"

WORKFLOWS = {
    # writes files, so the run has a workspace and a repository
    "files": {"root": {"sequence": [
        {"task": {"id": "one", "run": "mkdir -p sub && echo a > sub/a.txt && ln -s /etc sub/link"
                                      " && echo '{\"step\":1}'"}},
        {"task": {"id": "two", "run": "echo b > b.txt && echo '{\"step\":2}'"}},
    ]}},
    "gated": {"root": {"sequence": [
        {"task": {"id": "before", "run": "echo one > f.txt"}},
        {"approval": {"id": "gate"}},
    ]}},
    "signalled": {"root": {"signal": {"id": "wake", "name": "wake"}}},
}

# Every table that holds rows of a run.
RUN_TABLES = ("runs", "events", "frames", "nodes", "attempts", "outputs", "approvals", "signals",
              "rewind_audit", "hijack_sessions")


def config():
    text = "listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **v), sort_keys=False)
             for k, v in WORKFLOWS.items()}
    return text, files


class RetentionBase(harness.ServerTestCase):
    TOKEN = ADMIN
    @classmethod
    def setUpClass(cls):
        text, files = config()
        cls.server = harness.Server(text, files)
        cls.server.start()

    def rows(self, run_id):
        """{table: rows of run_id} read from the database file."""
        db = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            return {t: db.execute("SELECT COUNT(*) FROM %s WHERE run_id = ?" % t, (run_id,)).fetchone()[0]
                    for t in RUN_TABLES}
        finally:
            db.close()

    def queued(self):
        db = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            return [r[0] for r in db.execute("SELECT run_id FROM workspace_removals")]
        finally:
            db.close()

    def workspace(self, run_id):
        root = os.path.join(self.server.dir, "workspaces")
        return os.path.join(root, run_id), os.path.join(root, run_id + ".git")


class DeleteRun(RetentionBase):

    def test_removes_every_row_and_the_workspace(self):
        run = self.launch("files", "del-files")
        self.wait_status(run, "finished")
        self.ok("hijackRun", {"runId": run})          # a hijack session row too
        before = self.rows(run)
        for t in ("runs", "events", "frames", "nodes", "attempts", "outputs", "hijack_sessions"):
            self.assertGreater(before[t], 0, "the run has %s rows to remove: %s" % (t, before))
        workdir, gitdir = self.workspace(run)
        self.assertTrue(os.path.isfile(os.path.join(workdir, "sub", "a.txt")))
        self.assertTrue(os.path.isdir(gitdir))
        outside = sorted(os.listdir("/etc"))

        res = self.ok("deleteRun", {"runId": run})
        self.assertEqual(res, {"runId": run, "deleted": True})
        self.assertEqual(self.rows(run), {t: 0 for t in RUN_TABLES})
        self.assertFalse(os.path.exists(workdir))
        self.assertFalse(os.path.exists(gitdir))
        self.assertEqual(self.queued(), [], "the queue row goes with the files")
        self.assertEqual(sorted(os.listdir("/etc")), outside, "a link in the workspace is not followed")

        for method in ("getRun", "frames.list", "attempts.list", "deleteRun"):
            self.error(method, {"runId": run}, "RunNotFound", 404)
        self.assertNotIn(run, [r["runId"] for r in self.ok("listRuns", {})])
        # the id is free again
        self.launch("files", run)
        self.wait_status(run, "finished")
        self.assertTrue(os.path.isfile(os.path.join(workdir, "b.txt")))

    def test_approvals_and_signals_go_too(self):
        run = self.launch("gated", "del-gated")
        self.wait_status(run, "waiting-approval")
        self.ok("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_status(run, "finished")
        sig = self.launch("signalled", "del-signalled")
        self.ok("submitSignal", {"runId": sig, "signalName": "wake", "correlationKey": "k", "payload": {}}, token=ADMIN)
        self.wait_status(sig, "finished")
        self.assertEqual(self.rows(run)["approvals"], 1)
        self.assertEqual(self.rows(sig)["signals"], 1)
        self.ok("deleteRun", {"runId": run})
        self.ok("deleteRun", {"runId": sig})
        self.assertEqual(self.rows(run), {t: 0 for t in RUN_TABLES})
        self.assertEqual(self.rows(sig), {t: 0 for t in RUN_TABLES})
        self.assertNotIn(run, [a["runId"] for a in self.ok("listApprovals", {})])

    def test_busy_while_the_run_has_not_ended(self):
        run = self.launch("gated", "del-active")
        self.wait_status(run, "waiting-approval")
        err = self.error("deleteRun", {"runId": run}, "Busy", 409)
        self.assertIn("has not ended", err["message"])
        self.assertGreater(self.rows(run)["events"], 0, "nothing was removed")
        self.ok("cancelRun", {"runId": run})
        self.wait_status(run, "cancelled")
        self.ok("deleteRun", {"runId": run})
        self.assertEqual(self.rows(run)["runs"], 0)

    def test_unknown_run_and_bad_requests(self):
        self.error("deleteRun", {"runId": "no-such-run"}, "RunNotFound", 404)
        self.error("deleteRun", {}, "InvalidRequest", 400)
        self.error("deleteRun", {"runId": "x", "force": True}, "InvalidRequest", 400)

    def test_forbidden_without_run_admin(self):
        run = self.launch("files", "del-forbidden")
        self.wait_status(run, "finished")
        err = self.error("deleteRun", {"runId": run}, "Forbidden", 403, token="writer-token")
        self.assertEqual(err.get("requiredScope"), "run:admin", err)
        self.assertEqual(self.rows(run)["runs"], 1)
        self.error("deleteRun", {"runId": run}, "Unauthorized", 401, token="no-such-token")

    def test_open_streams_get_a_typed_error_and_end(self):
        run = self.launch("files", "del-streamed")
        self.wait_status(run, "finished")
        other = self.launch("files", "del-kept")
        self.wait_status(other, "finished")

        async def go():
            c = await Client.open(self.server.port)
            try:
                await c.connect(token=ADMIN)
                ev = (await c.call("streamRunEvents", {"runId": run, "afterSeq": 0}))["payload"]["streamId"]
                dt = (await c.call("streamDevTools", {"runId": run}))["payload"]["streamId"]
                kept = (await c.call("streamRunEvents", {"runId": other}))["payload"]["streamId"]
                await c.wait_for(lambda: any(e["event"] == "devtools.event" for e in c.events) or c.closed)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.ok, "deleteRun", {"runId": run})
                await c.wait_event("run.error", timeout=WAIT_S)
                await c.wait_event("devtools.error", timeout=WAIT_S)
                # the connection goes on: a call still answers, the other
                # run's stream is still there to end when that run goes
                alive = await c.call("getRun", {"runId": other})
                await loop.run_in_executor(None, self.ok, "deleteRun", {"runId": other})
                await c.wait_for(lambda: sum(e["event"] == "run.error" for e in c.events) >= 2 or c.closed)
                return list(c.events), ev, dt, kept, alive, c.closed
            finally:
                await c.close()
        events, ev, dt, kept, alive, closed = run_async(go())
        self.assertFalse(closed)
        self.assertTrue(alive["ok"])
        errors = [e for e in events if e["event"] in ("run.error", "devtools.error")]
        by_stream = {e["payload"]["streamId"]: e for e in errors}
        self.assertEqual(set(by_stream), {ev, dt, kept})
        for sid, name in ((ev, "run.error"), (dt, "devtools.error")):
            e = by_stream[sid]
            self.assertEqual(e["event"], name)
            self.assertEqual(e["payload"]["runId"], run)
            self.assertEqual(e["payload"]["error"]["code"], "RunNotFound")
            self.assertEqual(e["payload"]["error"]["legacyCode"], "NOT_FOUND")
        # each stream ends: nothing of it after its error
        for sid in (ev, dt):
            at = events.index(by_stream[sid])
            self.assertEqual([e for e in events[at + 1:] if e["payload"].get("streamId") == sid], [])
        # subscribed connections see the deletion as an event too
        deleted = [e for e in events if e["event"] == "run.deleted"]
        self.assertEqual([e["payload"]["runId"] for e in deleted], [run, other])
        self.assertGreater(deleted[0]["stateVersion"], 0)


class AfterACrash(RetentionBase):

    def test_state_version_does_not_go_back(self):
        run = self.launch("files", "crash-sv")
        self.wait_status(run, "finished")
        sv = self.ok("health", {})["stateVersion"]
        self.ok("deleteRun", {"runId": run})     # its events were the newest
        self.server.kill()
        self.server.start()
        self.assertGreater(self.ok("health", {})["stateVersion"], sv)

    def test_files_left_by_a_crash_are_removed_at_start(self):
        """The state a kill -9 between the commit and the removal leaves:
        the rows and the queue row committed, the files still there."""
        run = self.launch("files", "crash-files")
        self.wait_status(run, "finished")
        workdir, gitdir = self.workspace(run)
        self.server.kill()
        db = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            with db:
                for t in RUN_TABLES:
                    db.execute("DELETE FROM %s WHERE run_id = ?" % t, (run,))
                db.execute("INSERT INTO workspace_removals(run_id, queued_at_ms) VALUES (?, 0)", (run,))
        finally:
            db.close()
        self.assertTrue(os.path.isdir(workdir) and os.path.isdir(gitdir))
        self.server.start()
        self.assertFalse(os.path.exists(workdir))
        self.assertFalse(os.path.exists(gitdir))
        self.assertEqual(self.queued(), [])

    def test_kill_during_deletes_leaves_each_run_whole_or_gone(self):
        """kill -9 while deletions are in flight: every run is either all
        there (rows and files) or all gone, and no file is left behind
        after the restart."""
        ids = ["crash-many-%d" % i for i in range(12)]
        for r in ids:
            self.launch("files", r)
        for r in ids:
            self.wait_status(r, "finished")
        import threading
        done = []

        def delete_all():
            for r in ids:
                try:
                    status, doc = self.call("deleteRun", {"runId": r})
                    if status == 200:
                        done.append(r)
                except (OSError, AssertionError):
                    return
        t = threading.Thread(target=delete_all)
        t.start()
        deadline = time.monotonic() + WAIT_S
        while len(done) < len(ids) // 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.server.kill()
        t.join(WAIT_S)
        self.server.start()
        gone = 0
        for r in ids:
            rows = self.rows(r)
            workdir, gitdir = self.workspace(r)
            if rows["runs"]:
                self.assertTrue(all(rows[t] > 0 for t in ("events", "frames", "nodes", "attempts")), rows)
                self.assertTrue(os.path.isdir(workdir) and os.path.isdir(gitdir), r)
                self.assertEqual(self.ok("getRun", {"runId": r})["status"], "finished")
            else:
                gone += 1
                self.assertEqual(rows, {t: 0 for t in RUN_TABLES})
                self.assertFalse(os.path.exists(workdir) or os.path.exists(gitdir), r)
        self.assertGreaterEqual(gone, len(done), "every acknowledged deletion holds")
        self.assertEqual(self.queued(), [])
        print("kill during deletes: %d of %d gone, %d acknowledged" % (gone, len(ids), len(done)),
              file=sys.stderr)


POLICY_WORKFLOWS = {
    "quick": {"root": {"task": {"id": "one", "run": "echo x > x.txt"}}},
    "aged": {"root": {"task": {"id": "one", "run": "echo x > x.txt"}}},
    "kept": {"root": {"task": {"id": "one", "run": "echo x > x.txt"}}},
    "gated": {"root": {"approval": {"id": "gate"}}},
}

POLICY = """retention:
  maxRuns: 3
  workflows:
    aged: { maxAge: 2s, maxRuns: 0 }
    kept: { maxRuns: 0 }
"""


def policy_config(extra=POLICY):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in POLICY_WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **v), sort_keys=False)
             for k, v in POLICY_WORKFLOWS.items()}
    return text, files


class RetentionPolicy(RetentionBase):
    """The configured policy: maxRuns 3 for every workflow, except aged
    (ended more than 2 s ago: removed; no count limit) and kept (no limit)."""

    @classmethod
    def setUpClass(cls):
        text, files = policy_config()
        cls.server = harness.Server(text, files)
        cls.server.start()

    def runs_of(self, workflow):
        return [r["runId"] for r in self.ok("listRuns", {"filter": {"workflow": workflow, "limit": 100}})]

    def wait_until(self, what, pred):
        deadline = time.monotonic() + WAIT_S
        while not pred():
            if time.monotonic() > deadline:
                self.fail("waited %.0f s for %s" % (WAIT_S, what))
            time.sleep(POLL_S)

    def launch_finished(self, workflow, run_id):
        self.launch(workflow, run_id)
        self.wait_status(run_id, "finished")

    def test_count_keeps_the_newest_ended_runs_and_never_touches_active_ones(self):
        waiting = ["p-gated-%d" % i for i in range(5)]
        for r in waiting:
            self.launch("gated", r)
            self.wait_status(r, "waiting-approval")
        ids = ["p-quick-%d" % i for i in range(7)]
        for r in ids:
            self.launch_finished("quick", r)
        self.wait_until("quick down to 3 runs", lambda: len(self.runs_of("quick")) == 3)
        self.assertEqual(sorted(self.runs_of("quick")), ids[-3:], "the newest three are kept")
        for r in ids[:-3]:
            self.assertEqual(self.rows(r), {t: 0 for t in RUN_TABLES})
            self.assertFalse(any(os.path.exists(p) for p in self.workspace(r)), r)
        # five runs of gated, none ended: not one is touched
        self.assertEqual(sorted(self.runs_of("gated")), waiting)
        # once they end, the count applies to them too
        for r in waiting:
            self.ok("cancelRun", {"runId": r})
        self.wait_until("gated down to 3 runs", lambda: len(self.runs_of("gated")) == 3)

    def test_age_override_and_no_limit_override(self):
        kept = ["p-kept-%d" % i for i in range(5)]
        for r in kept:
            self.launch_finished("kept", r)
        aged = ["p-aged-%d" % i for i in range(5)]
        for r in aged:
            self.launch_finished("aged", r)
        # aged has no count limit (the default 3 does not apply): its runs
        # go by age alone, so all five (more than 3) are removed only once
        # they are 2 s old; the one that just ended is still there
        self.assertIn(aged[-1], self.runs_of("aged"))
        self.wait_until("aged runs removed by age", lambda: self.runs_of("aged") == [])
        fresh = "p-aged-fresh"
        self.launch_finished("aged", fresh)
        self.assertEqual(self.runs_of("aged"), [fresh], "a run younger than maxAge stays")
        # kept has no limit at all, beyond the default maxRuns 3
        self.assertEqual(sorted(self.runs_of("kept")), kept)

    def test_new_database_hands_pages_back(self):
        db = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            self.assertEqual(db.execute("PRAGMA auto_vacuum").fetchone()[0], 2)  # INCREMENTAL
        finally:
            db.close()


class VacuumMigration(unittest.TestCase):
    """A database created before incremental vacuum is rewritten once when
    a retention policy is configured, and left alone without one."""

    def start_on_old_database(self, extra):
        text, files = policy_config(extra)
        server = harness.Server(text, files)
        db = sqlite3.connect(server.db_path)
        db.execute("CREATE TABLE old_data(x)")   # auto_vacuum NONE, fixed once a table exists
        db.execute("INSERT INTO old_data VALUES (1)")
        db.commit()
        self.assertEqual(db.execute("PRAGMA auto_vacuum").fetchone()[0], 0)
        db.close()
        server.start()
        server.stop()
        db = sqlite3.connect(server.db_path)
        try:
            mode = db.execute("PRAGMA auto_vacuum").fetchone()[0]
            kept = db.execute("SELECT x FROM old_data").fetchall()
        finally:
            db.close()
            server.cleanup()
        self.assertEqual(kept, [(1,)], "the rewrite keeps every row")
        return mode

    def test_converted_with_a_policy(self):
        self.assertEqual(self.start_on_old_database(POLICY), 2)

    def test_untouched_without_one(self):
        self.assertEqual(self.start_on_old_database(""), 0)


if __name__ == "__main__":
    harness.main()
