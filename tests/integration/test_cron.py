"""Cron schedules through the real binary: cronList / cronCreate / cronDelete
/ cronRun and their legacy aliases, errors, the config's `schedule` becoming
row gateway:<name>, and firing.

Firing uses the test-only clock: ANVIL_TEST_CLOCK_FILE names a file holding
the scheduler's "now" in integer ms (docs/cron.md). The tests move that
clock past nextRunAtMs and wait (bounded polling) for the scheduler's next
poll, which runs every clamp(heartbeatMs, 1 s, 15 s) = 1 s here."""
import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402

WAIT_S = 20.0
OP = "op-token"
T0 = 1704067200000          # 2024-01-01T00:00:00Z, a Monday
MIN = 60000
HOUR = 60 * MIN
DAY = 24 * HOUR


def wf(name, static=False):
    # A process task keeps the run active after launch; a static one ends it
    # inside the launch. Either way cron.triggered is seq 2, recorded in the
    # launch transaction right after run.started (docs/cron.md).
    task = {"id": "t", "output": {"ok": True}} if static else {"id": "t", "run": "echo '{\"ok\":true}'"}
    return yaml.safe_dump({"name": name, "root": {"task": task}})


CONFIG = """listen: 127.0.0.1:0
heartbeatMs: 200
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
    read-token: { role: viewer, scopes: ["cron:read"], userId: "user:viewer" }
workflows:
  nightly: { file: wf/nightly.yaml, schedule: "0 2 * * *" }
  hourly: { file: wf/hourly.yaml, schedule: "@hourly" }
  plain: { file: wf/plain.yaml }
"""
FILES = {"wf/nightly.yaml": wf("nightly"), "wf/hourly.yaml": wf("hourly", static=True),
         "wf/plain.yaml": wf("plain")}


class CronCase(harness.ServerTestCase):
    CONFIG, FILES = CONFIG, FILES

    @classmethod
    def setUpClass(cls):
        cls.clock_dir = __import__("tempfile").mkdtemp(prefix="anvil-clock-")
        cls.clock = os.path.join(cls.clock_dir, "now")
        cls.set_clock(T0)
        os.environ["ANVIL_TEST_CLOCK_FILE"] = cls.clock
        try:
            super().setUpClass()
        finally:
            del os.environ["ANVIL_TEST_CLOCK_FILE"]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        __import__("shutil").rmtree(cls.clock_dir, ignore_errors=True)

    @classmethod
    def set_clock(cls, ms):
        tmp = cls.clock + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, cls.clock)

    def call(self, method, params=None, token=OP):
        status, _, doc = self.server.rpc(method, params or {}, token=token)
        return self.assertOk(status, doc)

    def refuse(self, method, params, code, token=OP, path=None):
        status, _, doc = self.server.rpc(method, params, token=token)
        return self.assertError(status, doc, code, path=path)

    def rows(self, **flt):
        return {r["cronId"]: r for r in self.call("cronList", {"filter": flt} if flt else {})}

    def wait_for(self, pred, what):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out waiting for " + what + "\n" + self.server.stderr()[-3000:])

    def list_runs(self):
        return self.call("listRuns", {"filter": {"limit": 1000}})

    def runs_for(self, workflow):
        return [r for r in self.list_runs() if r["workflowKey"] == workflow]

    def events(self, run_id):
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            rows = db.execute("SELECT seq, event, " + harness.PAYLOAD_SQL + " FROM events WHERE run_id = ?"
                              " ORDER BY seq", (run_id,)).fetchall()
        finally:
            db.close()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]


class Methods(CronCase):
    def test_config_schedules_become_gateway_rows(self):
        rows = self.rows()
        self.assertIn("gateway:nightly", rows)
        self.assertIn("gateway:hourly", rows)
        self.assertNotIn("gateway:plain", rows)
        n = rows["gateway:nightly"]
        self.assertEqual(n["workflow"], "nightly")
        self.assertEqual(n["pattern"], "0 2 * * *")
        self.assertIs(n["enabled"], True)
        self.assertIsInstance(n["nextRunAtMs"], int)
        self.assertGreater(n["nextRunAtMs"], 0)
        # the upstream client's GatewayCronRow: workflowPath is the file the
        # config loaded the workflow from
        self.assertEqual(set(n), {"cronId", "workflow", "workflowPath", "pattern", "enabled",
                                  "createdAtMs", "nextRunAtMs", "lastRunAtMs"})
        self.assertEqual(os.path.realpath(n["workflowPath"]),
                         os.path.realpath(os.path.join(self.server.dir, "wf", "nightly.yaml")))
        self.assertIsInstance(n["createdAtMs"], int)
        self.assertLessEqual(n["createdAtMs"], int(time.time() * 1000))
        self.assertEqual(list(self.rows(workflow="hourly")), ["gateway:hourly"])
        self.assertEqual(self.rows(workflow="nope"), {})

    def test_create_replace_delete(self):
        row = self.call("cronCreate", {"workflow": "plain", "pattern": "*/5 * * * *", "cronId": "c-one"})
        self.assertEqual(row["cronId"], "c-one")
        self.assertEqual(row["workflow"], "plain")
        self.assertIs(row["enabled"], True)
        self.assertIsNone(row["lastRunAtMs"])
        self.assertEqual(row["nextRunAtMs"] % (5 * MIN), 0)
        again = self.call("cronCreate", {"workflow": "plain", "pattern": "0 0 1 JAN *", "cronId": "c-one",
                                         "enabled": False})
        self.assertEqual(again["pattern"], "0 0 1 JAN *")
        self.assertIs(again["enabled"], False)
        self.assertEqual(self.rows(workflow="plain")["c-one"], again)
        self.assertEqual(os.path.realpath(again["workflowPath"]),
                         os.path.realpath(os.path.join(self.server.dir, "wf", "plain.yaml")))
        self.assertEqual(again["createdAtMs"], row["createdAtMs"], "a replaced row keeps its creation time")
        gen = self.call("cronCreate", {"workflow": "plain", "pattern": "@daily"})
        self.assertRegex(gen["cronId"], r"^cron_[0-9a-f]{32}$")
        self.assertEqual(self.call("cronDelete", {"cronId": "c-one"}), {"cronId": "c-one", "removed": True})
        self.assertNotIn("c-one", self.rows())
        err = self.refuse("cronDelete", {"cronId": "c-one"}, "RunNotFound")
        self.assertEqual(err["message"], "Cron not found: c-one")
        self.call("cronDelete", {"cronId": gen["cronId"]})

    def test_bad_patterns_name_the_field(self):
        for pattern, msg in [("0 24 * * *", "hour: 24 is out of range 0-23"),
                             ("* * *", "pattern: expected 5 fields"),
                             ("0 0 * FOO *", "month: unknown name"),
                             ("@sometimes", "pattern: unknown macro")]:
            with self.subTest(pattern=pattern):
                err = self.refuse("cronCreate", {"workflow": "plain", "pattern": pattern}, "InvalidRequest",
                                  path="$.params.pattern")
                self.assertIn(msg, err["message"])
        self.refuse("cronCreate", {"workflow": "ghost", "pattern": "@daily"}, "InvalidRequest",
                    path="$.params.workflow")

    def test_cron_run(self):
        self.call("cronCreate", {"workflow": "plain", "pattern": "0 0 1 1 *", "cronId": "manual"})
        res = self.call("cronRun", {"cronId": "manual", "input": {"x": 1}})
        self.assertEqual(res["workflow"], "plain")
        self.assertEqual(set(res), {"runId", "workflow", "system"})
        self.assertIs(res["system"], False)
        view = self.call("getRun", {"runId": res["runId"]})
        self.assertEqual(view["input"], {"x": 1})
        self.assertEqual(view["triggeredBy"], "user:op")   # a manual run is the caller's
        self.assertEqual(view["role"], "operator")
        self.assertIsInstance(self.rows()["manual"]["lastRunAtMs"], int)
        res = self.call("cronRun", {"workflow": "plain"})
        self.assertEqual(res["workflow"], "plain")
        self.refuse("cronRun", {"cronId": "nope"}, "RunNotFound")
        self.refuse("cronRun", {}, "InvalidRequest")
        self.refuse("cronRun", {"workflow": "ghost"}, "InvalidInput")
        self.refuse("cronRun", {"cronId": "manual", "workflow": "nightly"}, "InvalidRequest",
                    path="$.params.workflow")
        self.call("cronDelete", {"cronId": "manual"})

    def test_legacy_aliases(self):
        row = self.call("cron.add", {"workflow": "plain", "pattern": "@weekly", "cronId": "legacy"})
        self.assertEqual(row["cronId"], "legacy")
        self.assertIn("legacy", {r["cronId"] for r in self.call("cron.list", {})})
        res = self.call("cron.trigger", {"cronId": "legacy"})
        self.assertEqual(res["workflow"], "plain")
        self.assertEqual(self.call("cron.remove", {"cronId": "legacy"}), {"cronId": "legacy", "removed": True})

    def test_read_scope(self):
        self.call("cronList", {}, token="read-token")
        self.refuse("cronCreate", {"workflow": "plain", "pattern": "@daily"}, "Forbidden", token="read-token")


class Firing(CronCase):
    """Separate server: the clock only moves forward in this class."""

    def test_fire_missed_once_and_disabled(self):
        rows = self.rows()
        nightly = rows["gateway:nightly"]
        self.assertEqual(nightly["nextRunAtMs"], T0 + 2 * HOUR)
        self.assertEqual(rows["gateway:hourly"]["nextRunAtMs"], T0 + HOUR)
        self.call("cronCreate", {"workflow": "plain", "pattern": "* * * * *", "cronId": "off", "enabled": False})
        self.assertEqual(self.runs_for("nightly"), [])

        # Past 02:00: nightly fires (hourly, at 01:00 and 02:00, fires once).
        self.set_clock(T0 + 2 * HOUR + 30000)
        runs = self.wait_for(lambda: self.runs_for("nightly"), "the nightly run")
        self.assertEqual(len(runs), 1)
        run_id = runs[0]["runId"]
        view = self.call("getRun", {"runId": run_id})
        self.assertEqual(view["triggeredBy"], "cron:gateway")
        self.assertEqual(view["role"], "system")
        self.assertEqual(view["scopes"], ["*"])
        self.wait_for(lambda: any(e[1] == "cron.triggered" for e in self.events(run_id)), "cron.triggered")
        trig = [e for e in self.events(run_id) if e[1] == "cron.triggered"][0][2]
        self.assertEqual(trig["runId"], run_id)
        self.assertEqual(trig["cronId"], "gateway:nightly")
        self.assertEqual(trig["workflow"], "nightly")
        self.assertEqual(trig["scheduledAtMs"], T0 + 2 * HOUR)
        # In the log between run.started and run.completed, seqs contiguous.
        self.wait_for(lambda: self.events(run_id)[-1][1] == "run.completed", "run.completed")
        log = self.events(run_id)
        self.assertEqual([e[0] for e in log], list(range(1, len(log) + 1)))
        self.assertEqual([e[1] for e in log[:2]], ["run.started", "cron.triggered"])
        self.assertEqual([e[1] for e in log].count("cron.triggered"), 1)
        row = self.rows()["gateway:nightly"]
        self.assertEqual(row["nextRunAtMs"], T0 + DAY + 2 * HOUR)
        self.assertEqual(row["lastRunAtMs"], T0 + 2 * HOUR + 30000)
        hourly = self.wait_for(lambda: self.runs_for("hourly"), "the hourly run")
        # A static run ends inside its launch and still carries the trigger.
        hlog = self.events(hourly[0]["runId"])
        self.assertEqual([e[1] for e in hlog[:2]], ["run.started", "cron.triggered"])
        self.assertEqual(hlog[-1][1], "run.completed")
        self.assertEqual(hlog[1][2]["cronId"], "gateway:hourly")
        self.assertEqual(self.rows()["gateway:hourly"]["nextRunAtMs"], T0 + 3 * HOUR)

        # More polls at the same time fire nothing more.
        time.sleep(1.5)
        self.assertEqual(len(self.runs_for("nightly")), 1)
        self.assertEqual(len(self.runs_for("hourly")), 1)

        # Ten days of downtime later: each schedule fires once, not ten times.
        self.set_clock(T0 + 10 * DAY + 5 * HOUR)
        self.wait_for(lambda: len(self.runs_for("nightly")) == 2, "the missed nightly run")
        self.wait_for(lambda: len(self.runs_for("hourly")) == 2, "the missed hourly run")
        time.sleep(1.5)
        self.assertEqual(len(self.runs_for("nightly")), 2)
        self.assertEqual(len(self.runs_for("hourly")), 2)
        self.assertEqual(self.rows()["gateway:nightly"]["nextRunAtMs"], T0 + 11 * DAY + 2 * HOUR)
        # The disabled row never fired.
        self.assertEqual(self.runs_for("plain"), [])
        self.assertIsNone(self.rows()["off"]["lastRunAtMs"])

        # Enabling it (create or replace) makes it fire at the next minute.
        self.call("cronCreate", {"workflow": "plain", "pattern": "* * * * *", "cronId": "off", "enabled": True})
        self.set_clock(T0 + 10 * DAY + 5 * HOUR + MIN)
        runs = self.wait_for(lambda: self.runs_for("plain"), "the enabled cron's run")
        self.assertEqual(len(runs), 1)


class FailedFire(CronCase):
    """A fire whose launch cannot be recorded (a trigger makes SQLite refuse
    the run row, as a full disk would) is not lost: the row is put back and
    the next poll fires it once the cause is gone."""

    def sql(self, statement):
        self.server.sql(statement)

    def test_fire_retried_after_a_failed_launch(self):
        self.call("cronCreate", {"workflow": "plain", "pattern": "* * * * *", "cronId": "retry"})
        before = self.rows()["retry"]
        self.sql("CREATE TRIGGER no_plain BEFORE INSERT ON runs WHEN NEW.workflow = 'plain'"
                 " BEGIN SELECT RAISE(ABORT, 'injected'); END")
        self.addCleanup(self.sql, "DROP TRIGGER IF EXISTS no_plain")
        self.set_clock(T0 + MIN + 1000)
        self.wait_for(lambda: "cron retry: cannot launch plain" in self.server.stderr(), "the failed fire")
        self.assertIn("(fires again at the next poll)", self.server.stderr())
        row = self.rows()["retry"]
        self.assertEqual((row["nextRunAtMs"], row["lastRunAtMs"]),
                         (before["nextRunAtMs"], before["lastRunAtMs"]), "the row is as it was")
        self.assertEqual(self.runs_for("plain"), [])
        self.sql("DROP TRIGGER no_plain")
        runs = self.wait_for(lambda: self.runs_for("plain"), "the retried fire")
        self.assertEqual(len(runs), 1)
        log = self.events(runs[0]["runId"])
        self.assertEqual([e[1] for e in log[:2]], ["run.started", "cron.triggered"])
        self.assertEqual(log[1][2]["scheduledAtMs"], before["nextRunAtMs"])
        time.sleep(1.0)   # more polls at the same time fire nothing more
        self.assertEqual(len(self.runs_for("plain")), 1)


class ConfigRestart(unittest.TestCase):
    """A changed schedule in the config updates row gateway:<name> on the
    next start; a removed one deletes it. An invalid one fails check-config."""

    def test_restart_updates_rows(self):
        cfg = CONFIG
        srv = harness.Server(cfg, FILES)
        try:
            srv.start()
            srv.stop()
            srv2_cfg = cfg.replace('schedule: "0 2 * * *"', 'schedule: "30 4 * * *"').replace(
                ', schedule: "@hourly"', "")
            with open(srv.config_path, "w") as f:
                f.write(srv2_cfg)
            srv.start()
            status, _, doc = srv.rpc("cronList", {}, token=OP)
            rows = {r["cronId"]: r for r in doc["payload"]}
            self.assertEqual(rows["gateway:nightly"]["pattern"], "30 4 * * *")
            self.assertNotIn("gateway:hourly", rows)
            srv.stop()
            with open(srv.config_path, "w") as f:
                f.write(cfg.replace('"0 2 * * *"', '"0 25 * * *"'))
            res = harness.run_cli("check-config", srv.config_path)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("hour: 25 is out of range 0-23", res.stdout + res.stderr)
        finally:
            srv.kill()
            srv.cleanup()


if __name__ == "__main__":
    harness.main()
