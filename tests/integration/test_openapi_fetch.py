#!/usr/bin/env python3
"""Third-party tooling on the contract keeps working: openapi-typescript 7
turns openapi.yaml into types, a client written with openapi-fetch over them
(tests/openapi_fetch/check.ts) type-checks with `tsc --strict`, a call with a
wrong member type does not, and the client runs under Bun against the real
binary serving the example workflows. Needs tests/openapi_fetch/node_modules
and tests/client/node_modules (Bun) from scripts/install-deps.sh; fails
(never skips) without them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_conformance import example_config  # noqa: E402

ROOT = harness.SOURCE_DIR
TOOLS = os.path.join(ROOT, "tests", "openapi_fetch")
BIN = os.path.join(TOOLS, "node_modules", ".bin")
BUN = os.path.join(ROOT, "tests", "client", "node_modules", ".bin", "bun")


def run(args, cwd, timeout=180):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class OpenapiFetch(harness.ServerTestCase):
    CONFIG, FILES = example_config()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.work = tempfile.mkdtemp(prefix="anvil-openapi-fetch-")
        os.symlink(os.path.join(TOOLS, "node_modules"), os.path.join(cls.work, "node_modules"))
        for f in ("check.ts", "tsconfig.json"):
            shutil.copy(os.path.join(TOOLS, f), cls.work)
        p = run([os.path.join(BIN, "openapi-typescript"), os.path.join(ROOT, "openapi.yaml"),
                 "-o", os.path.join(cls.work, "schema.d.ts")], cls.work)
        if p.returncode != 0:
            raise AssertionError("openapi-typescript failed:\n" + p.stdout + p.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)
        super().tearDownClass()

    def test_types_check_strictly(self):
        p = run([os.path.join(BIN, "tsc"), "-p", "tsconfig.json"], self.work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_wrong_member_type_does_not_check(self):
        with open(os.path.join(self.work, "check.ts"), encoding="utf-8") as f:
            text = f.read()
        bad = text.replace('{ body: { runId: "run_missing_0001" } }', "{ body: { runId: 42 } }")
        self.assertNotEqual(bad, text)
        with open(os.path.join(self.work, "bad.ts"), "w", encoding="utf-8") as f:
            f.write(bad)
        cfg = json.load(open(os.path.join(self.work, "tsconfig.json"), encoding="utf-8"))
        cfg["files"] = ["bad.ts", "schema.d.ts"]
        with open(os.path.join(self.work, "tsconfig.bad.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        p = run([os.path.join(BIN, "tsc"), "-p", "tsconfig.bad.json"], self.work)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.ts", p.stdout)

    def test_client_runs_against_the_server(self):
        p = run([BUN, "check.ts", self.server.url, "dev-operator-token"], self.work, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["protocol"], 1)
        self.assertTrue(out["runId"].startswith("run_"))
        status, _, doc = self.server.rpc("getRun", {"runId": out["runId"]}, token="dev-operator-token")
        self.assertEqual(status, 200, doc)


if __name__ == "__main__":
    harness.main()
