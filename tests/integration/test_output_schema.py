"""Task output schemas through the real binary (docs/workflows.md, outputSchema).

A task whose row matches its declaration finishes, keeps only the declared
fields (in getNodeOutput, and in what later tasks read), and getNodeOutput
answers the descriptor; a row that does not match fails the attempt with a
message naming each JSON path and what was expected, visible in getRun, in
the attempt (attempts.list / attempts.get) and in the node.failed events,
and the task's retries apply. A declaration that cannot be honoured is a
load error, with file, line and column, from check-config and from serve.

Workflows are written by test_engine.config into each server's directory;
every wait is bounded polling (EngineCase.wait_run)."""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_engine as te  # noqa: E402

REVIEW = {"fields": [
    {"name": "summary", "type": "string", "description": "One-line verdict."},
    {"name": "score", "type": "number", "optional": True, "nullable": True},
    {"name": "level", "type": "string", "enum": ["low", "medium", "high"]},
    {"name": "count", "type": "integer", "optional": True},
    {"name": "details", "type": "object", "optional": True},
]}
DESCRIPTOR = {"fields": [
    {"name": "summary", "type": "string", "optional": False, "nullable": False,
     "description": "One-line verdict."},
    {"name": "score", "type": "number", "optional": True, "nullable": True},
    {"name": "level", "type": "string", "optional": False, "nullable": False,
     "enum": ["low", "medium", "high"]},
    {"name": "count", "type": "number", "optional": True, "nullable": False},
    {"name": "details", "type": "object", "optional": True, "nullable": False},
]}
GOOD_ROW = {"summary": "fine", "score": None, "level": "low", "count": 2, "details": {"a": [1]},
            "extra": "dropped", "also": 1}
BAD_ROW = {"summary": 3, "level": "urgent", "count": 1.5}
BAD_MESSAGE = ("output does not match outputSchema: $.summary: expected string, got number 3; "
               "$.level: expected one of \"low\", \"medium\", \"high\", got string \"urgent\"; "
               "$.count: expected integer (a whole number within +/-2^53), got number 1.5")


def echo(row):
    """A run: command printing row as its last JSON line (after some noise)."""
    return "echo 'working'; echo '%s'" % json.dumps(row)


# The first attempt prints BAD_ROW, every later one GOOD_ROW.
FLAKY = "if [ -e tried ]; then %s; else touch tried; %s; fi" % (echo(GOOD_ROW), echo(BAD_ROW))

WORKFLOWS = {
    "good": te.seq(
        te.task("review", run=echo(GOOD_ROW), outputSchema=REVIEW),
        te.task("use", output={"summary": "${outputs.review.summary}", "details": "${outputs.review.details}"}),
        te.task("peek", run="cat > stdin.json; echo '{}'")),
    "bad": te.task("review", run=echo(BAD_ROW), outputSchema=REVIEW, retries=2),
    "flaky": te.task("review", run=FLAKY, outputSchema=REVIEW, retries=1),
    "nothing": te.task("review", run="echo 'no json here'", outputSchema=REVIEW),
    "not_last": te.task("review", run="%s; echo '{\"summary\":\"later\"}'" % echo(GOOD_ROW),
                        outputSchema=REVIEW),
    "static": te.seq(
        te.task("tally", output={"count": "${input.n}", "label": "n=${input.n}"},
                outputSchema={"fields": [{"name": "count", "type": "integer"},
                                         {"name": "label", "type": "string"}]}),
        te.task("after", output={"done": True})),
    "empty": te.task("none", run="echo '{\"a\":1}'", outputSchema={"fields": []}),
}


class OutputSchema(te.EngineCase):
    CONFIG, FILES = te.config(WORKFLOWS)

    def inspect(self, method, params):
        status, _, doc = self.server.rpc(method, params, token=te.OP)
        return self.assertOk(status, doc)

    def attempts(self, run_id, node_id):
        return self.inspect("attempts.list", {"runId": run_id, "nodeId": node_id})["attempts"]

    def node_events(self, run_id, kind):
        log, _ = te.EventLog.events(self, run_id)
        return [payload for _, event, payload, _ in log if event == kind]

    # -- a matching row ----------------------------------------------------------

    def test_matching_row_finishes_with_its_descriptor(self):
        run_id = self.launch("good")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished", view)
        out = self.output(run_id, "review")
        self.assertEqual(out["status"], "produced")
        # undeclared members are dropped, declared ones kept as printed
        self.assertEqual(out["row"], {"summary": "fine", "score": None, "level": "low", "count": 2,
                                      "details": {"a": [1]}})
        self.assertEqual(out["schema"], DESCRIPTOR)
        # a node without a declaration has no descriptor
        self.assertEqual(self.output(run_id, "use"),
                         {"status": "produced", "row": {"summary": "fine", "details": {"a": [1]}},
                          "schema": None})

    def test_later_tasks_read_the_checked_row(self):
        run_id = self.launch("good")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        stdin = json.loads(self.read_ws(run_id, "stdin.json"))
        self.assertEqual(stdin["outputs"]["review"], {"summary": "fine", "score": None, "level": "low",
                                                      "count": 2, "details": {"a": [1]}})

    def test_descriptor_through_the_legacy_alias_and_before_the_row(self):
        # devtools.getNodeOutput is the same method; a pending node already
        # has its declaration.
        run_id = self.launch("bad")
        out = self.call("getNodeOutput", {"runId": run_id, "nodeId": "review"})
        self.assertEqual(out["schema"], DESCRIPTOR)
        status, _, doc = self.server.rpc("devtools.getNodeOutput", {"runId": run_id, "nodeId": "review"},
                                         token=te.OP)
        self.assertEqual(self.assertOk(status, doc)["schema"], DESCRIPTOR)
        self.wait_run(run_id)

    def test_empty_declaration_keeps_an_empty_row(self):
        run_id = self.launch("empty")
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.output(run_id, "none"), {"status": "produced", "row": {},
                                                       "schema": {"fields": []}})

    # -- a row that does not match -------------------------------------------------

    def test_mismatch_fails_with_every_path_and_retries(self):
        run_id = self.launch("bad")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "failed", view)
        node = self.node(view, "review")
        self.assertEqual(node["state"], "failed")
        self.assertEqual(node["attempts"], 3, "retries: 2 means three attempts")
        self.assertEqual(node["error"], BAD_MESSAGE)
        self.assertEqual(view["error"], "node review failed: " + BAD_MESSAGE)
        # each attempt: the process succeeded, the attempt did not
        attempts = self.attempts(run_id, "review")
        self.assertEqual([(a["attempt"], a["state"], a["exitCode"], a["error"]) for a in attempts],
                         [(i, "failed", 0, BAD_MESSAGE) for i in (1, 2, 3)])
        one = self.inspect("attempts.get", {"runId": run_id, "nodeId": "review", "attempt": 3})
        self.assertIn(json.dumps(BAD_ROW), one["stdout"], "what it printed is kept")
        # the events say the same, and which attempts were retried
        failed = self.node_events(run_id, "node.failed")
        self.assertEqual([(f["attempt"], f["error"], f["willRetry"]) for f in failed],
                         [(1, BAD_MESSAGE, True), (2, BAD_MESSAGE, True), (3, BAD_MESSAGE, False)])
        out = self.output(run_id, "review")
        self.assertEqual((out["status"], out["row"], out["schema"]), ("failed", None, DESCRIPTOR))

    def test_a_retry_that_matches_finishes(self):
        run_id = self.launch("flaky")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished", view)
        self.assertEqual(self.node(view, "review")["attempts"], 2)
        attempts = self.attempts(run_id, "review")
        self.assertEqual([(a["state"], a["error"]) for a in attempts],
                         [("failed", BAD_MESSAGE), ("succeeded", None)])
        self.assertEqual(self.output(run_id, "review")["row"]["summary"], "fine")

    def test_no_json_line_says_so(self):
        run_id = self.launch("nothing")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "failed")
        self.assertEqual(self.node(view, "review")["error"],
                         "output does not match outputSchema: $.summary: missing (a required string); "
                         "$.level: missing (a required string) (the command printed no JSON object "
                         "line, so its row was {})")

    def test_only_the_last_json_line_is_checked(self):
        run_id = self.launch("not_last")
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "failed")
        self.assertEqual(self.node(view, "review")["error"],
                         "output does not match outputSchema: $.level: missing (a required string)")

    def test_static_rows_are_checked_once_expanded(self):
        run_id = self.launch("static", {"n": 4})
        self.assertEqual(self.get(run_id)["status"], "finished")
        self.assertEqual(self.output(run_id, "tally")["row"], {"count": 4, "label": "n=4"})
        run_id = self.launch("static", {"n": "four"})
        view = self.get(run_id)   # static tasks end inside launchRun
        self.assertEqual(view["status"], "failed", view)
        self.assertEqual(self.node(view, "tally")["error"],
                         "output does not match outputSchema: $.count: expected integer, got "
                         "string \"four\"")
        self.assertEqual(self.node(view, "after")["state"], "skipped")


BAD_WORKFLOW = """\
name: bad
root:
  sequence:
    - task:
        id: review
        run: "echo '{}'"
        outputSchema:
          fields:
            - { name: summary, type: text }
            - { name: summary, type: string, enum: [1] }
    - task: { id: use, run: "echo ${outputs.review.sumary}" }
    - task:
        id: fixed
        output: { n: "12" }
        outputSchema: { fields: [{ name: n, type: number }] }
"""


class LoadErrors(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="anvil-outschema-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.wf = os.path.join(self.dir, "wf", "bad.yaml")
        os.makedirs(os.path.dirname(self.wf))
        with open(self.wf, "w", encoding="utf-8") as f:
            f.write(BAD_WORKFLOW)
        self.cfg = os.path.join(self.dir, "anvil.yaml")
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("listen: 127.0.0.1:0\nworkflows:\n  bad: { file: wf/bad.yaml }\n")

    def expected(self):
        p = re.escape(self.wf)
        return [
            p + r":9:38: review\.outputSchema\.fields\[0\]\.type: unknown type \"text\" \(expected "
                r"string, number, integer, boolean, object, array, null or unknown\)",
            p + r":10:23: review\.outputSchema\.fields\[1\]\.name: duplicate field name 'summary' "
                r"\(first declared at line 9\)",
            p + r":10:53: review\.outputSchema\.fields\[1\]\.enum\[0\]: expected a string \(the "
                r"field's type\), got the number 1 \(quote it to make it a string\)",
            p + r":14:17: fixed\.output: does not match outputSchema: \$\.n: expected number, got "
                r"string \"12\"",
        ]

    def test_check_config_lists_every_problem(self):
        r = harness.run_cli("check-config", self.cfg, cwd=self.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        for pattern in self.expected():
            self.assertRegex(r.stderr, pattern)
        # the reference is checked against the declared fields once those
        # load; here the declaration itself is broken, so it is not reported
        # on top of it
        self.assertNotIn("sumary", r.stderr)

    def test_reference_to_an_undeclared_field(self):
        with open(self.wf, "w", encoding="utf-8") as f:
            f.write(BAD_WORKFLOW.replace("type: text", "type: string")
                    .replace("- { name: summary, type: string, enum: [1] }", "- { name: n, type: integer }")
                    .replace('output: { n: "12" }', "output: { n: 12 }"))
        r = harness.run_cli("check-config", self.cfg, cwd=self.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, re.escape(self.wf) + r":11:29: use\.run: \$\{outputs\.review\.sumary\}: "
                                   r"task 'review' declares no output field 'sumary' \(its outputSchema "
                                   r"has: summary, n\)")
        self.assertEqual(len(r.stderr.strip().splitlines()), 2, r.stderr)   # the problem, the count

    def test_serve_refuses_to_start(self):
        port_file = os.path.join(self.dir, "port")
        r = harness.run_cli("serve", "--config", self.cfg, "--port-file", port_file, cwd=self.dir,
                            timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        for pattern in self.expected():
            self.assertRegex(r.stderr, pattern)
        self.assertFalse(os.path.exists(port_file))


if __name__ == "__main__":
    harness.main()
