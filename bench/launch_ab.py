#!/usr/bin/env python3
"""Durable launches per second, two builds alternated in one run.

    /usr/bin/python3 bench/launch_ab.py OLD_BINARY NEW_BINARY [--rounds 3] [--duration 8]
        [--connections 16]

For each round and each binary: a fresh database, `anvil serve` with token
auth and a one-task static workflow (the run has finished when its launch
is answered), 2 s of warm-up, then wrk posting launchRun over
--connections keep-alive connections for --duration seconds. Recorded:
launches/s, p50/p99 latency, the server's CPU per launch (utime+stime from
/proc/PID/stat around the wrk run), and its read/write syscalls per launch
(/proc/PID/io syscr/syscw, which do not depend on the machine's load).
After the server stops, every answered launch is checked to be in the
database as a finished run (a launch answered 200 but not stored would be a
durability bug, not a speed-up).

Prints a markdown table with new/old ratios (medians over the rounds).
Loopback only; every wait is bounded.
"""
import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile

from engine import TOKEN, free_port, wait_port, wrk as wrk_post

BODY = '{"workflow":"one","input":{"x":"y"}}'
WORKFLOW = 'name: one\nroot:\n  task: { id: t, output: { v: "${input.x}" } }\n'


def proc_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def proc_io(pid):
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, v = line.split(":")
            out[k.strip()] = int(v)
    return out


def wrk(port, seconds, connections):
    return wrk_post("http://127.0.0.1:%d/v1/rpc/launchRun" % port, BODY, seconds, connections)


def measure(binary, seconds, connections):
    d = tempfile.mkdtemp(prefix="anvil-launch-ab-")
    port = free_port()
    with open(os.path.join(d, "one.yaml"), "w") as f:
        f.write(WORKFLOW)
    with open(os.path.join(d, "anvil.yaml"), "w") as f:
        f.write("listen: 127.0.0.1:%d\ndatabase: anvil.db\nworkflows:\n  one: { file: one.yaml }\n"
                "auth:\n  mode: token\n  tokens:\n    %s: { role: operator, scopes: [\"*\"] }\n"
                % (port, TOKEN))
    p = subprocess.Popen([binary, "serve", "--config", "anvil.yaml"], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, p)
        warm = wrk(port, 2, connections)
        cpu0, io0 = proc_cpu_ticks(p.pid), proc_io(p.pid)
        r = wrk(port, seconds, connections)
        cpu1, io1 = proc_cpu_ticks(p.pid), proc_io(p.pid)
        hz = os.sysconf("SC_CLK_TCK")
        n = max(r["requests"], 1)
        r["cpu_us"] = (cpu1 - cpu0) * 1e6 / hz / n
        r["syscr"] = (io1["syscr"] - io0["syscr"]) / n
        r["syscw"] = (io1["syscw"] - io0["syscw"]) / n
        answered = warm["requests"] - warm["errors"] + r["requests"] - r["errors"]
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    db = sqlite3.connect(os.path.join(d, "anvil.db"))
    stored = db.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0]
    db.close()
    shutil.rmtree(d, ignore_errors=True)
    # wrk counts only completed responses; a launch it cut off at the end
    # may have been stored without being counted, never the other way.
    if stored < answered:
        sys.exit("bench: %s answered %d launches but stored %d" % (binary, answered, stored))
    r["stored"] = stored
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()
    a.old, a.new = os.path.abspath(a.old), os.path.abspath(a.new)
    res = {"old": [], "new": []}
    for i in range(a.rounds):
        for name, binary in (("old", a.old), ("new", a.new)):
            r = measure(binary, a.duration, a.connections)
            res[name].append(r)
            print("round %d %s: %.0f launches/s, p50 %.2f ms, p99 %.2f ms, %.0f us CPU/launch, "
                  "%.1f read + %.1f write syscalls/launch, %d errors, %d stored"
                  % (i + 1, name, r["rps"], r["p50"], r["p99"], r["cpu_us"], r["syscr"], r["syscw"],
                     r["errors"], r["stored"]), file=sys.stderr)
    load = os.getloadavg()[0]
    rows = [("launches/s", "rps", "%.0f"), ("p50 latency (ms)", "p50", "%.2f"),
            ("p99 latency (ms)", "p99", "%.2f"), ("server CPU per launch (µs)", "cpu_us", "%.0f"),
            ("read syscalls per launch", "syscr", "%.1f"), ("write syscalls per launch", "syscw", "%.1f")]
    print("| measure (median of %d rounds, c=%d) | old | new | new/old |" % (a.rounds, a.connections))
    print("| --- | ---: | ---: | ---: |")
    for label, key, fmt in rows:
        o = statistics.median(r[key] for r in res["old"])
        n = statistics.median(r[key] for r in res["new"])
        print("| %s | %s | %s | %s |" % (label, fmt % o, fmt % n, "%.2f" % (n / o) if o else "-"))
    print()
    print("- per round, old/new launches/s: %s" % ", ".join(
        "%.0f/%.0f" % (o["rps"], n["rps"]) for o, n in zip(res["old"], res["new"])))
    print("- 1-minute load average at the end: %.2f (2 cores)" % load)


if __name__ == "__main__":
    main()
