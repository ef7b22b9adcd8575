"""The chaos oracle must catch what it exists to catch.

Runs one short campaign (2 kills, tasks with retries so that the kills
cannot fail a run: the untouched result must pass), then damages copies of
its database the way a broken server would (a lost run, a duplicated
launch, a hole in a run's log, a lost approval, a signal stored twice, a
run failed, cancelled or left running, a wrong output row, a log that
differs from what a stream delivered) and checks that each damage is
reported under its kind, naming the run.

    /usr/bin/python3 tests/chaos/test_oracle.py --anvil build/anvil
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import chaos  # noqa: E402
from chaos_oracle import Db, check_all  # noqa: E402
from chaos_server import become_subreaper  # noqa: E402

ANVIL = None


class OracleCatches(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        become_subreaper()
        cls.dir = tempfile.mkdtemp(prefix="anvil-chaos-oracle-")
        args = chaos.parse_args(["--anvil", ANVIL, "--kills", "2", "--seed", "7", "--task-retries", "5",
                                 "--drain-s", "30", "--duration-per-kill-ms", "600:900"])
        cls.campaign = chaos.Campaign(args, cls.dir)
        try:
            cls.violations, _ = cls.campaign.run()
        finally:
            cls.campaign.server.terminate_everything()
        cls.db_path = cls.campaign.server.db_path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check(self, *statements):
        """The oracle's violations for a copy of the database after `statements`."""
        copy = os.path.join(self.dir, "tampered.db")
        shutil.copyfile(self.db_path, copy)
        con = sqlite3.connect(copy)
        for sql, params in statements:
            con.execute(sql, params)
        con.commit()
        con.close()
        c = self.campaign
        return check_all(Db(copy), c.journal, c.wfs, c.streams.follows, {}, [])

    def assertCaught(self, kind, run_id, *statements):
        found = [v for v in self.check(*statements) if v.kind == kind]
        self.assertTrue(any(v.run_id == run_id for v in found),
                        "%s on %s not reported; reported %s" % (kind, run_id, found))

    def acked(self, workflow=None):
        """An acknowledged run (of `workflow`) that finished."""
        db = Db(self.db_path)
        for run_id, launch in self.campaign.journal.runs.items():
            if db.runs[run_id]["status"] == "finished" and workflow in (None, launch.workflow):
                return run_id
        self.skipTest("no finished acknowledged run of %s" % workflow)

    def test_the_untouched_campaign_passes(self):
        self.assertEqual(self.violations, [])
        self.assertEqual(self.check(), [])

    def test_lost_launch(self):
        run_id = self.acked()
        self.assertCaught("launch-lost", run_id, ("DELETE FROM runs WHERE run_id = ?", (run_id,)))

    def test_duplicated_launch(self):
        run_id = self.acked()
        self.assertCaught("launch-duplicated", run_id + "-copy", (
            "INSERT INTO runs SELECT ? || '-copy', workflow, status, input_json, options_json, owner_id,"
            " triggered_by, role, scopes_json, token_id, NULL, error, cancel_requested, 0, 0,"
            " created_at_ms, updated_at_ms, finished_at_ms, workspace_head, held, started_by_json"
            " FROM runs WHERE run_id = ?",
            (run_id, run_id)))

    def test_hole_in_the_log(self):
        run_id = self.acked()
        self.assertCaught("seq-gap", run_id, ("DELETE FROM events WHERE run_id = ? AND seq = 2", (run_id,)))

    def test_lost_approval(self):
        d = next((d for d in self.campaign.journal.decisions if d.outcome.status == "ack"), None)
        if d is None:
            self.skipTest("no acknowledged approval")
        self.assertCaught("approval-lost", d.run_id, (
            "UPDATE approvals SET note = 'someone else' WHERE run_id = ? AND node_id = ?", (d.run_id, d.node_id)))

    def test_signal_stored_twice(self):
        s = next((s for s in self.campaign.journal.signals if s.outcome.status == "ack"), None)
        if s is None:
            self.skipTest("no acknowledged signal")
        self.assertCaught("signal-duplicated", s.run_id, (
            "INSERT INTO signals(run_id, seq, signal_name, correlation_id, payload_json,"
            " received_at_ms, received_by, consumed_by)"
            " SELECT run_id, (SELECT MAX(seq) + 1 FROM signals WHERE run_id = ?1),"
            " signal_name, correlation_id, payload_json, received_at_ms, received_by, NULL"
            " FROM signals WHERE run_id = ?1 AND seq = ?2", (s.run_id, s.outcome.payload["seq"])))

    def test_failed_run(self):
        run_id = self.acked()
        self.assertCaught("failed-run", run_id, ("UPDATE runs SET status = 'failed' WHERE run_id = ?", (run_id,)))

    def test_cancelled_by_nobody(self):
        run_id = self.acked()
        self.assertCaught("cancel-unexplained", run_id,
                          ("UPDATE runs SET status = 'cancelled' WHERE run_id = ?", (run_id,)))

    def test_run_left_running(self):
        run_id = self.acked()
        self.assertCaught("stuck-run", run_id, ("UPDATE runs SET status = 'running' WHERE run_id = ?", (run_id,)))

    def test_wrong_output_row(self):
        run_id = self.acked("steps")
        self.assertCaught("output", run_id, (
            "UPDATE outputs SET row_json = ? WHERE run_id = ? AND node_id = 's2'",
            (json.dumps({"node": "s2", "nonce": "other"}), run_id)))

    def test_log_differs_from_the_stream(self):
        f = next((f for f in self.campaign.streams.follows if len(f.events) > 2), None)
        if f is None:
            self.skipTest("no stream delivered three events")
        self.assertCaught("stream-mismatch", f.run_id, (
            "UPDATE events SET event = 'node.bogus' WHERE run_id = ? AND seq = 2", (f.run_id,)))


if __name__ == "__main__":
    argv = [sys.argv[0]]
    args = iter(sys.argv[1:])
    for a in args:
        if a == "--anvil":
            ANVIL = next(args)
        elif a.startswith("--anvil="):
            ANVIL = a.split("=", 1)[1]
        else:
            argv.append(a)
    ANVIL = os.path.abspath(ANVIL or os.environ.get("ANVIL_BIN") or os.path.join(chaos.SOURCE_DIR, "build", "anvil"))
    unittest.main(argv=argv, verbosity=2)
