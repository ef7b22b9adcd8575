#!/usr/bin/env python3
"""tests/codegen/test_client_regen.py PYTHON CC — adding a method to the
spec and regenerating updates the C client with no hand edit.

Copies tests/codegen/fixture.yaml, adds an operation (`notes.add`, both
transports) to the copy, runs the generator into a scratch folder, and
checks that the C client's header declares the new method's blocking,
event-loop and WebSocket functions, that its absence in the unmodified
fixture's output is real, and that the regenerated client compiles with
the runtime's headers (CC -fsyntax-only -Werror)."""
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(SRC, "codegen", "anvil_codegen.py")
FUNCS = ["anvil_client_notes_add(", "anvil_client_notes_add_async(", "anvil_client_ws_notes_add(",
         "anvil_client_ws_notes_add_async("]

NEW_OP = {
    "post": {
        "operationId": "notes.add", "summary": "Add a note",
        "x-smithers-method": "notes.add", "x-smithers-required-scope": "greet:write",
        "x-smithers-transport": "http+websocket", "x-smithers-errors": ["InvalidRequest"],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"text": {"type": "string"}},
            "required": ["text"], "additionalProperties": False}}}},
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "properties": {"payload": {"type": "object", "properties": {"id": {"type": "integer"}},
                                       "required": ["id"], "additionalProperties": False}}}}}}},
    }
}


def generate(spec, out):
    r = subprocess.run([sys.argv[1], GEN, "--spec", spec, "--out", out], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("generator failed: " + r.stderr)
    with open(os.path.join(out, "clients", "c", "anvil_client_methods.h"), encoding="utf-8") as f:
        return f.read()


def main():
    cc = sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        before = generate(os.path.join(HERE, "fixture.yaml"), os.path.join(tmp, "before"))
        for fn in FUNCS:
            if fn in before:
                failures.append("%s already in the fixture's client" % fn)
        with open(os.path.join(HERE, "fixture.yaml"), encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        spec["paths"]["/v1/rpc/notes.add"] = NEW_OP
        spec_path = os.path.join(tmp, "spec.yaml")
        with open(spec_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        out = os.path.join(tmp, "after")
        after = generate(spec_path, out)
        for fn in FUNCS:
            if fn not in after:
                failures.append("%s missing after regenerating" % fn)
        if "anvil_notes_add_request" not in after:
            failures.append("the new method's request type is not used")
        r = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                            "-I", os.path.join(out, "clients", "c"), "-I", out,
                            "-I", os.path.join(SRC, "runtime", "client"),
                            "-I", os.path.join(SRC, "runtime", "contract"),
                            "-I", os.path.join(SRC, "runtime", "base"),
                            os.path.join(out, "clients", "c", "anvil_client_methods.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append("the regenerated client does not compile:\n" + r.stderr)
    for f in failures:
        print("FAIL", f)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
