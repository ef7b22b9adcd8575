#!/usr/bin/env python3
"""bench/engine.py — durable-run throughput and latency, with a bare evhttp
baseline measured in the same run.

    make build && /usr/bin/python3 bench/engine.py [--duration 10] [--runs 10000]

Measures, against `anvil serve` with token auth and a one-task static
workflow:
  1. launchRun throughput with wrk (-c16): every launch is durable (the run,
     its nodes, frames and events are committed) and, the task being static,
     the run has finished when the response is written;
  2. launch -> finished latency: p50/p99 of the launch request (wrk), and of
     finishedAtMs - createdAtMs as recorded by the server for a sample;
  3. with the database topped up to --runs runs: getRun (one run) and
     listRuns (limit 20) requests/s and p50/p99;
  4. the bare evhttp server (bench/bare_evhttp.c) on the same machine, for
     the ratios.
Prints a markdown block for bench/RESULTS.md. Loopback only; every loop is
bounded.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-operator-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("bench: server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("bench: server did not start")


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def wrk(url, body, duration, connections, threads=1):
    env = dict(os.environ, BENCH_BODY=body, BENCH_TOKEN=TOKEN)
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
                          "-s", os.path.join(ROOT, "bench", "post.lua"), url],
                         capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "requests": requests}


def rpc(port, method, params):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/rpc/" + method, json.dumps(params),
              {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    doc = json.loads(c.getresponse().read())
    c.close()
    return doc


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--anvil", default=os.path.join(ROOT, "build", "anvil"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="anvil-bench-")
    procs = []
    try:
        bare_bin = os.path.join(ROOT, "build", "bench", "bare_evhttp")
        os.makedirs(os.path.dirname(bare_bin), exist_ok=True)
        cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "libevent"], capture_output=True,
                                text=True, check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-o", bare_bin, os.path.join(ROOT, "bench", "bare_evhttp.c")] + cflags,
                       check=True)
        bare_port = free_port()
        procs.append(subprocess.Popen([bare_bin, str(bare_port)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(bare_port, procs[-1])

        with open(os.path.join(tmp, "one.yaml"), "w") as f:
            f.write("name: one\nroot:\n  task: { id: only, output: { ok: true, sha: \"${input.sha}\" } }\n")
        port = free_port()
        with open(os.path.join(tmp, "anvil.yaml"), "w") as f:
            f.write("listen: 127.0.0.1:%d\ndatabase: anvil.db\nauth:\n  mode: token\n  tokens:\n"
                    "    %s: { role: operator, scopes: [\"*\"], userId: user:bench }\n"
                    "workflows:\n  one: { file: one.yaml }\n" % (port, TOKEN))
        procs.append(subprocess.Popen([args.anvil, "serve", "--config", os.path.join(tmp, "anvil.yaml")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port, procs[-1])
        base = "http://127.0.0.1:%d/v1/rpc/" % port
        launch_body = json.dumps({"workflow": "one", "input": {"sha": "abc123"}})

        first = rpc(port, "launchRun", json.loads(launch_body))
        assert first["ok"], first
        run = rpc(port, "getRun", {"runId": first["payload"]["runId"]})["payload"]
        assert run["status"] == "finished", run

        bare = wrk("http://127.0.0.1:%d/" % bare_port, "{}", args.duration, 32)
        launch = wrk(base + "launchRun", launch_body, args.duration, 16)

        # Top up to --runs runs (bounded) so reads run against a full table.
        listed = rpc(port, "listRuns", {"filter": {"limit": 1}})
        count = 1 + int(launch["rps"] * args.duration)
        extra = max(0, args.runs - count)
        if extra:
            wrk(base + "launchRun", launch_body, max(1, int(extra / max(launch["rps"], 1)) + 1), 16)
        sample = rpc(port, "listRuns", {"filter": {"limit": 200}})["payload"]
        lat = []
        for s in sample:
            v = rpc(port, "getRun", {"runId": s["runId"]})["payload"]
            if v.get("finishedAtMs") is not None:
                lat.append(v["finishedAtMs"] - v["createdAtMs"])
        db_runs = subprocess.run(["sqlite3", os.path.join(tmp, "anvil.db"), "SELECT COUNT(*) FROM runs"],
                                 capture_output=True, text=True).stdout.strip()

        target = json.dumps({"runId": first["payload"]["runId"]})
        get_run = wrk(base + "getRun", target, args.duration, 32)
        list_runs = wrk(base + "listRuns", json.dumps({"filter": {"limit": 20}}), args.duration, 32)
        del listed

        cpu = ""
        try:
            cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
        except (OSError, AttributeError):
            pass
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        print("### Engine — %s UTC\n" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
        print("- command: `/usr/bin/python3 bench/engine.py --duration %d --runs %d`" % (args.duration, args.runs))
        print("- host: `%s`, nproc %d, CPU: %s; wrk and server share the cores, loopback" %
              (" ".join(os.uname()[i] for i in (0, 2, 4)), os.cpu_count(), cpu))
        print("- anvil at %s; token auth; workflow `one` = one static task; runs in the database "
              "during the read rows: %s\n" % (rev, db_runs))
        print("| measurement | req/s | p50 | p99 | ratio to bare | non-2xx |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, r in [("bare evhttp (fixed JSON), c=32", bare),
                         ("launchRun (durable, run finished when answered), c=16", launch),
                         ("getRun, c=32", get_run), ("listRuns limit 20, c=32", list_runs)]:
            print("| %s | %.0f | %.3f ms | %.3f ms | %.2f | %d |" %
                  (label, r["rps"], r["p50"], r["p99"], r["rps"] / bare["rps"], r["errors"]))
        if lat:
            print("\nServer-recorded launch -> run.completed (finishedAtMs - createdAtMs) over %d runs: "
                  "p50 %d ms, p99 %d ms (millisecond clock)." % (len(lat), percentile(lat, 50), percentile(lat, 99)))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
