"""runs.diff through the real binary: the diff of a run's versioned
workspace between two of its frames (docs/time-travel.md#runsdiff).

Runs of workflows whose `run:` tasks write, rewrite and delete files are
diffed across the whole run, between middle frames (compared with what
getNodeDiff says the tasks in between changed), with the defaults, after a
rewind, over the WebSocket, and with every error a client can provoke:
RunNotFound, FrameOutOfRange, InvalidRequest (fromFrameNo after toFrameNo,
a malformed runId, the schema's bounds), VcsError (a workflow with
versionWorkspace: false, a missing repository, a frame from before time
travel), PayloadTooLarge (maxPayload 65536) and Forbidden (no run:read).
Every success payload is checked against the contract's schema too.

Waits are bounded polling; nothing depends on how long something took."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_engine import approval, seq, task  # noqa: E402
from test_inspect import InspectCase, config  # noqa: E402
from test_ws import Client, run  # noqa: E402

import yaml  # noqa: E402

OP = "op-token"   # role operator, scopes ["*"] (test_inspect.TOKENS)
MAX_PAYLOAD = 65536

# one: a.txt (3 lines) and b.txt; two: a.txt's middle line changed, b.txt
# removed, c.txt added; three: a binary file, and a line appended to a.txt.
TT = seq(
    task("one", run="printf 'alpha\\nbeta\\ngamma\\n' > a.txt && printf 'bee\\n' > b.txt && echo '{}'"),
    task("two", run="printf 'alpha\\nBETA\\ngamma\\n' > a.txt && rm b.txt"
                    " && printf 'c1\\nc2\\n' > c.txt && echo '{}'"),
    task("three", run="printf 'C\\0B\\0I\\0N\\n' > d.bin && printf 'delta\\n' >> a.txt && echo '{}'"),
)
WORKFLOWS = {
    "tt": TT,
    # the same tasks, and an approval in front so a test can change the
    # database before anything is committed
    "gated": seq(approval("hold"), TT),
    # small.txt fits under maxPayload; big.txt (~108 KB of lines) does not
    "big": seq(task("small", run="echo small > small.txt && echo '{}'"),
               task("big", run="seq 1 20000 > big.txt && echo '{}'")),
}
PLAIN = {"name": "plain", "versionWorkspace": False, "root": TT}


def server_config():
    text, files = config(WORKFLOWS, extra="maxPayload: %d\n" % MAX_PAYLOAD)
    text = text.replace("    none-token:", "    cronread-token: { role: viewer, scopes: [\"cron:read\"] }\n"
                                          "    none-token:")
    text += "  plain: { file: wf/plain.yaml }\n"
    files["wf/plain.yaml"] = yaml.safe_dump(PLAIN, sort_keys=False)
    return text, files


def shape(bundle):
    """What a diff says, without the commit ids it was computed from."""
    return (bundle["summary"], [(f["path"], f["status"], f["binary"], f["insertions"], f["deletions"], f["patch"])
                                for f in bundle["files"]])


def files_of(bundle):
    return [(f["path"], f["status"], f["binary"], f["insertions"], f["deletions"]) for f in bundle["files"]]


class RunDiffCase(InspectCase):
    CONFIG, FILES = server_config()

    def diff(self, run_id, token=OP, **frames):
        return self.call("runs.diff", dict(runId=run_id, **frames), token=token)

    def node_states(self, run_id, frame_no):
        """{nodeId: state} of one recorded frame (frames.get)."""
        tree = self.call("frames.get", {"runId": run_id, "frameNo": frame_no})["tree"]
        out, stack = {}, [tree["root"]]
        while stack:
            n = stack.pop()
            out[n["id"]] = n["state"]
            stack.extend(n.get("children", []))
        return out

    def first_frame(self, run_id, node_id, state="finished"):
        """The first frame that shows node_id in `state`."""
        latest = self.get(run_id)["frameNo"]
        for no in range(1, latest + 1):
            if self.node_states(run_id, no).get(node_id) == state:
                return no
        self.fail("no frame of %s shows %s %s" % (run_id, node_id, state))

    def finished_run(self, workflow, run_id):
        self.assertEqual(self.launch(workflow, runId=run_id), run_id)
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        return run_id


class Diffs(RunDiffCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        self = cls("test_whole_run")
        cls.run_id = self.finished_run("tt", "diff-1")
        cls.latest = self.get(cls.run_id)["frameNo"]
        cls.nodes = {n: self.call("getNodeDiff", {"runId": cls.run_id, "nodeId": n})
                     for n in ("one", "two", "three")}
        # the first frames that saw each task's commit
        cls.after = {n: self.first_frame(cls.run_id, n) for n in ("one", "two", "three")}

    def test_whole_run(self):
        d = self.diff(self.run_id, fromFrameNo=0, toFrameNo=self.latest)
        self.assertEqual((d["runId"], d["fromFrameNo"], d["toFrameNo"]), (self.run_id, 0, self.latest))
        self.assertIsNone(d["baseCommit"], "frame 0 is the empty workspace")
        self.assertEqual(d["commit"], self.nodes["three"]["commit"], "the last frame saw the last commit")
        # b.txt came and went: it is not in the run's diff at all
        self.assertEqual(files_of(d), [("a.txt", "added", False, 4, 0),
                                       ("c.txt", "added", False, 2, 0),
                                       ("d.bin", "added", True, 0, 0)])
        self.assertEqual(d["summary"], {"filesChanged": 3, "insertions": 6, "deletions": 0})
        a, c, b = d["files"]
        self.assertIn("--- /dev/null\n+++ b/a.txt\n", a["patch"])
        self.assertTrue(a["patch"].endswith("+alpha\n+BETA\n+gamma\n+delta\n"), a["patch"])
        self.assertTrue(c["patch"].endswith("+c1\n+c2\n"), c["patch"])
        self.assertIn("Binary files", b["patch"])

    def test_frames_see_the_commits_of_the_tasks_before_them(self):
        for n in ("one", "two", "three"):
            with self.subTest(node=n):
                d = self.diff(self.run_id, fromFrameNo=self.after[n], toFrameNo=self.after[n])
                self.assertEqual((d["baseCommit"], d["commit"]), (self.nodes[n]["commit"],) * 2)
                self.assertEqual(d["files"], [])
                self.assertEqual(d["summary"], {"filesChanged": 0, "insertions": 0, "deletions": 0})
                # the frame before it had not seen that commit yet
                before = self.diff(self.run_id, fromFrameNo=self.after[n] - 1, toFrameNo=self.after[n] - 1)
                self.assertEqual(before["commit"], self.nodes[n]["baseCommit"])

    def test_between_middle_frames(self):
        # from the frame after `one` to the frame after `two`: only what two did
        d = self.diff(self.run_id, fromFrameNo=self.after["one"], toFrameNo=self.after["two"])
        self.assertEqual((d["fromFrameNo"], d["toFrameNo"]), (self.after["one"], self.after["two"]))
        self.assertEqual((d["baseCommit"], d["commit"]), (self.nodes["one"]["commit"], self.nodes["two"]["commit"]))
        self.assertEqual(files_of(d), [("a.txt", "modified", False, 1, 1),
                                       ("b.txt", "deleted", False, 0, 1),
                                       ("c.txt", "added", False, 2, 0)])
        self.assertEqual(d["summary"], {"filesChanged": 3, "insertions": 3, "deletions": 2})
        self.assertIn(" alpha\n-beta\n+BETA\n gamma\n", d["files"][0]["patch"])
        self.assertTrue(d["files"][1]["patch"].endswith("-bee\n"), d["files"][1]["patch"])
        self.assertEqual(shape(d), shape(self.nodes["two"]), "exactly what getNodeDiff says two changed")
        # one frame further along, nothing else changed
        self.assertEqual(shape(self.diff(self.run_id, fromFrameNo=self.after["one"] + 1,
                                         toFrameNo=self.after["two"])), shape(d))
        # from the frame after two to the end: only three's changes
        rest = self.diff(self.run_id, fromFrameNo=self.after["two"])
        self.assertEqual(files_of(rest), [("a.txt", "modified", False, 1, 0), ("d.bin", "added", True, 0, 0)])
        self.assertEqual(shape(rest), shape(self.nodes["three"]))

    def test_before_the_first_commit_is_empty(self):
        # frame 1 is the launch: nothing committed on either side
        d = self.diff(self.run_id, fromFrameNo=0, toFrameNo=1)
        self.assertEqual((d["baseCommit"], d["commit"], d["files"]), (None, None, []))
        self.assertEqual(d["summary"], {"filesChanged": 0, "insertions": 0, "deletions": 0})
        # up to the frame after one: one's files, as getNodeDiff shows them
        first = self.diff(self.run_id, toFrameNo=self.after["one"])
        self.assertEqual(first["fromFrameNo"], 0)
        self.assertEqual(shape(first), shape(self.nodes["one"]))
        self.assertEqual(files_of(first), [("a.txt", "added", False, 3, 0), ("b.txt", "added", False, 1, 0)])

    def test_defaults(self):
        whole = self.diff(self.run_id, fromFrameNo=0, toFrameNo=self.latest)
        default = self.diff(self.run_id)
        self.assertEqual(default, whole, "fromFrameNo 0, toFrameNo the latest frame")
        self.assertEqual(self.diff(self.run_id, fromFrameNo=0), whole)
        self.assertEqual(self.diff(self.run_id, toFrameNo=self.latest), whole)

    def test_read_scope_is_enough_and_required(self):
        self.assertEqual(self.diff(self.run_id, token="read-token"), self.diff(self.run_id))
        for token in ("cronread-token", "none-token", "write-token"):
            with self.subTest(token=token):
                status, _, doc = self.server.rpc("runs.diff", {"runId": self.run_id}, token=token)
                if token == "write-token":
                    # run:write implies run:read
                    self.assertOk(status, doc)
                    continue
                self.assertForbidden(status, doc, "run:read", called="runs.diff")
        # the scope is checked before the params: an invalid request is still Forbidden
        status, _, doc = self.server.rpc("runs.diff", {"bogus": 1}, token="cronread-token")
        self.assertForbidden(status, doc, "run:read")

    def test_frame_form_and_websocket(self):
        params = {"runId": self.run_id, "fromFrameNo": self.after["one"], "toFrameNo": self.after["two"]}
        over_http = self.call("runs.diff", params)
        status, _, doc = self.server.rpc_frame({"id": "f-1", "method": "runs.diff", "params": params}, token=OP)
        self.assertEqual(self.assertOk(status, doc), over_http)
        self.assertEqual(doc["id"], "f-1")

        async def go():
            c = await Client.open(self.server.port)
            await c.connect(token=OP)
            ok = await c.call("runs.diff", params)
            bad = await c.call("runs.diff", {"runId": self.run_id, "toFrameNo": self.latest + 1})
            await c.close()
            return ok, bad

        ok, bad = run(go())
        self.assertTrue(ok["ok"], ok)
        self.assertEqual(ok["payload"], over_http)
        self.assertFalse(bad["ok"], bad)
        self.assertEqual(bad["error"]["code"], "FrameOutOfRange")


class Errors(RunDiffCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        self = cls("test_run_not_found")
        cls.run_id = self.finished_run("tt", "err-1")
        cls.latest = self.get(cls.run_id)["frameNo"]

    def test_run_not_found(self):
        err = self.refuse("runs.diff", {"runId": "no-such-run"}, "RunNotFound")
        self.assertEqual(err["message"], "Run not found: no-such-run")
        self.refuse("runs.diff", {"runId": "no-such-run", "fromFrameNo": 0, "toFrameNo": 1}, "RunNotFound")

    def test_frame_out_of_range(self):
        past = self.latest + 1
        # toFrameNo is checked first, then fromFrameNo
        for params, missing in (({"toFrameNo": past}, past), ({"fromFrameNo": past}, past),
                                ({"fromFrameNo": 1, "toFrameNo": past}, past),
                                ({"fromFrameNo": past, "toFrameNo": past + 5}, past + 5)):
            with self.subTest(params=params):
                err = self.refuse("runs.diff", dict(runId=self.run_id, **params), "FrameOutOfRange",
                                  message="Run %s has no frame %d (frames 1-%d)"
                                          % (self.run_id, missing, self.latest))
                self.assertEqual((err["frameNo"], err["latestFrameNo"]), (missing, self.latest))

    def test_from_after_to(self):
        self.refuse("runs.diff", {"runId": self.run_id, "fromFrameNo": 3, "toFrameNo": 2}, "InvalidRequest",
                    path="$.params.fromFrameNo", message="$.params.fromFrameNo: 3 is after toFrameNo 2")
        # the order is a property of the request: checked before the run is looked up
        self.refuse("runs.diff", {"runId": "no-such-run", "fromFrameNo": 9, "toFrameNo": 1}, "InvalidRequest",
                    path="$.params.fromFrameNo")

    def test_malformed_run_id(self):
        for bad in ("Bad Id!", "UPPER", "a" * 65, "", "dot.ted"):
            with self.subTest(runId=bad):
                self.refuse("runs.diff", {"runId": bad}, "InvalidRequest", path="$.params.runId")
        # before the frame order: the run id is what the request names first
        self.refuse("runs.diff", {"runId": "Bad Id!", "fromFrameNo": 2, "toFrameNo": 1}, "InvalidRequest",
                    path="$.params.runId")

    def test_schema_bounds(self):
        for params, path in (({}, "$.params.runId"),
                             ({"runId": 7}, "$.params.runId"),
                             ({"runId": self.run_id, "fromFrameNo": -1}, "$.params.fromFrameNo"),
                             ({"runId": self.run_id, "toFrameNo": 0}, "$.params.toFrameNo"),
                             ({"runId": self.run_id, "toFrameNo": "2"}, "$.params.toFrameNo"),
                             ({"runId": self.run_id, "fromFrameNo": 1.5}, "$.params.fromFrameNo"),
                             ({"runId": self.run_id, "frameNo": 1}, "$.params.frameNo")):
            with self.subTest(params=params):
                self.refuse("runs.diff", params, "InvalidRequest", path=path)

    def test_vcs_error_when_the_workspace_is_not_versioned(self):
        run_id = self.finished_run("plain", "plain-1")
        self.assertTrue(os.path.isfile(os.path.join(self.server.dir, "workspaces", run_id, "a.txt")))
        for params in ({}, {"fromFrameNo": 0, "toFrameNo": 1}):
            with self.subTest(params=params):
                err = self.refuse("runs.diff", dict(runId=run_id, **params), "VcsError")
                self.assertEqual(err["message"],
                                 "workflow plain does not version its workspace (versionWorkspace: false)")
        # the frame range is still checked first
        self.refuse("runs.diff", {"runId": run_id, "toFrameNo": 999}, "FrameOutOfRange")

    def test_vcs_error_when_the_repository_is_missing(self):
        run_id = self.finished_run("tt", "norepo-1")
        good = self.diff(run_id)
        git = os.path.join(self.server.dir, "workspaces", run_id + ".git")
        os.rename(git, git + ".moved")
        try:
            err = self.refuse("runs.diff", {"runId": run_id}, "VcsError")
            self.assertTrue(err["message"].startswith("run %s: " % run_id), err)
            # frames without commits need no repository
            self.assertEqual(self.diff(run_id, toFrameNo=1)["files"], [])
        finally:
            os.rename(git + ".moved", git)
        self.assertEqual(self.diff(run_id), good)

    def test_vcs_error_when_a_commit_is_missing(self):
        run_id = self.finished_run("tt", "nocommit-1")
        last = self.get(run_id)["frameNo"]
        self.server.sql("UPDATE frames SET workspace_ref = '%s' WHERE run_id = '%s' AND frame_no = %d"
                        % ("0" * 40, run_id, last))
        err = self.refuse("runs.diff", {"runId": run_id}, "VcsError")
        self.assertTrue(err["message"].startswith("run %s: " % run_id), err)
        self.diff(run_id, toFrameNo=last - 1)

    def test_vcs_error_for_a_frame_from_before_time_travel(self):
        run_id = self.finished_run("tt", "old-1")
        # what a frame written before migration 5 looks like: no seq, no ref
        self.server.sql("UPDATE frames SET seq = NULL, workspace_ref = NULL"
                        " WHERE run_id = '%s' AND frame_no = 2" % run_id)
        err = self.refuse("runs.diff", {"runId": run_id, "fromFrameNo": 2}, "VcsError")
        self.assertEqual(err["message"], "frame 2 of run %s was recorded before time travel existed; its "
                                         "workspace commit is unknown" % run_id)
        self.diff(run_id, fromFrameNo=3)

    def test_payload_too_large(self):
        run_id = self.finished_run("big", "big-1")
        small = self.first_frame(run_id, "small")
        fits = self.diff(run_id, toFrameNo=small)
        self.assertEqual(files_of(fits), [("small.txt", "added", False, 1, 0)])
        for params in ({}, {"fromFrameNo": small}):
            with self.subTest(params=params):
                err = self.refuse("runs.diff", dict(runId=run_id, **params), "PayloadTooLarge")
                self.assertEqual(err["maxBytes"], MAX_PAYLOAD)
                self.assertRegex(err["message"], r"^frames %d-%d of run %s: the diff is larger than the %d-byte "
                                                 r"limit \(maxPayload\)" % (params.get("fromFrameNo", 0),
                                                                             self.get(run_id)["frameNo"],
                                                                             run_id, MAX_PAYLOAD))
        self.assertEqual(harness.error_status("PayloadTooLarge"), 413)


class AfterRewind(RunDiffCase):
    """A rewind removes the frames after its target; runs.diff follows."""

    def test_rewind_then_resume(self):
        run_id = self.finished_run("tt", "rw-1")
        latest = self.get(run_id)["frameNo"]
        whole = self.diff(run_id)
        after_one = self.first_frame(run_id, "one")
        up_to_one = self.diff(run_id, toFrameNo=after_one)

        self.call("rewindRun", {"runId": run_id, "frameNo": after_one, "confirm": True})
        held = self.diff(run_id)
        self.assertEqual(held["toFrameNo"], after_one, "the latest frame is now the rewind's target")
        self.assertEqual(held, up_to_one)
        self.refuse("runs.diff", {"runId": run_id, "toFrameNo": latest}, "FrameOutOfRange")

        self.call("resumeRun", {"runId": run_id})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        again = self.diff(run_id)
        self.assertEqual(again["toFrameNo"], self.get(run_id)["frameNo"])
        self.assertEqual(shape(again), shape(whole), "the same files as the first time")
        self.assertEqual(again["commit"], self.call("getNodeDiff", {"runId": run_id, "nodeId": "three"})["commit"])

    def test_gated_run_while_waiting(self):
        run_id = "gated-1"
        self.launch("gated", runId=run_id)
        self.wait_run(run_id, ("waiting-approval",))
        # nothing ran yet: every frame is before the first commit
        d = self.diff(run_id)
        self.assertEqual((d["fromFrameNo"], d["baseCommit"], d["commit"], d["files"]), (0, None, None, []))
        self.call("submitApproval", {"runId": run_id, "nodeId": "hold", "decision": {"approved": True}})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(files_of(self.diff(run_id)), [("a.txt", "added", False, 4, 0),
                                                        ("c.txt", "added", False, 2, 0),
                                                        ("d.bin", "added", True, 0, 0)])


if __name__ == "__main__":
    harness.main()
