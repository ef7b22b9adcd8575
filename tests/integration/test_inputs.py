"""Declared workflow inputs through the real binary (docs/workflows.md#inputschema).

A workflow file's `inputSchema` is what listWorkflows reports (in
getNodeOutput's field descriptors), and every way of starting a run holds
the caller's input to it: launchRun, runs.rerun, cronRun and a webhook
refuse input with a required field missing, a value of the wrong type or
outside the enum, or a member the schema does not declare, with 400
InvalidRequest naming the JSON path; nothing is recorded for a refused
launch. A workflow without one takes any object, as before. A reference
to an undeclared input is a load error with file, line and column; a
schedule on a workflow that requires input is a warning.

Every wait is bounded polling (EngineCase.wait_run)."""
import os
import json
import re
import shutil
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_engine as te  # noqa: E402

INPUTS = {"fields": [
    {"name": "sha", "type": "string", "description": "The commit to build."},
    {"name": "count", "type": "integer", "optional": True},
    {"name": "mode", "type": "string", "optional": True, "nullable": True, "enum": ["fast", "full"]},
]}
DESCRIPTOR = {"fields": [
    {"name": "sha", "type": "string", "optional": False, "nullable": False,
     "description": "The commit to build."},
    # integer is reported in the wire's vocabulary, as getNodeOutput does
    {"name": "count", "type": "number", "optional": True, "nullable": False},
    {"name": "mode", "type": "string", "optional": True, "nullable": True, "enum": ["fast", "full"]},
]}

WORKFLOWS = {
    "typed": ({"inputSchema": INPUTS},
              te.seq(te.task("build", run="echo '{\"built\":\"'${input.sha}'\"}'"),
                     te.task("row", output={"sha": "${input.sha}", "all": "${input}"}))),
    "free": ({}, te.task("row", output={"got": "${input}"})),
    "hooked": ({"inputSchema": {"fields": [{"name": "issue", "type": "string"}]}},
               te.task("row", output={"issue": "${input.issue}"})),
}

CONFIG = te.config({})[0].replace("workflows:\n", "") + """workflows:
  typed: { file: wf/typed.yaml }
  free: { file: wf/free.yaml }
  hooked:
    file: wf/hooked.yaml
    webhook:
      run: { enabled: true, inputPath: payload }
"""
FILES = {"wf/%s.yaml" % k: yaml.safe_dump(dict({"name": k}, **head, root=root), sort_keys=False)
         for k, (head, root) in WORKFLOWS.items()}


class Inputs(te.EngineCase):
    CONFIG, FILES = CONFIG, FILES

    def run_ids(self, workflow):
        return [r["runId"] for r in self.call("listRuns", {"filter": {"workflow": workflow}})]

    def refuse_input(self, method, params, path, message):
        status, _, doc = self.server.rpc(method, params, token=te.OP)
        return self.assertError(status, doc, "InvalidRequest", path=path, message=message)

    # -- listWorkflows -------------------------------------------------------

    def test_list_workflows_reports_the_declared_inputs(self):
        items = {w["key"]: w for w in self.call("listWorkflows", {})}
        self.assertEqual(items["typed"]["inputSchema"], DESCRIPTOR)
        self.assertEqual(items["hooked"]["inputSchema"]["fields"][0]["name"], "issue")
        # none declared: the member is absent, not an empty list
        self.assertNotIn("inputSchema", items["free"])

    # -- launchRun -----------------------------------------------------------

    def test_launch_with_matching_input_runs(self):
        run_id = self.launch("typed", {"sha": "abc123", "count": 2, "mode": None})
        view = self.wait_run(run_id)
        self.assertEqual(view["status"], "finished", view)
        self.assertEqual(self.output(run_id, "build")["row"], {"built": "abc123"})
        self.assertEqual(self.output(run_id, "row")["row"]["all"],
                         {"sha": "abc123", "count": 2, "mode": None})

    def test_launch_refuses_input_that_does_not_match(self):
        before = self.run_ids("typed")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {}}, "$.params.input.sha",
                          "$.params.input.sha: missing (a required string)")
        # no input at all is {} and is refused the same way
        self.refuse_input("launchRun", {"workflow": "typed"}, "$.params.input.sha",
                          "$.params.input.sha: missing (a required string)")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": 123}},
                          "$.params.input.sha", "$.params.input.sha: expected string, got number 123")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": "a", "count": 1.5}},
                          "$.params.input.count", "$.params.input.count: expected integer (a whole "
                          "number within +/-2^53), got number 1.5")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": "a", "mode": "slow"}},
                          "$.params.input.mode", "$.params.input.mode: expected one of \"fast\", "
                          "\"full\", got string \"slow\"")
        # every problem in one answer; the path is the first one's
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": None, "count": "2"}},
                          "$.params.input.sha", "$.params.input.sha: expected string, got null (the "
                          "field is not nullable); $.params.input.count: expected integer, got "
                          "string \"2\"")
        # nothing was recorded for any of them
        self.assertEqual(self.run_ids("typed"), before)

    def test_launch_refuses_undeclared_members(self):
        # an operator's typo must not vanish into a run that lacks the value
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": "a", "shaa": "b"}},
                          "$.params.input.shaa", "$.params.input.shaa: not a declared field "
                          "(declared: sha, count, mode)")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": "a", "x.y": 1}},
                          "$.params.input[\"x.y\"]", "$.params.input[\"x.y\"]: not a declared field "
                          "(declared: sha, count, mode)")

    def test_idempotency_key_does_not_excuse_bad_input(self):
        self.launch("typed", {"sha": "k1"}, idempotencyKey="inputs-key")
        self.refuse_input("launchRun", {"workflow": "typed", "input": {"sha": 1},
                                        "options": {"idempotencyKey": "inputs-key"}},
                          "$.params.input.sha", "$.params.input.sha: expected string, got number 1")

    def test_workflow_without_schema_takes_any_object(self):
        run_id = self.launch("free", {"anything": {"goes": [1, 2]}, "sha": 5})
        self.assertEqual(self.wait_run(run_id)["status"], "finished")
        self.assertEqual(self.get(run_id)["input"], {"anything": {"goes": [1, 2]}, "sha": 5})

    # -- the other ways to start a run ---------------------------------------

    def test_rerun_passes_the_recorded_input_through_the_check(self):
        run_id = self.launch("typed", {"sha": "again"})
        self.wait_run(run_id)
        status, _, doc = self.server.rpc("runs.rerun", {"runId": run_id}, token=te.OP)
        again = self.assertOk(status, doc)["runId"]
        self.assertNotEqual(again, run_id)
        self.assertEqual(self.get(again)["input"], {"sha": "again"})

    def test_cron_run_checks_its_input(self):
        self.refuse_input("cronRun", {"workflow": "typed", "input": {"mode": "fast"}},
                          "$.params.input.sha", "$.params.input.sha: missing (a required string)")
        run_id = self.call("cronRun", {"workflow": "typed", "input": {"sha": "cron"}})["runId"]
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_webhook_run_checks_its_input(self):
        status, _, data = self.server.request("POST", "/webhooks/hooked",
                                              {"payload": {"issue": 7}})
        doc = json.loads(data.decode())
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["error"]["code"], "InvalidRequest", doc)
        # named where it is in the body, after inputPath
        self.assertEqual(doc["error"]["path"], "$.payload.issue", doc)
        self.assertEqual(doc["error"]["message"], "$.payload.issue: expected string, got number 7")
        status, _, data = self.server.request("POST", "/webhooks/hooked",
                                              {"payload": {"issue": "7"}})
        doc = json.loads(data.decode())
        self.assertEqual(status, 200, doc)
        # a static row: the run finishes inside the launch
        view = self.call("getRun", {"runId": doc["startedRunId"]})
        self.assertEqual((view["status"], view["input"]), ("finished", {"issue": "7"}))


BAD_REF = """name: bad
inputSchema:
  fields:
    - { name: sha, type: string }
root:
  sequence:
    - task: { id: build, run: "echo ${input.shaa}" }
"""


class InputsAtLoad(unittest.TestCase):
    """check-config and serve on workflows whose inputs cannot work."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="anvil-inputs-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.wf = os.path.join(self.dir, "wf", "bad.yaml")
        os.makedirs(os.path.dirname(self.wf))
        self.cfg = os.path.join(self.dir, "anvil.yaml")

    def write(self, workflow, entry="{ file: wf/bad.yaml }"):
        with open(self.wf, "w", encoding="utf-8") as f:
            f.write(workflow)
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("listen: 127.0.0.1:0\nworkflows:\n  bad: %s\n" % entry)

    def test_reference_to_an_undeclared_input_is_a_load_error(self):
        self.write(BAD_REF)
        r = harness.run_cli("check-config", self.cfg, cwd=self.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, re.escape(self.wf) + r":7:31: build\.run: \$\{input\.shaa\}: the "
                                   r"workflow declares no input field 'shaa' \(its inputSchema has: "
                                   r"sha\)")
        port_file = os.path.join(self.dir, "port")
        r = harness.run_cli("serve", "--config", self.cfg, "--port-file", port_file, cwd=self.dir,
                            timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("declares no input field 'shaa'", r.stderr)
        self.assertFalse(os.path.exists(port_file))

    def test_schedule_on_a_workflow_that_requires_input_is_a_warning(self):
        self.write(BAD_REF.replace("shaa", "sha"), '{ file: wf/bad.yaml, schedule: "0 8 * * *" }')
        r = harness.run_cli("check-config", self.cfg, cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok (1 workflow", r.stdout)
        self.assertRegex(r.stderr, re.escape(self.cfg) + r":3: warning: workflows\.bad\.schedule: "
                                   r"scheduled runs start with no input, but its inputSchema "
                                   r"requires some \(\$\.sha: missing \(a required string\)\): every "
                                   r"fire will be refused")


if __name__ == "__main__":
    harness.main()
