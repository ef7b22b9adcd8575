"""The command line: check-config, serve's failure modes, token issue /
revoke, the generic `anvil rpc` client, and usage errors (exit status 2)."""
import json
import os
import re
import shutil
import socket
import time
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run_cli  # noqa: E402

WF = "name: Deploy\ndescription: d\nroot:\n  task: { id: a, output: { ok: true } }\n"


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="anvil-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, rel, text):
        p = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    def cli(self, *args, **kw):
        kw.setdefault("cwd", self.dir)
        return run_cli(*args, **kw)


class CheckConfig(TempDir):
    def test_valid_config(self):
        self.write("workflows/deploy.yaml", WF)
        cfg = self.write("anvil.yaml", """listen: 127.0.0.1:7331
database: state/anvil.db
maxBodyBytes: 4096
auth:
  mode: token
  tokens:
    t1: { role: operator, scopes: ["*"] }
workflows:
  deploy: { file: workflows/deploy.yaml, schedule: "0 8 * * 1-5" }
  again: { file: workflows/deploy.yaml }
""")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "%s: ok (2 workflows, auth token)" % cfg)

    def test_empty_config_is_valid(self):
        cfg = self.write("empty.yaml", "")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok (0 workflows, auth open)", r.stdout)

    def test_every_problem_with_file_and_line(self):
        self.write("wf/ok.yaml", WF)
        cfg = self.write("bad.yaml", """listen: nowhere
maxBodyBytes: lots
bogusKey: 1
auth:
  mode: magic
  tokens:
    t1: { scopes: [run:read] }
workflows:
  deploy: { file: wf/missing.yaml }
  "bad name!": { file: wf/ok.yaml }
""")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.strip().splitlines()
        expected = [(1, "listen"), (2, "maxBodyBytes"), (3, "bogusKey"), (5, "auth.mode"),
                    (7, "auth.tokens.t1.role"), (9, "workflows.deploy.file"), (10, "workflows.bad name!")]
        problems = [l for l in lines if l.startswith(cfg + ":")]
        found = []
        for l in problems:
            m = re.match(re.escape(cfg) + r":(\d+):(\d+): (\S+)", l)
            if m:
                found.append((int(m.group(1)), m.group(3).rstrip(":")))
        for line, key in expected:
            self.assertTrue(any(fl == line and fk.startswith(key.split()[0]) for fl, fk in found),
                            "no problem reported at line %d for %s:\n%s" % (line, key, r.stderr))
        self.assertEqual(lines[-1], "%s: %d problems" % (cfg, len(expected)))

    def test_workflow_file_problems_name_the_workflow_file(self):
        wf = self.write("wf/broken.yaml", "name: x\nroot: [\n")
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wf/broken.yaml }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(wf) + r":\d+(:\d+)?: ")

    def test_unknown_scopes_are_reported_with_their_line(self):
        cfg = self.write("anvil.yaml",
                         "auth:\n"
                         "  mode: token\n"
                         "  tokens:\n"
                         "    tok-a: { role: r, scopes: [run:read, run:raed] }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(cfg) + r":4:\d+: auth\.tokens\..*scopes\[1\]: unknown scope \"run:raed\"")

    def test_jwt_without_secret(self):
        cfg = self.write("anvil.yaml", "auth:\n  mode: jwt\n  jwt: { issuer: x }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("auth.jwt.secret", r.stderr)
        self.assertRegex(r.stderr, re.escape(cfg) + r":\d+:\d+: auth.jwt.secret")

    def test_duplicate_token_id(self):
        cfg = self.write("anvil.yaml", "auth:\n  mode: token\n  tokens:\n"
                                       "    a: { role: r, tokenId: same }\n"
                                       "    b: { role: r, tokenId: same }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(cfg) + r":5:\d+: .*same")

    def test_yaml_syntax_error(self):
        cfg = self.write("anvil.yaml", "listen: 127.0.0.1:1\nauth: [\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(cfg) + r":\d+(:\d+)?: ")

    def test_missing_file(self):
        r = self.cli("check-config", os.path.join(self.dir, "nope.yaml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope.yaml", r.stderr)

    def test_usage_errors(self):
        for args in [("check-config",), ("check-config", "a.yaml", "b.yaml"), ("check-config", "--frob", "a.yaml")]:
            with self.subTest(args=args):
                r = self.cli(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("usage", r.stderr)
        r = self.cli("check-config", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage", r.stdout)


class ConfigFiles(TempDir):
    """Only regular files are read, within documented limits, each problem
    reported once (docs/config.md#files-and-limits). run_cli's timeout
    turns a hang on a FIFO into a failure."""

    def problems(self, r):
        return [l for l in r.stderr.strip().splitlines()[:-1]]

    def test_workflow_fifo_is_refused_without_reading_it(self):
        os.mkfifo(os.path.join(self.dir, "wf.yaml"))
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wf.yaml }\n")
        for args in (("check-config", cfg), ("serve", "--config", cfg)):
            r = self.cli(*args, timeout=20)
            self.assertNotEqual(r.returncode, 0, r.stderr)
            self.assertIn("workflows.w.file: cannot use %s: not a regular file (a FIFO)"
                          % os.path.join(self.dir, "wf.yaml"), r.stderr)
        r = self.cli("check-config", cfg, timeout=20)
        self.assertEqual(len(self.problems(r)), 1, r.stderr)

    def test_config_fifo_and_directory(self):
        os.mkfifo(os.path.join(self.dir, "pipe.yaml"))
        r = self.cli("check-config", os.path.join(self.dir, "pipe.yaml"), timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a regular file (a FIFO)", r.stderr)
        os.mkdir(os.path.join(self.dir, "wfdir"))
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wfdir }\n")
        r = self.cli("check-config", cfg, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a regular file (a directory)", r.stderr)
        self.assertEqual(len(self.problems(r)), 1, r.stderr)

    def test_size_limits(self):
        big = "name: big\nroot:\n  task: { id: a, output: { pad: \"%s\" } }\n" % ("x" * (1024 * 1024))
        self.write("wf/big.yaml", big)
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wf/big.yaml }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("file is %d bytes; the limit is 1048576" % len(big), r.stderr)
        cfg = self.write("huge.yaml", "# %s\nlisten: 127.0.0.1:1\n" % ("y" * (1024 * 1024)))
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the limit is 1048576", r.stderr)

    def test_deep_nesting_is_refused_at_its_position(self):
        deep = "name: deep\nroot:\n  task: { id: a, output: { x: %s%s } }\n" % ("[" * 20000, "]" * 20000)
        wf = self.write("wf/deep.yaml", deep)
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wf/deep.yaml }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(wf) + r":3:\d+: workflows.w.file: nested deeper than 256 levels")
        self.assertEqual(len(self.problems(r)), 1, r.stderr)
        cfg = self.write("deep.yaml", "listen: %s%s\n" % ("{a: " * 300, "}" * 300))
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nested deeper than 256 levels", r.stderr)

    def test_empty_workflow_file_is_one_problem(self):
        self.write("wf/empty.yaml", "")
        cfg = self.write("anvil.yaml", "workflows:\n  w: { file: wf/empty.yaml }\n")
        r = self.cli("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count("workflow file is empty"), 1, r.stderr)
        self.assertTrue(r.stderr.strip().endswith(": 1 problem"), r.stderr)


class TopLevel(TempDir):
    def test_no_arguments(self):
        r = self.cli()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_unknown_command(self):
        r = self.cli("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("frobnicate", r.stderr)

    def test_help_and_version(self):
        r = self.cli("help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("serve", "check-config", "token issue", "token revoke", "rpc"):
            self.assertIn(cmd, r.stdout)
        r = self.cli("version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("v1", r.stdout)

    def test_serve_with_broken_config(self):
        cfg = self.write("anvil.yaml", "listen: 127.0.0.1:0\nbogusKey: 1\n")
        port_file = os.path.join(self.dir, "port")
        r = self.cli("serve", "--config", cfg, "--port-file", port_file, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(cfg) + r":2:\d+: bogusKey")
        self.assertFalse(os.path.exists(port_file))

    def test_serve_accepts_a_host_name_and_reads_anvil_yaml_by_default(self):
        self.write("anvil.yaml", "listen: localhost:0\n")
        port_file = os.path.join(self.dir, "port")
        proc = subprocess.Popen([harness.anvil_bin(), "serve", "--port-file", port_file], cwd=self.dir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 20
            while not os.path.exists(port_file) and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            self.assertTrue(os.path.exists(port_file), "server did not start")
            with open(port_file) as f:
                port = int(f.read())
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:80])
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("using ./anvil.yaml", err)
        self.assertIn("listening on http://localhost:", err)

    def test_serve_usage_errors(self):
        for args in [("serve", "extra"), ("serve", "--frob"), ("serve", "--listen", "nowhere")]:
            with self.subTest(args=args):
                r = self.cli(*args, timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)

    def test_serve_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            cfg = self.write("anvil.yaml", "listen: 127.0.0.1:%d\n" % s.getsockname()[1])
            r = self.cli("serve", "--config", cfg, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("listen", r.stderr)
        finally:
            s.close()


class TokenUsage(TempDir):
    def test_usage_errors_exit_2_and_print_no_token(self):
        db = os.path.join(self.dir, "t.db")
        cases = [
            ("token",),
            ("token", "frob"),
            ("token", "issue", "--scopes", "run:read", "--db", db),
            ("token", "issue", "--role", "r", "--db", db),
            ("token", "issue", "--role", "", "--scopes", "run:read", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", " , ", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", "run:read", "--ttl", "soon", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", "run:read", "--ttl", "0s", "--db", db),
            # a bare number would silently mean milliseconds
            ("token", "issue", "--role", "r", "--scopes", "run:read", "--ttl", "24", "--db", db),
            # a typo'd scope would never match anything
            ("token", "issue", "--role", "r", "--scopes", "run:read,run:raed", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", "run:read", "--token-id", "has space", "--db", db),
            ("token", "issue", "--role", "r", "--role", "s", "--scopes", "run:read", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", "run:read", "--frob", "x", "--db", db),
            ("token", "issue", "--role", "r", "--scopes", "run:read", "extra", "--db", db),
            ("token", "issue", "--role"),
            ("token", "revoke", "--db", db),
            ("token", "revoke", "a", "b", "--db", db),
            ("token", "revoke", "a", "--role", "r", "--db", db),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.cli(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn("usage", r.stderr)

    def test_issue_prints_one_token(self):
        db = os.path.join(self.dir, "t.db")
        r = self.cli("token", "issue", "--role", "operator", "--scopes", "run:read,run:write",
                     "--user", "user:u", "--ttl", "24h", "--db", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^anvil_[0-9a-f]{64}\n$")
        self.assertIn("run:read, run:write", r.stderr)
        self.assertIn("user:u", r.stderr)
        self.assertTrue(os.path.exists(db))

    def test_issue_with_broken_config_refuses(self):
        cfg = self.write("anvil.yaml", "bogusKey: 1\n")
        r = self.cli("token", "issue", "--role", "r", "--scopes", "run:read", "--config", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")

    def test_issue_refuses_a_revoked_token_id(self):
        db = os.path.join(self.dir, "t.db")
        r = self.cli("token", "revoke", "gone", "--db", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli("token", "issue", "--role", "r", "--scopes", "run:read", "--token-id", "gone",
                     "--db", db)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "", "no token may be printed")
        self.assertIn("revoked", r.stderr)

    def test_every_kind_of_grant_is_accepted(self):
        db = os.path.join(self.dir, "t.db")
        r = self.cli("token", "issue", "--role", "r", "--db", db, "--scopes",
                     "run:admin,execute,launchRun,runs.create,cron.*,*")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_revoke_unknown_id_is_recorded(self):
        db = os.path.join(self.dir, "t.db")
        r = self.cli("token", "revoke", "never-issued", "--db", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("never-issued", r.stdout)


class RpcClient(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
database: data/anvil.db
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"] }
    read-token: { role: viewer, scopes: ["run:read"] }
workflows:
  deploy: { file: workflows/deploy.yaml }
"""
    FILES = {"workflows/deploy.yaml": WF, "data/.keep": ""}

    def rpc(self, *args, env=None):
        return self.server.cli("rpc", *args, env=env)

    def test_health(self):
        r = self.rpc("health", "--url", self.server.url, "--token", "op-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertIs(doc["ok"], True)
        self.assertEqual(doc["payload"]["apiVersion"], "v1")

    def test_params_and_options_in_any_order(self):
        r = self.rpc("--token", "op-token", "listWorkflows", '{"filter": {"hasUi": false}}', "--url", self.server.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([w["key"] for w in json.loads(r.stdout)["payload"]], ["deploy"])

    def test_environment(self):
        r = self.rpc("health", env={"ANVIL_URL": self.server.url, "ANVIL_TOKEN": "op-token"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["ok"])

    def test_error_frames_exit_by_the_error_map(self):
        # docs/cli.md#exit-statuses: the code's HTTP status picks the exit
        r = self.rpc("launchRun", '{"workflow": "deploy"}', "--url", self.server.url, "--token", "read-token")
        self.assertEqual(r.returncode, 6)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["error"]["code"], "Forbidden")
        self.assertEqual(doc["error"]["requiredScope"], "run:write")
        r = self.rpc("health", "--url", self.server.url)
        self.assertEqual(r.returncode, 5)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "Unauthorized")
        r = self.rpc("runs.get", '{"runId": "r1"}', "--url", self.server.url, "--token", "op-token")
        self.assertEqual(r.returncode, 7)
        err = json.loads(r.stdout)["error"]
        self.assertEqual(err["code"], "RunNotFound")
        self.assertEqual(err["message"], "Run not found: r1")
        r = self.rpc("getRun", '{"runId": 1}', "--url", self.server.url, "--token", "op-token")
        self.assertEqual(r.returncode, 4)
        self.assertEqual(json.loads(r.stdout)["error"]["path"], "$.params.runId")

    def test_usage_errors(self):
        for args in [(), ("health", "not json"), ("health", "[1]"), ("health", "{}", "extra"),
                     ("health", "--url", "ftp://x"), ("health", "--url", "http://"), ("health", "--frob"),
                     ("bad/method",)]:
            with self.subTest(args=args):
                r = self.rpc(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = self.rpc("health", "--url", "http://127.0.0.1:%d" % port, "--token", "op-token")
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stdout, "")

    def test_issued_token_through_the_config_database(self):
        # --config: the database is the config's (relative to the config file)
        r = self.server.cli("token", "issue", "--role", "bot", "--scopes", "run:write",
                            "--config", self.server.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertIn(os.path.join(self.server.dir, "data", "anvil.db"), r.stderr)
        m = re.search(r"issued token id (\S+)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        token_id = m.group(1)
        r = self.rpc("launchRun", '{"workflow": "deploy"}', "--url", self.server.url, "--token", token)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        run = json.loads(r.stdout)["payload"]
        self.assertEqual(run["workflow"], "deploy")
        # the run was launched by that issued token
        r = self.rpc("getRun", json.dumps({"runId": run["runId"]}), "--url", self.server.url, "--token", token)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        view = json.loads(r.stdout)["payload"]
        self.assertEqual((view["tokenId"], view["role"], view["scopes"], view["ownerId"]),
                         (token_id, "bot", ["run:write"], None))
        r = self.rpc("hijackRun", '{"runId": "r"}', "--url", self.server.url, "--token", token)
        self.assertEqual(json.loads(r.stdout)["error"]["requiredScope"], "run:admin")


if __name__ == "__main__":
    harness.main()
