#!/usr/bin/env python3
"""What other callers see while a rewind of a large workspace is in flight.

    /usr/bin/python3 bench/rewind_inflight.py [--rewinds 5] [--files 2048] BINARY [BINARY ...]

For each binary (e.g. the build before the rewind moved its checkout off
the loop, and this one): one run writes FILES files of 4 KiB random bytes,
waits at an approval, and rewrites them all; then it is rewound to the
frame where it waited (every file is written back) REWINDS times. While
each rewind is in flight, a second connection calls `health` back to back;
its latencies, and the rewind's own round trip, are reported per binary.
Between rewinds the run is resumed, approved and finished again.

"In flight" starts when the rewind's audit row is committed `in_progress`
(read from the database, which WAL lets another process read) and ends
when the rewind's answer arrives. Prints a markdown table.
"""
import argparse
import http.client
import json
import os
import sqlite3
import threading
import time

import time_travel
from time_travel import TOKEN
FLOW = """name: heavy
root:
  sequence:
    - task: { id: fill, run: "head -c %(bytes)d /dev/urandom | split -a 4 -b 4096 - r" }
    - approval: { id: gate }
    - task: { id: refill, run: "head -c %(bytes)d /dev/urandom | split -a 4 -b 4096 - r" }
"""
CONFIG = ("listen: 127.0.0.1:0\ndatabase: anvil.db\nauth:\n  mode: token\n  tokens:\n"
          "    %s: { role: admin, scopes: [\"*\"], userId: bench }\n"
          "workflows:\n  heavy: { file: heavy.yaml }\n" % TOKEN)


class Server(time_travel.Server):
    def __init__(self, binary, files):
        super().__init__(binary, {"anvil.yaml": CONFIG, "heavy.yaml": FLOW % {"bytes": files * 4096}})

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def rpc(self, method, params, conn=None):
        # Control calls get a connection each: one left idle across a long
        # rewind would have timed out.
        own = conn is None
        conn = conn or self.connect()
        conn.request("POST", "/v1/rpc/" + method, json.dumps(params),
                     {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        doc = json.loads(conn.getresponse().read())
        if own:
            conn.close()
        if not doc["ok"]:
            raise RuntimeError("%s: %s" % (method, doc["error"]))
        return doc["payload"]

    def db(self, sql, args):
        con = sqlite3.connect(os.path.join(self.dir, "anvil.db"), timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


def gate_frame(s, run):
    for frame_no, tree in s.db("SELECT frame_no, tree_json FROM frames WHERE run_id = ? ORDER BY frame_no",
                               (run,)):
        if any(n["id"] == "gate" and n["state"] == "waiting" for n in json.loads(tree)["root"]["children"]):
            return frame_no
    raise RuntimeError("no frame shows the gate waiting")


def finish(s, run):
    s.wait(run, "waiting-approval")
    s.rpc("submitApproval", {"runId": run, "nodeId": "gate", "decision": {"approved": True}})
    s.wait(run, "finished")


def measure(binary, rewinds, files):
    s = Server(binary, files)
    rtt, health = [], []
    try:
        run = s.rpc("launchRun", {"workflow": "heavy", "input": {}})["runId"]
        finish(s, run)
        frame = gate_frame(s, run)
        for i in range(rewinds):
            side = s.connect()   # fresh: an idle one times out between rewinds
            rows_before = len(s.db("SELECT 1 FROM rewind_audit WHERE run_id = ?", (run,)))
            done = {}

            def rewind():
                conn = s.connect()
                t0 = time.perf_counter()
                s.rpc("rewindRun", {"runId": run, "frameNo": frame, "confirm": True}, conn)
                done["ms"] = (time.perf_counter() - t0) * 1000
                conn.close()
            t = threading.Thread(target=rewind)
            t.start()
            while len(s.db("SELECT 1 FROM rewind_audit WHERE run_id = ?", (run,))) == rows_before:
                time.sleep(0.0005)
            while t.is_alive():
                t0 = time.perf_counter()
                s.rpc("health", {}, side)
                health.append((time.perf_counter() - t0) * 1000)
            t.join()
            side.close()
            rtt.append(done["ms"])
            s.rpc("resumeRun", {"runId": run})
            finish(s, run)
    finally:
        s.stop()
    return rtt, health


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rewinds", type=int, default=5)
    ap.add_argument("--files", type=int, default=2048)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    print("| binary | rewind round trip p50 / max ms | health calls during rewinds | health p50 / max ms |")
    print("| --- | --- | --- | --- |")
    for b in a.binaries:
        rtt, health = measure(os.path.abspath(b), a.rewinds, a.files)
        print("| %s | %.0f / %.0f | %d | %.2f / %.0f |" % (
            b, time_travel.pct(rtt, 50), max(rtt), len(health), time_travel.pct(health, 50) if health else 0,
            max(health) if health else 0))


if __name__ == "__main__":
    main()
