"""libanvil-client against the real binary: runs tests/client_c/test_client_c.c
(built next to the anvil binary) with a fresh server's URL and tokens. The C
program makes the assertions (blocking and event-loop calls, typed errors,
the WebSocket and a resumed run stream through an approval); this file
starts the server and requires the program to pass and to have checked."""
import os
import re
import subprocess
import sys
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


class CClient(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
    read-token: { role: viewer, scopes: ["run:read"] }
workflows:
  deploy: { file: workflows/deploy.yaml }
"""
    FILES = {"workflows/deploy.yaml": DEPLOY}

    def test_c_client_program(self):
        prog = os.path.join(os.path.dirname(os.path.abspath(harness.anvil_bin())), "test_client_c")
        self.assertTrue(os.access(prog, os.X_OK), "%s is not built" % prog)
        r = subprocess.run([prog, self.server.url, "op-token", "read-token",
                            "http://127.0.0.1:%d" % harness.unused_port()],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"(\d+) checks, 0 failed", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertGreater(int(m.group(1)), 50, r.stdout)


if __name__ == "__main__":
    harness.main()
