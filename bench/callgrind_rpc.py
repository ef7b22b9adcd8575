#!/usr/bin/env python3
"""Instructions per RPC, counted by callgrind: a noise-free A/B of two builds.

    /usr/bin/python3 bench/callgrind_rpc.py OLD_BINARY NEW_BINARY [--requests N]

wrk's req/s on the shared 2-core machines moves by 10-30 % from run to run;
callgrind's instruction count for the same binary and requests is
repeatable, so it tells whether a change made a hot path cheaper or dearer.
For each binary and each method (health, listWorkflows, launchRun of a
one-task static workflow) it starts `anvil serve` under
`valgrind --tool=callgrind`, warms up with 50 requests, zeroes the
counters, sends N sequential keep-alive requests, dumps, and prints the
instructions per request and the new/old ratio. Loopback only; every wait
is bounded. Needs valgrind (callgrind_control).
"""
import argparse
import glob
import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time

WORKFLOW = "name: one\nroot:\n  task: { id: t, output: { v: \"${input.x}\" } }\n"
CONFIG = ("listen: 127.0.0.1:0\ndatabase: anvil.db\nworkflows:\n  one: { file: one.yaml }\n"
          "auth:\n  mode: token\n  tokens:\n    t: { role: operator, scopes: [\"*\"] }\n")
BODIES = {
    "health": "{}",
    "listWorkflows": "{}",
    "launchRun": "{\"workflow\":\"one\",\"input\":{\"x\":\"y\"}}",
}


def instructions(binary, method, n):
    d = tempfile.mkdtemp(prefix="anvil-cg-")
    try:
        with open(os.path.join(d, "one.yaml"), "w") as f:
            f.write(WORKFLOW)
        with open(os.path.join(d, "anvil.yaml"), "w") as f:
            f.write(CONFIG)
        port_file, out = os.path.join(d, "port"), os.path.join(d, "cg.out")
        p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary,
                              "serve", "--config", os.path.join(d, "anvil.yaml"), "--port-file",
                              port_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (os.path.exists(port_file) and open(port_file).read().strip()):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("anvil did not start under valgrind")
                time.sleep(0.1)
            c = http.client.HTTPConnection("127.0.0.1", int(open(port_file).read()), timeout=60)

            def call():
                c.request("POST", "/v1/rpc/" + method, body=BODIES[method],
                          headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError("%s answered %d" % (method, r.status))

            for _ in range(50):
                call()
            subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n):
                call()
            subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # The dump taken after the N requests is the numbered file.
        for f in sorted(glob.glob(out + ".*")):
            for line in open(f):
                if line.startswith("summary:"):
                    return int(line.split()[1]) / n
        raise RuntimeError("no callgrind dump")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    print("| method | old instructions/request | new | new/old |")
    print("| --- | ---: | ---: | ---: |")
    for method in BODIES:
        old = instructions(args.old, method, args.requests)
        new = instructions(args.new, method, args.requests)
        print("| %s | %.0f | %.0f | %.4f |" % (method, old, new, new / old))


if __name__ == "__main__":
    main()
