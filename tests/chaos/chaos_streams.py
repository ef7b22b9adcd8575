"""WebSocket subscribers of a chaos campaign: each follows one run at a time
with `streamRunEvents`, from seq 1 (afterSeq 0) to `run.completed`.

A kill drops the socket; the subscriber reconnects (bounded backoff) and
resumes with afterSeq = the last run seq it received. What it checks live,
on its own stream:

  stream-gap / stream-duplicate  run seq is not exactly last + 1
  stream-ahead                   the resume is refused with SeqOutOfRange:
                                 it had received seqs the restarted server
                                 no longer has (an event published before
                                 its commit)
  stream-resync                  a run.gap_resync (the window is far larger
                                 than any run here, so none is expected)
  ws-seq                         the connection's own frame seq has a gap
  stream-refused                 any other refusal of connect/streamRunEvents

Every event received is kept, so the oracle can compare it with the run's
durable log afterwards (same event, stateVersion and payload at that seq).
Runs in an asyncio loop on a thread of its own (python3-websockets 10.x).
"""
import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import websockets

from chaos_client import rng_for
from chaos_workflows import TOKEN

OPEN_TIMEOUT_S = 5.0
STALL_S = 10.0       # a stream with no frame at all (run.heartbeat comes every second) is stalled


@dataclass
class Follow:
    """One subscriber's view of one run, across reconnects."""
    subscriber: int
    run_id: str
    last: int = 0
    events: list = field(default_factory=list)    # (seq, event, stateVersion, payload)
    completed: bool = False
    abandoned: str = ""
    connections: int = 0


class StreamWatch:
    def __init__(self, endpoint, journal, seed, subscribers):
        self.endpoint = endpoint
        self.journal = journal
        self.seed = seed
        self.n = subscribers
        self.follows = []
        self.violations = []      # (kind, run id, expected, found)
        self.stalls = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        if self.n <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="streams", daemon=True)
        self._thread.start()

    def stop(self, timeout=15.0):
        """Ask every subscriber to end; True if the thread ended in time."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self):
        try:
            asyncio.run(self._main())
        except Exception as e:
            self.errors.append("streams thread: %s: %s" % (type(e).__name__, e))

    async def _main(self):
        await asyncio.gather(*(self._subscriber(i) for i in range(self.n)))

    def _violation(self, kind, follow, expected, found):
        self.violations.append((kind, follow.run_id, expected,
                                "%s (subscriber %d)" % (found, follow.subscriber)))

    # -- one subscriber ----------------------------------------------------------

    async def _subscriber(self, i):
        rng = rng_for(self.seed, "stream%d" % i)
        while not self._stop.is_set():
            done = {f.run_id for f in self.follows if f.completed or f.abandoned}
            recent = [r for r in self.journal.recent_runs(20) if r not in done]
            if not recent:
                await asyncio.sleep(0.1)
                continue
            follow = Follow(i, rng.choice(recent))
            self.follows.append(follow)
            await self._follow(follow)

    async def _follow(self, f):
        """Until run.completed, an unrecoverable refusal, or stop."""
        while not (self._stop.is_set() or f.completed or f.abandoned):
            try:
                ws = await asyncio.wait_for(websockets.connect(
                    "ws://127.0.0.1:%d/" % self.endpoint.port, ping_interval=None, close_timeout=1,
                    compression=None, open_timeout=OPEN_TIMEOUT_S), OPEN_TIMEOUT_S + 1)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.05)      # the server is down: try again
                continue
            f.connections += 1
            try:
                await self._session(ws, f)
            except websockets.ConnectionClosed:
                pass                           # killed: resume from f.last
            finally:
                await ws.close()

    async def _session(self, ws, f):
        conn = {"seq": 0}
        await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
            "minProtocol": 1, "maxProtocol": 1, "client": {"name": "chaos"},
            "auth": {"token": TOKEN}, "subscribe": []}}))
        if not await self._answer(ws, f, conn, "c", "connect"):
            return
        params = {"runId": f.run_id, "afterSeq": f.last}
        await ws.send(json.dumps({"type": "req", "id": "s", "method": "streamRunEvents", "params": params}))
        stream_id = await self._answer(ws, f, conn, "s", "streamRunEvents")
        if not stream_id:
            return
        while not self._stop.is_set():
            frame = await self._recv(ws, f, conn)
            if frame is None:
                return
            if frame.get("type") != "event" or frame["payload"].get("streamId") != stream_id:
                continue
            if frame["event"] == "run.gap_resync":
                self._violation("stream-resync", f, "no gap resync", json.dumps(frame["payload"])[:300])
            elif frame["event"] == "run.event" and self._event(f, frame["payload"]):
                return

    async def _recv(self, ws, f, conn):
        """The next frame (connection seq checked), or None on stop/stall."""
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.recv(), 0.25)
            except asyncio.TimeoutError:
                if time.monotonic() - idle_since > STALL_S:
                    self.stalls += 1
                    return None
                continue
            frame = json.loads(msg)
            if frame.get("type") == "event":
                if frame.get("seq") != conn["seq"] + 1:
                    self._violation("ws-seq", f, "connection frame seq %d" % (conn["seq"] + 1),
                                    "seq %s (%s)" % (frame.get("seq"), frame.get("event")))
                conn["seq"] = frame.get("seq", conn["seq"])
            return frame
        return None

    async def _answer(self, ws, f, conn, req_id, method):
        """Wait for the response `req_id`: the streamId (or True for connect)
        if ok, else None after recording why."""
        while True:
            frame = await self._recv(ws, f, conn)
            if frame is None:
                return None
            if frame.get("type") != "res" or frame.get("id") != req_id:
                continue
            if frame.get("ok"):
                return frame["payload"].get("streamId", True) if method == "streamRunEvents" else True
            err = frame.get("error", {})
            if err.get("code") == "SeqOutOfRange":
                self._violation("stream-ahead", f, "the log holds seq %d, received before the kill" % f.last,
                                err.get("message", ""))
            else:
                self._violation("stream-refused", f, "%s accepted" % method,
                                "%s %s" % (err.get("code"), err.get("message", "")))
            f.abandoned = err.get("code", "refused")
            return None

    def _event(self, f, p):
        """Record one run event; True when the run has completed."""
        seq = p["seq"]
        if seq <= f.last:
            self._violation("stream-duplicate", f, "seq %d" % (f.last + 1), "seq %d again (%s)" % (seq, p["event"]))
            return False
        if seq != f.last + 1:
            self._violation("stream-gap", f, "seq %d" % (f.last + 1), "seq %d (%s)" % (seq, p["event"]))
        f.events.append((seq, p["event"], p["stateVersion"], p["payload"]))
        f.last = seq
        if p["event"] == "run.completed":
            f.completed = True
            return True
        return False
