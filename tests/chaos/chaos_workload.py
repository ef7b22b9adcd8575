"""The mixed workload of a chaos campaign: four threads that keep calling
the server while it is being killed, and the drain that follows.

  launcher   launches runs of every workflow; some carry an idempotencyKey
             and are retried with the same key until acknowledged (the same
             key must yield the same run, once); an unsent launch is retried
             as is, an unknown one without a key is left as unknown
  approver   approves what listApprovals shows pending (note = a nonce)
  signaller  signals runs that wait (or will wait) for one (payload = a nonce)
  canceller  cancels some acknowledged runs at a random moment after launch,
             retrying until answered (cancelRun is idempotent)

Every attempt and its outcome goes into the Journal. Each thread draws from
its own seeded random stream. The drain stops launching, approves and
signals everything that waits, and waits (bounded) until no run is active.
"""
import heapq
import threading
import time

from chaos_client import Cancel, Decision, Launch, Signal, rng_for
from chaos_workflows import SIGNAL_NAME, WEIGHTS, launch_input, nodes_of

RETRY_WINDOW_S = 20.0          # how long a keyed launch or a cancel is retried
CANCEL_SHARE = 0.12            # share of acknowledged runs cancelled later
KEYED_SHARE = 0.4              # share of launches with an idempotencyKey
EARLY_SIGNAL_SHARE = 0.35      # signals sent right after launch, before the node waits
ACTIVE = ("running", "waiting-approval", "waiting-event", "waiting-timer", "needs_attention")
WAITING = ("waiting-approval", "waiting-event")


class Workload:
    def __init__(self, api, journal, seed, workflows):
        self.api = api
        self.journal = journal
        self.seed = seed
        self.workflows = workflows
        self.signal_workflows = {k for k, root in workflows.items() if nodes_of(root, "signal")}
        self.launching = threading.Event()
        self.running = threading.Event()
        self.draining = threading.Event()
        self.cancel_lock = threading.Lock()
        self.cancel_due = []            # heap of (monotonic time, run id)
        self.early_signals = []         # run ids to signal before their node waits
        self.threads = []
        self.errors = []                # exceptions that escaped a thread

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        self.launching.set()
        self.running.set()
        for name, fn in (("launcher", self._launcher), ("approver", self._approver),
                         ("signaller", self._signaller), ("canceller", self._canceller)):
            t = threading.Thread(target=self._guard, args=(name, fn), name=name, daemon=True)
            t.start()
            self.threads.append(t)

    def _guard(self, name, fn):
        try:
            fn(rng_for(self.seed, name))
        except Exception as e:          # reported, never silently lost
            self.errors.append("%s thread: %s: %s" % (name, type(e).__name__, e))

    def stop(self, timeout=30.0):
        self.launching.clear()
        self.running.clear()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    def _pause(self, rng, lo, hi):
        time.sleep(rng.uniform(lo, hi))

    # -- launcher ------------------------------------------------------------

    def _launcher(self, rng):
        names = sorted(self.workflows)
        weights = [WEIGHTS[n] for n in names]
        while self.launching.is_set():
            wf = rng.choices(names, weights)[0]
            nonce = self.journal.new_id("n")
            launch = Launch(nonce, wf, launch_input(rng, wf, nonce, self.workflows[wf]),
                            "idem-" + nonce if rng.random() < KEYED_SHARE else None)
            run_id = self._launch(launch)
            if run_id:
                self._plan_for(rng, launch, run_id)
            self._pause(rng, 0.03, 0.15)

    def _launch(self, launch):
        """Launch until acknowledged, refused, or given up; the run id or None.
        Only a keyed launch is retried after an unknown outcome."""
        params = {"workflow": launch.workflow, "input": launch.input}
        if launch.key:
            params["options"] = {"idempotencyKey": launch.key}
        deadline = time.monotonic() + RETRY_WINDOW_S
        while True:
            o = self.api.call("launchRun", params)
            self.journal.launch(launch, o, params)
            if o.status == "ack":
                return o.payload["runId"]
            if o.status == "refused" or time.monotonic() > deadline or not self.running.is_set():
                return None
            if o.status == "unknown" and not launch.key:
                return None
            time.sleep(0.05)

    def _plan_for(self, rng, launch, run_id):
        """After an acknowledged launch: maybe re-launch with the same key at
        once (must answer the same run), maybe plan a cancel, maybe signal
        before the signal node waits."""
        if launch.key and rng.random() < 0.2:
            self._launch(launch)
        if rng.random() < CANCEL_SHARE:
            with self.cancel_lock:
                heapq.heappush(self.cancel_due, (time.monotonic() + rng.uniform(0.0, 2.0), run_id))
        if launch.workflow in self.signal_workflows and rng.random() < EARLY_SIGNAL_SHARE:
            with self.cancel_lock:
                self.early_signals.append(run_id)

    # -- approver ------------------------------------------------------------

    def _approver(self, rng):
        while self.running.is_set():
            o = self.api.call("listApprovals", {"filter": {"limit": 1000}})
            if o.status == "ack":
                for a in o.payload:
                    if self.journal.approval_acked(a["runId"], a["nodeId"]):
                        continue     # decided: if it stays pending the oracle sees it
                    if self.draining.is_set() or rng.random() < 0.6:
                        self._decide(a["runId"], a["nodeId"])
            self._pause(rng, 0.05, 0.2)

    def _decide(self, run_id, node_id):
        note = self.journal.new_id("a")
        params = {"runId": run_id, "nodeId": node_id, "decision": {"approved": True, "note": note}}
        self.journal.decision(Decision(run_id, node_id, note, self.api.call("submitApproval", params)),
                              params)

    # -- signaller -----------------------------------------------------------

    def _signaller(self, rng):
        while self.running.is_set():
            with self.cancel_lock:
                early, self.early_signals = self.early_signals, []
            for run_id in early:
                self._send_signal(run_id, self.journal.launch_of(run_id).input["key"])
            for run_id, key in self._runs_waiting_for_a_signal():
                if self.draining.is_set() or rng.random() < 0.6:
                    self._send_signal(run_id, key)
            self._pause(rng, 0.05, 0.2)

    def _runs_waiting_for_a_signal(self):
        """(run id, correlation key) of waiting runs of a signal workflow that
        have no acknowledged signal yet (also runs whose launch is unknown)."""
        out = []
        for status in WAITING:
            o = self.api.call("listRuns", {"filter": {"status": status, "limit": 1000}})
            if o.status != "ack":
                continue
            for r in o.payload:
                if r["workflowKey"] not in self.signal_workflows or self.journal.signal_acked(r["runId"]):
                    continue
                key = self._signal_key(r["runId"])
                if key:
                    out.append((r["runId"], key))
        return out

    def _signal_key(self, run_id):
        launch = self.journal.launch_of(run_id)
        if launch:
            return launch.input["key"]
        o = self.api.call("getRun", {"runId": run_id})
        return o.payload["input"].get("key") if o.status == "ack" else None

    def _send_signal(self, run_id, key):
        nonce = self.journal.new_id("g")
        params = {"runId": run_id, "signalName": SIGNAL_NAME, "correlationKey": key,
                  "payload": {"nonce": nonce}}
        self.journal.signal(Signal(run_id, nonce, self.api.call("submitSignal", params)), params)

    # -- canceller -----------------------------------------------------------

    def _canceller(self, rng):
        while self.running.is_set():
            due = None
            with self.cancel_lock:
                if self.cancel_due and self.cancel_due[0][0] <= time.monotonic():
                    due = heapq.heappop(self.cancel_due)[1]
            if due is None:
                time.sleep(0.02)
                continue
            deadline = time.monotonic() + RETRY_WINDOW_S
            while self.running.is_set():
                o = self.api.call("cancelRun", {"runId": due})
                self.journal.cancel(Cancel(due, o))
                if o.status in ("ack", "refused") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)

    def cancels_pending(self):
        with self.cancel_lock:
            return len(self.cancel_due)

    # -- drain ---------------------------------------------------------------

    def drain(self, timeout):
        """Stop launching, decide and signal every wait, and wait until no
        run is active and no planned cancel is left. Returns the active
        runs [(run id, status)] still there at the deadline."""
        self.launching.clear()
        self.draining.set()
        deadline = time.monotonic() + timeout
        active = None
        while time.monotonic() < deadline:
            active = self.active_runs()
            if active == [] and self.cancels_pending() == 0 and not self.threads[0].is_alive():
                return []
            time.sleep(0.2)
        return active if active is not None else [("?", "the server did not answer listRuns")]

    def active_runs(self):
        """[(run id, status)] of every run not in a terminal state, or None
        if the server did not answer."""
        out = []
        for status in ACTIVE:
            o = self.api.call("listRuns", {"filter": {"status": status, "limit": 1000}})
            if o.status != "ack":
                return None
            out += [(r["runId"], r["status"]) for r in o.payload]
        return out
