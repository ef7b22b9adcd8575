"""The upstream client's methods beyond the seed contract, through the real
binary: pauseRun, listRunDescendants, getRunDiff, whatHappened
(docs/compatibility.md). Waits are bounded polling."""
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
TOKEN = "compat-token"

WORKFLOWS = {
    # The first task waits for a file the test creates, so a pause lands
    # while it runs.
    "steps": {"root": {"sequence": [
        {"task": {"id": "first", "run": "while [ ! -e ../../go-${input.tag} ]; do sleep 0.02; done;"
                                        " echo one > one.txt"}},
        {"task": {"id": "second", "run": "echo two > two.txt && rm one.txt"}},
    ]}},
    "files": {"root": {"sequence": [
        {"task": {"id": "write", "run": "printf 'a\\nb\\n' > a.txt && printf 'x\\n' > gone.txt"}},
        {"task": {"id": "edit", "run": "printf 'a\\nB\\n' > a.txt && rm gone.txt && echo n > new.txt"}},
        {"approval": {"id": "gate"}},
    ]}},
    "big": {"root": {"task": {"id": "lines", "run": "seq 1 20000 > big.txt"}}},
    "plain": {"versionWorkspace": False, "root": {"task": {"id": "t", "run": "echo x > x.txt"}}},
    "broken": {"root": {"sequence": [
        {"task": {"id": "ok", "run": "true"}},
        {"task": {"id": "bad", "run": "echo nope >&2; exit 3"}},
    ]}},
}


def config():
    text = ("listen: 127.0.0.1:0\nmaxPayload: 65536\nauth:\n  mode: token\n  tokens:\n"
            "    %s: { role: admin, scopes: [\"*\"], userId: \"user:compat\" }\nworkflows:\n" % TOKEN)
    text += "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **v), sort_keys=False)
             for k, v in WORKFLOWS.items()}
    return text, files


class Compat(harness.ServerTestCase):
    TOKEN = TOKEN

    @classmethod
    def setUpClass(cls):
        text, files = config()
        cls.server = harness.Server(text, files)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def wait(self, run_id, pred, what):
        deadline = time.monotonic() + WAIT_S
        while True:
            run = self.ok("getRun", {"runId": run_id})
            if pred(run):
                return run
            self.assertLess(time.monotonic(), deadline, "%s: %s" % (what, run))
            time.sleep(0.02)

    def node(self, run, node_id):
        return [n for n in run["nodes"] if n["nodeId"] == node_id][0]

    def events(self, run_id):
        con = sqlite3.connect(self.server.db_path)
        try:
            return [(e, json.loads(p)) for e, p in con.execute(
                "SELECT event, " + harness.PAYLOAD_SQL + " FROM events WHERE run_id = ? ORDER BY seq", (run_id,))]
        finally:
            con.close()

    def go(self, tag):
        open(os.path.join(self.server.dir, "go-" + tag), "w").close()

    # -- pauseRun --------------------------------------------------------------

    def test_pause_lets_the_running_task_finish_and_starts_nothing(self):
        run = "pause-1"
        self.launch("steps", run, {"tag": "p1"})
        self.wait(run, lambda r: self.node(r, "first")["state"] == "running", "first running")
        self.assertEqual(self.ok("pauseRun", {"runId": run}), {"runId": run, "status": "pausing"})
        self.assertEqual(self.ok("pauseRun", {"runId": run})["status"], "pausing")   # again: no change
        self.go("p1")
        r = self.wait(run, lambda r: self.node(r, "first")["state"] == "finished", "first finished")
        # Paused: the next task does not start, across a restart too.
        self.server.stop()
        self.server.start()
        time.sleep(0.3)
        r = self.ok("getRun", {"runId": run})
        self.assertEqual(self.node(r, "second")["state"], "pending", r)
        self.assertEqual(self.ok("resumeRun", {"runId": run})["status"], "resume_requested")
        self.wait(run, lambda r: r["status"] == "finished", "finished")
        names = [e for e, _ in self.events(run)]
        self.assertEqual(names.count("run.paused"), 1, names)
        resumed = [p for e, p in self.events(run) if e == "run.resumed"]
        self.assertEqual(resumed, [{"runId": run, "afterRewind": False}])

    def test_pause_errors(self):
        self.error("pauseRun", {"runId": "no-such-run"}, "RunNotFound", 404)
        self.launch("plain", "pause-ended")
        self.wait("pause-ended", lambda r: r["status"] == "finished", "finished")
        self.error("pauseRun", {"runId": "pause-ended"}, "Busy", 409)
        self.error("pauseRun", {"runId": "x", "extra": 1}, "InvalidRequest", 400)

    # -- listRunDescendants ----------------------------------------------------

    def test_descendants_are_the_run_itself(self):
        self.launch("plain", "lineage-1")
        self.assertEqual(self.ok("listRunDescendants", {"runId": "lineage-1"}),
                         [{"runId": "lineage-1", "parentRunId": None, "depth": 0}])
        self.assertEqual(len(self.ok("listRunDescendants", {"runId": "lineage-1", "limit": 1})), 1)
        self.error("listRunDescendants", {"runId": "nope"}, "RunNotFound", 404)
        self.error("listRunDescendants", {"runId": "lineage-1", "limit": 0}, "InvalidRequest", 400)

    # -- getRunDiff ------------------------------------------------------------

    def test_run_diff_bundle(self):
        run = "rundiff-1"
        self.launch("files", run)
        r = self.wait(run, lambda r: r["status"] == "waiting-approval", "at the gate")
        d = self.ok("getRunDiff", {"runId": run})
        self.assertEqual(d["baseRef"], "4b825dc642cb6eb9a060e54bf8d69288fbee4904")   # git's empty tree
        self.assertEqual(d["seq"], r["lastSeq"])
        ops = {p["path"]: p["operation"] for p in d["patches"]}
        # gone.txt came and went: from the empty start only a.txt and new.txt remain.
        self.assertEqual(ops, {"a.txt": "add", "new.txt": "add"})
        a = [p for p in d["patches"] if p["path"] == "a.txt"][0]
        self.assertIn("+a\n+B\n", a["diff"])
        self.assertNotIn("status", d)

    def test_run_diff_oversized_unversioned_and_empty(self):
        self.launch("big", "rundiff-big")
        self.wait("rundiff-big", lambda r: r["status"] == "finished", "finished")
        d = self.ok("getRunDiff", {"runId": "rundiff-big"})
        self.assertEqual(d["status"], "oversized", d)
        self.assertEqual(d["maxBytes"], 65536)
        self.assertGreater(d["sizeBytes"], 65536)
        self.assertEqual(len(d["terminalRef"]), 40)
        self.assertNotIn("patches", d)
        self.launch("plain", "rundiff-plain")
        self.error("getRunDiff", {"runId": "rundiff-plain"}, "VcsError", 500)
        self.error("getRunDiff", {"runId": "nope"}, "RunNotFound", 404)
        self.launch("steps", "rundiff-empty", {"tag": "never"})   # its first task never writes
        self.assertEqual(self.ok("getRunDiff", {"runId": "rundiff-empty"})["patches"], [])
        self.ok("cancelRun", {"runId": "rundiff-empty"})

    # -- whatHappened ----------------------------------------------------------

    def test_what_happened_run_and_node(self):
        self.launch("broken", "wh-1")
        self.wait("wh-1", lambda r: r["status"] == "failed", "failed")
        w = self.ok("whatHappened", {"runId": "wh-1"})
        self.assertEqual((w["scope"], w["nodeId"], w["iteration"], w["source"], w["agentId"], w["cached"]),
                         ("run", None, None, "facts", None, False))
        self.assertTrue(w["summary"].startswith("Run wh-1 of workflow broken is failed"), w["summary"])
        self.assertIn("bad (task) is failed after 1 attempt", w["summary"])
        self.assertIn("Of its 3 nodes 1 finished, 2 failed", w["summary"])   # the sequence failed too
        n = self.ok("whatHappened", {"runId": "wh-1", "nodeId": "ok", "iteration": 0})
        self.assertEqual((n["scope"], n["nodeId"], n["iteration"]), ("node", "ok", 0))
        self.assertTrue(n["summary"].startswith("ok (task) is finished after 1 attempt"), n["summary"])
        self.error("whatHappened", {"runId": "wh-1", "nodeId": "nope"}, "NodeNotFound", 404)
        self.error("whatHappened", {"runId": "wh-1", "nodeId": "ok", "iteration": 1},
                   "IterationNotFound", 404)
        self.error("whatHappened", {"runId": "nope"}, "RunNotFound", 404)


if __name__ == "__main__":
    harness.main()
