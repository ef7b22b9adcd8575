"""The upstream's published client against the real binary (CTest
client.upstream, label `client`).

Starts `anvil serve` (harness.Server) with the workflows `tt` and `dt` and
an admin token with every scope, then runs each script of tests/client under
the Bun that tests/client's node_modules provides. The scripts drive the
server with @smithers-orchestrator/gateway-client 0.32.0, exactly as a user
moving from the upstream would (tests/client/README.md):

- time_travel.ts: launchRun, getRun, getNodeDiff, getDevToolsSnapshot,
  rewindRun, resumeRun and a RunNotFound error;
- devtools.ts: the client's own DevTools mapping (snapshotToGatewayRunNode)
  on getDevToolsSnapshot's answer and on the streamDevTools stream with its
  deltas applied: every node's name, kind and live state.

node_modules comes from scripts/install-deps.sh (`npm ci` in tests/client).
When it is missing this test fails, saying so: it never skips.

    python3 tests/integration/test_upstream_client.py --anvil build/anvil
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402  (python3-yaml, like harness.contract())

CLIENT_DIR = os.path.join(harness.SOURCE_DIR, "tests", "client")
BUN = os.path.join(CLIENT_DIR, "node_modules", ".bin", "bun")
SCRIPT_TIMEOUT_S = 120      # the scripts bound each wait (20 s) and each call (15 s)

TOKEN = "upstream-admin-token"

# The workflow tests/client/time_travel.ts expects (its EXPECTED): three tasks
# in a sequence, each changing files in the run's workspace and printing a
# JSON object as its last stdout line (the node's output row).
TT = {
    "name": "tt",
    "description": "Three file-writing steps, for time travel through the upstream client.",
    "root": {"sequence": [
        {"task": {"id": "one",
                  "run": "printf 'alpha\\nbeta\\ngamma\\n' > a.txt"
                         " && printf 'bee\\n' > b.txt"
                         " && echo '{\"wrote\":[\"a.txt\",\"b.txt\"]}'"}},
        {"task": {"id": "two",
                  "run": "printf 'alpha\\nBETA\\ngamma\\n' > a.txt"
                         " && rm b.txt"
                         " && echo '{\"modified\":\"a.txt\",\"deleted\":\"b.txt\"}'"}},
        {"task": {"id": "three",
                  "run": "printf 'C\\0B\\0I\\0N\\n' > c.bin"
                         " && echo '{\"wrote\":\"c.bin\"}'"}},
    ]},
}

# The workflow tests/client/devtools.ts expects (its NODES): every node kind
# Anvil has, so the client's mapping draws each of them. The run waits on
# `approve` and `review` until the script signals and approves.
DT = {
    "name": "dt",
    "description": "Every node kind, for the DevTools tree through the upstream client.",
    "root": {"sequence": [
        {"task": {"id": "build", "run": "echo '{\"built\":true}'", "retries": 1}},
        {"parallel": [
            {"task": {"id": "notes", "output": {"note": "static"}}},
            {"approval": {"id": "approve", "title": "Ship it?"}},
            {"signal": {"id": "review", "name": "review.done"}},
        ]},
        {"task": {"id": "ship", "output": {"shipped": True}}},
    ]},
}

CONFIG = """\
listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    %s: { role: admin, scopes: ["*"], userId: "user:upstream-client" }
workflows:
  tt: { file: wf/tt.yaml }
  dt: { file: wf/dt.yaml }
""" % TOKEN


def client_env():
    env = dict(os.environ)
    for k in ("ANVIL_URL", "ANVIL_TOKEN", "NODE_OPTIONS"):
        env.pop(k, None)
    env["DO_NOT_TRACK"] = "1"       # no telemetry or crash uploads from Bun
    env["NO_COLOR"] = "1"
    return env


class UpstreamClient(unittest.TestCase):

    def test_time_travel(self):
        self.client_script("time_travel.ts")

    def test_devtools(self):
        self.client_script("devtools.ts")

    def client_script(self, name):
        """Run tests/client/NAME against a fresh server; its exit status is
        the verdict, its stdout (one JSON line per check) the record."""
        if not os.path.exists(BUN):
            self.fail("%s is missing: the upstream client is not installed. "
                      "Run scripts/install-deps.sh (it runs `npm ci` in tests/client)." % BUN)
        version = subprocess.run([BUN, "--version"], capture_output=True, text=True,
                                 timeout=60, env=client_env(), stdin=subprocess.DEVNULL)
        if version.returncode != 0:
            self.fail("%s --version failed (exit %s): %s%s\nRun scripts/install-deps.sh again."
                      % (BUN, version.returncode, version.stdout, version.stderr))

        server = harness.Server(CONFIG, {"wf/tt.yaml": yaml.safe_dump(TT, sort_keys=False),
                                         "wf/dt.yaml": yaml.safe_dump(DT, sort_keys=False)})
        try:
            server.start()
            run_script(self, server, BUN, os.path.join(CLIENT_DIR, name), [TOKEN], harness.SOURCE_DIR,
                       SCRIPT_TIMEOUT_S)
        finally:
            try:
                server.stop()
            finally:
                server.cleanup()


def run_script(test, server, bun, script, args, cwd, timeout_s):
    """Run a tests/client script under `bun` against `server` (URL first,
    then `args`); fail `test` with its output and the server's log unless
    it exits 0. Its stdout (one JSON line per check) goes to stderr."""
    name = os.path.splitext(os.path.basename(script))[0]
    # --no-install: never let Bun fetch a missing package at run time.
    cmd = [bun, "--no-install", script, server.url] + list(args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                              env=client_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        test.fail("%s did not finish within %d s\n--- stdout\n%s\n--- stderr\n%s"
                  "\n--- anvil stderr\n%s"
                  % (script, timeout_s, _text(e.stdout), _text(e.stderr), server.stderr()[-4000:]))
    if proc.returncode != 0:
        test.fail("%s exited with status %d: %s\n--- stdout (one line per check)\n%s"
                  "--- stderr\n%s--- anvil stderr (last 4000 characters)\n%s"
                  % (script, proc.returncode, _last_failure(proc.stderr, name), proc.stdout,
                     proc.stderr, server.stderr()[-4000:]))
    sys.stderr.write(proc.stdout)


def _text(b):
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode("utf-8", "replace")


def _last_failure(stderr, script="time_travel"):
    prefix = script + ": FAIL "
    fails = [line for line in stderr.splitlines() if line.startswith(prefix)]
    return fails[0][len(script) + 2:] if fails else "(no FAIL line)"


if __name__ == "__main__":
    harness.main()
