"""The oracle of a chaos campaign: the journal of acknowledged actions
against the database, read with sqlite3 after a clean SIGTERM stop, and
against what the API and the event streams said.

Each check returns Violations (kind, run id, expected, found). The kinds:

  integrity            PRAGMA integrity_check is not "ok"
  launch-lost          an acknowledged launch has no run
  launch-duplicated    one launch (nonce) made more than one run
  launch-mismatch      the run of an acknowledged launch is not the id answered
  launch-phantom       a run nobody launched, or one from a launch that was never sent
  idempotency          one idempotencyKey answered, or recorded, more than one run
  approval-lost        an acknowledged approval is not recorded with its note
  approval-duplicated  more than one approval.decided for one node
  approval-unexplained a recorded decision (or an AlreadyDecided) no attempt of ours explains
  signal-lost          an acknowledged signal is not stored exactly once
  signal-duplicated    one signal (nonce) stored more than once
  signal-phantom       a signal stored although its call was refused or never sent
  signal-seq           a run's signal seqs are not 1..N, or differ from the answer
  signal-delivery      delivered: true answered but the signal is not consumed, or a
                       node consumed more than one signal, or its output is not the payload
  cancel-ignored       an acknowledged cancel did not leave the run cancelled
  cancel-unexplained   a run is cancelled although nobody asked
  seq-gap              a run's event seqs are not 1..N, or runs.last_seq is not N
  frame-gap            a run's frame numbers are not 1..frame_no
  state-version        stateVersion does not strictly increase along a run's log
  completion           run.started is not first, or a terminal run has not exactly one
                       run.completed, last, with its status
  failed-run           a run failed (no task here can fail by itself)
  stuck-run            a run still active after the drain that waits for nothing
  output               a finished run's node is not finished or its output row is wrong
  api-mismatch         getRun disagrees with the database on an ended run
  stream-*, ws-seq     see chaos_streams.py; stream-mismatch: a streamed event differs
                       from the durable log at that seq
  internal-error       the server answered Internal
  server-exit          the final SIGTERM stop did not exit 0
  leftover-process     a process of ours was still alive after the final stop
  restart-failed       a restart after a kill did not come up (the campaign stops there)
  harness              the campaign itself broke (a thread raised, or did not end)
"""
import json
import sqlite3
from collections import Counter, defaultdict, namedtuple

from chaos_workflows import SIGNAL_NAME, nodes_of

# An event's payload as recorded: rows marked `compact` are stored without
# the leading runId their run_id column holds (runtime/store/store_compact.h).
PAYLOAD_SQL = ("CASE WHEN compact = 1 THEN '{\"runId\":\"' || run_id || '\"'"
               " || CASE WHEN payload_json = '{}' THEN '}' ELSE ',' || substr(payload_json, 2) END"
               " ELSE payload_json END")

Violation = namedtuple("Violation", "kind run_id expected found")
TERMINAL = ("finished", "failed", "cancelled")


# ---------------------------------------------------------------------------
# the database, loaded once
# ---------------------------------------------------------------------------

class Db:
    def __init__(self, path):
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            self.integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
            self.runs = {r["run_id"]: dict(r) for r in con.execute("SELECT * FROM runs")}
            self.nodes = self._group(con, "SELECT * FROM nodes ORDER BY rowid", "run_id")
            self.attempts = self._group(con, "SELECT run_id, node_id, attempt, state, exit_code, error"
                                             " FROM attempts ORDER BY attempt", "run_id")
            self.events = self._group(con, "SELECT run_id, seq, event, " + PAYLOAD_SQL +
                                           " AS payload_json, state_version"
                                           " FROM events ORDER BY run_id, seq", "run_id")
            self.frames = self._group(con, "SELECT run_id, frame_no FROM frames ORDER BY frame_no", "run_id")
            self.signals = self._group(con, "SELECT * FROM signals ORDER BY seq", "run_id")
            self.approvals = {(r["run_id"], r["node_id"]): dict(r) for r in con.execute("SELECT * FROM approvals")}
            self.outputs = {(r["run_id"], r["node_id"]): json.loads(r["row_json"])
                            for r in con.execute("SELECT run_id, node_id, row_json FROM outputs")}
        finally:
            con.close()
        for run in self.runs.values():
            run["input"] = json.loads(run["input_json"])

    @staticmethod
    def _group(con, sql, key):
        out = defaultdict(list)
        for r in con.execute(sql):
            out[r[key]].append(dict(r))
        return out

    def nonce(self, run_id):
        return self.runs[run_id]["input"].get("nonce")


def check_all(db, journal, workflows, follows, api_views, live_violations):
    """Every check; returns [Violation]."""
    out = [Violation(*v) for v in live_violations]
    for check in (check_integrity, check_launches, check_approvals, check_signals, check_cancels,
                  check_logs, check_failed, check_active, check_outputs, check_internal):
        out += check(db, journal, workflows)
    out += check_api(db, api_views)
    out += check_streams(db, follows)
    return out


def check_integrity(db, journal, workflows):
    if db.integrity != ["ok"]:
        return [Violation("integrity", None, "ok", "; ".join(db.integrity[:5]))]
    return []


# ---------------------------------------------------------------------------
# acknowledged actions
# ---------------------------------------------------------------------------

def check_launches(db, journal, workflows):
    out = []
    by_nonce = defaultdict(list)
    for run_id in db.runs:
        by_nonce[db.nonce(run_id)].append(run_id)
    for nonce, launch in journal.launches.items():
        found = sorted(by_nonce.get(nonce, []))
        acked = sorted(set(launch.acked_ids()))
        what = "launch %s of %s%s" % (nonce, launch.workflow, " key %s" % launch.key if launch.key else "")
        if len(acked) > 1:
            out.append(Violation("idempotency", acked[0], "%s answered one runId" % what, "answered %s" % acked))
        if len(found) > 1:
            extra = [r for r in found if r not in acked] or found[1:]
            out.append(Violation("launch-duplicated", extra[0], "%s made at most one run%s"
                                 % (what, " (%s)" % acked[0] if acked else ""), "runs %s" % found))
        elif acked and not found:
            out.append(Violation("launch-lost", acked[0], "%s acknowledged as %s" % (what, acked[0]), "no such run"))
        elif acked and found[0] not in acked:
            out.append(Violation("launch-mismatch", found[0], "%s is run %s" % (what, acked[0]),
                                 "run %s" % found[0]))
        elif found and not launch.maybe_sent():
            out.append(Violation("launch-phantom", found[0], "no run for %s (never sent)" % what,
                                 "run %s" % found[0]))
        for run_id in found:
            if db.runs[run_id]["workflow"] != launch.workflow:
                out.append(Violation("launch-mismatch", run_id, "workflow %s" % launch.workflow,
                                     db.runs[run_id]["workflow"]))
        if launch.key:
            keyed = sorted(r for r, row in db.runs.items() if row["idempotency_key"] == launch.key)
            if len(keyed) > 1 or (acked and keyed != acked[:1]):
                out.append(Violation("idempotency", keyed[0] if keyed else None,
                                     "key %s recorded once, as %s" % (launch.key, acked[:1] or "one run"),
                                     "recorded for %s" % keyed))
    for nonce, run_ids in by_nonce.items():
        if nonce not in journal.launches:
            out += [Violation("launch-phantom", r, "a run launched by the campaign", "input nonce %r" % nonce)
                    for r in run_ids]
    return out


def check_approvals(db, journal, workflows):
    out = []
    ours = defaultdict(dict)                  # (run, node) -> {note: outcome status}
    for d in journal.decisions:
        ours[(d.run_id, d.node_id)][d.note] = d.outcome.status
    decided_events = defaultdict(list)
    for run_id, events in db.events.items():
        for e in events:
            if e["event"] == "approval.decided":
                p = json.loads(e["payload_json"])
                decided_events[(run_id, p.get("nodeId"))].append((e["seq"], p.get("note")))
    for key, evs in decided_events.items():
        if len(evs) > 1:
            out.append(Violation("approval-duplicated", key[0], "one approval.decided for node %s" % key[1],
                                 "%d: %s" % (len(evs), evs)))
    for d in journal.decisions:
        row = db.approvals.get((d.run_id, d.node_id))
        recorded = (row["status"], row["note"]) if row else None
        if d.outcome.status == "ack" and recorded != ("approved", d.note):
            out.append(Violation("approval-lost", d.run_id,
                                 "node %s approved with note %s" % (d.node_id, d.note), "recorded %s" % (recorded,)))
        if d.outcome.code == "AlreadyDecided":
            note = row["note"] if row else None
            if ours[(d.run_id, d.node_id)].get(note) not in ("ack", "unknown"):
                out.append(Violation("approval-unexplained", d.run_id,
                                     "AlreadyDecided for node %s only after one of our decisions" % d.node_id,
                                     "recorded %s; our attempts %s" % (recorded, ours[(d.run_id, d.node_id)])))
    for (run_id, node_id), row in db.approvals.items():
        if row["status"] in ("pending", "cancelled"):      # cancelled: withdrawn with its run
            continue
        if ours[(run_id, node_id)].get(row["note"]) not in ("ack", "unknown"):
            out.append(Violation("approval-unexplained", run_id,
                                 "node %s decided by an acknowledged or unknown attempt" % node_id,
                                 "recorded %s note %r; our attempts %s"
                                 % (row["status"], row["note"], ours[(run_id, node_id)])))
    return out


def _signal_nonce(row):
    try:
        return json.loads(row["payload_json"]).get("nonce")
    except (TypeError, ValueError, AttributeError):
        return None


def check_signals(db, journal, workflows):
    out = []
    by_nonce = defaultdict(list)
    for run_id, rows in db.signals.items():
        for row in rows:
            by_nonce[_signal_nonce(row)].append(row)
        seqs = [row["seq"] for row in rows]
        if seqs != list(range(1, len(seqs) + 1)):
            out.append(Violation("signal-seq", run_id, "signal seqs 1..%d" % len(seqs), seqs))
        consumers = Counter(row["consumed_by"] for row in rows if row["consumed_by"])
        for node_id, n in consumers.items():
            if n > 1:
                out.append(Violation("signal-delivery", run_id, "node %s consumed one signal" % node_id,
                                     "%d signals" % n))
    for s in journal.signals:
        rows = by_nonce.get(s.nonce, [])
        what = "signal %s to %s" % (s.nonce, s.run_id)
        if s.outcome.status == "ack":
            if len(rows) != 1:
                out.append(Violation("signal-lost" if not rows else "signal-duplicated", s.run_id,
                                     "%s stored once" % what, "stored %d times" % len(rows)))
                continue
            row, answered = rows[0], s.outcome.payload
            if (row["run_id"], row["seq"]) != (s.run_id, answered.get("seq")):
                out.append(Violation("signal-seq", s.run_id, "%s stored as seq %s" % (what, answered.get("seq")),
                                     "run %s seq %s" % (row["run_id"], row["seq"])))
            if answered.get("delivered") and not row["consumed_by"]:
                out.append(Violation("signal-delivery", s.run_id, "%s consumed (answered delivered)" % what,
                                     "not consumed"))
        elif s.outcome.status == "unknown" and len(rows) > 1:
            out.append(Violation("signal-duplicated", s.run_id, "%s stored at most once" % what,
                                 "stored %d times" % len(rows)))
        elif s.outcome.status in ("refused", "unsent") and rows:
            out.append(Violation("signal-phantom", s.run_id, "%s not stored (%s %s)"
                                 % (what, s.outcome.status, s.outcome.code or ""), "stored"))
    return out


def check_cancels(db, journal, workflows):
    out = []
    asked = {c.run_id for c in journal.cancels if c.outcome.status in ("ack", "unknown")}
    acked = {c.run_id for c in journal.cancels if c.outcome.status == "ack"}
    for run_id in sorted(acked):
        run = db.runs.get(run_id)
        found = (run["status"], run["cancel_requested"]) if run else ("no run", None)
        if found != ("cancelled", 1):
            out.append(Violation("cancel-ignored", run_id, "cancelled (cancelRun answered cancelling)",
                                 "status %s, cancel_requested %s" % found))
    for run_id, run in sorted(db.runs.items()):
        if run["status"] == "cancelled" and run_id not in asked:
            out.append(Violation("cancel-unexplained", run_id, "a cancelRun before a cancelled run",
                                 "cancelled; no cancel was sent"))
    return out


# ---------------------------------------------------------------------------
# the logs and the runs' ends
# ---------------------------------------------------------------------------

def _first_break(seqs):
    """Where 1..N first breaks, as text."""
    for i, s in enumerate(seqs, 1):
        if s != i:
            return "seq %d where %d was due (%d events)" % (s, i, len(seqs))
    return "%d events" % len(seqs)


def check_logs(db, journal, workflows):
    out = []
    for run_id, run in sorted(db.runs.items()):
        events = db.events.get(run_id, [])
        seqs = [e["seq"] for e in events]
        if seqs != list(range(1, len(seqs) + 1)):
            out.append(Violation("seq-gap", run_id, "event seqs 1..%d" % len(seqs), _first_break(seqs)))
        if run["last_seq"] != len(seqs):
            out.append(Violation("seq-gap", run_id, "runs.last_seq %d = events logged" % run["last_seq"],
                                 "%d events" % len(seqs)))
        frames = [f["frame_no"] for f in db.frames.get(run_id, [])]
        if frames != list(range(1, run["frame_no"] + 1)):
            out.append(Violation("frame-gap", run_id, "frames 1..%d" % run["frame_no"], _first_break(frames)))
        versions = [e["state_version"] for e in events]
        if any(b <= a for a, b in zip(versions, versions[1:])):
            out.append(Violation("state-version", run_id, "strictly increasing stateVersion", versions[:50]))
        out += _check_completion(run_id, run, events)
    return out


def _check_completion(run_id, run, events):
    names = [e["event"] for e in events]
    if not names or names[0] != "run.started":
        return [Violation("completion", run_id, "run.started first", names[:3])]
    done = names.count("run.completed")
    if run["status"] not in TERMINAL:
        return [] if done == 0 else [Violation("completion", run_id, "no run.completed while %s" % run["status"],
                                               "%d" % done)]
    status = json.loads(events[-1]["payload_json"]).get("status") if names[-1] == "run.completed" else None
    if done != 1 or status != run["status"]:
        return [Violation("completion", run_id, "one run.completed, last, status %s" % run["status"],
                          "%d run.completed; last event %s (status %s)" % (done, names[-1], status))]
    return []


def failure_text(db, run_id):
    """The run's error, its failed nodes' errors and their attempts."""
    run = db.runs[run_id]
    parts = ["run error: %s" % run["error"]]
    for n in db.nodes.get(run_id, []):
        if n["state"] == "failed":
            tries = ["#%d %s exit=%s %s" % (a["attempt"], a["state"], a["exit_code"], a["error"] or "")
                     for a in db.attempts.get(run_id, []) if a["node_id"] == n["node_id"]]
            parts.append("node %s: %s [attempts: %s]" % (n["node_id"], n["error"], "; ".join(tries)))
    return " | ".join(parts)


def check_failed(db, journal, workflows):
    return [Violation("failed-run", run_id, "finished or cancelled (%s)" % run["workflow"],
                      failure_text(db, run_id))
            for run_id, run in sorted(db.runs.items()) if run["status"] == "failed"]


def _legitimate_wait(db, run_id):
    """'' if the run is in a wait only an outside action ends, else why not."""
    run = db.runs[run_id]
    if run["status"] not in ("waiting-approval", "waiting-event"):
        return "status %s after the drain" % run["status"]
    nodes = db.nodes.get(run_id, [])
    busy = [n["node_id"] for n in nodes if n["state"] == "running"]
    if busy:
        return "status %s with running nodes %s" % (run["status"], busy)
    for n in nodes:
        if n["state"] != "waiting":
            continue
        if n["kind"] == "approval":
            a = db.approvals.get((run_id, n["node_id"]))
            if not a or a["status"] != "pending":
                return "approval %s waits but is recorded %s" % (n["node_id"], a and a["status"])
        elif n["kind"] == "signal":
            key = run["input"].get("key")
            stored = [s["seq"] for s in db.signals.get(run_id, []) if not s["consumed_by"]
                      and s["signal_name"] in (None, SIGNAL_NAME) and s["correlation_id"] == key]
            if stored:
                return "signal node %s waits although signals %s are stored for it" % (n["node_id"], stored)
    return ""


def check_active(db, journal, workflows):
    out = []
    for run_id, run in sorted(db.runs.items()):
        if run["status"] in TERMINAL:
            continue
        why = _legitimate_wait(db, run_id)
        if why:
            states = ", ".join("%s=%s" % (n["node_id"], n["state"]) for n in db.nodes.get(run_id, []))
            out.append(Violation("stuck-run", run_id, "terminal, or a wait for an approval or a signal",
                                 "%s [%s]" % (why, states)))
    return out


def legitimate_waits(db):
    return sorted(r for r, run in db.runs.items() if run["status"] not in TERMINAL and not _legitimate_wait(db, r))


def check_outputs(db, journal, workflows):
    out = []
    for run_id, run in sorted(db.runs.items()):
        root = workflows.get(run["workflow"])
        if run["status"] != "finished" or root is None:
            continue
        bad = [n["node_id"] for n in db.nodes.get(run_id, []) if n["state"] != "finished"]
        if bad:
            out.append(Violation("output", run_id, "every node finished", "not finished: %s" % bad))
        for node_id in nodes_of(root, "task"):
            want = {"node": node_id, "nonce": db.nonce(run_id)}
            got = db.outputs.get((run_id, node_id))
            if got != want:
                out.append(Violation("output", run_id, "node %s row %s" % (node_id, json.dumps(want)),
                                     json.dumps(got)))
        for node_id in nodes_of(root, "signal"):
            taken = [s for s in db.signals.get(run_id, []) if s["consumed_by"] == node_id]
            got = db.outputs.get((run_id, node_id))
            if len(taken) != 1 or got != json.loads(taken[0]["payload_json"]):
                out.append(Violation("signal-delivery", run_id, "node %s output = the one signal it consumed" % node_id,
                                     "output %s; consumed %s" % (json.dumps(got), [s["seq"] for s in taken])))
    return out


def check_internal(db, journal, workflows):
    return [Violation("internal-error", params.get("runId"), "%s answered" % method,
                      "Internal: %s" % o.message)
            for method, params, o in journal.internal]


# ---------------------------------------------------------------------------
# what the API and the streams said
# ---------------------------------------------------------------------------

def check_api(db, api_views):
    out = []
    for run_id, view in sorted(api_views.items()):
        run = db.runs.get(run_id)
        if run is None:
            out.append(Violation("api-mismatch", run_id, "the run getRun showed", "not in the database"))
            continue
        if run["status"] not in TERMINAL:
            continue
        got = (view.get("status"), view.get("lastSeq"), view.get("frameNo"))
        want = (run["status"], run["last_seq"], run["frame_no"])
        if got != want:
            out.append(Violation("api-mismatch", run_id, "getRun (status, lastSeq, frameNo) = %s" % (want,),
                                 "%s" % (got,)))
    return out


def check_streams(db, follows):
    """Every streamed event is the durable log's event at that seq."""
    out = []
    for f in follows:
        log = {e["seq"]: e for e in db.events.get(f.run_id, [])}
        for seq, event, version, payload in f.events:
            e = log.get(seq)
            if e is None or (e["event"], e["state_version"], json.loads(e["payload_json"])) != (event, version, payload):
                out.append(Violation("stream-mismatch", f.run_id,
                                     "seq %d as logged: %s" % (seq, e and (e["event"], e["state_version"])),
                                     "streamed %s stateVersion %s (subscriber %d)" % (event, version, f.subscriber)))
                break          # one per follow: the rest usually follows from it
    return out
