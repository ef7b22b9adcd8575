#!/usr/bin/env python3
"""Cost of every hot path against stored history (issue 12, item 1).

    /usr/bin/python3 bench/history_paths.py [--sizes 0,200000,1000000] [--db-dir /tmp/anvil-hist] [BINARY]

1. Builds (or reuses, from --db-dir) one database per size THROUGH THE API:
   `anvil serve` with three workflows, `one` (one static task), `gate` (an
   approval, then a task) and `sig` (a signal wait, then a task); wrk
   launches `one` over 16 keep-alive connections, and 4 client threads
   (each one keep-alive connection) launch `gate` runs and decide them with
   submitApproval (--approvals of the runs, half approved, half rejected)
   and launch `sig` runs and deliver their signal with submitSignal
   (--signals of the runs). PENDING `gate` runs are left waiting (the same
   in every database), so listApprovals and the hello snapshot have
   something to show. A larger database starts as a copy of the next
   smaller one and is topped up the same way. With --replicate-from S, the
   sizes above S are instead made from S's database by copying its rows
   with SQL (INSERT ... SELECT, new run ids, older timestamps); the table
   says so.
2. On each database (copied to a scratch file next to it, so the built one
   stays as built) measures the server's CPU per operation
   (/proc/PID/stat utime+stime of the whole process, before and after N
   sequential requests over one keep-alive connection or one WebSocket),
   and startup/recovery wall time.
3. Prints a markdown table with the ratio largest/smallest.
Loopback only; every wait is bounded. Needs python3-websockets and wrk.
"""
import argparse
import asyncio
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import TOKEN, wrk  # noqa: E402
import history  # noqa: E402
from history import WORKFLOW, start, stop  # noqa: E402
from ws import cpu_ticks  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf("SC_CLK_TCK")
CONFIG = ("listen: 127.0.0.1:0\ndatabase: anvil.db\nheartbeatMs: 1000\n"
          "auth:\n  mode: token\n  tokens:\n    %s: { role: operator, scopes: [\"*\"], userId: user:bench }\n"
          "    t: { role: operator, scopes: [\"*\"] }\n"   # history.hellos' token
          "workflows:\n  one: { file: one.yaml }\n  gate: { file: gate.yaml }\n  sig: { file: sig.yaml }\n"
          % TOKEN)
FILES = {
    "anvil.yaml": CONFIG,
    "one.yaml": WORKFLOW,
    "gate.yaml": "name: gate\nroot:\n  sequence:\n    - approval: { id: approve, title: \"Ship it?\" }\n"
                 "    - task: { id: t, output: { ok: true } }\n",
    "sig.yaml": "name: sig\nroot:\n  sequence:\n"
                "    - signal: { id: wait, name: go, correlationKey: \"${input.key}\" }\n"
                "    - task: { id: t, output: { ok: true } }\n",
}
PENDING = 20
MEASURE_PREFIX = "m-"     # runs the measurements launch; the scratch copy is thrown away


class Client:
    """One keep-alive HTTP connection to the RPC endpoint."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, params):
        self.c.request("POST", "/v1/rpc/" + method, json.dumps(params),
                       {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        doc = json.loads(self.c.getresponse().read())
        if not doc.get("ok"):
            raise RuntimeError("%s: %r" % (method, doc))
        return doc["payload"]

    def close(self):
        self.c.close()


def count(db, sql):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def in_threads(port, n, job, threads=4):
    """job(client, i) for i in range(n), over `threads` keep-alive connections."""
    nxt = iter(range(n))
    lock = threading.Lock()
    errors = []

    def worker():
        c = Client(port)
        try:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                job(c, i)
        except Exception as e:  # reported below; the other threads finish
            errors.append(e)
        finally:
            c.close()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def decided_gate(c, i):
    run_id = c.call("launchRun", {"workflow": "gate", "input": {}})["runId"]
    c.call("submitApproval", {"runId": run_id, "nodeId": "approve",
                              "decision": {"approved": i % 2 == 0, "note": "bench"}})


def signalled(c, i):
    key = "k%d-%d" % (time.monotonic_ns(), i)
    run_id = c.call("launchRun", {"workflow": "sig", "input": {"key": key}})["runId"]
    if not c.call("submitSignal", {"runId": run_id, "signalName": "go", "correlationKey": key,
                                   "payload": {"i": i}}).get("delivered"):
        raise RuntimeError("signal not delivered to %s" % run_id)


def build(binary, d, size, approvals, signals, log):
    """Top the database in d up to `size` runs through the API."""
    for name, text in FILES.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    db = os.path.join(d, "anvil.db")
    p, port, _ = start(binary, d)
    try:
        want_gate, want_sig = int(size * approvals), int(size * signals)
        have_pending = count(db, "SELECT COUNT(*) FROM approvals WHERE status = 'requested'")
        have_gate = count(db, "SELECT COUNT(*) FROM approvals WHERE status != 'requested'")
        have_sig = count(db, "SELECT COUNT(*) FROM signals")
        t0 = time.monotonic()
        in_threads(port, max(0, want_gate - have_gate), decided_gate)
        in_threads(port, max(0, want_sig - have_sig), signalled)
        t_side = time.monotonic() - t0
        body = json.dumps({"workflow": "one", "input": {}})
        url = "http://127.0.0.1:%d/v1/rpc/launchRun" % port
        rate, launched, t_one = 2000.0, 0, 0.0
        while True:
            left = size - PENDING - count(db, "SELECT COUNT(*) FROM runs")
            if left <= 0:
                break
            secs = max(1, min(60, int(left / rate)))
            t1 = time.monotonic()
            r = wrk(url, body, secs, 16)
            t_one += time.monotonic() - t1
            rate, launched = max(r["rps"], 100.0), launched + int(r["rps"] * secs)
            log("  %s: +%d one runs at %.0f/s (wrk c=16), %d left" % (d, r["rps"] * secs, r["rps"],
                                                                         max(0, left - r["rps"] * secs)))
        in_threads(port, max(0, PENDING - have_pending),
                   lambda c, i: c.call("launchRun", {"workflow": "gate", "input": {}}))
        meta = {"runs": count(db, "SELECT COUNT(*) FROM runs"), "made": "api",
                "gate_and_signal_seconds": round(t_side, 1), "one_launch_seconds": round(t_one, 1)}
    finally:
        stop(p)
    return meta


def replicate(src_db, dst_db, size, log):
    """Make dst_db hold about `size` runs by copying src_db's rows with new
    run ids (suffix ~rK) and timestamps shifted into the past (so the API
    rows stay the newest). Only terminal runs are copied."""
    shutil.copyfile(src_db, dst_db)
    con = sqlite3.connect(dst_db)
    have = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    done = con.execute("SELECT COUNT(*) FROM runs WHERE status IN ('finished','failed','cancelled')"
                       ).fetchone()[0]
    lo, hi = con.execute("SELECT MIN(created_at_ms), MAX(created_at_ms) FROM runs").fetchone()
    span = hi - lo + 1000
    sv = con.execute("SELECT MAX(state_version) FROM events").fetchone()[0]
    cols = {t: [r[1] for r in con.execute("PRAGMA table_info(%s)" % t)]
            for t in ("runs", "nodes", "attempts", "outputs", "approvals", "signals", "frames", "events")}
    shift = {"created_at_ms", "updated_at_ms", "finished_at_ms", "started_at_ms", "requested_at_ms",
             "decided_at_ms", "received_at_ms"}
    k = 0
    while have < size:
        k += 1
        t0 = time.monotonic()
        with con:
            for t, cs in cols.items():
                sel = []
                for c in cs:
                    if c == "run_id":
                        sel.append("x.run_id || '~r%d'" % k)
                    elif c in shift:
                        sel.append("x.%s - %d" % (c, k * span))
                    elif c == "state_version":
                        sel.append("x.state_version + %d" % (k * sv))   # stays unique and
                    elif t == "signals" and c == "delivery_key":            # increasing
                        sel.append("NULL")
                    elif t == "runs" and c == "idempotency_key":
                        sel.append("NULL")
                    else:
                        sel.append("x." + c)
                con.execute("INSERT INTO %s(%s) SELECT %s FROM %s x JOIN runs r ON r.run_id = x.run_id"
                            " WHERE r.run_id NOT LIKE '%%~r%%' AND r.status IN ('finished','failed','cancelled')"
                            % (t, ",".join(cs), ",".join(sel), t)
                            if t != "runs" else
                            "INSERT INTO runs(%s) SELECT %s FROM runs x WHERE x.run_id NOT LIKE '%%~r%%'"
                            " AND x.status IN ('finished','failed','cancelled')"
                            % (",".join(cs), ",".join(sel)))
        have += done
        log("  replicated copy %d: %d runs (%.0f s)" % (k, have, time.monotonic() - t0))
    con.close()
    return {"runs": have, "made": "replicated x%d from %d API-built runs" % (k + 1, done)}


OPS = [  # key, label, unit
    ("startup", "startup to first /health (wall, median of 5)", "ms"),
    ("startup_cpu", "startup CPU (median of 5)", "ms"),
    ("hello", "WebSocket connect + hello", "us"),
    ("getRun", "getRun (a finished run)", "us"),
    ("listRuns", "listRuns limit 20", "us"),
    ("listRuns_wf", "listRuns workflow=gate limit 20", "us"),
    ("listRuns_none", "listRuns status=failed workflow=one limit 20 (no run matches)", "us"),
    ("listApprovals", "listApprovals (20 pending, 5% of runs decided)", "us"),
    ("listApprovals_wf", "listApprovals workflow=gate", "us"),
    ("replay", "streamRunEvents replay of a finished run (afterSeq 0)", "us"),
    ("cronList", "cronList (50 rows)", "us"),
    ("launchRun", "launchRun (one static task)", "us"),
    ("signal", "submitSignal delivered to a waiting run (run then finishes)", "us"),
    ("cronFire", "cron poll that fires 50 due rows, per fired run", "us"),
    ("recovery", "startup with 500 more waiting runs (wall)", "ms"),
    ("recovery_cpu", "startup CPU with 500 more waiting runs", "ms"),
    ("hello_reads", "WebSocket connect + hello: read syscalls (/proc/PID/io syscr) per hello", "n"),
    ("getRun_reads", "getRun: read syscalls per call", "n"),
    ("listRuns_reads", "listRuns limit 20: read syscalls per call", "n"),
    ("listRuns_none_reads", "listRuns status=failed workflow=one: read syscalls per call", "n"),
    ("listApprovals_reads", "listApprovals: read syscalls per call", "n"),
    ("replay_reads", "streamRunEvents replay: read syscalls per replay", "n"),
    ("launchRun_reads", "launchRun: read syscalls (/proc/PID/io syscr) per launch", "n"),
    ("signal_reads", "submitSignal: read syscalls per signal", "n"),
    ("cronFire_reads", "cron firing: read syscalls per fired run", "n"),
    ("recovery_reads", "startup with 500 more waiting runs: read syscalls", "n"),
]
# The statements of the paths that grew, for --plans (copied from runtime/store/store_runs.c).
PLANS = [
    "SELECT run_id FROM runs WHERE status NOT IN ('finished', 'failed', 'cancelled') ORDER BY created_at_ms, rowid",
    "SELECT node_id, iteration, kind, state, attempts, started_at_ms, finished_at_ms, error"
    " FROM nodes WHERE run_id = ?1 ORDER BY rowid",
    "SELECT node_id, row_json FROM outputs WHERE run_id = ?1 AND iteration = 0 ORDER BY rowid",
    "SELECT state FROM attempts WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 ORDER BY attempt",
    "SELECT run_id FROM runs WHERE workflow = ?1 AND idempotency_key = ?2",
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM signals WHERE run_id = ?1",
    "SELECT seq, payload_json FROM signals WHERE run_id = ?1 AND consumed_by IS NULL",
    "UPDATE runs SET status = ?2, last_seq = ?3 WHERE run_id = ?1",
]


def reads(pid):
    with open("/proc/%d/io" % pid) as f:
        return int(dict(line.split(": ") for line in f.read().splitlines())["syscr"])


def plans(db):
    """EXPLAIN QUERY PLAN of PLANS, and the B-trees an insert of each run
    maintains, with their sizes (dbstat), on db."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    for sql in PLANS:
        print("- `%s`" % sql)
        for row in con.execute("EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")):
            print("  - %s" % row[3])
    print("\n| table | rows | B-trees an insert updates (table + indexes) |\n| --- | ---: | --- |")
    for t in ("runs", "nodes", "frames", "events", "outputs", "approvals", "signals", "attempts"):
        idx = [r[1] for r in con.execute("PRAGMA index_list(%s)" % t)]
        print("| %s | %s | %s |" % (t, format(con.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0], ","),
                                   ", ".join([t] + idx)))
    con.close()


def server_cpu(pid, n, fn, reads_into=None):
    """Server CPU (utime+stime, all threads) per call of fn, in us. With
    reads_into=(dict, key), also the read syscalls per call into dict[key]
    (they include the socket reads of the requests themselves, the same
    at every size)."""
    t0, r0 = cpu_ticks(pid), reads(pid)
    fn()
    if reads_into:
        reads_into[0][reads_into[1]] = (reads(pid) - r0) / n
    return (cpu_ticks(pid) - t0) * 1e6 / HZ / n


def repeat(n, fn):
    def run():
        for i in range(n):
            fn(i)
    return run


async def replays(port, run_id, n, per_conn=100):
    """n streamRunEvents replays (afterSeq 0) of run_id, per_conn streams per
    connection; each waits for the stream's run.completed."""
    done = 0
    while done < n:
        async with websockets.connect("ws://127.0.0.1:%d/" % port, ping_interval=None,
                                      compression=None, max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
                "minProtocol": 1, "maxProtocol": 1, "client": {"name": "bench"}, "auth": {"token": TOKEN}}}))
            if not json.loads(await ws.recv()).get("ok"):
                raise RuntimeError("connect failed")
            for i in range(min(per_conn, n - done)):
                await ws.send(json.dumps({"type": "req", "id": "s%d" % i, "method": "streamRunEvents",
                                          "params": {"runId": run_id, "afterSeq": 0}}))
                stream = None
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if msg.get("type") == "res" and msg.get("id") == "s%d" % i:
                        if not msg.get("ok"):
                            raise RuntimeError("streamRunEvents: %r" % msg)
                        stream = msg["payload"]["streamId"]
                    elif (stream and msg.get("event") == "run.event" and msg["payload"].get("streamId") == stream
                          and msg["payload"].get("event") == "run.completed"):
                        break
                done += 1


def startups(binary, d, k=5):
    walls, cpus, nreads = [], [], []
    for _ in range(k):
        p, _, ms = start(binary, d)
        cpus.append(cpu_ticks(p.pid) * 1000.0 / HZ)
        nreads.append(reads(p.pid))
        stop(p)
        walls.append(ms)
    return statistics.median(walls), statistics.median(cpus), statistics.median(nreads)


def measure(binary, d, scale, log):
    """Every operation once on a scratch copy of d's database."""
    scratch = os.path.join(d, "scratch")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    for name, text in FILES.items():
        with open(os.path.join(scratch, name), "w") as f:
            f.write(text)
    for suffix in ("", "-wal"):
        if os.path.exists(os.path.join(d, "anvil.db" + suffix)):
            shutil.copyfile(os.path.join(d, "anvil.db" + suffix), os.path.join(scratch, "anvil.db" + suffix))
    # The copy is still dirty in the page cache; without this the server's
    # first checkpoint fsync writes the whole file back (3 GB at 1M runs)
    # and the kernel charges it to the server: +150 us per launch over the
    # first 1,000 launches at 1M, none after.
    os.sync()
    clock = os.path.join(scratch, "clock")
    now = int(time.time() * 1000)
    with open(clock, "w") as f:
        f.write(str(now))
    os.environ["ANVIL_TEST_CLOCK_FILE"] = clock
    n = lambda base: max(50, int(base * scale))  # noqa: E731
    out = {}
    try:
        p, _, _ = start(binary, scratch)   # a first start: page cache, WAL checkpoint
        stop(p)
        out["startup"], out["startup_cpu"], _ = startups(binary, scratch)
        p, port, _ = start(binary, scratch)
        try:
            pid = p.pid
            c = Client(port)
            ones = c.call("listRuns", {"filter": {"workflow": "one", "limit": 1}})
            one = ones[0]["runId"] if ones else c.call("launchRun", {"workflow": "one", "input": {}})["runId"]
            history.HELLOS = n(1000)
            out["hello"] = server_cpu(pid, history.HELLOS, lambda: asyncio.run(history.hellos(port)),
                                      (out, "hello_reads"))
            out["getRun"] = server_cpu(pid, n(4000), repeat(n(4000), lambda i: c.call("getRun", {"runId": one})),
                                       (out, "getRun_reads"))
            out["listRuns"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call(
                "listRuns", {"filter": {"limit": 20}})), (out, "listRuns_reads"))
            out["listRuns_wf"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call(
                "listRuns", {"filter": {"workflow": "gate", "limit": 20}})))
            out["listRuns_none"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call(
                "listRuns", {"filter": {"status": "failed", "workflow": "one", "limit": 20}})),
                (out, "listRuns_none_reads"))
            out["listApprovals"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call(
                "listApprovals", {})), (out, "listApprovals_reads"))
            out["listApprovals_wf"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call(
                "listApprovals", {"filter": {"workflow": "gate"}})))
            out["replay"] = server_cpu(pid, n(1000), lambda: asyncio.run(replays(port, one, n(1000))),
                                       (out, "replay_reads"))
            for i in range(50):
                c.call("cronCreate", {"cronId": "bench-%02d" % i, "workflow": "one", "pattern": "* * * * *"})
            out["cronList"] = server_cpu(pid, n(2000), repeat(n(2000), lambda i: c.call("cronList", {})))
            r0 = reads(pid)
            out["launchRun"] = server_cpu(pid, n(1000), repeat(n(1000), lambda i: c.call(
                "launchRun", {"workflow": "one", "input": {}})))
            out["launchRun_reads"] = (reads(pid) - r0) / n(1000)
            keys = ["%sk%d" % (MEASURE_PREFIX, i) for i in range(n(1000))]
            waiting = [c.call("launchRun", {"workflow": "sig", "input": {"key": k}})["runId"] for k in keys]
            r0 = reads(pid)
            out["signal"] = server_cpu(pid, len(keys), repeat(len(keys), lambda i: c.call(
                "submitSignal", {"runId": waiting[i], "signalName": "go", "correlationKey": keys[i],
                                 "payload": {}})))
            out["signal_reads"] = (reads(pid) - r0) / len(keys)
            # cron: the test clock jumps a minute before each poll (every heartbeatMs = 1 s), so
            # every poll finds the 50 rows due and fires them
            fired0 = count(os.path.join(scratch, "anvil.db"), "SELECT COUNT(*) FROM runs WHERE triggered_by LIKE 'cron:%'")
            polls = max(3, int(20 * scale))

            def tick():
                for i in range(polls):
                    with open(clock, "w") as f:
                        f.write(str(now + (i + 1) * 61000))
                    time.sleep(1.05)
            t0, r0 = cpu_ticks(pid), reads(pid)
            tick()
            time.sleep(0.5)
            fired = count(os.path.join(scratch, "anvil.db"),
                          "SELECT COUNT(*) FROM runs WHERE triggered_by LIKE 'cron:%'") - fired0
            out["cronFire"] = (cpu_ticks(pid) - t0) * 1e6 / HZ / max(1, fired)
            out["cronFire_reads"] = (reads(pid) - r0) / max(1, fired)
            log("  cron fired %d runs in %d polls" % (fired, polls))
            c.close()
            c = Client(port)   # the server has closed the idle keep-alive connection by now
            for i in range(500):
                c.call("launchRun", {"workflow": "gate", "input": {}})
            c.close()
        finally:
            stop(p)
        out["recovery"], out["recovery_cpu"], out["recovery_reads"] = startups(binary, scratch)
    finally:
        del os.environ["ANVIL_TEST_CLOCK_FILE"]
        shutil.rmtree(scratch, ignore_errors=True)
    log("  %r" % out)
    return out


def report(args, sizes, metas, results):
    lo, hi = sizes[0], sizes[-1]
    print("| operation | unit | " + " | ".join("%s runs" % format(metas[s]["runs"], ",") for s in sizes)
          + " | %s/%s |" % (hi, lo))
    print("| --- | --- | " + " | ".join("---:" for _ in sizes) + " | ---: |")
    for key, label, unit in OPS:
        vals = [statistics.median(results[s][key]) if key in results.get(s, {}) else None for s in sizes]
        cells = ["%.1f" % v if v is not None else "-" for v in vals]
        ratio = float("nan") if None in (vals[0], vals[-1]) else \
            vals[-1] / vals[0] if vals[0] else float("inf") if vals[-1] else 1.0
        flag = " **not flat**" if ratio > 1.2 else ""
        print("| %s | %s | %s | %.2f%s |" % (label, {"ms": "ms", "n": "count"}.get(unit, "µs server CPU"),
                                             " | ".join(cells),
                                             ratio, flag))
    print()
    for s in sizes:
        m = metas[s]
        print("- %s runs: %s; %s approvals rows, %s signals rows, %.0f MB" % (
            format(m["runs"], ","), m["made"], format(m["approvals_rows"], ","), format(m["signals_rows"], ","),
            m["db_bytes"] / 1e6))


def ensure(binary, db_dir, sizes, args, log):
    metas = {}
    prev = None
    for size in sizes:
        d = os.path.join(db_dir, "runs-%d" % size)
        meta_path = os.path.join(d, "meta.json")
        if os.path.exists(meta_path):
            metas[size] = json.load(open(meta_path))
            prev = d
            continue
        t0 = time.monotonic()
        tmp = d + ".building"
        if args.replicate_from is not None and size > args.replicate_from:
            shutil.rmtree(tmp, ignore_errors=True)
            src = os.path.join(db_dir, "runs-%d" % args.replicate_from)
            shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("anvil.db*", "meta.json", "scratch*"))
            meta = replicate(os.path.join(src, "anvil.db"), os.path.join(tmp, "anvil.db"), size, log)
        else:
            if os.path.isdir(tmp):
                log("resuming %s" % tmp)   # an interrupted API build is topped up further
            elif prev:
                shutil.copytree(prev, tmp, ignore=shutil.ignore_patterns("meta.json", "scratch*"))
            else:
                os.makedirs(tmp)
            meta = build(binary, tmp, size, args.approvals, args.signals, log)
        meta["build_seconds"] = round(time.monotonic() - t0, 1)
        meta["approvals_rows"] = count(os.path.join(tmp, "anvil.db"), "SELECT COUNT(*) FROM approvals")
        meta["signals_rows"] = count(os.path.join(tmp, "anvil.db"), "SELECT COUNT(*) FROM signals")
        meta["db_bytes"] = os.path.getsize(os.path.join(tmp, "anvil.db"))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f)
        os.rename(tmp, d)
        log("built %s: %r" % (d, meta))
        metas[size] = meta
        prev = d
    return metas


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "build", "anvil"))
    ap.add_argument("--sizes", default="0,200000,1000000")
    ap.add_argument("--db-dir", default="/tmp/anvil-hist")
    ap.add_argument("--approvals", type=float, default=0.05, help="fraction of runs that are decided approvals")
    ap.add_argument("--signals", type=float, default=0.01, help="fraction of runs that got a signal")
    ap.add_argument("--replicate-from", type=int, default=None)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--plans", action="store_true", help="print the query plans on the largest database, then stop")
    ap.add_argument("--rounds", type=int, default=1, help="measure every database this many times (median)")
    ap.add_argument("--n", type=float, default=1.0, help="scale the number of requests per operation")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.makedirs(args.db_dir, exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)
    metas = ensure(args.binary, args.db_dir, sizes, args, log)
    if args.plans:
        plans(os.path.join(args.db_dir, "runs-%d" % sizes[-1], "anvil.db"))
        return
    if args.build_only:
        return
    results, loads = {}, []
    for r in range(args.rounds):
        for size in sizes:
            loads.append(os.getloadavg()[0])
            log("measuring %d runs, round %d, load average %s" % (size, r + 1, os.getloadavg()))
            for k, v in measure(args.binary, os.path.join(args.db_dir, "runs-%d" % size), args.n, log).items():
                results.setdefault(size, {}).setdefault(k, []).append(v)
    report(args, sizes, metas, results)
    print("- 1-minute load average at the start of each database's measurement: %s (%d cores)"
          % (", ".join("%.2f" % x for x in loads), os.cpu_count()))


if __name__ == "__main__":
    main()
