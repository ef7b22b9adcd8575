#!/usr/bin/env python3
"""Time travel costs, p50/p99 (docs/time-travel.md).

    /usr/bin/python3 bench/time_travel.py [--binary build/anvil] [--runs 20] [--diffs 200]
        [--history 0]

1. rewindRun of a 100-frame run to frame 1: RUNS runs of a 33-task
   sequence whose tasks each write a file (3 frames per task, 100 in all),
   each rewound once (the quota allows 10 per caller per run per hour).
   Measures the call's round trip and the server's own durationMs.
2. getNodeDiff of a 1,000-line change: DIFFS sequential calls on a task
   that wrote a 1,000-line file.
3. The attempt commit: the time a 48-task run takes with versioned and with
   unversioned workspaces (launch to finished, same workflow otherwise).

With --history N, N finished runs of a one-task workflow are launched
first, so the hot paths are measured on a database holding that history
too. Starts `anvil serve` on a loopback port in a temporary directory;
every wait is bounded. Prints a markdown table.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

TOKEN = "bench"
HUNDRED = "name: hundred\n%sroot:\n  sequence:\n" + "".join(
    "    - task: { id: t%02d, run: \"echo %d > f%02d.txt\" }\n" % (i, i, i) for i in range(48))
LINES = "name: lines\nroot:\n  task: { id: write, run: \"seq 1 1000 > lines.txt\" }\n"
ONE = "name: one\nroot:\n  task: { id: t, run: \"echo ok > f.txt\" }\n"
CONFIG = ("listen: 127.0.0.1:0\ndatabase: anvil.db\nauth:\n  mode: token\n  tokens:\n"
          "    %s: { role: admin, scopes: [\"*\"], userId: bench }\n"
          "workflows:\n  hundred: { file: hundred.yaml }\n  plain: { file: plain.yaml }\n"
          "  lines: { file: lines.yaml }\n  one: { file: one.yaml }\n" % TOKEN)


class Server:
    """`anvil serve` in a temporary directory holding `files` (name -> text;
    default: this benchmark's), with `anvil.yaml` among them."""

    def __init__(self, binary, files=None):
        self.dir = tempfile.mkdtemp(prefix="anvil-bench-tt-")
        files = files or {"anvil.yaml": CONFIG, "hundred.yaml": HUNDRED % "",
                          "plain.yaml": (HUNDRED % "versionWorkspace: false\n").replace("name: hundred", "name: plain"),
                          "lines.yaml": LINES, "one.yaml": ONE}
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen([binary, "serve", "--config", "anvil.yaml", "--port-file", port_file],
                                     cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("anvil did not start")
            time.sleep(0.02)
        self.port = int(open(port_file).read())
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def rpc(self, method, params):
        body = json.dumps(params)
        self.conn.request("POST", "/v1/rpc/" + method, body,
                          {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        doc = json.loads(self.conn.getresponse().read())
        if not doc["ok"]:
            raise RuntimeError("%s: %s" % (method, doc["error"]))
        return doc["payload"]

    def wait(self, run_id, status="finished"):
        deadline = time.monotonic() + 60
        while self.rpc("getRun", {"runId": run_id})["status"] != status:
            if time.monotonic() > deadline:
                raise RuntimeError("run %s did not reach %s" % (run_id, status))
            time.sleep(0.005)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def row(name, xs):
    return "| %s | %d | %.2f | %.2f |" % (name, len(xs), pct(xs, 50), pct(xs, 99))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/anvil")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--diffs", type=int, default=200)
    ap.add_argument("--history", type=int, default=0)
    a = ap.parse_args()
    s = Server(os.path.abspath(a.binary))
    try:
        for i in range(a.history):
            s.rpc("launchRun", {"workflow": "one", "input": {}})
        rewind_rtt, rewind_server, frames = [], [], None
        for i in range(a.runs):
            run = s.rpc("launchRun", {"workflow": "hundred", "input": {}})["runId"]
            s.wait(run)
            frames = s.rpc("getRun", {"runId": run})["frameNo"]
            t0 = time.perf_counter()
            j = s.rpc("rewindRun", {"runId": run, "frameNo": 1, "confirm": True})
            rewind_rtt.append((time.perf_counter() - t0) * 1000)
            rewind_server.append(j["durationMs"])
        run = s.rpc("launchRun", {"workflow": "lines", "input": {}})["runId"]
        s.wait(run)
        d = s.rpc("getNodeDiff", {"runId": run, "nodeId": "write"})
        assert d["summary"]["insertions"] == 1000, d["summary"]
        diff_rtt = []
        for _ in range(a.diffs):
            t0 = time.perf_counter()
            s.rpc("getNodeDiff", {"runId": run, "nodeId": "write"})
            diff_rtt.append((time.perf_counter() - t0) * 1000)
        run_ms = {}
        for wf in ("hundred", "plain"):
            xs = []
            for _ in range(5):
                t0 = time.perf_counter()
                run = s.rpc("launchRun", {"workflow": wf, "input": {}})["runId"]
                s.wait(run)
                xs.append((time.perf_counter() - t0) * 1000)
            run_ms[wf] = xs
    finally:
        s.stop()
    print("history: %d finished runs before measuring; rewound runs had %s frames" % (a.history, frames))
    print()
    print("| measurement | n | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    print(row("rewindRun of a 100-frame run to frame 1 (round trip)", rewind_rtt))
    print(row("rewindRun, server durationMs", rewind_server))
    print(row("getNodeDiff of a 1,000-line change (round trip)", diff_rtt))
    print(row("48-task run, versioned workspace (launch to finished)", run_ms["hundred"]))
    print(row("48-task run, versionWorkspace: false", run_ms["plain"]))
    print()
    print("commit cost per task attempt, from the medians: %.2f ms" %
          ((statistics.median(run_ms["hundred"]) - statistics.median(run_ms["plain"])) / 48))


if __name__ == "__main__":
    main()
