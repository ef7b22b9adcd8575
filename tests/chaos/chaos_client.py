"""The campaign's HTTP client and its journal of what the server answered.

Every call ends in one of four outcomes, and only the first is a promise
the oracle holds the server to:

  ack      200 with ok: true; the action happened and must be durable
  refused  a server error answer; the action did not happen
  unsent   the connection was refused; the request never reached a server
  unknown  the request was (perhaps partly) sent but no answer came back,
           usually because the server was killed: it may or may not have
           happened, but never twice

The journal keeps every attempt, so the oracle can tell "acknowledged and
lost" from "unknown and absent".
"""
import http.client
import itertools
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from chaos_workflows import TOKEN

CALL_TIMEOUT_S = 10.0


@dataclass
class Outcome:
    status: str                   # ack | refused | unsent | unknown
    payload: object = None        # the payload of an ack
    code: Optional[str] = None    # the error code of a refusal
    message: str = ""             # error message, or what went wrong on the wire
    at: float = 0.0               # monotonic time of the answer
    generation: int = 0           # how many kills had happened when the call began


class Api:
    """POST /v1/rpc/{method} on a fresh loopback connection per call, to
    wherever the server listens now."""

    MUTATING = ("launchRun", "submitApproval", "submitSignal", "cancelRun")

    def __init__(self, endpoint, generation):
        self.endpoint = endpoint
        self.generation = generation     # callable: the current kill count
        self.sent = threading.Condition()
        self.sent_count = 0              # mutating requests written, answer not yet read

    def _note_sent(self, method):
        if method in self.MUTATING:
            with self.sent:
                self.sent_count += 1
                self.sent.notify_all()

    def wait_for_sent(self, timeout):
        """Block until the next mutating request is on the wire (or timeout),
        so that a kill can strike before its answer."""
        with self.sent:
            start = self.sent_count
            return self.sent.wait_for(lambda: self.sent_count > start, timeout)

    def call(self, method, params):
        gen = self.generation()
        port = self.endpoint.port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT_S)
        try:
            try:
                conn.connect()
            except ConnectionRefusedError as e:
                return Outcome("unsent", message=str(e), at=time.monotonic(), generation=gen)
            except (OSError, socket.timeout) as e:
                return Outcome("unknown", message="connect: %s" % e, at=time.monotonic(), generation=gen)
            try:
                conn.request("POST", "/v1/rpc/" + method, body=json.dumps(params).encode(),
                             headers={"Authorization": "Bearer " + TOKEN,
                                      "Content-Type": "application/json"})
                self._note_sent(method)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                return Outcome("unknown", message="%s: %s" % (type(e).__name__, e),
                               at=time.monotonic(), generation=gen)
        finally:
            conn.close()
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:
            return Outcome("refused", code="NotJson", message="%d %r" % (status, data[:200]),
                           at=time.monotonic(), generation=gen)
        if status == 200 and doc.get("ok") is True:
            return Outcome("ack", payload=doc.get("payload"), at=time.monotonic(), generation=gen)
        err = doc.get("error") or {}
        return Outcome("refused", code=err.get("code", "HTTP%d" % status), message=err.get("message", ""),
                       at=time.monotonic(), generation=gen)


# ---------------------------------------------------------------------------
# the journal
# ---------------------------------------------------------------------------

@dataclass
class Launch:
    nonce: str
    workflow: str
    input: dict
    key: Optional[str]                       # options.idempotencyKey
    attempts: list = field(default_factory=list)

    def acked_ids(self):
        return [o.payload["runId"] for o in self.attempts if o.status == "ack"]

    def maybe_sent(self):
        return any(o.status in ("ack", "unknown") for o in self.attempts)


@dataclass
class Decision:
    run_id: str
    node_id: str
    note: str
    outcome: Outcome


@dataclass
class Signal:
    run_id: str
    nonce: str
    outcome: Outcome


@dataclass
class Cancel:
    run_id: str
    outcome: Outcome


class Journal:
    """Everything the workload tried and what it was told. Thread-safe;
    `wait_for_ack` lets the killer strike right after an acknowledgement."""

    def __init__(self):
        self.lock = threading.Condition()
        self.launches = {}        # nonce -> Launch
        self.runs = {}            # acked run id -> Launch
        self.decisions = []
        self.signals = []
        self.cancels = []
        self.internal = []        # (method, params, Outcome) answered Internal
        self.acks = 0
        self._ids = itertools.count(1)

    def new_id(self, prefix):
        with self.lock:
            return "%s%05d" % (prefix, next(self._ids))

    def _note_ack(self, outcome, method, params):
        if outcome.status == "ack":
            self.acks += 1
            self.lock.notify_all()
        elif outcome.code == "Internal":
            self.internal.append((method, params, outcome))

    def launch(self, launch, outcome, params):
        with self.lock:
            self.launches.setdefault(launch.nonce, launch)
            launch.attempts.append(outcome)
            if outcome.status == "ack":
                self.runs.setdefault(outcome.payload["runId"], launch)
            self._note_ack(outcome, "launchRun", params)

    def decision(self, d, params):
        with self.lock:
            self.decisions.append(d)
            self._note_ack(d.outcome, "submitApproval", params)

    def signal(self, s, params):
        with self.lock:
            self.signals.append(s)
            self._note_ack(s.outcome, "submitSignal", params)

    def cancel(self, c):
        with self.lock:
            self.cancels.append(c)
            self._note_ack(c.outcome, "cancelRun", {"runId": c.run_id})

    # -- questions the workload asks -----------------------------------------

    def approval_acked(self, run_id, node_id):
        with self.lock:
            return any(d.run_id == run_id and d.node_id == node_id and d.outcome.status == "ack"
                       for d in self.decisions)

    def signal_acked(self, run_id):
        with self.lock:
            return any(s.run_id == run_id and s.outcome.status == "ack" for s in self.signals)

    def launch_of(self, run_id):
        with self.lock:
            return self.runs.get(run_id)

    def recent_runs(self, n):
        with self.lock:
            return list(self.runs)[-n:]

    def wait_for_ack(self, timeout):
        """Block until the next acknowledgement (or timeout); True if one came."""
        with self.lock:
            start = self.acks
            return self.lock.wait_for(lambda: self.acks > start, timeout)


def rng_for(seed, name):
    """One independent, reproducible random stream per thread: the seed
    fixes every choice, thread interleaving aside."""
    return random.Random("%s:%s" % (seed, name))
