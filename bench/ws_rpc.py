#!/usr/bin/env python3
"""bench/ws_rpc.py — the WebSocket RPC path, A/B between two builds.

    /usr/bin/python3 bench/ws_rpc.py --anvil build/anvil [--anvil-b OTHER/anvil] [--rounds 3]

For each binary, rounds alternating A, B, A, B, ...: start `anvil serve`
(token auth, one static-task workflow), then
  1. rpc: --conns connections (each after connect/hello) send `getRun` on
     one run, --window frames in flight each, --calls in all; calls/s and
     the server's CPU time per call (utime+stime from /proc, so the
     Python client's own speed, which shares the cores, does not count);
  2. bad frames: the same with a frame the frame schema refuses
     (`params` an array), the error path of the frame reader;
  3. connect: --connects sequential connections (upgrade, challenge,
     connect with auth.token, hello); connects/s and server CPU per one.
Prints a markdown table with the median per build and B/A ratios.

With --callgrind, the server runs under `valgrind --tool=callgrind`
instead and the table gives instructions per call (all threads: the loop
and the libwebsockets thread), which unlike rates and CPU times on the
shared 2-core machines repeats from run to run; one round per build.
Loopback only; every wait is bounded.
"""
import glob
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import websockets  # python3-websockets

TOKEN = "bench-token"
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Server:
    def __init__(self, binary, callgrind=False):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="anvil-wsrpc-")
        self.port = free_port()
        with open(os.path.join(self.tmp, "one.yaml"), "w") as f:
            f.write("name: one\nroot: { task: { id: only, output: { ok: true } } }\n")
        with open(os.path.join(self.tmp, "anvil.yaml"), "w") as f:
            f.write("listen: %s:%d\ndatabase: anvil.db\nheartbeatMs: 60000\nmaxConnections: 2000\n"
                    "auth:\n  mode: token\n  tokens:\n"
                    "    %s: { role: operator, scopes: [\"*\"], userId: \"user:bench\" }\n"
                    "workflows:\n  one: { file: one.yaml }\n" % (HOST, self.port, TOKEN))
        self.log = open(os.path.join(self.tmp, "server.log"), "w")
        cmd = [binary, "serve", "--config", os.path.join(self.tmp, "anvil.yaml")]
        self.cg_out = os.path.join(self.tmp, "cg.out")
        if callgrind:
            cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + self.cg_out] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit("bench: server exited early")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if time.time() > deadline:
                    sys.exit("bench: server did not start")
                time.sleep(0.05)

    def callgrind(self, what):
        """callgrind_control -z (zero) or -d (dump) on the server."""
        subprocess.run(["callgrind_control", what, str(self.proc.pid)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def dumps(self):
        """Instructions of each dump, in order."""
        out = []
        for f in sorted(glob.glob(self.cg_out + ".*"), key=lambda x: int(x.rsplit(".", 1)[1])):
            for line in open(f):
                if line.startswith("summary:"):
                    out.append(int(line.split()[1]))
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()
        if os.environ.get("ANVIL_BENCH_KEEP"):   # for callgrind_annotate
            print("bench: kept %s" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def open_conn(port):
    ws = await asyncio.wait_for(websockets.connect("ws://%s:%d/" % (HOST, port), ping_interval=None,
                                                   compression=None, close_timeout=2, max_queue=None), 20)
    await asyncio.wait_for(ws.recv(), 20)   # connect.challenge
    await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 1, "maxProtocol": 1, "client": {"name": "bench"}, "auth": {"token": TOKEN}}}))
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if f.get("type") == "res":
            if not f.get("ok"):
                sys.exit("bench: connect failed: %s" % f)
            return ws


async def pump(ws, frame_of, calls, window, want_ok):
    """Send `calls` frames with at most `window` unanswered; count answers."""
    sent = answered = 0
    while answered < calls:
        while sent < calls and sent - answered < window:
            await ws.send(frame_of(sent))
            sent += 1
        f = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if f.get("type") != "res":
            continue
        if bool(f.get("ok")) != want_ok:
            sys.exit("bench: unexpected answer %s" % f)
        answered += 1


async def rpc_round(srv, run_id, conns, calls, window, bad):
    socks = [await open_conn(srv.port) for _ in range(conns)]
    if bad:
        text = '{"type":"req","id":"b%d","method":"getRun","params":[]}'
    else:
        text = '{"type":"req","id":"g%%d","method":"getRun","params":{"runId":"%s"}}' % run_id
    # warm-up
    await asyncio.gather(*(pump(s, lambda i: text % i, 200, window, not bad) for s in socks))
    c0, t0 = cpu_s(srv.proc.pid), time.monotonic()
    per = calls // conns
    await asyncio.gather(*(pump(s, lambda i: text % i, per, window, not bad) for s in socks))
    c1, t1 = cpu_s(srv.proc.pid), time.monotonic()
    for s in socks:
        await s.close()
    n = per * conns
    return n / (t1 - t0), (c1 - c0) / n * 1e6


async def connect_round(srv, n):
    c0, t0 = cpu_s(srv.proc.pid), time.monotonic()
    for _ in range(n):
        ws = await open_conn(srv.port)
        await ws.close()
    c1, t1 = cpu_s(srv.proc.pid), time.monotonic()
    return n / (t1 - t0), (c1 - c0) / n * 1e6


def launch(port):
    import http.client
    c = http.client.HTTPConnection(HOST, port, timeout=20)
    c.request("POST", "/v1/rpc/launchRun", body=json.dumps({"workflow": "one"}),
              headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    doc = json.loads(c.getresponse().read())
    c.close()
    return doc["payload"]["runId"]


async def counted(srv, coro_fn):
    """Instructions the server spent in coro_fn() (between a zero and a dump)."""
    await asyncio.sleep(0.2)
    srv.callgrind("-z")
    await coro_fn()
    await asyncio.sleep(0.2)
    srv.callgrind("-d")


def callgrind_round(binary, args):
    srv = Server(binary, callgrind=True)
    try:
        run_id = launch(srv.port)
        n, m = args.calls, args.connects

        async def go():
            ws = await open_conn(srv.port)
            good = '{"type":"req","id":"g%%d","method":"getRun","params":{"runId":"%s"}}' % run_id
            bad = '{"type":"req","id":"b%d","method":"getRun","params":[]}'
            await pump(ws, lambda i: good % i, 50, args.window, True)
            await counted(srv, lambda: pump(ws, lambda i: good % i, n, args.window, True))
            await counted(srv, lambda: pump(ws, lambda i: bad % i, n, args.window, False))
            await ws.close()

            async def connects():
                for _ in range(m):
                    c = await open_conn(srv.port)
                    await c.close()
            await counted(srv, connects)
        asyncio.run(asyncio.wait_for(go(), 1200))
        d = srv.dumps()
        if len(d) < 3:
            sys.exit("bench: expected 3 callgrind dumps, got %d" % len(d))
        return {"rpc": d[-3] / n, "bad": d[-2] / n, "connect": d[-1] / m}
    finally:
        srv.stop()


def one_round(binary, args):
    srv = Server(binary)
    try:
        run_id = launch(srv.port)
        out = {}
        out["rpc"] = asyncio.run(asyncio.wait_for(
            rpc_round(srv, run_id, args.conns, args.calls, args.window, False), 600))
        out["bad"] = asyncio.run(asyncio.wait_for(
            rpc_round(srv, run_id, args.conns, args.calls, args.window, True), 600))
        out["connect"] = asyncio.run(asyncio.wait_for(connect_round(srv, args.connects), 600))
        return out
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anvil", required=True, help="build A")
    ap.add_argument("--anvil-b", help="build B (alternated with A)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--calls", type=int, default=40000)
    ap.add_argument("--connects", type=int, default=500)
    ap.add_argument("--callgrind", action="store_true", help="instructions per call under callgrind")
    args = ap.parse_args()
    builds = [("A", os.path.abspath(args.anvil))] + ([("B", os.path.abspath(args.anvil_b))] if args.anvil_b else [])
    names = {"rpc": "getRun over the socket", "bad": "refused frame (params an array)",
             "connect": "connect+hello (upgrade, challenge, connect, hello, close)"}
    if args.callgrind:
        res = {k: callgrind_round(b, args) for k, b in builds}
        print("| measurement | " + " | ".join("%s instructions/call" % k for k, _ in builds)
              + (" | B/A |" if len(builds) > 1 else " |"))
        print("| --- " * (2 + len(builds) - (0 if len(builds) > 1 else 1)) + "|")
        for m in ("rpc", "bad", "connect"):
            row = "| %s | " % names[m] + " | ".join("%.0f" % res[k][m] for k, _ in builds)
            if len(builds) > 1:
                row += " | **%.4f**" % (res["B"][m] / res["A"][m])
            print(row + " |")
        return
    res = {k: [] for k, _ in builds}
    for r in range(args.rounds):
        for k, b in builds:
            res[k].append(one_round(b, args))
            print("round %d %s: %s" % (r + 1, k, res[k][-1]), file=sys.stderr)
    med = {k: {m: (statistics.median(x[m][0] for x in v), statistics.median(x[m][1] for x in v))
               for m in ("rpc", "bad", "connect")} for k, v in res.items()}
    print("| measurement | " + " | ".join("%s %s" % (k, unit) for k, _ in builds for unit in ("/s", "server CPU µs"))
          + (" | B/A rate | B/A CPU |" if len(builds) > 1 else " |"))
    print("| --- " * (1 + 2 * len(builds) + (2 if len(builds) > 1 else 0)) + "|")
    for m in ("rpc", "bad", "connect"):
        row = "| %s | " % names[m] + " | ".join("%.0f | %.1f" % med[k][m] for k, _ in builds)
        if len(builds) > 1:
            row += " | **%.3f** | **%.3f**" % (med["B"][m][0] / med["A"][m][0], med["B"][m][1] / med["A"][m][1])
        print(row + " |")


if __name__ == "__main__":
    main()
