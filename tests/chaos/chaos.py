#!/usr/bin/env python3
"""kill -9 chaos campaign for `anvil serve`.

A mixed workload (launches of workflows with real shell tasks, approvals,
signals, cancels, WebSocket stream subscribers) runs while the server is
SIGKILLed at random moments and restarted on the same config and database,
`--kills` times. Then the killing stops, the workload drains (every wait is
approved or signalled) and the server is stopped with SIGTERM. An oracle
then checks the database (python's sqlite3), the API's answers and the
streams against the journal of acknowledged actions: each acknowledged
action present exactly once, no run failed, none stuck, per-run event seqs
without gap or duplicate, integrity_check ok. See README.md.

    /usr/bin/python3 tests/chaos/chaos.py --anvil build/anvil --kills 5 --seed 1

Prints a summary and every violation (run id, expected, found); exits 0
when there is none, 1 when there are violations, 2 when the campaign itself
could not run, 3 when it hit its hard time cap. Loopback only; every wait
is bounded; the temporary directory and every process it started are gone
when it exits (--keep keeps the directory).
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from chaos_client import Api, Journal, rng_for  # noqa: E402
from chaos_oracle import Db, Violation, check_all, legitimate_waits  # noqa: E402
from chaos_server import ChaosServer, become_subreaper, reap_orphans  # noqa: E402
from chaos_streams import StreamWatch  # noqa: E402
from chaos_workflows import config, workflows  # noqa: E402
from chaos_workload import Workload  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--anvil", default=os.environ.get("ANVIL_BIN", os.path.join(SOURCE_DIR, "build", "anvil")),
                   help="the anvil binary (default $ANVIL_BIN, else build/anvil)")
    p.add_argument("--kills", type=int, default=5, help="how many SIGKILLs (default 5)")
    p.add_argument("--seed", type=int, default=1, help="fixes every random choice (default 1)")
    p.add_argument("--duration-per-kill-ms", default="300:1500", metavar="LO:HI",
                   help="uptime before each kill, uniform in [LO, HI] ms (default 300:1500)")
    p.add_argument("--early-share", type=float, default=0.1,
                   help="share of kills that strike 0-100 ms after a restart, while it recovers "
                        "(default 0.1)")
    p.add_argument("--after-ack-share", type=float, default=0.25,
                   help="share of kills that strike right after an acknowledgement (default 0.25)")
    p.add_argument("--in-flight-share", type=float, default=0.25,
                   help="share of kills that strike as soon as a launch, decision, signal or cancel "
                        "is on the wire, before its answer (default 0.25)")
    p.add_argument("--down-ms", type=int, default=200,
                   help="the server stays down up to this long after a kill (default 200)")
    p.add_argument("--warmup-ms", type=int, default=800, help="workload time before the first kill")
    p.add_argument("--subscribers", type=int, default=3, help="WebSocket stream subscribers (default 3)")
    p.add_argument("--drain-s", type=float, default=60.0, help="bound of the drain (default 60)")
    p.add_argument("--max-s", type=float, default=None,
                   help="hard cap of the whole campaign (default 120 + 6 s per kill)")
    p.add_argument("--task-retries", type=int, default=0,
                   help="retries of every task (default 0; > 0 is a diagnostic that hides "
                        "interrupted attempts, see README.md)")
    p.add_argument("--examples", type=int, default=5, help="violations shown per kind (0: all)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    lo, _, hi = args.duration_per_kill_ms.partition(":")
    args.kill_window = (int(lo) / 1000.0, int(hi or lo) / 1000.0)
    if args.max_s is None:
        args.max_s = 120.0 + 6.0 * args.kills
    args.anvil = os.path.abspath(args.anvil)
    return args


# ---------------------------------------------------------------------------
# the campaign
# ---------------------------------------------------------------------------

class Campaign:
    def __init__(self, args, directory):
        self.args = args
        self.wfs = workflows(args.task_retries)
        text, files = config(args.task_retries)
        self.server = ChaosServer(args.anvil, directory, text, files)
        self.journal = Journal()
        self.api = Api(self.server.endpoint, lambda: self.server.kills)
        self.workload = Workload(self.api, self.journal, args.seed, self.wfs)
        self.streams = StreamWatch(self.server.endpoint, self.journal, args.seed, args.subscribers)
        self.extra = []               # violations found outside the oracle
        self.kill_moments = Counter()
        self.still_active = []
        self.started = time.monotonic()

    def run(self):
        """The whole campaign; returns [Violation] and the database (None if
        there is none to read)."""
        self.server.start()
        self.workload.start()
        self.streams.start()
        restarted = self.kill_loop()
        if restarted:
            self.still_active = self.workload.drain(self.args.drain_s)
        hung = self.workload.stop()
        if not self.streams.stop():
            hung.append("streams")
        if hung:
            self.extra.append(Violation("harness", None, "workload threads end", "still running: %s" % hung))
        for err in self.workload.errors + self.streams.errors:
            self.extra.append(Violation("harness", None, "no exception in the campaign's threads", err))
        views = self.api_views() if restarted else {}
        self.stop_server()
        db = Db(self.server.db_path) if os.path.exists(self.server.db_path) else None
        if db is None:
            return self.extra, None
        return self.extra + check_all(db, self.journal, self.wfs, self.streams.follows, views,
                                      self.streams.violations), db

    def kill_loop(self):
        """SIGKILL and restart --kills times; False if a restart failed."""
        rng = rng_for(self.args.seed, "killer")
        time.sleep(self.args.warmup_ms / 1000.0)
        for i in range(self.args.kills):
            early = i > 0 and rng.random() < self.args.early_share
            time.sleep(rng.uniform(0.0, 0.1) if early else rng.uniform(*self.args.kill_window))
            moment = rng.random()
            if early:
                self.kill_moments["early"] += 1
            elif moment < self.args.after_ack_share:
                self.kill_moments["after-ack"] += 1
                self.journal.wait_for_ack(2.0)     # is what was acknowledged durable?
            elif moment < self.args.after_ack_share + self.args.in_flight_share:
                self.kill_moments["in-flight"] += 1
                self.api.wait_for_sent(2.0)        # an answer lost: never applied twice?
            else:
                self.kill_moments["random"] += 1
            self.server.kill()
            time.sleep(rng.uniform(0, self.args.down_ms / 1000.0))
            try:
                self.server.start()
            except RuntimeError as e:
                self.extra.append(Violation("restart-failed", None, "restart %d after kill %d" % (i + 2, i + 1),
                                            "%s\n%s" % (e, self.server.log_tail())))
                return False
        return True

    def api_views(self):
        """getRun of every acknowledged run, for the API-vs-database check."""
        views = {}
        for run_id in list(self.journal.runs):
            o = self.api.call("getRun", {"runId": run_id})
            if o.status == "ack":
                views[run_id] = o.payload
        return views

    def stop_server(self):
        rc = self.server.stop()
        if rc != 0 and self.server.starts and not any(v.kind == "restart-failed" for v in self.extra):
            self.extra.append(Violation("server-exit", None, "exit status 0 on SIGTERM",
                                        "%s\n%s" % ("killed after 10 s" if rc is None else rc,
                                                    self.server.log_tail())))
        # Zombies are dead already: processes the server orphaned while it
        # ran (a killed task shell's sleep) come to us, the subreaper, and
        # nobody else would reap them. A live one is a leak.
        left = [p for p in reap_orphans() if p.split()[1] not in ("Z", "X")]
        if left:
            self.extra.append(Violation("leftover-process", None, "no task process after the final stop",
                                        "%d process(es) killed: %s" % (len(left), "; ".join(left[:10]))))


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

def _outcomes(items):
    """'ack 5, unknown 1, refused 2 (Busy 2)'"""
    c = Counter(o.status for o in items)
    codes = Counter(o.code for o in items if o.status == "refused")
    text = ", ".join("%s %d" % (k, c[k]) for k in ("ack", "unknown", "unsent", "refused") if c[k])
    return text + (" (%s)" % ", ".join("%s %d" % kv for kv in sorted(codes.items())) if codes else "")


def print_summary(c, violations, db, elapsed):
    a, j, s = c.args, c.journal, c.server
    print("anvil chaos campaign: seed %d, %d kills (%s), %d starts, %d port changes, %.1f s"
          % (a.seed, s.kills, ", ".join("%s %d" % kv for kv in sorted(c.kill_moments.items())),
             s.starts, s.port_changes, elapsed))
    print("  binary %s; kill every %d-%d ms; task retries %d"
          % (a.anvil, a.kill_window[0] * 1000, a.kill_window[1] * 1000, a.task_retries))
    launches = list(j.launches.values())
    print("  launches: %d (%d with idempotencyKey); calls: %s"
          % (len(launches), sum(1 for x in launches if x.key), _outcomes([o for x in launches for o in x.attempts])))
    print("  approvals: %s" % _outcomes([d.outcome for d in j.decisions]))
    print("  signals:   %s" % _outcomes([x.outcome for x in j.signals]))
    print("  cancels:   %s" % _outcomes([x.outcome for x in j.cancels]))
    f = c.streams.follows
    print("  streams: %d runs followed (%d to run.completed), %d events, %d connections, %d stalls"
          % (len(f), sum(x.completed for x in f), sum(len(x.events) for x in f),
             sum(x.connections for x in f), c.streams.stalls))
    print("  orphaned task processes killed after the kills: %d" % s.orphans_killed)
    if db is not None:
        st = Counter(r["status"] for r in db.runs.values())
        print("  runs in the database: %d (%s); legitimate waits left: %d; integrity_check: %s"
              % (len(db.runs), ", ".join("%s %d" % kv for kv in sorted(st.items())),
                 len(legitimate_waits(db)), ",".join(db.integrity[:3])))
    if c.still_active:
        print("  still active when the drain gave up: %d" % len(c.still_active))
    print_violations(violations, a.examples, db)


def print_violations(violations, examples, db):
    if not violations:
        print("RESULT: PASS (no violation)")
        return
    kinds = Counter(v.kind for v in violations)
    print("violations by kind: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    for kind in sorted(kinds):
        vs = [v for v in violations if v.kind == kind]
        print("\n== %s: %d" % (kind, len(vs)))
        if kind == "failed-run" and db is not None:
            causes = Counter(_node_errors(db, v.run_id) for v in vs)
            for cause, n in causes.most_common():
                print("   %4d x failed nodes' errors: %s" % (n, cause))
        for v in vs[:examples or len(vs)]:
            print("   - run %s\n     expected: %s\n     found:    %s" % (v.run_id, v.expected, v.found))
        if examples and len(vs) > examples:
            print("   ... %d more (--examples 0 shows all)" % (len(vs) - examples))
    print("\nRESULT: FAIL (%d violations)" % len(violations))


def _node_errors(db, run_id):
    errs = sorted({n["error"] or "?" for n in db.nodes.get(run_id, []) if n["state"] == "failed"
                   and n["kind"] == "task"})
    return "; ".join(errs) or (db.runs[run_id]["error"] or "?")


# ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.access(args.anvil, os.X_OK):
        print("chaos: no executable anvil at %s (pass --anvil PATH)" % args.anvil, file=sys.stderr)
        return 2
    become_subreaper()
    directory = tempfile.mkdtemp(prefix="anvil-chaos-")
    campaign = Campaign(args, directory)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))      # run the finally below

    def hard_cap():
        print("chaos: hard cap of %.0f s reached; stopping everything" % args.max_s, file=sys.stderr)
        campaign.server.terminate_everything()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        os._exit(3)
    watchdog = threading.Timer(args.max_s, hard_cap)
    watchdog.daemon = True
    watchdog.start()
    try:
        violations, db = campaign.run()
        print_summary(campaign, violations, db, time.monotonic() - campaign.started)
        return 1 if violations else 0
    except RuntimeError as e:
        print("chaos: the campaign could not run: %s\n%s" % (e, campaign.server.log_tail()), file=sys.stderr)
        return 2
    finally:
        watchdog.cancel()
        campaign.server.terminate_everything()
        if args.keep:
            print("chaos: kept %s" % directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
