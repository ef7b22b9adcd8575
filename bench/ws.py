#!/usr/bin/env python3
"""bench/ws.py — WebSocket memory, connect+hello rate and event fan-out.

    make build && /usr/bin/python3 bench/ws.py [--idle 10000] [--subs 1000] [--runs 20]

Measures, against `anvil serve` with token auth, `maxConnections: 20000`,
`heartbeatMs: 60000` (no ticks during the run) and a one-static-task
workflow:
  1. server RSS (VmRSS) per idle authenticated connection: RSS after start
     and warm-up, then after 1,000 and after --idle connections that each did
     the upgrade, read connect.challenge, sent `connect` with auth.token and
     read hello (opened 250 at a time, then left idle);
  2. connect+hello rate: 1,000 connections opened and authenticated all at
     once; how many succeeded, the total time, and p50/p99 per connection
     (TCP connect -> hello received);
  3. fan-out: with 100 and then --subs authenticated subscribers (no
     `subscribe` list, so every run's events), --runs launches of workflow
     `one` over HTTP, one at a time; per subscriber, the time from just
     before the launch request is written to the receipt of that run's
     run.completed. Two clocks: the kernel's receive timestamp
     (SO_TIMESTAMPNS, excludes the client's own queueing) and the moment this
     process read the frame. Checks every subscriber got each run.completed
     exactly once.
The client is a minimal WebSocket client on non-blocking sockets driven by
one asyncio loop (python3-websockets objects are too heavy for 10,000
connections). Prints a markdown block for bench/RESULTS.md. Loopback only;
every wait is bounded.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-token"
HOST = "127.0.0.1"
SO_TIMESTAMPNS = 35  # Linux (asm-generic) SO_TIMESTAMPNS_OLD == SCM_TIMESTAMPNS
CMSG_LEN = socket.CMSG_SPACE(16)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def mask_payload(payload):
    key = os.urandom(4)
    n = len(payload)
    if not n:
        return key, b""
    m = (key * (n // 4 + 1))[:n]
    return key, (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


def client_frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    key, body = mask_payload(payload)
    return head + key + body


class Conn:
    """One WebSocket connection: upgrade, challenge, connect, hello, then
    idle (answering pings) and recording run.completed frames."""
    __slots__ = ("b", "idx", "sock", "fd", "buf", "state", "ready", "key", "frag", "closed", "why", "out",
                 "events")

    def __init__(self, bench, idx):
        self.b = bench
        self.idx = idx
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.fd = self.sock.fileno()
        self.buf = bytearray()
        self.state = "http"
        self.ready = bench.loop.create_future()
        self.key = base64.b64encode(os.urandom(16))
        self.frag = None
        self.closed = False
        self.why = None
        self.out = b""
        self.events = 0

    async def open(self):
        loop = self.b.loop
        await loop.sock_connect(self.sock, (HOST, self.b.port))
        loop.add_reader(self.fd, self.on_read)
        self.send(b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" %
                  (HOST.encode(), self.b.port, self.key))
        await self.ready

    def send(self, data):
        if self.closed:
            return
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self.lost("send: %s" % e)
            return
        if n < len(data):
            self.out = data[n:]
            self.b.loop.add_writer(self.fd, self.on_write)

    def on_write(self):
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.lost("send: %s" % e)
            return
        self.out = self.out[n:]
        if not self.out:
            self.b.loop.remove_writer(self.fd)

    def lost(self, why):
        if self.closed:
            return
        self.closed = True
        self.why = why
        loop = self.b.loop
        loop.remove_reader(self.fd)
        if self.out:
            loop.remove_writer(self.fd)
        self.sock.close()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        elif self.b.expect_open and why != "closed by client":
            self.b.unexpected_closes.append(why)

    def close(self):
        if not self.closed:
            self.send(client_frame(8, struct.pack("!H", 1000)))
            self.lost("closed by client")

    def on_read(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, CMSG_LEN)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.lost("recv: %s" % e)
            return
        t_app = time.time_ns()
        if not data:
            self.lost("EOF (%s)" % self.state)
            return
        t_k = t_app
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(d) >= 16:
                sec, nsec = struct.unpack_from("qq", d)
                t_k = sec * 1000000000 + nsec
        buf = self.buf
        buf += data
        if self.state == "http":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 16384:
                    self.lost("oversized upgrade response")
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            status = head.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                self.lost("upgrade refused: %s" % status)
                return
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
            if ("sec-websocket-accept: " + accept).lower() not in head.lower():
                self.lost("bad Sec-WebSocket-Accept")
                return
            self.state = "challenge"
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7f
            h = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 4], "big")
                h = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
                h = 10
            if n - pos < h + ln:
                break
            payload = bytes(buf[pos + h:pos + h + ln])
            pos += h + ln
            op = b0 & 0x0f
            if op == 9:
                self.send(client_frame(10, payload))
            elif op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.lost("server close %d %s" % (code, payload[2:].decode("utf-8", "replace")))
                return
            elif op in (0, 1, 2):
                if op:
                    self.frag = payload
                else:
                    self.frag = (self.frag or b"") + payload
                if b0 & 0x80:
                    msg, self.frag = self.frag, None
                    self.on_message(msg, t_k, t_app)
                    if self.closed:
                        return
        if pos:
            del buf[:pos]

    def on_message(self, msg, t_k, t_app):
        if self.state == "ready":
            self.events += 1
            if b"run.completed" in msg:
                b = self.b
                b.completed.append((self.idx, t_k, t_app, msg))
                b.ncompleted += 1
                if b.ncompleted >= b.target and not b.target_reached.is_set():
                    b.target_reached.set()
            return
        doc = json.loads(msg)
        if self.state == "challenge":
            if doc.get("type") != "event" or doc.get("event") != "connect.challenge":
                self.lost("expected connect.challenge, got %s" % msg[:200])
                return
            req = {"type": "req", "id": "c", "method": "connect",
                   "params": {"minProtocol": 1, "maxProtocol": 1, "client": {"name": "bench"},
                              "auth": {"token": TOKEN}}}
            self.send(client_frame(1, json.dumps(req, separators=(",", ":")).encode()))
            self.state = "hello"
        elif self.state == "hello":
            if doc.get("type") == "res" and doc.get("id") == "c":
                if not doc.get("ok"):
                    self.lost("connect refused: %s" % msg[:200])
                    return
                self.state = "ready"
                self.ready.set_result(None)


class Bench:
    def __init__(self, loop, port):
        self.loop = loop
        self.port = port
        self.next_idx = 0
        self.completed = []
        self.ncompleted = 0
        self.target = 1 << 62
        self.target_reached = asyncio.Event()
        self.expect_open = False
        self.unexpected_closes = []

    async def open_one(self, timeout):
        c = Conn(self, self.next_idx)
        self.next_idx += 1
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(c.open(), timeout)
        except BaseException as e:
            c.lost("open failed")
            raise ConnectionError(str(e) or type(e).__name__)
        return c, time.perf_counter() - t0

    async def open_many(self, n, concurrency, timeout):
        """Open n connections, `concurrency` at a time. Returns (conns,
        errors, per-connection seconds, wall seconds)."""
        conns, errors, times = [], [], []
        t0 = time.perf_counter()
        left = n
        while left > 0:
            k = min(concurrency, left)
            res = await asyncio.gather(*[self.open_one(timeout) for _ in range(k)], return_exceptions=True)
            for r in res:
                if isinstance(r, BaseException):
                    errors.append(str(r) or type(r).__name__)
                else:
                    conns.append(r[0])
                    times.append(r[1])
            left -= k
            if errors:
                break
        return conns, errors, times, time.perf_counter() - t0


async def quiesce(pid, limit=15.0):
    """Wait (bounded) until the server uses no CPU for 300 ms."""
    deadline = time.monotonic() + limit
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        now = cpu_ticks(pid)
        if now == last:
            return
        last = now


async def settled_rss(pid, limit=10.0):
    """VmRSS once it stops changing for 1 s (bounded)."""
    await quiesce(pid, limit)
    deadline = time.monotonic() + limit
    last = vmrss_kib(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = vmrss_kib(pid)
        await asyncio.sleep(0.5)
        again = vmrss_kib(pid)
        if now == last and again == now:
            return now
        last = again
    return last


async def http_launch(port):
    """POST /v1/rpc/launchRun; returns (runId, t0_ns, response_ns)."""
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        body = json.dumps({"workflow": "one"}).encode()
        req = (b"POST /v1/rpc/launchRun HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" %
               (HOST.encode(), port, TOKEN.encode(), len(body))) + body
        t0 = time.time_ns()
        w.write(req)
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if m:
            data = await asyncio.wait_for(r.readexactly(int(m.group(1))), 10)
        else:
            data = await asyncio.wait_for(r.read(), 10)
        t1 = time.time_ns()
        doc = json.loads(data)
        if not doc.get("ok"):
            raise RuntimeError("launchRun failed: %s" % data[:300])
        return doc["payload"]["runId"], t0, t1 - t0
    finally:
        w.close()


async def fanout(b, subs, runs, pid):
    """Launch `runs` runs one at a time; per subscriber, launch -> run.completed."""
    for c in subs:
        c.events = 0
    b.completed = []
    b.ncompleted = 0
    await quiesce(pid)
    launches = []  # (runId, t0, http_ns)
    srv0 = cpu_ticks(pid)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    missing_wait = 0
    for i in range(runs):
        b.target = len(subs) * (i + 1)
        b.target_reached.clear()
        if b.ncompleted >= b.target:
            b.target_reached.set()
        run_id, t0, http_ns = await http_launch(b.port)
        launches.append((run_id, t0, http_ns))
        try:
            await asyncio.wait_for(b.target_reached.wait(), 10)
        except asyncio.TimeoutError:
            missing_wait += 1
        await asyncio.sleep(0.05)
    srv_ms = (cpu_ticks(pid) - srv0) * 1000.0 / os.sysconf("SC_CLK_TCK")
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cli_ms = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000.0
    await asyncio.sleep(0.5)  # late duplicates would arrive here
    t0_of = {r: t for r, t, _ in launches}
    counts = {}
    lat_k, lat_app, stray = [], [], 0
    for idx, t_k, t_app, msg in b.completed:
        doc = json.loads(msg)
        if doc.get("event") != "run.completed":
            continue
        rid = doc["payload"].get("runId")
        if rid not in t0_of:
            stray += 1
            continue
        counts[(idx, rid)] = counts.get((idx, rid), 0) + 1
        lat_k.append((t_k - t0_of[rid]) / 1e6)
        lat_app.append((t_app - t0_of[rid]) / 1e6)
    want = [(c.idx, r) for c in subs for r, _, _ in launches]
    exactly_once = sum(1 for k in want if counts.get(k) == 1)
    dup = sum(1 for k in want if counts.get(k, 0) > 1)
    miss = sum(1 for k in want if k not in counts)
    return {"subs": len(subs), "runs": runs, "pairs": len(want), "exactly_once": exactly_once, "dup": dup,
            "miss": miss, "stray": stray, "lat_k": lat_k, "lat_app": lat_app,
            "http": [h / 1e6 for _, _, h in launches], "timeouts": missing_wait,
            "srv_ms": srv_ms / runs, "cli_ms": cli_ms / runs,
            "events_per_sub": sum(c.events for c in subs) / max(1, len(subs))}


async def bench_main(args, pid, port, out):
    loop = asyncio.get_running_loop()
    b = Bench(loop, port)

    # Warm-up: one launch, 50 WebSocket connections opened and closed.
    await http_launch(port)
    warm, errs, _, _ = await b.open_many(50, 50, 10)
    if errs:
        raise RuntimeError("warm-up connections failed: %s" % errs[:3])
    for c in warm:
        c.close()
    out["rss_start"] = await settled_rss(pid)
    base = out["rss_start"]

    # 1. Idle authenticated connections: 1,000 then up to --idle.
    b.expect_open = True
    idle, mem = [], []
    for goal in sorted({1000, args.idle}):
        conns, errs, _, wall = await b.open_many(goal - len(idle), 250, 20)
        idle += conns
        if errs:
            out["idle_fail"] = (goal, len(idle), errs[0], len(errs))
            break
        rss = await settled_rss(pid)
        alive = sum(1 for c in idle if not c.closed)
        mem.append((goal, alive, rss, (rss - base) / goal, wall))
    out["mem"] = mem
    out["unexpected_closes_idle"] = list(b.unexpected_closes)
    b.expect_open = False
    for c in idle:
        c.close()
    idle = None
    await quiesce(pid)
    await asyncio.sleep(1)
    await quiesce(pid)

    # 2. 1,000 connections opened and authenticated at once.
    conns, errs, times, wall = await b.open_many(1000, 1000, 30)
    out["rate"] = {"ok": len(conns), "errors": errs, "wall": wall, "times": times}

    # 3. Fan-out at 100, then at --subs subscribers.
    b.expect_open = True
    b.unexpected_closes = []
    subs = conns
    for c in subs[100:]:
        c.close()
    subs = subs[:100]
    await quiesce(pid)
    out["fan100"] = await fanout(b, subs, args.runs, pid)
    more, errs, _, _ = await b.open_many(args.subs - len(subs), 250, 20)
    if errs:
        raise RuntimeError("opening subscribers failed after %d: %s" % (len(subs) + len(more), errs[:3]))
    subs += more
    out["fanN"] = await fanout(b, subs, args.runs, pid)
    out["unexpected_closes_fan"] = list(b.unexpected_closes)
    b.expect_open = False
    for c in subs:
        c.close()


def fmt_ms(v):
    return "%.2f ms" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=10000, help="idle connections for the RSS measurement")
    ap.add_argument("--subs", type=int, default=1000, help="subscribers for the large fan-out")
    ap.add_argument("--runs", type=int, default=20, help="launches per fan-out measurement")
    ap.add_argument("--anvil", default=os.path.join(ROOT, "build", "anvil"))
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile < args.idle + 200:
        sys.exit("bench: RLIMIT_NOFILE %d is too low for %d connections" % (nofile, args.idle))

    tmp = tempfile.mkdtemp(prefix="anvil-wsbench-")
    proc = None
    out = {}
    try:
        with open(os.path.join(tmp, "one.yaml"), "w") as f:
            f.write("name: one\nroot: { task: { id: only, output: { ok: true } } }\n")
        port = free_port()
        with open(os.path.join(tmp, "anvil.yaml"), "w") as f:
            f.write("listen: %s:%d\ndatabase: anvil.db\nmaxConnections: 20000\nheartbeatMs: 60000\n"
                    "auth:\n  mode: token\n  tokens:\n"
                    "    %s: { role: operator, scopes: [\"*\"], userId: \"user:bench\" }\n"
                    "workflows:\n  one: { file: one.yaml }\n" % (HOST, port, TOKEN))
        log = open(os.path.join(tmp, "server.log"), "w")
        proc = subprocess.Popen([args.anvil, "serve", "--config", os.path.join(tmp, "anvil.yaml")],
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            if proc.poll() is not None:
                sys.exit("bench: server exited early:\n" + open(os.path.join(tmp, "server.log")).read()[-2000:])
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("bench: server did not start")
                time.sleep(0.05)

        asyncio.run(asyncio.wait_for(bench_main(args, proc.pid, port, out), 1200))
        report(args, out, nofile)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


def report(args, out, nofile):
    cpu = ""
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "runtime", "CMakeLists.txt"],
                           capture_output=True, text=True).stdout.strip()
    cmd = "/usr/bin/python3 bench/ws.py --idle %d --subs %d --runs %d" % (args.idle, args.subs, args.runs)
    print("### WebSocket — %s UTC\n" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("- command: `%s`" % cmd)
    print("- host: `%s`, nproc %d, CPU: %s; the Python client (one asyncio loop, raw sockets) and the "
          "server share the cores, loopback; RLIMIT_NOFILE %d" %
          (" ".join(os.uname()[i] for i in (0, 2, 4)), os.cpu_count(), cpu, nofile))
    print("- anvil at %s%s; token auth; `maxConnections: 20000`, `heartbeatMs: 60000`; workflow `one` = "
          "one static task\n" % (rev, " (with uncommitted changes under runtime/)" if dirty else ""))
    print("| measurement | result | target |")
    print("| --- | --- | --- |")
    base = out["rss_start"]
    print("| server VmRSS after start + warm-up | %.1f MiB | ≤ 10 MB idle |" % (base / 1024))
    for goal, alive, rss, per, wall in out.get("mem", []):
        print("| VmRSS per idle authenticated connection, N=%d | **%.2f KiB** (%.1f -> %.1f MiB; %d/%d still "
              "open; opened 250 at a time in %.1f s) | ≤ 4 KiB |" %
              (goal, per, base / 1024, rss / 1024, alive, goal, wall))
    if "idle_fail" in out:
        goal, got, err, nerr = out["idle_fail"]
        print("| idle connections toward N=%d | stopped at %d open: %d failures, first: `%s` | |" %
              (goal, got, nerr, err))
    r = out["rate"]
    if r["times"]:
        print("| 1,000 connections opened at once (TCP connect -> hello) | **%d/1000** succeeded in %.2f s = "
              "%.0f conn/s; per connection p50 %s, p99 %s | all succeed |" %
              (r["ok"], r["wall"], r["ok"] / r["wall"], fmt_ms(percentile(r["times"], 50) * 1000),
               fmt_ms(percentile(r["times"], 99) * 1000)))
    else:
        print("| 1,000 connections opened at once | 0/1000 succeeded | all succeed |")
    for key in ("fan100", "fanN"):
        f = out.get(key)
        if not f:
            continue
        target = "p50 ≤ 5 ms" if f["subs"] <= 100 else ""
        if f["lat_k"]:
            print("| launch -> run.completed, %d subscribers x %d runs, kernel receive time | p50 **%s**, "
                  "p99 **%s** (max %s) | %s |" %
                  (f["subs"], f["runs"], fmt_ms(percentile(f["lat_k"], 50)), fmt_ms(percentile(f["lat_k"], 99)),
                   fmt_ms(max(f["lat_k"])), target))
            print("| same, time the client read it | p50 %s, p99 %s | |" %
                  (fmt_ms(percentile(f["lat_app"], 50)), fmt_ms(percentile(f["lat_app"], 99))))
        print("| same, delivery | %d/%d (subscriber, run) pairs exactly once; %d duplicated, %d missing, %d "
              "stray; %.1f event frames per subscriber; HTTP launch response p50 %s; CPU per run: server %.1f ms, "
              "client %.1f ms | exactly once |" %
              (f["exactly_once"], f["pairs"], f["dup"], f["miss"], f["stray"], f["events_per_sub"],
               fmt_ms(percentile(f["http"], 50)), f["srv_ms"], f["cli_ms"]))
    closes = out.get("unexpected_closes_idle", []) + out.get("unexpected_closes_fan", [])
    if closes:
        print("\nConnections closed by the server while they were expected to stay open: %d (first: `%s`)." %
              (len(closes), closes[0]))
    if r["errors"]:
        print("\nConnect+hello failures: %d (first: `%s`)." % (len(r["errors"]), r["errors"][0]))


if __name__ == "__main__":
    main()
