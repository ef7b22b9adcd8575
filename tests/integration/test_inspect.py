"""The inspection methods through the real binary: frames.list, frames.get,
attempts.list, attempts.get, getDevToolsSnapshot, runs.rerun and approve
(once only utility-scope names that answered MethodNotFound).

Each method's success shape (checked against the contract's payload schema
as well as by value), every error it declares that a client can provoke
(RunNotFound, NodeNotFound, IterationNotFound, FrameOutOfRange,
PayloadTooLarge, InvalidInput, AlreadyDecided, Forbidden for a token without
the scope, InvalidRequest for bad params), over HTTP and over the WebSocket.
getDevToolsSnapshot is compared with the snapshot streamDevTools sends.

Every wait is bounded polling (getRun every 50 ms, up to WAIT_S)."""
import asyncio
import datetime
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_engine import approval, par, schema_errors, seq, task  # noqa: E402
from test_ws import Client, run  # noqa: E402

import yaml  # noqa: E402

WAIT_S = 20.0
RUN_ID_RE = r"^run_[0-9a-f]{32}$"
TERMINAL = ("finished", "failed", "cancelled")
METHODS = ("frames.list", "frames.get", "attempts.list", "attempts.get", "getDevToolsSnapshot",
           "runs.rerun", "approve")

OP = "op-token"
TOKENS = {
    "op-token": '{ role: operator, scopes: ["*"], userId: "user:op" }',
    "read-token": '{ role: viewer, scopes: ["run:read"], userId: "user:viewer" }',
    "write-token": '{ role: writer, scopes: ["run:write"], userId: "user:writer" }',
    "approver-token": '{ role: approver, scopes: ["approval:submit"], userId: "user:approver" }',
    "obs-token": '{ role: obs, scopes: ["observability:read"], userId: "user:obs" }',
    "none-token": '{ role: nobody, scopes: [] }',
}
SCOPES = {"frames.list": "run:read", "frames.get": "run:read", "attempts.list": "run:read",
          "attempts.get": "run:read", "getDevToolsSnapshot": "observability:read",
          "runs.rerun": "run:write", "approve": "approval:submit"}

# Fails its first attempt (exit 3, a line on stderr), succeeds the second.
FLAKY = ("if [ -e tried ]; then echo hello; echo '{\"attempt\":2}'; "
         "else touch tried; echo 'first attempt fails' >&2; exit 3; fi")
WORKFLOWS = {
    "flaky": task("flaky", run=FLAKY, retries=1),
    "gate": seq(task("build", output={"built": True}), approval("gate", title="Ship it?"),
                task("after", output={"shipped": True})),
    "gate_schema": approval("gate", decisionSchema={"type": "object", "required": ["ticket"]}),
    "chatty": task("chatty", run="head -c 100 /dev/zero | tr '\\0' x; echo; echo '{}'"),
}


def config(workflows, extra=""):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in workflows)
    files = {"wf/%s.yaml" % k: yaml.safe_dump({"name": k, "root": root}, sort_keys=False)
             for k, root in workflows.items()}
    return text, files


def node_ids(node, out=None):
    """{Anvil node id (the workflow root: None): numeric id} of a DevTools tree."""
    out = {} if out is None else out
    out[node["props"].get("id")] = node["id"]
    for c in node["children"]:
        node_ids(c, out)
    return out


def payload_schema(method):
    """The payload schema of `method`'s 200 response in openapi.yaml."""
    ok = harness.contract()["paths"]["/v1/rpc/" + method]["post"]["responses"]["200"]
    wrapper = ok["content"]["application/json"]["schema"]["allOf"][1]
    return wrapper["properties"]["payload"]


class InspectCase(harness.ServerTestCase):
    def call(self, method, params, token=OP):
        """A successful call over HTTP; its payload must match the contract."""
        status, _, doc = self.server.rpc(method, params, token=token)
        payload = self.assertOk(status, doc)
        self.assertEqual(schema_errors(payload_schema(method), payload), [],
                         "%s payload does not match the contract: %r" % (method, payload))
        return payload

    def refuse(self, method, params, code, token=OP, message=None, path=None):
        status, _, doc = self.server.rpc(method, params, token=token)
        err = self.assertError(status, doc, code, message=message, path=path)
        self.assertIn(code, harness.contract()["paths"]["/v1/rpc/" + method]["post"]["x-smithers-errors"],
                      "%s answered %s, which its operation does not declare" % (method, code))
        return err

    def launch(self, workflow, input=None, token=OP, **options):
        params = {"workflow": workflow}
        if input is not None:
            params["input"] = input
        if options:
            params["options"] = options
        status, _, doc = self.server.rpc("launchRun", params, token=token)
        return self.assertOk(status, doc)["runId"]

    def get(self, run_id):
        status, _, doc = self.server.rpc("getRun", {"runId": run_id}, token=OP)
        return self.assertOk(status, doc)

    def wait_run(self, run_id, statuses=TERMINAL):
        import time
        deadline = time.monotonic() + WAIT_S
        while True:
            v = self.get(run_id)
            if v["status"] in statuses:
                return v
            if time.monotonic() > deadline:
                self.fail("run %s did not reach %s: %s" % (run_id, statuses, json.dumps(v)))
            time.sleep(0.05)

    def db(self, sql, *args):
        """Read the server's database from outside (what the API does not show)."""
        con = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


class Inspect(InspectCase):
    CONFIG, FILES = config(WORKFLOWS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One finished run with a retried task, one finished gate run (an
        # instance only to borrow the helpers).
        self = cls("test_names_are_contract_methods")
        cls.flaky = self.launch("flaky")
        self.wait_run(cls.flaky)
        cls.gated = self.launch("gate")
        self.wait_run(cls.gated, ("waiting-approval",))
        self.call("submitApproval", {"runId": cls.gated, "nodeId": "gate", "decision": {"approved": True}})
        self.wait_run(cls.gated)

    # -- the names are methods now --------------------------------------------

    def test_names_are_contract_methods(self):
        utility = harness.contract()["x-smithers-utility-scopes"]
        for name in METHODS:
            with self.subTest(method=name):
                op = harness.contract()["paths"]["/v1/rpc/" + name]["post"]
                self.assertEqual(op["x-smithers-method"], name)
                self.assertEqual(op["x-smithers-required-scope"], SCOPES[name])
                self.assertEqual(op["x-smithers-transport"], "http+websocket")
                self.assertNotIn(name, utility)
                for form in ("path", "frame"):
                    if form == "path":
                        status, _, doc = self.server.rpc(name, {"runId": "nope"}, token=OP)
                    else:
                        status, _, doc = self.server.rpc_frame(
                            {"method": name, "params": {"runId": "nope"}}, token=OP)
                    self.assertFrame(doc)
                    self.assertFalse(doc["ok"])
                    self.assertNotEqual(doc["error"]["code"], "MethodNotFound", doc)
        # runs.diff became a method too (test_run_diff.py); no name is both
        self.assertNotIn("runs.diff", utility)
        self.assertEqual(set(utility), {"config.*", "*"})

    # -- frames.list ------------------------------------------------------------

    def test_frames_list(self):
        latest = self.get(self.gated)["frameNo"]
        self.assertGreater(latest, 3)
        p = self.call("frames.list", {"runId": self.gated, "limit": 1000})
        self.assertEqual(set(p), {"runId", "latestFrameNo", "frames"})
        self.assertEqual((p["runId"], p["latestFrameNo"]), (self.gated, latest))
        self.assertEqual([f["frameNo"] for f in p["frames"]], list(range(1, latest + 1)))
        times = [f["createdAtMs"] for f in p["frames"]]
        self.assertEqual(times, sorted(times))
        for f in p["frames"]:
            self.assertEqual(set(f), {"frameNo", "createdAtMs"})
        # the default limit (100) covers this short run
        self.assertEqual(self.call("frames.list", {"runId": self.gated}), p)

    def test_frames_list_pages(self):
        latest = self.get(self.gated)["frameNo"]
        got, after = [], 0
        while True:
            p = self.call("frames.list", {"runId": self.gated, "afterFrameNo": after, "limit": 2})
            self.assertLessEqual(len(p["frames"]), 2)
            if not p["frames"]:
                break
            got += [f["frameNo"] for f in p["frames"]]
            after = p["frames"][-1]["frameNo"]
        self.assertEqual(got, list(range(1, latest + 1)))
        p = self.call("frames.list", {"runId": self.gated, "afterFrameNo": latest + 5})
        self.assertEqual((p["frames"], p["latestFrameNo"]), ([], latest))

    def test_frames_list_errors(self):
        self.refuse("frames.list", {"runId": "no-such-run"}, "RunNotFound", message="Run not found: no-such-run")
        for bad, path in [({}, "$.params.runId"), ({"runId": 5}, "$.params.runId"),
                          ({"runId": "r", "limit": 0}, "$.params.limit"),
                          ({"runId": "r", "limit": 1001}, "$.params.limit"),
                          ({"runId": "r", "afterFrameNo": -1}, "$.params.afterFrameNo"),
                          ({"runId": "r", "afterFrameNo": 1.5}, "$.params.afterFrameNo"),
                          ({"runId": "r", "tree": True}, "$.params.tree")]:
            with self.subTest(params=bad):
                self.refuse("frames.list", bad, "InvalidRequest", path=path)

    # -- frames.get --------------------------------------------------------------

    def test_frames_get(self):
        view = self.get(self.gated)
        latest = view["frameNo"]
        first = self.call("frames.get", {"runId": self.gated, "frameNo": 1})
        self.assertEqual(set(first), {"runId", "frameNo", "createdAtMs", "tree"})
        self.assertEqual((first["runId"], first["frameNo"]), (self.gated, 1))
        tree = first["tree"]
        self.assertEqual(set(tree), {"frameNo", "runId", "status", "root"})
        self.assertEqual((tree["frameNo"], tree["runId"], tree["status"]), (1, self.gated, "running"))
        self.assertEqual(tree["root"]["kind"], "sequence")
        self.assertEqual([c["id"] for c in tree["root"]["children"]], ["build", "gate", "after"])
        self.assertTrue(all(c["state"] == "pending" for c in tree["root"]["children"]))
        listed = self.call("frames.list", {"runId": self.gated})["frames"]
        self.assertEqual(first["createdAtMs"], listed[0]["createdAtMs"])
        # the latest frame is the run as getRun shows it
        last = self.call("frames.get", {"runId": self.gated, "frameNo": latest})["tree"]
        self.assertEqual(last["status"], view["status"])
        states = {n["nodeId"]: n["state"] for n in view["nodes"]}
        self.assertEqual({c["id"]: c["state"] for c in last["root"]["children"]},
                         {k: v for k, v in states.items() if k != last["root"]["id"]})
        self.assertEqual(last["root"]["children"][0]["attempts"], 1, "task nodes carry attempts")

    def test_frames_get_errors(self):
        latest = self.get(self.gated)["frameNo"]
        for no in (0, latest + 1, 10 ** 9):
            with self.subTest(frameNo=no):
                err = self.refuse("frames.get", {"runId": self.gated, "frameNo": no}, "FrameOutOfRange",
                                  message="Run %s has no frame %d (frames 1-%d)" % (self.gated, no, latest))
                self.assertEqual((err["frameNo"], err["latestFrameNo"]), (no, latest))
        self.refuse("frames.get", {"runId": "no-such-run", "frameNo": 1}, "RunNotFound")
        for bad, path in [({"runId": self.gated}, "$.params.frameNo"),
                          ({"frameNo": 1}, "$.params.runId"),
                          ({"runId": self.gated, "frameNo": -1}, "$.params.frameNo"),
                          ({"runId": self.gated, "frameNo": "1"}, "$.params.frameNo")]:
            with self.subTest(params=bad):
                self.refuse("frames.get", bad, "InvalidRequest", path=path)

    # -- getDevToolsSnapshot --------------------------------------------------------

    def assertSnapshotOfFrame(self, snap, run_id, frame_no, defined=True):
        """snap is the recorded frame frame_no of run_id in the upstream's
        DevTools shape: every recorded node under the workflow root, its
        state in Anvil's words (props) and the upstream's (task)."""
        rec = self.call("frames.get", {"runId": run_id, "frameNo": frame_no})
        tree = rec["tree"]
        self.assertEqual(list(snap), ["version", "runId", "frameNo", "seq", "status", "runState", "root"])
        self.assertEqual({k: snap[k] for k in ("version", "runId", "frameNo", "seq", "status")},
                         {"version": 1, "runId": run_id, "frameNo": frame_no, "seq": frame_no,
                          "status": tree["status"]})
        at = datetime.datetime.fromtimestamp(rec["createdAtMs"] / 1000, datetime.timezone.utc)
        self.assertEqual(snap["runState"], {
            "runId": run_id, "state": {"finished": "succeeded"}.get(tree["status"], tree["status"]),
            "computedAt": at.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (rec["createdAtMs"] % 1000)})
        root = snap["root"]
        workflow = self.get(run_id)["workflowKey"]
        self.assertEqual({k: root[k] for k in ("type", "name", "props", "depth")},
                         {"type": "workflow", "name": workflow, "props": {"name": workflow}, "depth": 0})
        self.assertNotIn("task", root)
        self.assertEqual(len(root["children"]), 1)
        defs = {}

        def walk_defs(node):
            for k in ("sequence", "parallel"):
                if k in node:
                    for c in node[k]:
                        walk_defs(c)
            for k in ("task", "approval", "signal"):
                if k in node:
                    defs[node[k]["id"]] = node[k]
        walk_defs(WORKFLOWS.get(workflow, {}))

        def walk(rec_node, node, depth):
            kind, state = rec_node["kind"], rec_node["state"]
            self.assertEqual(node["depth"], depth)
            self.assertEqual(node["props"]["id"], rec_node["id"])
            self.assertEqual(node["props"]["state"], state)
            self.assertEqual(node["props"].get("error"), rec_node.get("error"))
            want_type = {"signal": "wait-for-event"}.get(kind, kind)
            self.assertEqual((node["type"], node["name"]), (want_type, want_type))
            if kind in ("sequence", "parallel"):
                self.assertNotIn("task", node)
            else:
                task = node["task"]
                self.assertEqual((task["nodeId"], task["iteration"]), (rec_node["id"], 0))
                self.assertEqual(task["kind"], {"task": "compute", "approval": "approval"}.get(kind, "static"))
                want_state = {"running": "in-progress"}.get(state, state)
                if state == "waiting":
                    want_state = {"approval": "waiting-approval", "signal": "waiting-event"}[kind]
                self.assertEqual(task["state"], want_state)
                self.assertEqual(task.get("attempt"), rec_node.get("attempts") or None)
                d = defs.get(rec_node["id"], {})
                if kind == "task" and defined:
                    self.assertEqual(task["maxAttempts"], d.get("retries", 0) + 1)
                    self.assertEqual(node["props"]["static"], "run" not in d)
                elif kind == "task":
                    self.assertNotIn("maxAttempts", task)
                    self.assertNotIn("static", node["props"])
                if kind == "approval" and defined:
                    self.assertEqual(node["props"]["title"], d.get("title", rec_node["id"]))
            kids = rec_node.get("children", [])
            self.assertEqual(len(node["children"]), len(kids))
            for r, n in zip(kids, node["children"]):
                walk(r, n, depth + 1)
        walk(tree["root"], root["children"][0], 1)

    def test_devtools_snapshot(self):
        latest = self.get(self.gated)["frameNo"]
        p = self.call("getDevToolsSnapshot", {"runId": self.gated})
        self.assertSnapshotOfFrame(p, self.gated, latest)
        self.assertEqual(p["runState"]["state"], "succeeded")
        p1 = self.call("getDevToolsSnapshot", {"runId": self.gated, "frameNo": 1}, token="obs-token")
        self.assertSnapshotOfFrame(p1, self.gated, 1)
        self.assertEqual((p1["status"], p1["runState"]["state"]), ("running", "running"))
        # the same numbers for the same nodes in every frame
        self.assertEqual(node_ids(p1["root"]), node_ids(p["root"]))
        self.assertEqual(len(set(node_ids(p["root"]).values())), 5)
        # a retried task: its latest attempt and its budget
        f = self.call("getDevToolsSnapshot", {"runId": self.flaky})
        self.assertSnapshotOfFrame(f, self.flaky, self.get(self.flaky)["frameNo"])
        task = f["root"]["children"][0]["task"]
        self.assertEqual((task["state"], task["attempt"], task["maxAttempts"]), ("finished", 2, 2))

    def test_devtools_snapshot_errors(self):
        latest = self.get(self.gated)["frameNo"]
        err = self.refuse("getDevToolsSnapshot", {"runId": self.gated, "frameNo": latest + 1},
                          "FrameOutOfRange")
        self.assertEqual(err["latestFrameNo"], latest)
        self.refuse("getDevToolsSnapshot", {"runId": self.gated, "frameNo": 0}, "FrameOutOfRange")
        self.refuse("getDevToolsSnapshot", {"runId": "no-such-run"}, "RunNotFound")
        self.refuse("getDevToolsSnapshot", {"runId": self.gated, "frameNo": -2}, "InvalidRequest",
                    path="$.params.frameNo")
        self.refuse("getDevToolsSnapshot", {"runId": self.gated, "afterSeq": 1}, "InvalidRequest",
                    path="$.params.afterSeq")

    # -- attempts.list ------------------------------------------------------------

    def test_attempts_list(self):
        p = self.call("attempts.list", {"runId": self.flaky})
        self.assertEqual(set(p), {"runId", "attempts", "truncated"})
        self.assertEqual((p["runId"], p["truncated"]), (self.flaky, False))
        a1, a2 = p["attempts"]
        for a in (a1, a2):
            self.assertEqual(set(a), {"nodeId", "iteration", "attempt", "state", "startedAtMs",
                                      "finishedAtMs", "exitCode", "error"})
            self.assertEqual((a["nodeId"], a["iteration"]), ("flaky", 0))
            self.assertLessEqual(a["startedAtMs"], a["finishedAtMs"])
        self.assertEqual((a1["attempt"], a1["state"], a1["exitCode"], a1["error"]),
                         (1, "failed", 3, "exited with status 3"))
        self.assertEqual((a2["attempt"], a2["state"], a2["exitCode"], a2["error"]), (2, "succeeded", 0, None))
        self.assertLessEqual(a1["startedAtMs"], a2["startedAtMs"])
        # filters, and the bound with its flag
        self.assertEqual(self.call("attempts.list", {"runId": self.flaky, "nodeId": "flaky"}), p)
        self.assertEqual(self.call("attempts.list", {"runId": self.flaky, "nodeId": "flaky", "iteration": 0}), p)
        self.assertEqual(self.call("attempts.list", {"runId": self.flaky, "iteration": 0}), p)
        self.assertEqual(self.call("attempts.list", {"runId": self.flaky, "iteration": 3})["attempts"], [])
        one = self.call("attempts.list", {"runId": self.flaky, "limit": 1})
        self.assertEqual((one["attempts"], one["truncated"]), ([a1], True))
        self.assertEqual(self.call("attempts.list", {"runId": self.flaky, "limit": 2}), p)

    def test_attempts_list_static_tasks_and_other_nodes(self):
        p = self.call("attempts.list", {"runId": self.gated})
        self.assertEqual([(a["nodeId"], a["attempt"], a["state"]) for a in p["attempts"]],
                         [("build", 1, "succeeded"), ("after", 1, "succeeded")])
        for a in p["attempts"]:
            self.assertIsNone(a["exitCode"], "a static task runs no process")
            self.assertIsInstance(a["finishedAtMs"], int)
        # an approval node exists but has no attempts
        self.assertEqual(self.call("attempts.list", {"runId": self.gated, "nodeId": "gate"})["attempts"], [])

    def test_attempts_list_errors(self):
        self.refuse("attempts.list", {"runId": "no-such-run"}, "RunNotFound")
        err = self.refuse("attempts.list", {"runId": self.flaky, "nodeId": "nope"}, "NodeNotFound",
                          message="Run %s has no node nope" % self.flaky)
        self.assertEqual(err["nodeId"], "nope")
        err = self.refuse("attempts.list", {"runId": self.flaky, "nodeId": "flaky", "iteration": 1},
                          "IterationNotFound", message="Node flaky has no iteration 1")
        self.assertEqual((err["nodeId"], err["iteration"]), ("flaky", 1))
        for bad, path in [({"runId": self.flaky, "iteration": -1}, "$.params.iteration"),
                          ({"runId": self.flaky, "limit": 0}, "$.params.limit"),
                          ({"runId": self.flaky, "limit": 1001}, "$.params.limit"),
                          ({"runId": self.flaky, "nodeId": 7}, "$.params.nodeId"),
                          ({"runId": self.flaky, "attempt": 1}, "$.params.attempt")]:
            with self.subTest(params=bad):
                self.refuse("attempts.list", bad, "InvalidRequest", path=path)

    # -- attempts.get ---------------------------------------------------------------

    def test_attempts_get(self):
        listed = self.call("attempts.list", {"runId": self.flaky})["attempts"]
        a1 = self.call("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "attempt": 1})
        self.assertEqual(set(a1), {"runId", "nodeId", "iteration", "attempt", "state", "startedAtMs",
                                   "finishedAtMs", "exitCode", "error", "stdout", "stderr"})
        self.assertEqual({k: v for k, v in a1.items() if k not in ("runId", "stdout", "stderr")}, listed[0])
        self.assertEqual((a1["runId"], a1["stdout"], a1["stderr"]), (self.flaky, "", "first attempt fails\n"))
        a2 = self.call("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "iteration": 0, "attempt": 2})
        self.assertEqual((a2["state"], a2["stdout"], a2["stderr"]), ("succeeded", "hello\n{\"attempt\":2}\n", ""))
        # a static task captured nothing
        s = self.call("attempts.get", {"runId": self.gated, "nodeId": "build", "attempt": 1})
        self.assertEqual((s["state"], s["stdout"], s["stderr"], s["exitCode"]), ("succeeded", None, None, None))

    def test_attempts_get_errors(self):
        self.refuse("attempts.get", {"runId": "no-such-run", "nodeId": "flaky", "attempt": 1}, "RunNotFound")
        self.refuse("attempts.get", {"runId": self.flaky, "nodeId": "nope", "attempt": 1}, "NodeNotFound")
        self.refuse("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "iteration": 2, "attempt": 1},
                    "IterationNotFound", message="Node flaky has no iteration 2")
        err = self.refuse("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "attempt": 3},
                          "IterationNotFound", message="Attempt 3 of node flaky iteration 0 does not exist")
        self.assertEqual((err["nodeId"], err["iteration"], err["attempt"]), ("flaky", 0, 3))
        self.refuse("attempts.get", {"runId": self.gated, "nodeId": "gate", "attempt": 1}, "IterationNotFound")
        for bad, path in [({"runId": self.flaky, "nodeId": "flaky"}, "$.params.attempt"),
                          ({"runId": self.flaky, "attempt": 1}, "$.params.nodeId"),
                          ({"runId": self.flaky, "nodeId": "flaky", "attempt": 0}, "$.params.attempt"),
                          ({"runId": self.flaky, "nodeId": "flaky", "attempt": 1, "iteration": -1},
                           "$.params.iteration")]:
            with self.subTest(params=bad):
                self.refuse("attempts.get", bad, "InvalidRequest", path=path)

    # -- runs.rerun -------------------------------------------------------------------

    def test_rerun(self):
        orig = self.launch("chatty", {"a": [1, "b"]}, runId="rerun-orig", idempotencyKey="k-rerun",
                           maxOutputBytes=16, maxConcurrency=2, toolTimeoutMs=60000)
        self.wait_run(orig)
        p = self.call("runs.rerun", {"runId": orig}, token="write-token")
        self.assertEqual(set(p), {"runId", "workflow", "system"})
        self.assertIs(p["system"], False)
        self.assertRegex(p["runId"], RUN_ID_RE)
        self.assertEqual(p["workflow"], "chatty")
        new = p["runId"]
        v = self.wait_run(new)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(v["input"], {"a": [1, "b"]})
        # launched by the caller, not by the original run's owner
        self.assertEqual((v["ownerId"], v["triggeredBy"], v["role"], v["scopes"]),
                         ("user:writer", "user:writer", "writer", ["run:write"]))
        self.assertEqual(self.get(orig)["ownerId"], "user:op")
        # the same options: maxOutputBytes shows in the captured output
        out = self.call("attempts.get", {"runId": new, "nodeId": "chatty", "attempt": 1})["stdout"]
        self.assertEqual(out, "x" * 16)
        (o_opts, o_key), = self.db("SELECT options_json, idempotency_key FROM runs WHERE run_id = ?", orig)
        (n_opts, n_key), = self.db("SELECT options_json, idempotency_key FROM runs WHERE run_id = ?", new)
        self.assertEqual(json.loads(n_opts), json.loads(o_opts))
        self.assertEqual(json.loads(n_opts), {"maxConcurrency": 2, "toolTimeoutMs": 60000, "maxOutputBytes": 16})
        self.assertEqual((o_key, n_key), ("k-rerun", None))
        # every rerun is a new run
        again = self.call("runs.rerun", {"runId": orig}, token="write-token")["runId"]
        self.assertNotIn(again, (orig, new))
        self.wait_run(again)

    def test_rerun_errors(self):
        self.refuse("runs.rerun", {"runId": "no-such-run"}, "RunNotFound", message="Run not found: no-such-run")
        self.refuse("runs.rerun", {}, "InvalidRequest", path="$.params.runId")
        self.refuse("runs.rerun", {"runId": self.flaky, "options": {}}, "InvalidRequest", path="$.params.options")
        self.refuse("runs.rerun", {"runId": self.flaky}, "Forbidden", token="read-token")

    # -- approve ------------------------------------------------------------------------

    def test_approve(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, ("waiting-approval",))
        p = self.call("approve", {"runId": run_id, "nodeId": "gate", "note": "lgtm"}, token="approver-token")
        self.assertEqual(p, {"runId": run_id, "nodeId": "gate", "iteration": 0, "approved": True})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.db("SELECT status, decided_by, note FROM approvals WHERE run_id = ?", run_id),
                         [("approved", "user:approver", "lgtm")])
        # exactly submitApproval's answers from here on
        self.refuse("approve", {"runId": run_id, "nodeId": "gate"}, "AlreadyDecided")
        status, _, sub = self.server.rpc("submitApproval", {"runId": run_id, "nodeId": "gate",
                                                            "decision": {"approved": True}}, token=OP)
        status2, _, app = self.server.rpc("approve", {"runId": run_id, "nodeId": "gate"}, token=OP)
        self.assertEqual((status, sub["error"]), (status2, app["error"]))

    def test_approve_without_note(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, ("waiting-approval",))
        self.call("approve", {"runId": run_id, "nodeId": "gate", "iteration": 0})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.db("SELECT note FROM approvals WHERE run_id = ?", run_id), [(None,)])

    def test_approve_errors(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, ("waiting-approval",))
        self.refuse("approve", {"runId": "no-such-run", "nodeId": "gate"}, "RunNotFound")
        self.refuse("approve", {"runId": run_id, "nodeId": "nope"}, "NodeNotFound")
        self.refuse("approve", {"runId": run_id, "nodeId": "build"}, "NodeNotFound")
        self.refuse("approve", {"runId": run_id, "nodeId": "gate", "iteration": 1}, "IterationNotFound")
        for bad, path in [({"runId": run_id}, "$.params.nodeId"),
                          ({"runId": run_id, "nodeId": "gate", "note": 5}, "$.params.note"),
                          ({"runId": run_id, "nodeId": "gate", "approved": False}, "$.params.approved"),
                          ({"runId": run_id, "nodeId": "gate", "decision": {"approved": True}},
                           "$.params.decision")]:
            with self.subTest(params=bad):
                self.refuse("approve", bad, "InvalidRequest", path=path)
        self.assertEqual(self.get(run_id)["status"], "waiting-approval", "nothing refused decided it")
        schema_run = self.launch("gate_schema")
        self.wait_run(schema_run, ("waiting-approval",))
        self.refuse("approve", {"runId": schema_run, "nodeId": "gate"}, "InvalidInput")

    # -- scopes ----------------------------------------------------------------------------

    def test_scopes(self):
        params = {"frames.list": {"runId": self.gated}, "frames.get": {"runId": self.gated, "frameNo": 1},
                  "attempts.list": {"runId": self.gated},
                  "attempts.get": {"runId": self.gated, "nodeId": "build", "attempt": 1},
                  "getDevToolsSnapshot": {"runId": self.gated}, "runs.rerun": {"runId": "no-such-run"},
                  "approve": {"runId": "no-such-run", "nodeId": "gate"}}
        allowed = {"run:read": "read-token", "observability:read": "obs-token", "run:write": "write-token",
                   "approval:submit": "approver-token"}
        for name, scope in SCOPES.items():
            with self.subTest(method=name):
                for token in ("none-token",) + tuple(t for s, t in allowed.items()
                                                     if s != scope and not (s == "run:write" and scope == "run:read")):
                    err = self.refuse(name, params[name], "Forbidden", token=token,
                                      message="Missing required scope %s for %s" % (scope, name))
                    self.assertEqual(err["requiredScope"], scope)
                status, _, doc = self.server.rpc(name, params[name], token=allowed[scope])
                self.assertPassedScope(status, doc, name)
        # run:write implies run:read
        self.call("frames.list", {"runId": self.gated}, token="write-token")

    # -- over the WebSocket ----------------------------------------------------------------

    def test_over_websocket(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, ("waiting-approval",))

        async def go():
            c = await Client.open(self.server.port)
            await c.connect(token=OP)
            out = {}
            for name, params in [("frames.list", {"runId": self.flaky}),
                                 ("frames.get", {"runId": self.flaky, "frameNo": 1}),
                                 ("attempts.list", {"runId": self.flaky}),
                                 ("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "attempt": 1}),
                                 ("getDevToolsSnapshot", {"runId": run_id}),
                                 ("frames.get", {"runId": self.flaky, "frameNo": 999}),
                                 ("attempts.get", {"runId": self.flaky, "nodeId": "flaky", "attempt": 0})]:
                out[(name, json.dumps(params))] = await c.call(name, params)
            # the stream's first event is the snapshot getDevToolsSnapshot answered
            r = await c.call("streamDevTools", {"runId": run_id})
            sid = r["payload"]["streamId"]
            await c.wait_for(lambda: any(e["event"] == "devtools.event" and e["payload"].get("streamId") == sid
                                         for e in c.events))
            first = next(e for e in c.events if e["event"] == "devtools.event")
            approve = await c.call("approve", {"runId": run_id, "nodeId": "gate"})
            # approve subscribes like submitApproval: the run's end arrives
            done = await c.wait_event("run.completed", run_id)
            rerun = await c.call("runs.rerun", {"runId": run_id})
            await c.close()
            return out, first, approve, done, rerun

        out, first, approve, done, rerun = run(go())
        for (name, params), frame in out.items():
            params = json.loads(params)
            with self.subTest(method=name, params=params):
                self.assertEqual(frame["type"], "res")
                if params.get("frameNo") == 999:
                    self.assertFalse(frame["ok"], frame)
                    self.assertEqual(frame["error"]["code"], "FrameOutOfRange")
                elif params.get("attempt") == 0:
                    self.assertFalse(frame["ok"], frame)
                    self.assertEqual((frame["error"]["code"], frame["error"]["path"]),
                                     ("InvalidRequest", "$.params.attempt"))
                else:
                    self.assertTrue(frame["ok"], frame)
                    self.assertEqual(schema_errors(payload_schema(name), frame["payload"]), [])
                    if name != "getDevToolsSnapshot":
                        self.assertEqual(frame["payload"], self.call(name, params), "the same over HTTP")
        snap = out[("getDevToolsSnapshot", json.dumps({"runId": run_id}))]["payload"]
        self.assertEqual(set(first["payload"]), {"streamId", "runId", "event"})
        self.assertEqual(first["payload"]["event"]["kind"], "snapshot")
        self.assertEqual(first["payload"]["event"]["snapshot"], snap)
        self.assertTrue(approve["ok"], approve)
        self.assertEqual(approve["payload"], {"runId": run_id, "nodeId": "gate", "iteration": 0, "approved": True})
        self.assertEqual(done["payload"]["status"], "finished")
        self.assertTrue(rerun["ok"], rerun)
        self.assertRegex(rerun["payload"]["runId"], RUN_ID_RE)
        self.assertEqual(self.wait_run(rerun["payload"]["runId"], ("waiting-approval",))["ownerId"], "user:op")


BIG_TREE = seq(approval("hold"), par(*[task("t%03d" % i, output={"i": i}) for i in range(200)]))
# Its recorded frames fit in 8 KiB; in the DevTools shape its tree does not.
MID_TREE = seq(approval("hold"), par(*[task("t%03d" % i, output={"i": i}) for i in range(60)]))
LOUD = "head -c 10000 /dev/zero | tr '\\0' y; echo; echo '{}'"


class Bounds(InspectCase):
    """maxPayload bounds what one frame, snapshot or attempt answers."""
    CONFIG, FILES = config({"wide": BIG_TREE, "mid": MID_TREE, "loud": task("loud", run=LOUD),
                            "small": task("small", run="echo hi; echo '{}'")}, extra="maxPayload: 8192\n")

    def test_frame_over_max_payload(self):
        run_id = self.launch("wide")
        self.wait_run(run_id, ("waiting-approval",))
        err = self.refuse("frames.get", {"runId": run_id, "frameNo": 1}, "PayloadTooLarge")
        self.assertEqual(err["maxBytes"], 8192)
        self.assertRegex(err["message"], r"^Frame 1 of run %s is \d+ bytes, over the 8192-byte limit "
                                         r"\(maxPayload\)$" % run_id)
        self.refuse("getDevToolsSnapshot", {"runId": run_id}, "PayloadTooLarge")
        # listing does not read the trees
        self.assertEqual(len(self.call("frames.list", {"runId": run_id})["frames"]),
                         self.get(run_id)["frameNo"])

    def test_snapshot_over_max_payload(self):
        run_id = self.launch("mid")
        latest = self.wait_run(run_id, ("waiting-approval",))["frameNo"]
        self.call("frames.get", {"runId": run_id, "frameNo": latest})
        err = self.refuse("getDevToolsSnapshot", {"runId": run_id}, "PayloadTooLarge")
        self.assertEqual(err["maxBytes"], 8192)
        self.assertRegex(err["message"], r"^The DevTools snapshot of frame %d of run %s is \d+ bytes, over the "
                                         r"8192-byte limit \(maxPayload\)$" % (latest, run_id))

    def test_attempt_output_over_max_payload(self):
        run_id = self.launch("loud")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        err = self.refuse("attempts.get", {"runId": run_id, "nodeId": "loud", "attempt": 1}, "PayloadTooLarge",
                          message="The output of attempt 1 of loud is 10004 bytes, over the 8192-byte limit "
                                  "(maxPayload)")
        self.assertEqual(err["maxBytes"], 8192)
        self.assertEqual(len(self.call("attempts.list", {"runId": run_id})["attempts"]), 1)
        small = self.launch("small")
        self.wait_run(small)
        self.assertEqual(self.call("attempts.get", {"runId": small, "nodeId": "small", "attempt": 1})["stdout"],
                         "hi\n{}\n")


class RerunAfterReconfigure(InspectCase):
    """A run whose workflow is no longer registered cannot be rerun."""
    CONFIG, FILES = config({"keep": task("k", output={"k": 1}), "gone": task("g", output={"g": 1})})

    def test_rerun_unregistered_workflow(self):
        kept = self.launch("keep")
        gone = self.launch("gone")
        self.wait_run(gone)
        self.server.stop()
        cfg, _ = config({"keep": task("k", output={"k": 1})})
        with open(self.server.config_path, "w", encoding="utf-8") as f:
            f.write(cfg)
        self.server.start()
        err = self.refuse("runs.rerun", {"runId": gone}, "InvalidInput")
        self.assertIn("gone", err["message"])
        self.assertRegex(self.call("runs.rerun", {"runId": kept})["runId"], RUN_ID_RE)
        # the old run is still there to inspect
        self.assertEqual(self.call("attempts.list", {"runId": gone})["attempts"][0]["nodeId"], "g")
        # and to draw: the same tree, without what only the definition knew
        snap = self.call("getDevToolsSnapshot", {"runId": gone})
        Inspect.assertSnapshotOfFrame(self, snap, gone, self.get(gone)["frameNo"], defined=False)
        self.assertEqual(snap["root"]["name"], "gone")
        g = snap["root"]["children"][0]
        self.assertEqual((g["props"], g["task"]), ({"id": "g", "state": "finished"},
                                                   {"nodeId": "g", "kind": "compute", "iteration": 0,
                                                    "state": "finished", "attempt": 1}))


if __name__ == "__main__":
    harness.main()
