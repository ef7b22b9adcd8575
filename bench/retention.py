#!/usr/bin/env python3
"""Stored bytes per finished run, and what retention gives back.

    /usr/bin/python3 bench/retention.py --runs 2000 build/anvil

Launches N runs of a one-task static workflow through the real API (HTTP,
sequential), waits until every one has finished, stops the server and
measures the database: live bytes ((page_count - freelist_count) *
page_size) per run, and the file size per run before and after a VACUUM of
a copy. Then starts the server again with `retention: {maxRuns: KEEP}` and
waits until the policy has removed all but KEEP runs, stops it, and
measures the file again (incremental vacuum gives pages back in batches;
the rest stay on the free list for new runs). Prints a markdown table.
Loopback only; every wait is bounded.
"""
import argparse
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

TOKENS = "auth:\n  mode: token\n  tokens:\n    t: { role: admin, scopes: [\"*\"] }\n"
WORKFLOW = "name: one\nroot:\n  task: { id: t, output: { ok: true } }\n"


def config(extra=""):
    return ("listen: 127.0.0.1:0\ndatabase: anvil.db\n" + extra +
            "workflows:\n  one: { file: one.yaml }\n" + TOKENS)


class Server:
    def __init__(self, binary, d):
        self.binary, self.d = binary, d

    def start(self):
        port_file = os.path.join(self.d, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.p = subprocess.Popen([self.binary, "serve", "--config", os.path.join(self.d, "anvil.yaml"),
                                   "--port-file", port_file], cwd=self.d,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        self.conn = http.client.HTTPConnection("127.0.0.1", int(open(port_file).read()), timeout=30)

    def rpc(self, method, params):
        self.conn.request("POST", "/v1/rpc/" + method, json.dumps(params),
                          {"Authorization": "Bearer t", "Content-Type": "application/json"})
        doc = json.loads(self.conn.getresponse().read())
        if not doc.get("ok"):
            raise RuntimeError("%s: %s" % (method, doc))
        return doc["payload"]

    def stop(self):
        self.conn.close()
        self.p.terminate()
        self.p.wait(timeout=30)


def measure(db_path):
    db = sqlite3.connect(db_path)
    try:
        pages, free, size = (db.execute("PRAGMA %s" % p).fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        db.close()
    return runs, (pages - free) * size, os.path.getsize(db_path)


def wait_for(pred, what, timeout=600):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("waited %d s for %s" % (timeout, what))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--keep", type=int, default=100)
    ap.add_argument("binary")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="anvil-bench-retention-")
    try:
        open(os.path.join(d, "one.yaml"), "w").write(WORKFLOW)
        open(os.path.join(d, "anvil.yaml"), "w").write(config())
        s = Server(os.path.abspath(a.binary), d)
        s.start()
        for i in range(a.runs):
            s.rpc("launchRun", {"workflow": "one", "input": {"i": i}})
        wait_for(lambda: s.rpc("listRuns", {"filter": {"status": "finished", "limit": 1, "offset": a.runs - 1}}),
                 "every run to finish")
        s.stop()
        db = os.path.join(d, "anvil.db")
        rows = []
        runs, live, size = measure(db)
        rows.append(("%d runs, as written" % runs, live / runs, size / runs, size))
        copy = os.path.join(d, "vacuumed.db")
        shutil.copy(db, copy)
        c = sqlite3.connect(copy)
        c.execute("VACUUM")
        c.close()
        runs, live, size = measure(copy)
        rows.append(("%d runs, after VACUUM" % runs, live / runs, size / runs, size))
        open(os.path.join(d, "anvil.yaml"), "w").write(config("retention: { maxRuns: %d }\n" % a.keep))
        s.start()
        wait_for(lambda: len(s.rpc("listRuns", {"filter": {"limit": a.keep + 1}})) <= a.keep,
                 "retention to remove the rest")
        s.stop()
        runs, live, size = measure(db)
        rows.append(("%d kept by retention (maxRuns %d)" % (runs, a.keep), live / runs, size / runs, size))
        print("| database | live bytes / run | file bytes / run | file bytes |")
        print("| --- | ---: | ---: | ---: |")
        for name, lb, fb, total in rows:
            print("| %s | %.0f | %.0f | %d |" % (name, lb, fb, total))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
