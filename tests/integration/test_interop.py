"""The drop-in test (CTest client.interop, label `client`; `make interop`).

Starts `anvil serve` with the workflows tests/client/interop.ts expects and
runs that script under the Bun of the client's node_modules: every v1
method the upstream's published client exposes, over HTTP and over the
WebSocket, the event streams and the DevTools stream, asserting what comes
back (docs/compatibility.md).

The client comes from tests/client/node_modules (scripts/install-deps.sh), or
from the folder given with --client-dir, where `make interop` installs it
from npm afresh. Without it the test fails, saying so: it never skips.

    python3 tests/integration/test_interop.py --anvil build/anvil [--client-dir DIR]
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_upstream_client import run_script  # noqa: E402

import yaml  # noqa: E402

SCRIPT_TIMEOUT_S = 240
TOKEN = "interop-admin-token"
READ_TOKEN = "interop-read-token"

FLOW = {
    "name": "flow",
    "description": "A run's whole life: a task, an approval, a signal, a parallel, a static end.",
    "root": {"sequence": [
        {"task": {"id": "prepare",
                  "run": "echo 'sha ${input.sha}' > notes.txt"
                         " && echo '{\"prepared\":true,\"sha\":\"${input.sha}\"}'"}},
        {"approval": {"id": "gate", "title": "Ship it?"}},
        {"signal": {"id": "wait", "name": "go", "correlationKey": "${input.ticket}"}},
        {"parallel": [
            {"task": {"id": "left", "output": {"side": "left"}}},
            {"task": {"id": "right", "run": "echo '{\"side\":\"right\"}'"}},
        ]},
        {"task": {"id": "done", "output": {"done": True}}},
    ]},
}
SLOW = {"name": "slow", "root": {"task": {"id": "nap", "run": "sleep 30"}}}

CONFIG = """\
listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    %s: { role: admin, scopes: ["*"], userId: "user:interop" }
    %s: { role: viewer, scopes: ["run:read"], userId: "user:reader" }
workflows:
  flow: { file: wf/flow.yaml }
  slow: { file: wf/slow.yaml }
""" % (TOKEN, READ_TOKEN)

_CLIENT_DIR = None


class Interop(unittest.TestCase):

    def test_every_method_both_transports(self):
        here = os.path.join(harness.SOURCE_DIR, "tests", "client")
        client_dir = _CLIENT_DIR or here
        bun = os.path.join(client_dir, "node_modules", ".bin", "bun")
        if not os.path.exists(bun):
            self.fail("%s is missing: the upstream client is not installed. Run "
                      "scripts/install-deps.sh (or `make interop`, which installs it afresh)." % bun)
        script = os.path.join(client_dir, "interop.ts")
        if client_dir != here:
            for name in ("interop.ts", "check.ts"):   # run from beside that node_modules
                with open(os.path.join(here, name)) as src, open(os.path.join(client_dir, name), "w") as dst:
                    dst.write(src.read())
        files = {"wf/flow.yaml": yaml.safe_dump(FLOW, sort_keys=False),
                 "wf/slow.yaml": yaml.safe_dump(SLOW, sort_keys=False)}
        server = harness.Server(CONFIG, files)
        try:
            server.start()
            run_script(self, server, bun, script, [TOKEN, READ_TOKEN, "--keep-going"], client_dir,
                       SCRIPT_TIMEOUT_S)
        finally:
            try:
                server.stop()
            finally:
                server.cleanup()


if __name__ == "__main__":
    if "--client-dir" in sys.argv:
        i = sys.argv.index("--client-dir")
        _CLIENT_DIR = os.path.abspath(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    harness.main()
