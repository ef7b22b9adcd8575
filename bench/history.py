#!/usr/bin/env python3
"""Cost against stored history: startup and the WebSocket hello on a database
holding many finished runs, for one or more builds.

    /usr/bin/python3 bench/history.py --runs 200000 BINARY [BINARY ...]

Builds one database with the first binary's schema, fills it with N finished
runs (a run row, one node, three events each, as the engine writes them),
then for each binary: copies the database, starts `anvil serve` on it once
(to apply its migrations), and measures over a second start the time to the
first GET /health, and the mean time of 200 sequential WebSocket
connect + hello exchanges (the hello snapshot lists the runs that have not
ended, and there are only a few). Prints a markdown table. Loopback only;
every wait is bounded. Needs python3-websockets.
"""
import argparse
import asyncio
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

import websockets

CONFIG = ("listen: 127.0.0.1:0\ndatabase: anvil.db\nworkflows:\n  one: { file: one.yaml }\n"
          "auth:\n  mode: token\n  tokens:\n    t: { role: operator, scopes: [\"*\"] }\n")
WORKFLOW = "name: one\nroot:\n  task: { id: t, output: { ok: true } }\n"
HELLOS = 200


def start(binary, d):
    port_file = os.path.join(d, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--config", os.path.join(d, "anvil.yaml"),
                          "--port-file", port_file], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + 300
    while True:
        if p.poll() is not None:
            raise RuntimeError("%s exited with %s" % (binary, p.returncode))
        if os.path.exists(port_file) and open(port_file).read().strip():
            port = int(open(port_file).read())
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return p, port, (time.monotonic() - t0) * 1000
            except OSError:
                pass
        if time.monotonic() > deadline:
            p.kill()
            raise RuntimeError("no /health within 300 s")
        time.sleep(0.002)


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


async def hellos(port):
    t0 = time.monotonic()
    for i in range(HELLOS):
        async with websockets.connect("ws://127.0.0.1:%d/" % port, ping_interval=None,
                                      compression=None) as ws:
            await ws.recv()   # connect.challenge
            await ws.send(json.dumps({"type": "req", "id": "c%d" % i, "method": "connect", "params": {
                "minProtocol": 1, "maxProtocol": 1, "client": {"name": "bench"},
                "auth": {"token": "t"}}}))
            res = json.loads(await ws.recv())
            if not res.get("ok"):
                raise RuntimeError("connect failed: %r" % res)
    return (time.monotonic() - t0) * 1000 / HELLOS


def fill(db, n):
    now = int(time.time() * 1000) - n
    con = sqlite3.connect(db)
    with con:
        for base in range(0, n, 10000):
            rows, nodes, events = [], [], []
            for i in range(base, min(n, base + 10000)):
                rid = "hist-%07d" % i
                at = now + i
                rows.append((rid, "one", "finished", "{}", "{}", None, "bench", "operator", "[\"*\"]",
                             None, None, None, 0, 3, 3, at, at, at))
                nodes.append((rid, "t", 0, "task", "finished", 1, at, at, None))
                for seq, ev in ((1, "run.started"), (2, "node.finished"), (3, "run.completed")):
                    events.append((rid, seq, ev, json.dumps({"runId": rid}), i * 3 + seq, at))
            con.executemany("INSERT INTO runs(run_id, workflow, status, input_json, options_json,"
                            " owner_id, triggered_by, role, scopes_json, token_id, idempotency_key,"
                            " error, cancel_requested, last_seq, frame_no, created_at_ms,"
                            " updated_at_ms, finished_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            rows)
            con.executemany("INSERT INTO nodes(run_id, node_id, iteration, kind, state, attempts,"
                            " started_at_ms, finished_at_ms, error) VALUES (?,?,?,?,?,?,?,?,?)", nodes)
            con.executemany("INSERT INTO events(run_id, seq, event, payload_json, state_version,"
                            " created_at_ms) VALUES (?,?,?,?,?,?)", events)
    con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--runs", type=int, default=200000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="anvil-history-")
    try:
        seed = os.path.join(work, "seed")
        os.makedirs(seed)
        for name, text in (("anvil.yaml", CONFIG), ("one.yaml", WORKFLOW)):
            with open(os.path.join(seed, name), "w") as f:
                f.write(text)
        p, _, _ = start(args.binaries[0], seed)
        stop(p)
        fill(os.path.join(seed, "anvil.db"), args.runs)
        print("| binary | stored runs | startup to /health (ms) | connect + hello (ms, mean of %d) |"
              % HELLOS)
        print("| --- | ---: | ---: | ---: |")
        for i, b in enumerate(args.binaries):
            d = os.path.join(work, "b%d" % i)
            shutil.copytree(seed, d)
            p, _, _ = start(b, d)          # first start applies migrations
            stop(p)
            p, port, startup = start(b, d)
            try:
                hello = asyncio.run(hellos(port))
            finally:
                stop(p)
            print("| %s | %d | %.1f | %.2f |" % (b, args.runs, startup, hello))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
