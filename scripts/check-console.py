#!/usr/bin/env python3
"""The operator console's structural promises (docs/console.md), checked on
its sources in console/:

- every RPC method it calls exists in openapi.yaml, over the transport it
  uses (`rpc(...)` is HTTP; a Live socket's `request(...)` is WebSocket),
  so a contract change that drops or moves a method fails here, not in a
  browser;
- nothing is loaded from anywhere else (no http://, https://, ws:// or
  wss:// URL), and no markup or code is built from strings (no innerHTML,
  outerHTML, insertAdjacentHTML, document.write, srcdoc, eval, Function()
  or a string given to setTimeout/setInterval), so server data is only
  ever text on the page.

Usage: check-console.py [--top DIR]   (exit 1 with the problems listed)
"""
import argparse
import os
import re
import sys

import yaml

CALL = re.compile(r'\b(rpc|request)\(\s*"([^"]+)"')
FORBIDDEN = re.compile(
    r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|srcdoc|Function\s*\()"
    r"|\bset(?:Timeout|Interval)\(\s*[\"'`]"     # code in a string
    r"|\b(?:https?|wss?):?//"
    r"|[\"'`(=]\s*//[A-Za-z0-9]")                 # a protocol-relative URL


def methods(spec_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    out = {}
    for path, item in spec.get("paths", {}).items():
        if not path.startswith("/v1/rpc/"):
            continue
        op = item.get("post") or {}
        out[path[len("/v1/rpc/"):]] = op.get("x-smithers-transport", "http+websocket")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    a = ap.parse_args()
    known = methods(os.path.join(a.top, "openapi.yaml"))
    problems, calls = [], 0
    src = os.path.join(a.top, "console")
    for root, _, names in os.walk(src):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, a.top)
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
            for no, line in enumerate(lines, 1):
                m = FORBIDDEN.search(line)
                if m:
                    problems.append(f"{rel}:{no}: '{m.group(0)}' is not allowed in the console")
                if not name.endswith(".js"):
                    continue
                for kind, method in CALL.findall(line):
                    calls += 1
                    transport = known.get(method)
                    want = "http" if kind == "rpc" else "websocket"
                    if transport is None:
                        problems.append(f"{rel}:{no}: {method} is not a method of openapi.yaml")
                    elif want not in transport.split("+"):
                        problems.append(f"{rel}:{no}: {method} is {transport}-only, called over {want}")
    if calls == 0:
        problems.append("console/: no RPC calls found; is the pattern out of date?")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"check-console: {calls} calls, all in the contract; no external URLs or HTML strings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
