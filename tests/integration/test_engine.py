"""The workflow engine through the real binary: launching, inspecting,
cancelling, resuming and hijacking runs; sequence/parallel ordering,
maxConcurrency, retries, timeouts, output capture, shell quoting, killing
process groups; approvals (allowedScopes, allowedUsers, decisionSchema),
signals (before and after the node waits), getNodeOutput, listRuns /
listApprovals filters, and crash safety (kill -9 and restart on the same
database).

Workflows are written by this file into each server's directory. Every wait
is bounded polling (getRun every 50 ms, up to WAIT_S); no assertion depends
on how long something took. Every successful payload is also checked against
the contract's response schema for its method."""
import json
import sqlite3
import os
import resource
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import UUID_RE  # noqa: E402

import yaml  # noqa: E402  (python3-yaml, like harness.contract())

WAIT_S = 20.0
POLL_S = 0.05
RUN_ID_RE = r"^run_[0-9a-f]{32}$"
TERMINAL = ("finished", "failed", "cancelled")
NODE_STATES = {"pending", "running", "waiting", "finished", "failed", "cancelled", "skipped"}

OP = "op-token"
TOKENS = {
    "op-token": '{ role: operator, scopes: ["*"], userId: "user:op" }',
    "read-token": '{ role: viewer, scopes: ["run:read"], userId: "user:viewer" }',
    "write-token": '{ role: writer, scopes: ["run:write"], userId: "user:writer" }',
    "approver-token": '{ role: approver, scopes: ["run:read", "approval:submit"], userId: "user:approver" }',
    "prod-token": '{ role: approver, scopes: ["approval:submit", "run:admin"], userId: "user:prod" }',
    "alice-token": '{ role: approver, scopes: ["approval:submit"], userId: "user:alice" }',
    "bob-token": '{ role: approver, scopes: ["approval:submit"], userId: "user:bob" }',
}


# ---------------------------------------------------------------------------
# workflow builders (dumped to YAML, so commands need no YAML quoting)
# ---------------------------------------------------------------------------

def task(id, run=None, output=None, **kw):
    t = {"id": id}
    if run is not None:
        t["run"] = run
    if output is not None:
        t["output"] = output
    t.update(kw)
    return {"task": t}


def approval(id, **kw):
    return {"approval": dict(id=id, **kw)}


def signal_node(id, name, **kw):
    return {"signal": dict(id=id, name=name, **kw)}


def seq(*children):
    return {"sequence": list(children)}


def par(*children):
    return {"parallel": list(children)}


def config(workflows, extra=""):
    text = "listen: 127.0.0.1:0\n" + extra + "auth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in workflows)
    files = {"wf/%s.yaml" % k: yaml.safe_dump({"name": k, "root": root}, sort_keys=False)
             for k, root in workflows.items()}
    return text, files


# In `run:` templates `$$` is a literal '$', so the shell's $$ is `$$$$`.
# A task that appends "start/end <node>" around a short sleep.
MARK = 'echo "start $ANVIL_NODE_ID" >> marks.log; sleep 0.2; echo "end $ANVIL_NODE_ID" >> marks.log; echo \'{}\''
# A task that waits (bounded) until all three barrier tasks have started:
# it can only succeed when they really run at the same time.
BARRIER = ('touch "started.$ANVIL_NODE_ID"; i=0; '
           'while [ "$(ls started.* | wc -l)" -lt 3 ]; do i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done; '
           'echo \'{"met":true}\'')
# Counts the tasks running at its start (itself included).
COUNT = ('mkdir -p running; touch "running/$ANVIL_NODE_ID"; ls running | wc -l >> counts.log; sleep 0.2; '
         'rm "running/$ANVIL_NODE_ID"; echo \'{}\'')
FLAKY = ("echo attempt >> attempts.log; if [ -e tried ]; then echo '{\"attempt\":\"second\"}'; "
         "else touch tried; echo 'first attempt fails' >&2; exit 3; fi")
SLEEPER = "echo $$$$ > sh.pid; sleep 30; echo '{}'"
# the task shell, a child sh and the child's background sleep, all recorded
TREE = ("echo $$$$ > sh.pid; sh -c 'echo $$$$ > inner.pid; sleep 60 & echo $! > bg.pid; sleep 60'; "
        "echo '{}'")
SCHEMA = {"fields": [
    {"name": "echoed", "type": "string", "description": "the greeting"},
    {"name": "n", "type": "integer", "optional": True, "nullable": True},
    {"name": "mood", "type": "string", "optional": True, "enum": ["happy", "sad"]}]}
DECISION_SCHEMA = {"type": "object", "required": ["ticket"], "properties": {
    "ticket": {"type": "string"}, "level": {"type": "integer", "enum": [1, 2, 3]}}}

WORKFLOWS = {
    "static": seq(
        task("first", output={"greeting": "hello ${input.name}", "n": "${input.n}"}),
        par(task("p1", output={"p": 1}), task("p2", output={"p": 2})),
        task("second", output={"echoed": "${outputs.first.greeting}", "n": "${outputs.first.n}"},
             outputSchema=SCHEMA)),
    "order": seq(
        task("s1", run='echo s1 >> order.log; '
                       'printf \'{"run":"%s","node":"%s","pwd":"%s"}\\n\' "$ANVIL_RUN_ID" "$ANVIL_NODE_ID" "$PWD"'),
        par(task("p1", run="echo p1 >> order.log; echo '{\"p\":1}'"),
            task("p2", run="echo p2 >> order.log; echo '{\"p\":2}'")),
        task("s2", run="echo s2 >> order.log; cat > stdin.json; echo '{\"last\":true}'")),
    "marks": par(*[task("m%d" % i, run=MARK) for i in range(1, 4)]),
    "barrier": par(*[task("b%d" % i, run=BARRIER) for i in range(1, 4)]),
    "count": par(*[task("c%d" % i, run=COUNT) for i in range(1, 5)]),
    "flaky1": task("flaky", run=FLAKY, retries=1),
    "flaky0": seq(task("flaky", run=FLAKY), task("after", output={"ok": True})),
    "always_fail": task("boom", run="echo boom >&2; exit 7", retries=2),
    "timeout": task("slow", run=SLEEPER, timeoutMs=300),
    "no_timeout": task("slow", run=SLEEPER),
    "own_timeout": task("quick", run="sleep 0.6; echo '{\"slept\":true}'", timeoutMs=20000),
    "output": task("out", run="echo 'to stderr' >&2; echo '{\"first\":1}'; echo 'not json'; "
                              "echo '{\"last\":2}'; echo '[1,2]'; echo '{broken'; echo '{\"a\":1} {\"b\":2}'; "
                              "echo 'trailing text'; echo 'more stderr' >&2"),
    "no_json": task("plain", run="echo hello; echo '[1]'"),
    "big_output": task("big", run="head -c 300000 /dev/zero | tr '\\0' x; echo; "
                                  "head -c 300000 /dev/zero | tr '\\0' y >&2; echo '{\"after\":\"big\"}'"),
    "quote": task("q", run="printf '%s' ${input.evil} > a.txt; printf '%s' \"${input.evil}\" > b.txt; "
                           "printf '%s' 'pre ${input.evil} post' > c.txt; printf '%s' ${input.sub} > d.txt; "
                           "printf '%s' \"${input.sub}\" > e.txt; echo '{\"quoted\":true}'"),
    "tree": seq(task("work", run=TREE), task("after", output={"never": True})),
    "gate": seq(approval("gate", title="Ship it?"), task("after", output={"shipped": True})),
    "gate_scope": approval("gate", title="Prod?", allowedScopes=["run:admin"]),
    "gate_user": approval("gate", title="Alice only", allowedUsers=["user:alice"]),
    "gate_schema": approval("gate", decisionSchema=DECISION_SCHEMA),
    "gate_enum": approval("gate", decisionSchema={"type": "string", "enum": ["ship", "hold"]}),
    "sig": seq(signal_node("review", "github.comment.created", correlationKey="${input.issue}"),
               task("record", output={"recorded": True})),
    "sig_any": signal_node("any", "ping"),
    "gate_then_sig": seq(approval("gate"), signal_node("sig", "go", correlationKey="${input.k}"),
                         task("after", output={"done": True})),
    "sig_then_gate": seq(signal_node("first", "first"), approval("gate2")),
}


# ---------------------------------------------------------------------------
# the contract's response schemas, checked with a small JSON Schema subset
# ---------------------------------------------------------------------------

def schema_errors(schema, value, path="$"):
    s = harness.resolve(schema)
    errs = []
    if "allOf" in s:
        for sub in s["allOf"]:
            errs += schema_errors(sub, value, path)
    for key in ("oneOf", "anyOf"):
        if key in s and all(schema_errors(sub, value, path) for sub in s[key]):
            errs.append("%s: matches no %s branch" % (path, key))
    if "const" in s and value != s["const"]:
        errs.append("%s: %r is not %r" % (path, value, s["const"]))
    if "enum" in s and value not in s["enum"]:
        errs.append("%s: %r not in %r" % (path, value, s["enum"]))
    t = s.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        ok = {"object": isinstance(value, dict), "array": isinstance(value, list),
              "string": isinstance(value, str), "boolean": isinstance(value, bool),
              "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "null": value is None}
        if not any(ok[x] for x in types):
            return errs + ["%s: %r is not %s" % (path, value, t)]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "minimum" in s \
            and value < s["minimum"]:
        errs.append("%s: %r < %r" % (path, value, s["minimum"]))
    if isinstance(value, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in value:
                errs.append("%s: missing %s" % (path, r))
        for k, v in value.items():
            if k in props:
                errs += schema_errors(props[k], v, path + "." + k)
            elif s.get("additionalProperties") is False:
                errs.append("%s: unexpected member %s" % (path, k))
            elif isinstance(s.get("additionalProperties"), dict):
                errs += schema_errors(s["additionalProperties"], v, path + "." + k)
    if isinstance(value, list) and "items" in s:
        for i, v in enumerate(value):
            errs += schema_errors(s["items"], v, "%s[%d]" % (path, i))
    return errs


def response_schema(method):
    return {"$ref": "#/components/schemas/%s%sResponse" % (method[0].upper(), method[1:])}


def pid_gone(pid):
    """The process no longer exists (or is a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


# ---------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------

class EngineCase(harness.ServerTestCase):
    def call(self, method, params=None, token=OP):
        """A successful call; its payload must match the contract."""
        status, _, doc = self.server.rpc(method, params or {}, token=token)
        payload = self.assertOk(status, doc)
        errs = schema_errors(response_schema(method), payload)
        self.assertEqual(errs, [], "%s payload does not match the contract: %r" % (method, payload))
        return payload

    def refuse(self, method, params, code, token=OP, message=None, contains=None):
        status, _, doc = self.server.rpc(method, params, token=token)
        err = self.assertError(status, doc, code, message=message)
        if contains is not None:
            self.assertIn(contains, err["message"])
        return err

    def launch(self, workflow, input=None, token=OP, **options):
        params = {"workflow": workflow}
        if input is not None:
            params["input"] = input
        if options:
            params["options"] = options
        res = self.call("launchRun", params, token=token)
        self.assertEqual(res["workflow"], workflow)
        if "runId" in options:
            self.assertEqual(res["runId"], options["runId"])
        else:
            self.assertRegex(res["runId"], RUN_ID_RE)
        return res["runId"]

    def get(self, run_id):
        view = self.call("getRun", {"runId": run_id})
        self.assertEqual(view["runId"], run_id)
        self.check_view(view)
        return view

    def check_view(self, v):
        """Invariants of every RunStateView."""
        for k in ("runId", "workflowKey", "status", "createdAtMs", "updatedAtMs", "ownerId",
                  "triggeredBy", "role", "scopes", "tokenId", "input", "cancelRequested", "frameNo",
                  "lastSeq", "summary", "nodes"):
            self.assertIn(k, v, "RunStateView lacks %s: %r" % (k, v))
        self.assertIsInstance(v["tokenId"], str, "every caller here has a token")
        self.assertLessEqual(v["createdAtMs"], v["updatedAtMs"])
        if v["status"] in TERMINAL:
            self.assertIsInstance(v.get("finishedAtMs"), int, v)
            self.assertLessEqual(v["createdAtMs"], v["finishedAtMs"])
            self.assertLessEqual(v["finishedAtMs"], v["updatedAtMs"])
        else:
            # null (see test_active_run_has_null_finished_at for "present")
            self.assertIsNone(v.get("finishedAtMs"), v)
        counts = {}
        for n in v["nodes"]:
            self.assertIn(n["state"], NODE_STATES)
            self.assertEqual(n["iteration"], 0)
            counts[n["state"]] = counts.get(n["state"], 0) + 1
            if n["state"] in ("finished", "failed", "cancelled") and n["kind"] == "task" and n["attempts"]:
                self.assertIn("finishedAtMs", n, n)
            if "startedAtMs" in n and "finishedAtMs" in n:
                self.assertLessEqual(n["startedAtMs"], n["finishedAtMs"], n)
        self.assertEqual(v["summary"], counts, "summary counts the nodes by state")
        self.assertEqual(len({n["nodeId"] for n in v["nodes"]}), len(v["nodes"]))

    def node(self, view, node_id):
        for n in view["nodes"]:
            if n["nodeId"] == node_id:
                return n
        self.fail("run %s has no node %s: %r" % (view["runId"], node_id, view["nodes"]))

    def wait_run(self, run_id, statuses=TERMINAL, node=None, node_states=None):
        """Poll getRun until the run's status is in `statuses` (and, if given,
        node `node` is in `node_states`); returns the view."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        deadline = time.monotonic() + WAIT_S
        while True:
            v = self.get(run_id)
            done = v["status"] in statuses
            if done and node is not None:
                done = self.node(v, node)["state"] in node_states
            if done:
                return v
            if time.monotonic() > deadline:
                self.fail("run %s did not reach %s%s within %.0f s: %s"
                          % (run_id, statuses, " / %s %s" % (node, node_states) if node else "", WAIT_S,
                             json.dumps(v)))
            time.sleep(POLL_S)

    def wait_for(self, fn, what):
        deadline = time.monotonic() + WAIT_S
        while True:
            value = fn()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(POLL_S)

    def workspace(self, run_id, name=""):
        return os.path.join(os.path.dirname(self.server.db_path), "workspaces", run_id, name)

    def read_ws(self, run_id, name):
        with open(self.workspace(run_id, name), encoding="utf-8") as f:
            return f.read()

    def wait_pid_file(self, run_id, name):
        def read():
            try:
                text = self.read_ws(run_id, name).strip()
            except FileNotFoundError:
                return None
            return int(text) if text.isdigit() else None
        return self.wait_for(read, "%s in the workspace of %s" % (name, run_id))

    def pids_if_written(self, run_id, name):
        """[pid] if the task got as far as writing it (a 300 ms timeout may
        strike first on a loaded machine), else []."""
        try:
            text = self.read_ws(run_id, name).strip()
        except FileNotFoundError:
            return []
        return [int(text)] if text.isdigit() else []

    def assertPidsDie(self, pids):
        self.wait_for(lambda: all(pid_gone(p) for p in pids),
                      "processes %s to die (alive: %s)" % (pids, [p for p in pids if not pid_gone(p)]))

    def output(self, run_id, node_id, **kw):
        return self.call("getNodeOutput", dict({"runId": run_id, "nodeId": node_id}, **kw))

    def pending_approvals(self, **flt):
        return self.call("listApprovals", {"filter": flt} if flt else {})


class Engine(EngineCase):
    CONFIG, FILES = config(WORKFLOWS)

    # -- launchRun -----------------------------------------------------------

    def test_launch_static_run_finishes_inside_the_call(self):
        run_id = self.launch("static", {"name": "bob", "n": 3})
        v = self.get(run_id)            # no waiting: static tasks finish in launchRun
        self.assertEqual(v["status"], "finished")
        self.assertEqual(v["workflowKey"], "static")
        self.assertEqual(v["input"], {"name": "bob", "n": 3})
        self.assertEqual((v["ownerId"], v["triggeredBy"], v["role"], v["scopes"]),
                         ("user:op", "user:op", "operator", ["*"]))
        self.assertIs(v["cancelRequested"], False)
        self.assertNotIn("error", v)
        self.assertEqual([(n["nodeId"], n["kind"]) for n in v["nodes"]], [
            ("sequence@root", "sequence"), ("first", "task"), ("parallel@sequence@root.1", "parallel"),
            ("p1", "task"), ("p2", "task"), ("second", "task")])
        self.assertEqual(v["summary"], {"finished": 6})
        for n in v["nodes"]:
            self.assertEqual(n["attempts"], 1 if n["kind"] == "task" else 0, n)
        self.assertGreater(v["frameNo"], 0)
        self.assertGreater(v["lastSeq"], 0)
        out = self.output(run_id, "second")
        self.assertEqual(out["row"], {"echoed": "hello bob", "n": 3})

    def test_generated_run_ids_are_unique(self):
        ids = {self.launch("static", {"name": "x", "n": 1}) for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_generated_run_ids_sort_in_launch_order(self):
        """Time first (a version-7 UUID's hex digits), so each new run's rows
        land at the right edge of every run_id index: a later launch sorts
        after an earlier one, within a millisecond too, and the first 12
        digits are the launch's millisecond."""
        ids = []
        for _ in range(20):
            before = int(time.time() * 1000)
            ids.append(self.launch("static", {"name": "x", "n": 1}))   # checks RUN_ID_RE
            after = int(time.time() * 1000)
            self.assertTrue(before - 5 <= int(ids[-1][4:16], 16) <= after + 5, ids[-1])
        self.assertEqual(sorted(ids), ids)

    def test_launch_without_input_means_empty_object(self):
        run_id = self.launch("gate")
        self.assertEqual(self.get(run_id)["input"], {})
        self.call("cancelRun", {"runId": run_id})

    def test_launch_unknown_workflow(self):
        self.refuse("launchRun", {"workflow": "no-such-workflow"}, "InvalidInput", contains="no-such-workflow")
        self.refuse("launchRun", {"workflow": "STATIC"}, "InvalidInput")

    def test_launch_with_run_id(self):
        for rid in ("a", "x" * 64, "abc_def-0123456789", "-", "_"):
            with self.subTest(runId=rid):
                self.launch("static", {"name": "n", "n": 0}, runId=rid)
                self.assertEqual(self.get(rid)["status"], "finished")

    def test_launch_with_bad_run_id(self):
        for rid in ("", "A", "Run1", "x" * 65, "has space", "a/b", "../x", "a.b", "\u00e9", "a\nb", "run:1"):
            with self.subTest(runId=rid):
                self.refuse("launchRun", {"workflow": "static", "options": {"runId": rid}}, "InvalidInput")
                self.refuse("getRun", {"runId": rid}, "RunNotFound", message="Run not found: %s" % rid)

    def test_launch_with_taken_run_id(self):
        self.launch("static", {"name": "n", "n": 0}, runId="taken-id")
        before = self.get("taken-id")
        self.refuse("launchRun", {"workflow": "static", "options": {"runId": "taken-id"}}, "InvalidInput",
                    contains="taken-id")
        self.refuse("launchRun", {"workflow": "gate", "options": {"runId": "taken-id"}}, "InvalidInput")
        after = self.get("taken-id")
        self.assertEqual(after, before, "a refused launch leaves the existing run alone")

    def test_idempotency_key(self):
        a = self.launch("gate", idempotencyKey="idem-1")
        b = self.launch("gate", idempotencyKey="idem-1")
        c = self.launch("gate", {"other": "input"}, idempotencyKey="idem-1")
        self.assertEqual(a, b)
        self.assertEqual(a, c)
        d = self.launch("gate", idempotencyKey="idem-2")
        self.assertNotEqual(a, d)
        mine = [r for r in self.call("listRuns", {"filter": {"limit": 1000}}) if r["runId"] in (a, d)]
        self.assertEqual(len(mine), 2, "one run per key")
        self.assertEqual(len(self.pending_approvals(runId=a)), 1)
        for rid in (a, d):
            self.call("cancelRun", {"runId": rid})

    # -- getRun --------------------------------------------------------------

    def test_get_run_unknown(self):
        self.refuse("getRun", {"runId": "never-launched"}, "RunNotFound", message="Run not found: never-launched")

    def test_active_run_has_null_finished_at(self):
        run_id = self.launch("gate")
        try:
            v = self.wait_run(run_id, "waiting-approval")
            self.assertIn("finishedAtMs", v)
            self.assertIsNone(v["finishedAtMs"])
        finally:
            self.call("cancelRun", {"runId": run_id})

    def test_frames_and_seq_grow(self):
        run_id = self.launch("gate")
        v1 = self.wait_run(run_id, "waiting-approval")
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}})
        v2 = self.wait_run(run_id, "finished")
        self.assertGreater(v2["frameNo"], v1["frameNo"])
        self.assertGreater(v2["lastSeq"], v1["lastSeq"])
        self.assertGreaterEqual(v2["updatedAtMs"], v1["updatedAtMs"])

    # -- listRuns ------------------------------------------------------------

    def test_list_runs_newest_first(self):
        ids = [self.launch("static", {"name": "l", "n": i}) for i in range(3)]
        items = self.call("listRuns", {"filter": {"limit": 1000}})
        listed = [r["runId"] for r in items]
        created = [r["createdAtMs"] for r in items]
        self.assertEqual(created, sorted(created, reverse=True))
        self.assertEqual(set(listed[:3]), set(ids), "the three newest runs come first")
        self.assertEqual(len(set(listed)), len(listed))
        for r in items:
            if r["runId"] in ids:
                self.assertEqual((r["workflowKey"], r["status"]), ("static", "finished"))

    def test_list_runs_newest_first_within_a_millisecond(self):
        # Pipelined launches land in the same millisecond; their ids sort
        # opposite to launch order, so only true launch order passes.
        launched = []
        for batch in range(20):
            ids = ["nf-%02d-%d" % (batch, 9 - i) for i in range(10)]
            data = b"".join(harness.build_request(
                "POST", "/v1/rpc/launchRun", {"workflow": "static", "input": {"name": "t", "n": 0},
                                              "options": {"runId": i}}, {"Authorization": "Bearer " + OP})
                for i in ids)
            with self.server.raw() as c:
                c.send(data)
                for i in ids:
                    self.assertEqual(self.assertOk(*(lambda r: (r.status, r.json()))(c.read_response()))["runId"], i)
            launched += ids
            items = [r for r in self.call("listRuns", {"filter": {"limit": 1000}}) if r["runId"] in launched]
            created = [r["createdAtMs"] for r in items]
            if len(set(created)) < len(created):
                break   # some runs share a millisecond
        else:
            self.skipTest("no two launches shared a millisecond (slow build): nothing to check")
        self.assertEqual([r["runId"] for r in items], list(reversed(launched)))

    def test_list_runs_limit(self):
        for i in range(3):
            self.launch("static", {"name": "lim", "n": i})
        self.assertEqual(len(self.call("listRuns", {"filter": {"limit": 2}})), 2)
        self.assertEqual(len(self.call("listRuns", {"filter": {"limit": 1}})), 1)
        total = len(self.call("listRuns", {"filter": {"limit": 1000}}))
        for i in range(max(0, 51 - total)):
            self.launch("static", {"name": "fill", "n": i})
        self.assertEqual(len(self.call("listRuns", {})), 50, "default limit is 50")
        self.assertEqual(len(self.call("listRuns", {"filter": {}})), 50)
        self.assertGreater(len(self.call("listRuns", {"filter": {"limit": 1000}})), 50)
        err = self.refuse("listRuns", {"filter": {"limit": 1001}}, "InvalidRequest")
        self.assertEqual(err.get("path"), "$.params.filter.limit")

    def test_list_runs_status_filter(self):
        waiting = self.launch("gate")
        done = self.launch("static", {"name": "s", "n": 1})
        items = self.call("listRuns", {"filter": {"status": "waiting-approval", "limit": 1000}})
        self.assertIn(waiting, [r["runId"] for r in items])
        self.assertNotIn(done, [r["runId"] for r in items])
        self.assertTrue(all(r["status"] == "waiting-approval" for r in items), items)
        items = self.call("listRuns", {"filter": {"status": "finished", "limit": 1000}})
        self.assertIn(done, [r["runId"] for r in items])
        self.assertTrue(all(r["status"] == "finished" for r in items), items)
        for status in ("running", "waiting-event", "waiting-timer", "failed", "cancelled", "needs_attention"):
            with self.subTest(status=status):
                items = self.call("listRuns", {"filter": {"status": status}})
                self.assertTrue(all(r["status"] == status for r in items), items)
        for bad in ("bogus", "FINISHED", "", "waiting"):
            with self.subTest(status=bad):
                err = self.refuse("listRuns", {"filter": {"status": bad}}, "InvalidRequest")
                self.assertEqual(err.get("path"), "$.params.filter.status")
        self.call("cancelRun", {"runId": waiting})

    # -- ordering and concurrency ------------------------------------------------

    def test_sequence_and_parallel_order_env_cwd_stdin(self):
        run_id = self.launch("order", {"who": "me", "n": [1, 2]})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        lines = self.read_ws(run_id, "order.log").split()
        self.assertEqual(lines[0], "s1")
        self.assertEqual(sorted(lines[1:3]), ["p1", "p2"])
        self.assertEqual(lines[3:], ["s2"])
        row = self.output(run_id, "s1")["row"]
        self.assertEqual(row["run"], run_id)
        self.assertEqual(row["node"], "s1")
        self.assertEqual(os.path.realpath(row["pwd"]), os.path.realpath(self.workspace(run_id)))
        stdin = json.loads(self.read_ws(run_id, "stdin.json"))
        self.assertEqual(stdin, {"input": {"who": "me", "n": [1, 2]},
                                 "outputs": {"s1": row, "p1": {"p": 1}, "p2": {"p": 2}}})
        self.assertEqual(self.output(run_id, "s2")["row"], {"last": True})
        for n in v["nodes"]:
            self.assertEqual(n["state"], "finished")
        # the sequence's children ran one after the other
        s1, p1, p2, s2 = (self.node(v, x) for x in ("s1", "p1", "p2", "s2"))
        self.assertLessEqual(s1["finishedAtMs"], min(p1["startedAtMs"], p2["startedAtMs"]))
        self.assertLessEqual(max(p1["finishedAtMs"], p2["finishedAtMs"]), s2["startedAtMs"])

    def test_parallel_really_runs_concurrently(self):
        run_id = self.launch("barrier")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", "the three barrier tasks never met: %r" % v)
        for b in ("b1", "b2", "b3"):
            self.assertEqual(self.output(run_id, b)["row"], {"met": True})

    def test_max_concurrency_1_serialises_a_parallel(self):
        run_id = self.launch("marks", maxConcurrency=1)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        lines = self.read_ws(run_id, "marks.log").splitlines()
        self.assertEqual(len(lines), 6, lines)
        pairs = [lines[i:i + 2] for i in range(0, 6, 2)]
        for start, end in pairs:
            self.assertTrue(start.startswith("start "), lines)
            self.assertEqual(end, "end " + start[len("start "):], "tasks overlapped: %r" % lines)
        self.assertEqual(sorted(p[0] for p in pairs), ["start m1", "start m2", "start m3"])

    def test_max_concurrency_2_bounds_overlap(self):
        run_id = self.launch("count", maxConcurrency=2)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        counts = [int(x) for x in self.read_ws(run_id, "counts.log").split()]
        self.assertEqual(len(counts), 4)
        self.assertLessEqual(max(counts), 2, "more than 2 tasks ran at once: %r" % counts)

    # -- retries and timeouts ----------------------------------------------------

    def test_retry_succeeds_on_second_attempt(self):
        run_id = self.launch("flaky1")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        n = self.node(v, "flaky")
        self.assertEqual((n["state"], n["attempts"]), ("finished", 2))
        self.assertNotIn("error", n)
        self.assertEqual(self.read_ws(run_id, "attempts.log").split(), ["attempt", "attempt"])
        self.assertEqual(self.output(run_id, "flaky"), {"status": "produced", "row": {"attempt": "second"},
                                                        "schema": None})

    def test_no_retries_fails_the_run(self):
        run_id = self.launch("flaky0")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        n = self.node(v, "flaky")
        self.assertEqual((n["state"], n["attempts"]), ("failed", 1))
        self.assertIn("3", n["error"])
        # the run says which node failed and why, not just "failed"
        self.assertEqual(v["error"], "node flaky failed: " + n["error"])
        self.assertNotEqual(self.node(v, "after")["state"], "finished")
        out = self.output(run_id, "flaky")
        self.assertEqual((out["status"], out["row"]), ("failed", None))

    def test_retries_exhausted(self):
        run_id = self.launch("always_fail")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        n = self.node(v, "boom")
        self.assertEqual((n["state"], n["attempts"]), ("failed", 3))
        self.assertIn("7", n["error"])
        self.assertEqual(v["error"], "node boom failed: " + n["error"])

    def test_timeout_ms(self):
        run_id = self.launch("timeout")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        n = self.node(v, "slow")
        self.assertEqual(n["state"], "failed")
        self.assertIn("timed out", n["error"])
        self.assertPidsDie(self.pids_if_written(run_id, "sh.pid"))

    def test_tool_timeout_ms(self):
        run_id = self.launch("no_timeout", toolTimeoutMs=300)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        n = self.node(v, "slow")
        self.assertEqual(n["state"], "failed")
        self.assertIn("timed out", n["error"])
        self.assertPidsDie(self.pids_if_written(run_id, "sh.pid"))

    def test_task_timeout_wins_over_tool_timeout(self):
        run_id = self.launch("own_timeout", toolTimeoutMs=300)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", "toolTimeoutMs applies only to tasks without timeoutMs: %r" % v)

    # -- output capture ----------------------------------------------------------

    def test_row_is_the_last_json_object_line(self):
        run_id = self.launch("output")
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.output(run_id, "out")["row"], {"last": 2})

    def test_no_json_line_gives_an_empty_row(self):
        run_id = self.launch("no_json")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.output(run_id, "plain")["row"], {})

    def test_output_over_max_output_bytes(self):
        run_id = self.launch("big_output", maxOutputBytes=1000)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.output(run_id, "big")["row"], {"after": "big"})
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)

    def test_shell_quoting_of_substituted_values(self):
        evil = "'; touch pwned; '"
        sub = "$(touch pwned2) `touch pwned3` \"; touch pwned4; \" \\' $HOME * ${x}"
        run_id = self.launch("quote", {"evil": evil, "sub": sub})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.read_ws(run_id, "a.txt"), evil)
        self.assertEqual(self.read_ws(run_id, "b.txt"), evil)
        self.assertEqual(self.read_ws(run_id, "c.txt"), "pre " + evil + " post")
        self.assertEqual(self.read_ws(run_id, "d.txt"), sub)
        self.assertEqual(self.read_ws(run_id, "e.txt"), sub)
        for root, dirs, files in os.walk(self.server.dir):
            self.assertEqual([f for f in files if f.startswith("pwned")], [], root)

    # -- cancelRun -----------------------------------------------------------

    def test_cancel_kills_the_task_and_its_process_group(self):
        run_id = self.launch("tree")
        bg = self.wait_pid_file(run_id, "bg.pid")
        pids = [self.wait_pid_file(run_id, "sh.pid"), self.wait_pid_file(run_id, "inner.pid"), bg]
        v = self.get(run_id)
        self.assertEqual(v["status"], "running")
        self.assertEqual(self.node(v, "work")["state"], "running")
        self.assertEqual(self.node(v, "work")["attempts"], 1)
        self.assertIn("startedAtMs", self.node(v, "work"))
        res = self.call("cancelRun", {"runId": run_id})
        self.assertEqual(res, {"runId": run_id, "status": "cancelling"})
        v = self.wait_run(run_id, "cancelled")
        self.assertIs(v["cancelRequested"], True)
        self.assertEqual(self.node(v, "work")["state"], "cancelled")
        self.assertNotEqual(self.node(v, "after")["state"], "finished")
        self.assertPidsDie(pids)
        err = self.refuse("cancelRun", {"runId": run_id}, "Busy")
        self.assertIn(run_id, err["message"])
        self.assertEqual(self.get(run_id)["status"], "cancelled")

    def test_cancel_errors(self):
        self.refuse("cancelRun", {"runId": "nope"}, "RunNotFound", message="Run not found: nope")
        done = self.launch("static", {"name": "c", "n": 1})
        self.refuse("cancelRun", {"runId": done}, "Busy")
        failed = self.launch("always_fail")
        self.wait_run(failed, "failed")
        self.refuse("cancelRun", {"runId": failed}, "Busy")
        self.refuse("cancelRun", {"runId": done}, "Forbidden", token="read-token")

    def test_cancel_withdraws_a_waiting_approval(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, "waiting-approval")
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.assertEqual(self.call("cancelRun", {"runId": run_id})["status"], "cancelling")
        v = self.wait_run(run_id, "cancelled")
        self.assertEqual(self.pending_approvals(runId=run_id), [],
                         "listApprovals lists an approval of a cancelled run")
        self.assertNotIn(self.node(v, "gate")["state"], ("waiting", "running"), v)

    def test_cancel_a_waiting_run_then_force_resume(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, "waiting-approval")
        self.assertEqual(self.call("cancelRun", {"runId": run_id})["status"], "cancelling")
        v = self.wait_run(run_id, "cancelled")
        self.assertIs(v["cancelRequested"], True)
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}},
                    "NodeNotFound")
        self.refuse("cancelRun", {"runId": run_id}, "Busy")
        self.assertEqual(self.call("resumeRun", {"runId": run_id}),
                         {"runId": run_id, "status": "already_terminal"})
        self.assertEqual(self.get(run_id)["status"], "cancelled")
        self.assertEqual(self.call("resumeRun", {"runId": run_id, "options": {"force": True}}),
                         {"runId": run_id, "status": "resume_requested"})
        v = self.wait_run(run_id, "waiting-approval")
        self.assertIs(v["cancelRequested"], False)
        self.assertEqual(self.node(v, "gate")["state"], "waiting")
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.node(v, "after")["state"], "finished")

    def test_cancel_a_signal_wait(self):
        run_id = self.launch("sig", {"issue": "c"})
        self.wait_run(run_id, "waiting-event")
        self.call("cancelRun", {"runId": run_id})
        self.wait_run(run_id, "cancelled")
        r = self.call("submitSignal", {"runId": run_id, "signalName": "github.comment.created",
                                       "correlationKey": "c", "payload": {"body": "late"}})
        self.assertFalse(r["delivered"], "a cancelled run takes no signal")
        v = self.get(run_id)
        self.assertEqual(v["status"], "cancelled")
        self.assertNotEqual(self.node(v, "record")["state"], "finished")

    # -- resumeRun / hijackRun -------------------------------------------------

    def test_resume(self):
        self.refuse("resumeRun", {"runId": "nope"}, "RunNotFound", message="Run not found: nope")
        done = self.launch("static", {"name": "r", "n": 1})
        for opts in ({}, {"options": {"force": False}}, {"options": {"force": True}}):
            with self.subTest(opts=opts):
                self.assertEqual(self.call("resumeRun", dict({"runId": done}, **opts)),
                                 {"runId": done, "status": "already_terminal"})
        self.assertEqual(self.get(done)["status"], "finished")
        waiting = self.launch("gate")
        self.wait_run(waiting, "waiting-approval")
        self.assertEqual(self.call("resumeRun", {"runId": waiting}),
                         {"runId": waiting, "status": "resume_requested"})
        self.assertEqual(self.get(waiting)["status"], "waiting-approval")
        self.call("cancelRun", {"runId": waiting})

    def test_force_resume_of_a_failed_run(self):
        run_id = self.launch("flaky0")
        v = self.wait_run(run_id, "failed")
        self.assertEqual(self.node(v, "flaky")["state"], "failed")
        self.assertEqual(self.call("resumeRun", {"runId": run_id}),
                         {"runId": run_id, "status": "already_terminal"})
        self.assertEqual(self.call("resumeRun", {"runId": run_id, "options": {"force": True}}),
                         {"runId": run_id, "status": "resume_requested"})
        v = self.wait_run(run_id, "finished")   # the marker file makes the re-run succeed
        self.assertNotIn("error", v)
        self.assertEqual(self.node(v, "flaky")["state"], "finished")
        self.assertEqual(self.node(v, "after")["state"], "finished")
        self.assertEqual(self.output(run_id, "flaky")["row"], {"attempt": "second"})
        self.assertEqual(self.read_ws(run_id, "attempts.log").split(), ["attempt", "attempt"])

    def test_hijack(self):
        run_id = self.launch("static", {"name": "h", "n": 1})
        a = self.call("hijackRun", {"runId": run_id, "options": {"reason": "takeover"}})
        self.assertEqual((a["runId"], a["status"]), (run_id, "hijack-ready"))
        self.assertRegex(a["sessionId"], UUID_RE)
        b = self.call("hijackRun", {"runId": run_id})
        self.assertNotEqual(a["sessionId"], b["sessionId"])
        self.refuse("hijackRun", {"runId": "nope"}, "RunNotFound", message="Run not found: nope")
        self.refuse("hijackRun", {"runId": run_id}, "Forbidden", token="write-token")

    # -- approvals ---------------------------------------------------------------

    def test_approval_flow(self):
        run_id = self.launch("gate", {"sha": "abc"})
        v = self.wait_run(run_id, "waiting-approval")
        self.assertEqual(self.node(v, "gate")["state"], "waiting")
        self.assertEqual(self.node(v, "after")["state"], "pending")
        pend = self.pending_approvals(runId=run_id)
        self.assertEqual(len(pend), 1)
        a = pend[0]
        self.assertEqual({k: a[k] for k in ("runId", "workflowKey", "nodeId", "iteration", "requestTitle")},
                         {"runId": run_id, "workflowKey": "gate", "nodeId": "gate", "iteration": 0,
                          "requestTitle": "Ship it?"})
        self.assertGreaterEqual(a["requestedAtMs"], v["createdAtMs"])
        self.assertIn(a, self.pending_approvals())
        self.assertIn(a, self.pending_approvals(workflow="gate"))
        self.assertNotIn(a, self.pending_approvals(workflow="gate_user"))
        self.assertEqual(self.pending_approvals(runId="nope"), [])
        self.assertEqual(self.output(run_id, "after"), {"status": "pending", "row": None, "schema": None})
        # read-only callers can see but not decide
        self.assertIn(a, self.call("listApprovals", {}, token="read-token"))
        err = self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}},
                          "Forbidden", token="read-token")
        self.assertEqual(err.get("requiredScope"), "approval:submit")
        res = self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "iteration": 0,
                                           "decision": {"approved": True, "value": {"v": 1}, "note": "go"}},
                        token="approver-token")
        self.assertEqual(res, {"runId": run_id, "nodeId": "gate", "iteration": 0, "approved": True})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.pending_approvals(runId=run_id), [])
        self.assertEqual(self.output(run_id, "gate")["status"], "produced")
        self.assertEqual(self.output(run_id, "after")["row"], {"shipped": True})
        err = self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": False}},
                          "AlreadyDecided", token="approver-token")
        self.assertEqual((err.get("runId"), err.get("nodeId"), err.get("iteration")), (run_id, "gate", 0))
        self.assertIsInstance(err.get("status"), str)
        self.assertEqual(self.get(run_id)["status"], "finished")

    def test_denied_approval_fails_the_run(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, "waiting-approval")
        res = self.call("submitApproval", {"runId": run_id, "nodeId": "gate",
                                           "decision": {"approved": False, "note": "no"}})
        self.assertEqual(res["approved"], False)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        self.assertEqual(self.node(v, "gate")["state"], "failed")
        self.assertTrue(v["error"].startswith("node gate failed: approval denied"), v)
        self.assertNotEqual(self.node(v, "after")["state"], "finished")
        self.assertEqual(self.pending_approvals(runId=run_id), [])
        err = self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}},
                          "AlreadyDecided")
        self.assertEqual((err.get("runId"), err.get("nodeId"), err.get("iteration")), (run_id, "gate", 0))

    def test_submit_approval_errors(self):
        run_id = self.launch("gate")
        self.wait_run(run_id, "waiting-approval")
        ok = {"approved": True}
        self.refuse("submitApproval", {"runId": "nope", "nodeId": "gate", "decision": ok}, "RunNotFound",
                    message="Run not found: nope")
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "nope", "decision": ok}, "NodeNotFound")
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "after", "decision": ok}, "NodeNotFound")
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "sequence@root", "decision": ok}, "NodeNotFound")
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "iteration": 1, "decision": ok},
                    "IterationNotFound")
        # none of those decided anything
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.assertEqual(self.get(run_id)["status"], "waiting-approval")
        self.call("cancelRun", {"runId": run_id})

    def test_approval_not_yet_waiting(self):
        run_id = self.launch("sig_then_gate")
        self.wait_run(run_id, "waiting-event")
        self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate2", "decision": {"approved": True}},
                    "NodeNotFound")
        self.assertEqual(self.pending_approvals(runId=run_id), [])
        self.assertTrue(self.call("submitSignal", {"runId": run_id, "signalName": "first",
                                                   "correlationKey": "any"})["delivered"])
        self.wait_run(run_id, "waiting-approval", node="gate2", node_states=("waiting",))
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate2", "decision": {"approved": True}})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_allowed_scopes(self):
        run_id = self.launch("gate_scope")
        self.wait_run(run_id, "waiting-approval")
        decision = {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}}
        for token in ("approver-token", "alice-token"):
            with self.subTest(token=token):
                err = self.refuse("submitApproval", decision, "Forbidden", token=token)
                self.assertEqual(err.get("requiredScope"), "run:admin")
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.call("submitApproval", decision, token="prod-token")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_allowed_users(self):
        run_id = self.launch("gate_user")
        self.wait_run(run_id, "waiting-approval")
        decision = {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}}
        for token in ("bob-token", "approver-token", "prod-token"):
            with self.subTest(token=token):
                self.refuse("submitApproval", decision, "Forbidden", token=token)
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.call("submitApproval", decision, token="alice-token")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_decision_schema(self):
        run_id = self.launch("gate_schema")
        self.wait_run(run_id, "waiting-approval")
        for value in ("absent", "str", 5, [], {}, {"ticket": 5}, {"ticket": None},
                      {"ticket": "T", "level": "2"}, {"ticket": "T", "level": 2.5}, {"level": 1}):
            with self.subTest(value=value):
                d = {"approved": True}
                if value != "absent":
                    d["value"] = value
                self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": d}, "InvalidInput")
                self.assertEqual(len(self.pending_approvals(runId=run_id)), 1, "a refused decision decides nothing")
        good = {"ticket": "T-1", "level": 2, "extra": [1]}
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate",
                                     "decision": {"approved": True, "value": good}})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.output(run_id, "gate")["row"].get("value"), good)

    def test_decision_schema_enum(self):
        run_id = self.launch("gate_enum")
        self.wait_run(run_id, "waiting-approval")
        for value in ("absent", "SHIP", "", 1, None, ["ship"]):
            with self.subTest(value=value):
                d = {"approved": True}
                if value != "absent":
                    d["value"] = value
                self.refuse("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": d}, "InvalidInput")
        self.assertEqual(len(self.pending_approvals(runId=run_id)), 1)
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True, "value": "hold"}})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_list_approvals_limit(self):
        runs = [self.launch("gate") for _ in range(3)]
        for r in runs:
            self.wait_run(r, "waiting-approval")
        self.assertEqual(len(self.pending_approvals(limit=2)), 2)
        self.assertEqual(len(self.pending_approvals(workflow="gate", limit=1)), 1)
        self.assertGreaterEqual(len(self.pending_approvals(workflow="gate")), 3)
        err = self.refuse("listApprovals", {"filter": {"limit": 1001}}, "InvalidRequest")
        self.assertEqual(err.get("path"), "$.params.filter.limit")
        for r in runs:
            self.call("cancelRun", {"runId": r})

    # -- signals -------------------------------------------------------------

    def test_signal_after_the_node_waits(self):
        run_id = self.launch("sig", {"issue": "issue-42"})
        v = self.wait_run(run_id, "waiting-event")
        self.assertEqual(self.node(v, "review")["state"], "waiting")
        name = "github.comment.created"
        r1 = self.call("submitSignal", {"runId": run_id, "signalName": name, "correlationKey": "issue-41",
                                        "payload": {"body": "wrong issue"}})
        self.assertEqual((r1["seq"], r1["delivered"]), (1, False))
        r2 = self.call("submitSignal", {"runId": run_id, "signalName": "other.name", "correlationKey": "issue-42",
                                        "payload": {"body": "wrong name"}})
        self.assertEqual((r2["seq"], r2["delivered"]), (2, False))
        self.assertEqual(self.get(run_id)["status"], "waiting-event")
        r3 = self.call("submitSignal", {"runId": run_id, "signalName": name, "correlationKey": "issue-42",
                                        "payload": {"body": "ready"}})
        self.assertEqual(r3["runId"], run_id)
        self.assertEqual(r3["signalName"], name)
        self.assertEqual(r3["correlationId"], "issue-42")
        self.assertEqual((r3["seq"], r3["delivered"]), (3, True))
        self.assertIsInstance(r3["receivedAtMs"], int)
        self.assertGreaterEqual(r3["receivedAtMs"], r1["receivedAtMs"])
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.output(run_id, "review")["row"], {"body": "ready"})
        self.assertEqual(self.output(run_id, "record")["row"], {"recorded": True})

    def test_signal_seq_is_per_run(self):
        a = self.launch("sig", {"issue": "a"})
        b = self.launch("sig", {"issue": "b"})
        for run_id in (a, b):
            self.wait_run(run_id, "waiting-event")
        seqs = [self.call("submitSignal", {"runId": r, "signalName": "x", "correlationKey": "k"})["seq"]
                for r in (a, a, b, a, b)]
        self.assertEqual(seqs, [1, 2, 1, 3, 2])
        for r in (a, b):
            self.call("cancelRun", {"runId": r})

    def test_non_object_payload_is_wrapped(self):
        for payload, row in (("hello", {"payload": "hello"}), ([1, 2], {"payload": [1, 2]}),
                             (7, {"payload": 7}), ({"k": "v"}, {"k": "v"})):
            with self.subTest(payload=payload):
                run_id = self.launch("sig_any")
                self.wait_run(run_id, "waiting-event")
                r = self.call("submitSignal", {"runId": run_id, "signalName": "ping", "correlationKey": "whatever",
                                               "payload": payload})
                self.assertTrue(r["delivered"])
                self.assertEqual(self.wait_run(run_id)["status"], "finished")
                self.assertEqual(self.output(run_id, "any")["row"], row)

    def test_signal_before_the_node_waits(self):
        run_id = self.launch("gate_then_sig", {"k": "K1"})
        self.wait_run(run_id, "waiting-approval")
        wrong = self.call("submitSignal", {"runId": run_id, "signalName": "go", "correlationKey": "K2",
                                           "payload": {"msg": "wrong key"}})
        self.assertEqual((wrong["seq"], wrong["delivered"]), (1, False))
        r = self.call("submitSignal", {"runId": run_id, "signalName": "go", "correlationKey": "K1",
                                       "payload": {"msg": "early"}})
        self.assertEqual((r["seq"], r["delivered"]), (2, False))
        v = self.get(run_id)
        self.assertEqual(v["status"], "waiting-approval")
        self.assertEqual(self.node(v, "sig")["state"], "pending")
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", "the stored signal was not taken: %r" % v)
        self.assertEqual(self.output(run_id, "sig")["row"], {"msg": "early"})
        self.assertEqual(self.output(run_id, "after")["row"], {"done": True})

    def test_signal_errors(self):
        self.refuse("submitSignal", {"runId": "nope", "correlationKey": "k"}, "RunNotFound",
                    message="Run not found: nope")
        run_id = self.launch("sig", {"issue": "e"})
        self.refuse("submitSignal", {"runId": run_id, "correlationKey": "e"}, "Forbidden", token="approver-token")
        self.call("cancelRun", {"runId": run_id})

    # -- getNodeOutput ---------------------------------------------------------

    def test_node_output_with_schema(self):
        run_id = self.launch("static", {"name": "ann", "n": None})
        out = self.output(run_id, "second", iteration=0)
        self.assertEqual(out["status"], "produced")
        self.assertEqual(out["row"], {"echoed": "hello ann", "n": None})
        self.assertEqual(out["schema"], {"fields": [
            {"name": "echoed", "type": "string", "optional": False, "nullable": False,
             "description": "the greeting"},
            {"name": "n", "type": "number", "optional": True, "nullable": True},
            {"name": "mood", "type": "string", "optional": True, "nullable": False, "enum": ["happy", "sad"]}]})
        self.assertEqual(self.output(run_id, "first"),
                         {"status": "produced", "row": {"greeting": "hello ann", "n": None}, "schema": None})

    def test_node_output_errors(self):
        run_id = self.launch("static", {"name": "e", "n": 1})
        self.refuse("getNodeOutput", {"runId": "nope", "nodeId": "first"}, "RunNotFound",
                    message="Run not found: nope")
        self.refuse("getNodeOutput", {"runId": run_id, "nodeId": "nope"}, "NodeNotFound")
        self.refuse("getNodeOutput", {"runId": run_id, "nodeId": "first", "iteration": 1}, "IterationNotFound")
        for container in ("sequence@root", "parallel@sequence@root.1"):
            with self.subTest(node=container):
                self.refuse("getNodeOutput", {"runId": run_id, "nodeId": container}, "NodeHasNoOutput")
        self.refuse("getNodeOutput", {"runId": run_id, "nodeId": "first"}, "Forbidden", token="alice-token")

    def test_node_output_pending_and_failed(self):
        run_id = self.launch("gate_then_sig", {"k": "x"})
        self.wait_run(run_id, "waiting-approval")
        for node in ("gate", "sig", "after"):
            with self.subTest(node=node):
                self.assertEqual(self.output(run_id, node), {"status": "pending", "row": None, "schema": None})
        self.call("cancelRun", {"runId": run_id})
        failed = self.launch("always_fail")
        self.wait_run(failed, "failed")
        self.assertEqual(self.output(failed, "boom"), {"status": "failed", "row": None, "schema": None})


class SmallPayload(EngineCase):
    """maxPayload caps what getNodeOutput may return."""
    CONFIG, FILES = config({"echo": task("row", output={"data": "${input.data}"})}, "maxPayload: 2048\n")

    def test_row_over_max_payload(self):
        big = self.launch("echo", {"data": "z" * 5000})
        err = self.refuse("getNodeOutput", {"runId": big, "nodeId": "row"}, "PayloadTooLarge")
        self.assertEqual(err.get("maxBytes"), 2048)
        small = self.launch("echo", {"data": "small"})
        self.assertEqual(self.output(small, "row")["row"], {"data": "small"})


class OpenModeRuns(harness.ServerTestCase):
    """Without auth the run records no owner and no token."""
    CONFIG = "listen: 127.0.0.1:0\nworkflows:\n  static: { file: wf/static.yaml }\n"
    FILES = {"wf/static.yaml": yaml.safe_dump({"root": task("only", output={"ok": True})})}

    def test_owner_and_token_are_null(self):
        status, _, doc = self.server.rpc("launchRun", {"workflow": "static"})
        run_id = self.assertOk(status, doc)["runId"]
        status, _, doc = self.server.rpc("getRun", {"runId": run_id})
        v = self.assertOk(status, doc)
        self.assertEqual(v["status"], "finished")
        self.assertIn("ownerId", v)
        self.assertIsNone(v["ownerId"])
        self.assertIn("tokenId", v)
        self.assertIsNone(v["tokenId"])


# ---------------------------------------------------------------------------
# crash safety
# ---------------------------------------------------------------------------

# Blocks (bounded) until the test creates workspaces/release: the first
# attempt is certainly still running when the server is killed, and the
# re-run after the restart finishes at once.
SLOW_TASK = ("echo attempt >> attempts.log; echo $$$$ > sh.pid; i=0; "
             "while [ ! -e ../release ]; do i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done; "
             "echo '{\"done\":true}'")
CRASH_WORKFLOWS = {
    "slow1": task("slow", run=SLOW_TASK, retries=1),
    "slow0": task("slow", run=SLOW_TASK),
    "gate": seq(approval("gate", title="After the crash?"), task("after", output={"ok": True})),
    "sig": seq(signal_node("wait", "go", correlationKey="${input.k}"), task("after", output={"ok": True})),
    "static": task("only", output={"ok": True}),
}


class EventLog(EngineCase):
    """The durable per-run event log, read straight from the database with
    Python's sqlite3 (the WebSocket that streams it comes later): every kind
    the engine emits, contiguous seqs, runId in every payload, one
    run.completed, and the frames recorded alongside."""
    CONFIG, FILES = config({
        "chatty": task("talk", run="echo out-line; echo err-line >&2; sleep 0.6; echo '{\"ok\":true}'"),
        "gated": seq(approval("gate", title="Go?"), task("after", output={"done": True})),
        "broken": seq(task("fine", output={"ok": True}),
                      par(task("bad", run="echo nope >&2; exit 4"), task("other", output={"x": 1}))),
    }, "heartbeatMs: 100\n")

    def events(self, run_id):
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            rows = db.execute("SELECT seq, event, " + harness.PAYLOAD_SQL + ", state_version FROM events"
                              " WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
            frames = db.execute("SELECT COUNT(*) FROM frames WHERE run_id = ?", (run_id,)).fetchone()[0]
        finally:
            db.close()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows], frames

    def check_log(self, run_id, view):
        log, frames = self.events(run_id)
        self.assertEqual([r[0] for r in log], list(range(1, len(log) + 1)), "seq is 1, 2, ... without gaps")
        self.assertEqual(len(log), view["lastSeq"])
        self.assertEqual(frames, view["frameNo"])
        for seq_no, event, payload, _ in log:
            self.assertEqual(payload.get("runId"), run_id, (seq_no, event, payload))
        versions = [r[3] for r in log]
        self.assertEqual(versions, sorted(set(versions)), "stateVersion strictly increases")
        self.assertEqual([r[1] for r in log].count("run.completed"), 1)
        self.assertEqual(log[-1][1], "run.completed")
        self.assertEqual(log[-1][2]["status"], view["status"])
        return log

    def test_failed_run_says_why(self):
        run_id = self.launch("broken")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "failed", view)
        bad = self.node(view, "bad")
        self.assertEqual(view["error"], "node bad failed: " + bad["error"])
        log = self.check_log(run_id, view)
        self.assertEqual(log[-1][2]["error"], view["error"])

    def test_task_events(self):
        run_id = self.launch("chatty")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        log = self.check_log(run_id, view)
        kinds = [r[1] for r in log]
        for k in ("run.started", "node.started", "task.output", "task.heartbeat", "node.finished"):
            self.assertIn(k, kinds)
        outputs = [r[2] for r in log if r[1] == "task.output"]
        streams = {}
        for o in outputs:
            streams[o["stream"]] = streams.get(o["stream"], "") + o["data"]
        self.assertIn("out-line", streams.get("stdout", ""))
        self.assertIn("err-line", streams.get("stderr", ""))
        for o in outputs:
            self.assertEqual((o["nodeId"], o["attempt"]), ("talk", 1))
        beats = [r[2] for r in log if r[1] == "task.heartbeat"]
        self.assertTrue(all(b["nodeId"] == "talk" and b["elapsedMs"] >= 0 for b in beats))

    def test_approval_events(self):
        run_id = self.launch("gated")
        self.wait_run(run_id, "waiting-approval")
        log, _ = self.events(run_id)
        requested = [r for r in log if r[1] == "approval.requested"]
        self.assertEqual(len(requested), 1)
        self.assertEqual(requested[0][2]["requestTitle"], "Go?")
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate",
                                     "decision": {"approved": True, "note": "fine"}})
        view = self.wait_run(run_id)
        log = self.check_log(run_id, view)
        decided = [r[2] for r in log if r[1] == "approval.decided"]
        self.assertEqual(decided, [dict(decided[0], approved=True, note="fine", decidedBy="user:op")])


class ForceResume(EngineCase):
    CONFIG, FILES = config({"gated": seq(approval("gate"), task("after", output={"done": True}))})

    def test_reopened_approval_forgets_its_denial(self):
        run_id = self.launch("gated")
        self.wait_run(run_id, "waiting-approval")
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": False}})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed")
        out = self.call("getNodeOutput", {"runId": run_id, "nodeId": "gate"})
        self.assertEqual((out["status"], out["row"]["approved"]), ("produced", False))
        self.assertEqual(self.call("resumeRun", {"runId": run_id, "options": {"force": True}})["status"],
                         "resume_requested")
        self.wait_run(run_id, "waiting-approval")
        out = self.call("getNodeOutput", {"runId": run_id, "nodeId": "gate"})
        self.assertEqual((out["status"], out["row"]), ("pending", None),
                         "the denial must not read as the output of the reopened approval")
        self.call("submitApproval", {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}})
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished")
        out = self.call("getNodeOutput", {"runId": run_id, "nodeId": "gate"})
        self.assertIs(out["row"]["approved"], True)

    def test_launch_option_bounds(self):
        for opt, bad in (("maxOutputBytes", 16777217), ("toolTimeoutMs", 31622400001),
                         ("maxConcurrency", 0)):
            with self.subTest(opt=opt):
                self.refuse("launchRun", {"workflow": "gated", "options": {opt: bad}}, "InvalidRequest")


class CrashSafety(EngineCase):
    CONFIG, FILES = config(CRASH_WORKFLOWS)

    def kill_orphans(self, run_ids):
        """The killed server's task shells keep running in their own process
        groups; end them (they are ours) so they cannot touch the workspaces."""
        for run_id in run_ids:
            try:
                pgid = int(self.read_ws(run_id, "sh.pid"))
            except (OSError, ValueError):
                continue
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def test_kill_9_and_restart(self):
        gate = self.launch("gate")
        sig = self.launch("sig", {"k": "K"})
        slow1 = self.launch("slow1")
        slow0 = self.launch("slow0")
        self.wait_run(gate, "waiting-approval")
        self.wait_run(sig, "waiting-event")
        for r in (slow1, slow0):
            self.wait_pid_file(r, "sh.pid")
            self.wait_run(r, "running", node="slow", node_states=("running",))
        # acknowledged just before the crash: a decided approval and a launch
        decided = self.launch("gate")
        self.wait_run(decided, "waiting-approval")
        self.call("submitApproval", {"runId": decided, "nodeId": "gate", "decision": {"approved": True}})
        launched = self.launch("static")

        for r in (slow1, slow0):
            self.assertEqual(self.node(self.get(r), "slow")["state"], "running")
        self.server.kill()
        self.kill_orphans([slow1, slow0])
        with open(os.path.join(os.path.dirname(self.server.db_path), "workspaces", "release"), "w"):
            pass
        self.server.start()

        # acknowledgements survived
        self.assertEqual(self.get(launched)["status"], "finished")
        self.assertEqual(self.wait_run(decided)["status"], "finished")
        self.assertEqual(self.pending_approvals(runId=decided), [])

        # the approval still waits and can be decided
        v = self.get(gate)
        self.assertEqual(v["status"], "waiting-approval")
        self.assertEqual(self.node(v, "gate")["state"], "waiting")
        pend = self.pending_approvals(runId=gate)
        self.assertEqual([(a["nodeId"], a["requestTitle"]) for a in pend], [("gate", "After the crash?")])
        self.call("submitApproval", {"runId": gate, "nodeId": "gate", "decision": {"approved": True}})
        self.assertEqual(self.wait_run(gate)["status"], "finished")

        # the signal wait still waits and completes
        v = self.get(sig)
        self.assertEqual(v["status"], "waiting-event")
        self.assertEqual(self.node(v, "wait")["state"], "waiting")
        r = self.call("submitSignal", {"runId": sig, "signalName": "go", "correlationKey": "K", "payload": {"v": 1}})
        self.assertTrue(r["delivered"])
        self.assertEqual(self.wait_run(sig)["status"], "finished")
        self.assertEqual(self.output(sig, "wait")["row"], {"v": 1})

        # the interrupted task ran again and the run finished
        v = self.wait_run(slow1)
        self.assertEqual(v["status"], "finished", v)
        n = self.node(v, "slow")
        self.assertEqual((n["state"], n["attempts"]), ("finished", 2))
        self.assertEqual(self.output(slow1, "slow")["row"], {"done": True})
        self.assertEqual(self.read_ws(slow1, "attempts.log").split(), ["attempt", "attempt"])

        # the server's crash is not the task's failure: without retries the
        # interrupted task still runs again, and its first attempt is
        # recorded as interrupted, not failed
        v = self.wait_run(slow0)
        self.assertEqual(v["status"], "finished", v)
        n = self.node(v, "slow")
        self.assertEqual((n["state"], n["attempts"]), ("finished", 2))
        self.assertEqual(self.read_ws(slow0, "attempts.log").split(), ["attempt", "attempt"])
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            states = db.execute("SELECT attempt, state FROM attempts WHERE run_id = ? AND node_id = 'slow'"
                                " ORDER BY attempt", (slow0,)).fetchall()
        finally:
            db.close()
        self.assertEqual(states, [(1, "interrupted"), (2, "succeeded")])

        # and the restarted server keeps working
        self.assertEqual(self.get(self.launch("static"))["status"], "finished")


class Shutdown(EngineCase):
    """SIGTERM lets running tasks finish for shutdownGraceMs, then stops the
    rest as interrupted; an interrupted attempt (shutdown or crash) runs
    again at the next start without using a retry, up to 5 in a row."""
    CONFIG, FILES = config({
        "quick": task("q", run="echo $$$$ > sh.pid; sleep 0.6; echo '{\"ok\":true}'"),
        "slow0": task("slow", run=SLOW_TASK),
    }, "shutdownGraceMs: 3000\n")

    def attempt_states(self, run_id, node):
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            return db.execute("SELECT attempt, state FROM attempts WHERE run_id = ? AND node_id = ?"
                              " ORDER BY attempt", (run_id, node)).fetchall()
        finally:
            db.close()

    def release(self):
        with open(os.path.join(os.path.dirname(self.server.db_path), "workspaces", "release"), "w"):
            pass
        self.addCleanup(os.unlink, os.path.join(os.path.dirname(self.server.db_path), "workspaces", "release"))

    def test_sigterm_waits_for_a_running_task(self):
        run_id = self.launch("quick")
        self.wait_pid_file(run_id, "sh.pid")
        self.server.stop()            # exit 0 is checked; the task is still sleeping now
        self.server.start()
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.node(v, "q")["attempts"], 1)
        self.assertEqual(self.attempt_states(run_id, "q"), [(1, "succeeded")])

    def test_sigterm_interrupts_what_outlives_the_grace_period(self):
        run_id = self.launch("slow0")
        self.wait_pid_file(run_id, "sh.pid")
        self.wait_run(run_id, "running", node="slow", node_states=("running",))
        self.server.stop()            # after 3 s the task is killed, recorded as interrupted
        self.assertIn("interrupting them", self.server.stderr())
        self.assertEqual(self.attempt_states(run_id, "slow"), [(1, "interrupted")])
        self.release()
        self.server.start()
        v = self.wait_run(run_id)
        # no retries configured, yet it ran again: the stop was not its failure
        self.assertEqual(v["status"], "finished", v)
        self.assertEqual(self.node(v, "slow")["attempts"], 2)
        self.assertEqual(self.attempt_states(run_id, "slow"), [(1, "interrupted"), (2, "succeeded")])

    def test_sigterm_closes_idle_keep_alive_connections(self):
        run_id = self.launch("slow0")    # keeps the server in its grace period
        self.wait_pid_file(run_id, "sh.pid")
        with self.server.raw() as idle:
            idle.send(harness.build_request("GET", "/health", content_length=False))
            self.assertEqual(idle.read_response().status, 200)
            self.server.proc.send_signal(signal.SIGTERM)
            # the idle keep-alive connection is closed at once, well inside
            # the 3 s grace period the running task holds the server in
            self.assertTrue(idle.wait_closed(timeout=2))
        self.release()
        self.server.stop()
        self.server.start()
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_a_task_interrupted_five_times_in_a_row_fails(self):
        run_id = self.launch("slow0")
        for attempt in range(1, 6):
            self.wait_for(lambda: self.node(self.get(run_id), "slow")["attempts"] == attempt and
                          self.node(self.get(run_id), "slow")["state"] == "running" or None,
                          "attempt %d running" % attempt)
            pgid = self.wait_pid_file(run_id, "sh.pid")
            self.server.kill()
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.unlink(self.workspace(run_id, "sh.pid"))
            self.server.start()
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "failed", v)
        n = self.node(v, "slow")
        self.assertEqual((n["state"], n["attempts"]), ("failed", 5))
        self.assertIn("interrupted 5 times in a row", n["error"])
        self.assertEqual(self.attempt_states(run_id, "slow"), [(i, "interrupted") for i in range(1, 6)])


FSIZE_LIMIT = 1024 * 1024


def limit_file_size():
    """In the server's child before exec: files may not grow past
    FSIZE_LIMIT (a full disk, as far as SQLite can tell: its writes fail
    with EFBIG), and SIGXFSZ is ignored so the write fails instead of the
    process dying. The hard limit stays unlimited so the test can lift it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))


class StorageFull(EngineCase):
    """The database cannot be written (the file-size limit plays a full
    disk): calls answer 503 StorageUnavailable with retryAfterMs, the cause
    is logged once per episode, nothing acknowledged is lost, and the same
    calls succeed once space is back."""
    CONFIG, FILES = config({
        "static": task("only", output={"ok": True}),
        "gated": seq(approval("gate", title="Go?"), task("after", output={"done": True})),
    })

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(cls.CONFIG, cls.FILES)
        cls.server.preexec = limit_file_size
        cls.server.start()

    def test_disk_full_answers_503_and_recovers(self):
        gate = self.launch("gated")
        self.wait_run(gate, "waiting-approval")
        acked, refused = [], None
        pad = {"p%d" % k: "x" * 60000 for k in range(3)}
        for i in range(40):   # each launch writes ~180 KiB: the limit is reached
            params = {"workflow": "static", "input": pad, "options": {"runId": "full-%d" % i}}
            status, _, doc = self.server.rpc("launchRun", params, token=OP)
            if status == 200:
                acked.append(doc["payload"]["runId"])
                continue
            refused = (params, status, doc)
            break
        self.assertIsNotNone(refused, "the file-size limit was never reached")
        params, status, doc = refused
        err = self.assertError(status, doc, "StorageUnavailable", 503)
        self.assertEqual(err["retryAfterMs"], 1000)
        self.assertEqual(err["legacyCode"], "STORAGE_UNAVAILABLE")
        # the same call while it lasts fails the same way (and is not logged again)
        for _ in range(3):
            status, _, doc = self.server.rpc("launchRun", params, token=OP)
            self.assertError(status, doc, "StorageUnavailable", 503)
        decision = {"runId": gate, "nodeId": "gate", "decision": {"approved": True}}
        self.assertEqual(self.server.stderr().count("database unavailable"), 1,
                         "the cause is logged once per episode")
        # a write small enough to fit in the room left may have committed
        # meanwhile; that is not a recovery (store_episode.h)
        self.assertNotIn("database available again", self.server.stderr())

        # space is back: the same calls succeed, nothing acknowledged is lost
        resource.prlimit(self.server.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.assertEqual(self.call("launchRun", params)["runId"], params["options"]["runId"])
        self.assertTrue(self.call("submitApproval", decision)["approved"])
        self.assertEqual(self.wait_run(gate)["status"], "finished")
        for run_id in acked + [params["options"]["runId"]]:
            self.assertEqual(self.wait_run(run_id)["status"], "finished", run_id)
        self.assertEqual(self.server.stderr().count("database available again"), 1)
        self.assertEqual(self.server.stderr().count("database unavailable"), 1)


class Review(EngineCase):
    """Found in review: fail-fast with a task still running below a sibling
    container, and runs whose writes fail (a trigger makes SQLite refuse one
    statement, as a full disk or an I/O error would)."""
    CONFIG, FILES = config({
        "ff_nested": par(task("boom", run="sleep 0.3; exit 4"),
                         seq(task("slow", run=SLEEPER), task("never", output={"x": 1}))),
        "static": seq(task("a", output={"n": 1}), task("b", output={"m": "${outputs.a.n}"})),
        "gated": seq(approval("gate", title="Go?"), task("after", output={"done": True})),
        "sig_any": signal_node("any", "ping"),
        "proc": seq(task("work", run="sleep 0.2; echo '{\"w\":1}'"), task("next", output={"ok": True})),
        "hung": task("hang", run="echo started; echo $$$$ > sh.pid; sleep 60"),
    })

    events = EventLog.events
    check_log = EventLog.check_log

    def sql(self, statement):
        self.server.sql(statement)

    def fail_inserts(self, name, table, when):
        self.sql("CREATE TRIGGER %s BEFORE INSERT ON %s WHEN %s BEGIN SELECT RAISE(ABORT, 'injected'); END"
                 % (name, table, when))
        self.addCleanup(self.sql, "DROP TRIGGER IF EXISTS %s" % name)

    def test_parallel_fails_only_after_a_nested_task_was_stopped(self):
        run_id = self.launch("ff_nested")
        pid = self.wait_pid_file(run_id, "sh.pid")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "failed")
        # the run ended, so nothing in it may still be running
        states = {n["nodeId"]: n["state"] for n in view["nodes"]}
        self.assertEqual(states["slow"], "skipped", states)
        self.assertEqual(states["never"], "skipped", states)
        self.assertEqual(states["boom"], "failed", states)
        self.assertPidsDie([pid])
        log = self.check_log(run_id, self.get(run_id))   # run.completed is the last event
        kinds = [(r[1], r[2].get("nodeId")) for r in log]
        self.assertLess(kinds.index(("node.skipped", "slow")), kinds.index(("node.failed", "parallel@root")))

    def test_signal_is_not_lost_when_its_delivery_cannot_be_recorded(self):
        run_id = self.launch("sig_any", runId="sigfail")
        self.wait_run(run_id, "waiting-event")
        self.fail_inserts("no_out", "outputs", "NEW.run_id = 'sigfail'")
        r = self.call("submitSignal", {"runId": run_id, "signalName": "ping", "correlationKey": "k",
                                       "payload": {"v": 1}})
        self.assertFalse(r["delivered"], "delivery was not recorded")
        self.assertEqual(self.node(self.get(run_id), "any")["state"], "waiting")
        self.sql("DROP TRIGGER no_out")
        self.assertEqual(self.call("resumeRun", {"runId": run_id})["status"], "resume_requested")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        self.assertEqual(self.output(run_id, "any")["row"], {"v": 1})
        self.check_log(run_id, view)

    def test_a_run_whose_write_failed_is_driven_on_from_the_database(self):
        self.fail_inserts("no_start", "events", "NEW.run_id = 'brokenstart' AND NEW.event = 'node.started'")
        run_id = self.launch("static", runId="brokenstart")
        view = self.get(run_id)
        self.assertEqual(view["status"], "running")
        self.assertEqual(view["lastSeq"], 1)
        self.assertEqual({n["state"] for n in view["nodes"]}, {"pending"})
        self.sql("DROP TRIGGER no_start")
        # nobody resumes it: the engine's repair timer reloads and drives it
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        self.assertEqual(self.output(run_id, "b")["row"], {"m": 1})
        log = self.check_log(run_id, view)   # no seq lost to the failed write
        self.assertEqual([r[1] for r in log].count("node.started"), 3)

    # -- a failed write, then the same call again once the cause is gone ----

    def test_approval_whose_decision_could_not_be_recorded(self):
        run_id = self.launch("gated", runId="apfail")
        self.wait_run(run_id, "waiting-approval")
        self.fail_inserts("no_dec", "events", "NEW.run_id = 'apfail' AND NEW.event = 'approval.decided'")
        decision = {"runId": run_id, "nodeId": "gate", "decision": {"approved": True}}
        self.refuse("submitApproval", decision, "Internal")
        v = self.get(run_id)   # memory and database agree: still waiting
        self.assertEqual((v["status"], self.node(v, "gate")["state"]), ("waiting-approval", "waiting"))
        self.sql("DROP TRIGGER no_dec")
        self.assertTrue(self.call("submitApproval", decision)["approved"])
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        self.check_log(run_id, view)

    def test_cancel_whose_write_failed_can_be_sent_again(self):
        run_id = self.launch("gated", runId="cxfail")
        self.wait_run(run_id, "waiting-approval")
        self.fail_inserts("no_cx", "events", "NEW.run_id = 'cxfail' AND NEW.event = 'run.cancelling'")
        self.refuse("cancelRun", {"runId": run_id}, "Internal")
        self.assertFalse(self.get(run_id)["cancelRequested"])
        self.sql("DROP TRIGGER no_cx")
        self.assertEqual(self.call("cancelRun", {"runId": run_id})["status"], "cancelling")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "cancelled")
        self.check_log(run_id, view)

    def test_task_completion_that_could_not_be_recorded(self):
        # The task exits 0 but its end cannot be written: the run must not
        # stay "running" with nothing driving it. Once writes work again the
        # repair timer reloads it; the attempt whose end was lost is
        # interrupted and runs again, without using a retry.
        self.fail_inserts("no_fin", "events", "NEW.run_id = 'tkfail' AND NEW.event = 'node.finished'")
        run_id = self.launch("proc", runId="tkfail")
        self.wait_for(lambda: self.read_attempts(run_id) or None, "the first attempt")
        # let the attempt end while the trigger refuses its record
        self.wait_for(lambda: "run tkfail: state change not recorded" in self.server.stderr() or None,
                      "the refused node.finished write")
        self.sql("DROP TRIGGER no_fin")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished", view)
        self.assertEqual(self.node(view, "work")["attempts"], 2)
        self.assertEqual(self.read_attempts(run_id), [(1, "interrupted"), (2, "succeeded")])
        self.check_log(run_id, view)

    def test_cancel_of_a_broken_run_whose_task_never_ends(self):
        # The task's output line cannot be recorded, so the run is broken
        # while its task runs on (it would for a minute). A reload must wait
        # for the task; cancelRun stops it, answers Busy, and the same call
        # succeeds once the run has been reloaded.
        self.fail_inserts("no_out_ev", "events", "NEW.run_id = 'hungrun' AND NEW.event = 'task.output'")
        run_id = self.launch("hung", runId="hungrun")
        pid = self.wait_pid_file(run_id, "sh.pid")
        # The pid file can be written before the server has read "started"
        # off the pipe: keep the trigger until the failed write is logged.
        self.wait_for(lambda: "run hungrun: state change not recorded" in self.server.stderr() or None,
                      "the refused task.output write")
        self.sql("DROP TRIGGER no_out_ev")
        err = self.refuse("cancelRun", {"runId": run_id}, "Busy")
        self.assertIn("being stopped", err["message"])
        self.assertPidsDie([pid])
        def cancel():
            status, _, doc = self.server.rpc("cancelRun", {"runId": run_id}, token=OP)
            return doc["payload"] if status == 200 else None
        self.assertEqual(self.wait_for(cancel, "the cancel after the reload")["status"], "cancelling")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "cancelled")
        self.check_log(run_id, view)

    def test_launch_whose_write_failed_can_be_sent_again(self):
        self.fail_inserts("no_run", "runs", "NEW.run_id = 'lnfail'")
        self.refuse("launchRun", {"workflow": "static", "options": {"runId": "lnfail"}}, "Internal")
        self.sql("DROP TRIGGER no_run")
        run_id = self.launch("static", runId="lnfail")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        self.check_log(run_id, view)

    def read_attempts(self, run_id):
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            return db.execute("SELECT attempt, state FROM attempts WHERE run_id = ? AND node_id = 'work'"
                              " ORDER BY attempt", (run_id,)).fetchall()
        finally:
            db.close()

    def test_completion_is_recorded_with_the_last_transition(self):
        self.fail_inserts("no_done", "events", "NEW.run_id = 'nodone' AND NEW.event = 'run.completed'")
        run_id = self.launch("static", runId="nodone")
        view = self.get(run_id)
        # the run's end and its run.completed are one transaction: neither is recorded
        self.assertNotIn(view["status"], TERMINAL)
        self.sql("DROP TRIGGER no_done")
        self.assertEqual(self.call("resumeRun", {"runId": run_id})["status"], "resume_requested")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished")
        self.check_log(run_id, view)   # contiguous seqs, one run.completed, last

    def test_cancel_and_resume_of_a_run_whose_write_failed(self):
        self.fail_inserts("no_req", "events", "NEW.run_id = 'nocancel' AND NEW.event = 'approval.requested'")
        run_id = self.launch("gated", runId="nocancel")
        view = self.get(run_id)
        self.assertEqual(self.node(view, "gate")["state"], "pending")
        # the run is stuck: a cancellation could not be recorded, so it is refused
        self.refuse("cancelRun", {"runId": run_id}, "Internal")
        self.assertFalse(self.get(run_id)["cancelRequested"])
        self.sql("DROP TRIGGER no_req")
        self.call("resumeRun", {"runId": run_id})
        view = self.wait_run(run_id, "waiting-approval")
        self.assertEqual(self.pending_approvals(runId=run_id)[0]["nodeId"], "gate")
        self.assertEqual(self.call("cancelRun", {"runId": run_id})["status"], "cancelling")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "cancelled")
        self.check_log(run_id, view)


if __name__ == "__main__":
    harness.main()
