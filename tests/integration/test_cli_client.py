"""The client verbs of `anvil` through the real binary against a real server:
runs list|get|launch|cancel|resume|watch, approvals list|approve|deny,
signal, cron list|add|rm|run, workflows. Tables by default, --json for
scripts, ANVIL_URL/ANVIL_TOKEN with flags overriding them, --help for every
verb, and the exit statuses of docs/cli.md: 2 usage, 3 unreachable, and a
contract error's from the error map (4 invalid, 5 unauthorized, 6
forbidden, 7 not found, 8 conflict); `runs watch` exits 0/10/11 with the
run's outcome."""
import json
import os
import re
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEPLOY = """name: deploy
description: Build, approve, ship.
root:
  sequence:
    - task: { id: build, run: "echo '{\\"ok\\":true}'" }
    - approval: { id: approve, title: "Ship it?", allowedScopes: [approval:submit] }
    - parallel:
        - task: { id: notify, output: { message: "shipped ${input.sha}" } }
        - task: { id: tag, output: { tag: "v-${input.sha}" } }
"""
SIGNAL = """name: review-signal
description: Wait for a review.
root:
  sequence:
    - signal: { id: review, name: github.comment.created, correlationKey: "${input.issue}" }
    - task: { id: record, output: { reviewed: "${input.issue}" } }
"""

VERBS = [("runs", "list"), ("runs", "get"), ("runs", "launch"), ("runs", "cancel"), ("runs", "resume"),
         ("runs", "watch"), ("approvals", "list"), ("approvals", "approve"), ("approvals", "deny"),
         ("signal",), ("cron", "list"), ("cron", "add"), ("cron", "rm"), ("cron", "run"), ("workflows",)]


class CliClient(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
    read-token: { role: viewer, scopes: ["run:read"] }
workflows:
  deploy: { file: workflows/deploy.yaml }
  review-signal: { file: workflows/review-signal.yaml }
"""
    FILES = {"workflows/deploy.yaml": DEPLOY, "workflows/review-signal.yaml": SIGNAL}

    def anvil(self, *args, token="op-token"):
        """Run a verb with the server and token from the environment."""
        env = {"ANVIL_URL": self.server.url}
        if token is not None:
            env["ANVIL_TOKEN"] = token
        return self.server.cli(*args, env=env)

    def ok(self, *args, **kw):
        r = self.anvil(*args, **kw)
        self.assertEqual(r.returncode, 0, "anvil %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def launch(self, run_id, workflow="deploy", inp='{"sha":"abc"}'):
        r = self.ok("runs", "launch", workflow, "--input", inp, "--run-id", run_id)
        self.assertEqual(r.stdout, "launched run %s (workflow %s)\n" % (run_id, workflow))

    def wait_status(self, run_id, status):
        """Follow the run with `runs watch --json` until its status is reached
        (a waiting status is announced by an event the watch prints)."""
        want = {"waiting-approval": "approval.requested", "waiting-event": "node.started"}[status]
        proc = subprocess.Popen([harness.anvil_bin(), "runs", "watch", run_id, "--json",
                                 "--url", self.server.url, "--token", "op-token"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        try:
            for line in self.lines(proc):
                item = json.loads(line)
                if item.get("event") == want:
                    return
            self.fail("watch ended before %s" % want)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def lines(self, proc):
        """The lines of a child's stdout (opened in binary), each read
        within the I/O bound. Reads the descriptor itself: a buffered
        reader could hold lines select() cannot see."""
        fd = proc.stdout.fileno()
        buf = b""
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode("utf-8")
            r, _, _ = select.select([fd], [], [], harness.IO_TIMEOUT_S)
            self.assertTrue(r, "no output from the watch within %d s" % harness.IO_TIMEOUT_S)
            chunk = os.read(fd, 65536)
            if not chunk:
                if buf:
                    yield buf.decode("utf-8")
                return
            buf += chunk

    # -- workflows -------------------------------------------------------

    def test_workflows_table_and_json(self):
        r = self.ok("workflows")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["KEY", "NAME", "DESCRIPTION"])
        self.assertRegex(lines[1], r"^deploy\s+deploy\s+Build, approve, ship\.$")
        self.assertRegex(lines[2], r"^review-signal\s+review-signal\s+Wait for a review\.$")
        doc = json.loads(self.ok("workflows", "--json").stdout)
        self.assertEqual([w["key"] for w in doc], ["deploy", "review-signal"])

    def test_flags_override_the_environment(self):
        # a wrong URL and token in the environment, the right ones as flags
        r = self.server.cli("workflows", "--url", self.server.url, "--token", "op-token",
                            env={"ANVIL_URL": "http://127.0.0.1:%d" % harness.unused_port(), "ANVIL_TOKEN": "wrong"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deploy", r.stdout)
        r = self.server.cli("workflows", "--token=op-token", "--json", env={"ANVIL_URL": self.server.url})
        self.assertEqual(r.returncode, 0, r.stderr)

    # -- runs --------------------------------------------------------------

    def test_runs_launch_list_get(self):
        self.launch("cli-get")
        r = self.ok("runs", "list")
        head = r.stdout.splitlines()[0].split()
        self.assertEqual(head, ["RUN", "ID", "WORKFLOW", "STATUS", "CREATED"])
        row = [l for l in r.stdout.splitlines() if l.startswith("cli-get ")]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertRegex(row[0], r"^cli-get\s+deploy\s+\S+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        runs = json.loads(self.ok("runs", "list", "--json", "--workflow", "deploy").stdout)
        self.assertIn("cli-get", [x["runId"] for x in runs])
        r = self.ok("runs", "list", "--status", "cancelled", "--workflow", "review-signal")
        self.assertEqual(r.stdout, "No runs.\n")
        self.wait_status("cli-get", "waiting-approval")
        r = self.ok("runs", "get", "cli-get")
        self.assertRegex(r.stdout, r"(?m)^run\s+cli-get$")
        self.assertRegex(r.stdout, r"(?m)^status\s+waiting-approval$")
        self.assertRegex(r.stdout, r"(?m)^build\s+task\s+finished\s+1\s+-$")
        self.assertRegex(r.stdout, r"(?m)^approve\s+approval\s+waiting\s+0\s+-$")
        view = json.loads(self.ok("runs", "get", "cli-get", "--json").stdout)
        self.assertEqual((view["runId"], view["status"]), ("cli-get", "waiting-approval"))
        launched = json.loads(self.ok("runs", "launch", "deploy", "--json", "--idempotency-key", "k1").stdout)
        again = json.loads(self.ok("runs", "launch", "deploy", "--json", "--idempotency-key", "k1").stdout)
        self.assertEqual(launched["runId"], again["runId"])

    def test_runs_cancel_and_resume(self):
        self.launch("cli-cancel")
        self.wait_status("cli-cancel", "waiting-approval")
        r = self.ok("runs", "cancel", "cli-cancel")
        self.assertEqual(r.stdout, "run cli-cancel: cancelling\n")
        r = self.anvil("runs", "watch", "cli-cancel")
        self.assertEqual(r.returncode, 11, r.stdout + r.stderr)
        self.assertTrue(r.stdout.endswith("run cli-cancel cancelled\n"), r.stdout)
        r = self.ok("runs", "resume", "cli-cancel", "--json")
        self.assertEqual(json.loads(r.stdout)["runId"], "cli-cancel")

    def test_run_not_found_exits_7(self):
        for args in [("runs", "get", "nope"), ("runs", "cancel", "nope"), ("runs", "resume", "nope"),
                     ("runs", "watch", "nope"), ("approvals", "approve", "nope", "approve"),
                     ("signal", "nope", "k")]:
            with self.subTest(args=args):
                r = self.anvil(*args)
                self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertRegex(r.stderr, r"^anvil [a-z ]+: RunNotFound: ")

    def test_unauthorized_exits_5(self):
        for args in [("workflows",), ("runs", "list"), ("runs", "get", "x"), ("cron", "list"),
                     ("approvals", "list")]:
            with self.subTest(args=args):
                r = self.anvil(*args, token="not-a-token")
                self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
                self.assertIn("Unauthorized", r.stderr)
        r = self.anvil("workflows", token=None)
        self.assertEqual(r.returncode, 5, r.stderr)

    def test_forbidden_exits_6_and_names_the_scope(self):
        r = self.anvil("runs", "launch", "deploy", token="read-token")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("Forbidden", r.stderr)
        self.assertIn("run:write", r.stderr)
        r = self.anvil("cron", "add", "deploy", "0 8 * * *", token="read-token")
        self.assertEqual(r.returncode, 6, r.stderr)

    def test_invalid_request_exits_4(self):
        r = self.anvil("runs", "launch", "deploy", "--run-id", "Not Valid!")
        self.assertEqual(r.returncode, 4, r.stderr)
        r = self.anvil("cron", "add", "deploy", "bad pattern")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("$.params.pattern", r.stderr)

    def test_unreachable_exits_3(self):
        r = self.server.cli("workflows", "--url", "http://127.0.0.1:%d" % harness.unused_port(), "--token", "op-token")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("no answer", r.stderr)

    def test_usage_errors_exit_2(self):
        cases = [("runs",), ("runs", "frob"), ("runs", "get"), ("runs", "get", "a", "b"),
                 ("runs", "list", "--frob"), ("runs", "list", "--limit", "x"), ("runs", "list", "--limit"),
                 ("runs", "launch"), ("runs", "launch", "deploy", "--input", "[1]"),
                 ("runs", "launch", "deploy", "--input", "{"), ("runs", "cancel"), ("runs", "watch"),
                 ("runs", "resume", "r", "--force=yes"), ("approvals",), ("approvals", "approve", "r"),
                 ("approvals", "deny", "r", "n", "--iteration", "-1"), ("signal", "r"),
                 ("signal", "r", "k", "--payload", "nope"), ("cron",), ("cron", "add", "deploy"),
                 ("cron", "rm"), ("cron", "run"), ("workflows", "extra"),
                 ("workflows", "--url", "ftp://x"), ("workflows", "--url", "http://h:99999"),
                 ("rpc",), ("rpc", "health", "--json")]
        for args in cases:
            with self.subTest(args=args):
                r = self.anvil(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn("usage: anvil", r.stderr)

    def test_every_verb_has_help(self):
        for verb in VERBS:
            with self.subTest(verb=verb):
                r = self.anvil(*verb, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith("usage: anvil " + " ".join(verb)), r.stdout)
                if verb != ("runs", "watch"):
                    self.assertIn("--json", r.stdout)
                self.assertIn("--url URL", r.stdout)
        r = self.server.cli("help")
        for verb in ("runs list|get|launch|cancel|resume|watch", "approvals list|approve|deny",
                     "signal RUN_ID", "cron list|add|rm|run", "workflows"):
            self.assertIn(verb, r.stdout)

    # -- approvals -----------------------------------------------------------

    def test_approvals_list_approve_deny(self):
        self.launch("cli-ap1")
        self.launch("cli-ap2")
        self.wait_status("cli-ap1", "waiting-approval")
        self.wait_status("cli-ap2", "waiting-approval")
        r = self.ok("approvals", "list", "--run", "cli-ap1")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["RUN", "ID", "NODE", "WORKFLOW", "TITLE", "REQUESTED"])
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertRegex(lines[1], r"^cli-ap1\s+approve\s+deploy\s+Ship it\?\s+\d{4}-")
        doc = json.loads(self.ok("approvals", "list", "--json").stdout)
        self.assertTrue({"cli-ap1", "cli-ap2"} <= {a["runId"] for a in doc})
        r = self.ok("approvals", "approve", "cli-ap1", "approve", "--note", "ship")
        self.assertEqual(r.stdout, "approved approve on run cli-ap1\n")
        r = self.ok("approvals", "deny", "cli-ap2", "approve", "--json")
        self.assertIs(json.loads(r.stdout)["approved"], False)
        # a decided approval cannot be decided again: AlreadyDecided, 409 -> 8
        r = self.anvil("approvals", "approve", "cli-ap2", "approve")
        self.assertEqual(r.returncode, 8, r.stderr)
        self.assertIn("AlreadyDecided", r.stderr)
        self.assertEqual(self.anvil("runs", "watch", "cli-ap1").returncode, 0)
        r = self.anvil("runs", "watch", "cli-ap2")
        self.assertEqual(r.returncode, 10, r.stdout + r.stderr)
        self.assertTrue(r.stdout.endswith("run cli-ap2 failed\n"), r.stdout)
        r = self.ok("approvals", "list", "--run", "cli-ap1")
        self.assertEqual(r.stdout, "No pending approvals.\n")

    # -- signal --------------------------------------------------------------

    def test_signal(self):
        self.launch("cli-sig", workflow="review-signal", inp='{"issue":"42"}')
        r = self.ok("signal", "cli-sig", "42", "--name", "github.comment.created", "--payload", '{"body":"lgtm"}')
        self.assertRegex(r.stdout, r"^signal github\.comment\.created \(42\) (delivered to|recorded for) run cli-sig\n$")
        self.assertEqual(self.anvil("runs", "watch", "cli-sig").returncode, 0)
        r = self.ok("runs", "get", "cli-sig", "--json")
        self.assertEqual(json.loads(r.stdout)["status"], "finished")

    # -- cron ----------------------------------------------------------------

    def test_cron_add_list_run_rm(self):
        r = self.ok("cron", "add", "deploy", "*/5 * * * *", "--cron-id", "cli-cron")
        self.assertRegex(r.stdout.splitlines()[1], r"^cli-cron\s+deploy\s+\*/5 \* \* \* \*\s+yes\s+\d{4}-")
        self.ok("cron", "add", "deploy", "0 8 * * 1-5", "--cron-id", "cli-off", "--disabled")
        r = self.ok("cron", "list")
        self.assertEqual(r.stdout.splitlines()[0].split(),
                         ["CRON", "ID", "WORKFLOW", "PATTERN", "ENABLED", "NEXT", "RUN", "LAST", "RUN"])
        self.assertRegex(r.stdout, r"(?m)^cli-off\s+deploy\s+0 8 \* \* 1-5\s+no\s")
        rows = json.loads(self.ok("cron", "list", "--json").stdout)
        self.assertEqual({c["cronId"]: c["enabled"] for c in rows}, {"cli-cron": True, "cli-off": False})
        r = self.ok("cron", "run", "cli-cron", "--input", '{"sha":"cron"}')
        m = re.match(r"^launched run (\S+) \(workflow deploy\)\n$", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(json.loads(self.ok("runs", "get", m.group(1), "--json").stdout)["workflowKey"], "deploy")
        r = self.ok("cron", "rm", "cli-cron")
        self.assertEqual(r.stdout, "removed cron cli-cron\n")
        self.ok("cron", "rm", "cli-off", "--json")
        self.assertEqual(self.ok("cron", "list").stdout, "No cron schedules.\n")
        r = self.anvil("cron", "rm", "cli-cron")
        self.assertEqual(r.returncode, 7, r.stderr)

    # -- runs watch ------------------------------------------------------------

    def test_watch_follows_the_deploy_through_its_approval(self):
        self.launch("cli-watch")
        proc = subprocess.Popen([harness.anvil_bin(), "runs", "watch", "cli-watch"],
                                env=dict(os.environ, ANVIL_URL=self.server.url, ANVIL_TOKEN="op-token"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        seen = []
        try:
            for line in self.lines(proc):
                seen.append(line)
                if "waiting-approval" in line and "anvil approvals approve|deny cli-watch approve" in line:
                    break
            else:
                self.fail("the watch never showed the approval:\n" + "\n".join(seen))
            self.ok("approvals", "approve", "cli-watch", "approve")
            seen.extend(self.lines(proc))
            rc = proc.wait(timeout=harness.IO_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read().decode("utf-8", "replace")
            proc.stdout.close()
            proc.stderr.close()
        out = "\n".join(seen)
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(seen[0].startswith("run cli-watch (workflow deploy): "), out)
        # one line per node state change, in the order they happened
        changes = [(m.group(1), m.group(2)) for m in
                   (re.match(r"^\d\d:\d\d:\d\d  (\S+)\s+(\S+)", l) for l in seen) if m]
        for node in ("notify", "tag"):
            self.assertIn((node, "running"), changes, out)
            self.assertIn((node, "finished"), changes, out)
            self.assertLess(changes.index((node, "running")), changes.index((node, "finished")), out)
        self.assertIn(("approve", "approved"), changes, out)
        self.assertLess(changes.index(("approve", "approved")), changes.index(("notify", "running")), out)
        self.assertEqual(changes[-1], ("(run)", "finished"), out)
        progress = [l for l in seen if l.startswith("progress: ")]
        self.assertTrue(progress, out)
        self.assertRegex(progress[-1], r"^progress: (\d+)/\1 nodes done, run finished$")
        self.assertEqual(seen[-1], "run cli-watch finished")

    def test_watch_json_is_one_item_per_line(self):
        self.launch("cli-watch-json")
        self.wait_status("cli-watch-json", "waiting-approval")
        self.ok("approvals", "approve", "cli-watch-json", "approve")
        r = self.ok("runs", "watch", "cli-watch-json", "--json")
        # the whole log from its first event, in order, ending with run.completed
        items = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([i["type"] for i in items], ["RunEvent"] * len(items))
        self.assertEqual([i["seq"] for i in items], list(range(1, len(items) + 1)))
        self.assertEqual(items[0]["event"], "run.started")
        self.assertIn("approval.decided", [i["event"] for i in items])
        self.assertEqual(items[-1]["event"], "run.completed")
        self.assertEqual(items[-1]["payload"]["status"], "finished")


class RawRpc(harness.ServerTestCase):
    """`anvil rpc` prints the response frame as two-space indented JSON and
    exits by the error map like the other client verbs."""
    CONFIG = CliClient.CONFIG
    FILES = CliClient.FILES

    def rpc(self, *args, token="op-token"):
        return self.server.cli("rpc", *args, "--url", self.server.url, "--token", token)

    def test_readable_json(self):
        r = self.rpc("listWorkflows")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\t", r.stdout)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "{")
        self.assertEqual(lines[1], '  "type": "res",')
        self.assertIn('    {', lines)
        self.assertIn('      "key": "deploy",', lines)
        self.assertEqual(lines[-1], "}")
        self.assertEqual(json.loads(r.stdout)["payload"][0]["key"], "deploy")

    def test_error_frames_exit_by_the_error_map(self):
        cases = [(("getRun", '{"runId":"nope"}'), "op-token", 7, "RunNotFound"),
                 (("launchRun", '{"workflow":"deploy"}'), "read-token", 6, "Forbidden"),
                 (("health",), "bad", 5, "Unauthorized"),
                 (("getRun", '{"runId":1}'), "op-token", 4, "InvalidRequest"),
                 (("noSuchMethod",), "op-token", 7, "MethodNotFound")]
        for args, token, rc, code in cases:
            with self.subTest(args=args):
                r = self.rpc(*args, token=token)
                self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
                self.assertEqual(json.loads(r.stdout)["error"]["code"], code)


if __name__ == "__main__":
    harness.main()
