"""The `anvil serve` process of a chaos campaign, and every process it leaves.

The server runs in a session of its own, so SIGKILL reaches it alone: its
task shells are in process groups of their own (posix_spawn with
SETPGROUP) and, as after a real crash, outlive it. The campaign makes
itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so those orphans
become its own children instead of init's: it can find every one of them
in /proc, kill its process group and reap it. Nothing started here can
outlive the campaign, even when it fails.

The first start listens on port 0 and reads the port from --port-file;
every restart asks for that same port with --listen, and falls back to a
new one (clients read `Endpoint.port` on every call) if it is taken.
"""
import ctypes
import os
import signal
import subprocess
import threading
import time

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
REAP_TIMEOUT_S = 5.0
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """In the server's child process: SIGKILL it if the campaign dies
    (the spawning thread is the main thread, which lives to the end)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def become_subreaper():
    """Orphaned grandchildren (task shells of a killed server) are
    re-parented to this process, where reap_orphans() finds them."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def describe(pid):
    """'pid state cmdline' of a process, for reports."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "%d X (gone)" % pid
    return "%d %s %s" % (pid, stat[stat.rindex(")") + 2], cmd or stat[stat.index("("):stat.rindex(")") + 1])


def _children_of(ppid):
    """[(pid, pgid)] of the live or zombie children of `ppid`, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == ppid:
            out.append((int(name), int(fields[2])))
    return out


def _kill(pid, pgid):
    """SIGKILL a child's process group (never our own) and the child."""
    try:
        if pgid != os.getpgrp():
            os.killpg(pgid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_orphans(keep=()):
    """SIGKILL the process group of every child of ours but `keep`, and
    reap them, until none is left (bounded). Returns what they were."""
    me = os.getpid()
    seen = {}
    deadline = time.monotonic() + REAP_TIMEOUT_S
    while time.monotonic() < deadline:
        kids = [(pid, pgid) for pid, pgid in _children_of(me) if pid not in keep]
        if not kids:
            break
        for pid, pgid in kids:
            if pid not in seen:
                seen[pid] = describe(pid)
            _kill(pid, pgid)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.01)
    return list(seen.values())


class Endpoint:
    """Where the server listens now; read by every client on every call."""

    def __init__(self):
        self._lock = threading.Lock()
        self._port = None

    @property
    def port(self):
        with self._lock:
            return self._port

    @port.setter
    def port(self, value):
        with self._lock:
            self._port = value


class ChaosServer:
    """One `anvil serve` on a fixed directory, config and database, started,
    SIGKILLed and restarted any number of times."""

    def __init__(self, anvil, directory, config_text, files):
        self.anvil = anvil
        self.dir = directory
        self.config_path = os.path.join(directory, "anvil.yaml")
        self.db_path = os.path.join(directory, "anvil.db")
        self.port_file = os.path.join(directory, "port")
        self.log_path = os.path.join(directory, "server.log")
        self.endpoint = Endpoint()
        self.proc = None
        self.starts = 0
        self.kills = 0
        self.orphans_killed = 0
        self.port_changes = 0
        for rel, text in dict(files, **{"anvil.yaml": config_text}).items():
            path = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        """Start on the previous port if there was one (else any free one);
        returns once the port file says the server listens."""
        want = self.endpoint.port
        try:
            self._spawn(want)
        except RuntimeError:
            if want is None:
                raise
            self._spawn(None)          # the old port is taken: take any
            self.port_changes += 1
        self.starts += 1

    def _spawn(self, port):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        argv = [self.anvil, "serve", "--config", self.config_path, "--port-file", self.port_file]
        if port is not None:
            argv += ["--listen", "127.0.0.1:%d" % port]
        with open(self.log_path, "ab") as log:
            log.write(b"---- start %d: %s\n" % (self.starts + 1, " ".join(argv).encode()))
            log.flush()
            self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    self.endpoint.port = int(f.read().strip())
                return
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise RuntimeError("anvil serve exited with %s before listening (see %s)"
                                   % (rc, self.log_path))
            time.sleep(0.01)
        self.kill()
        raise RuntimeError("anvil serve did not listen within %.0f s" % START_TIMEOUT_S)

    def kill(self):
        """SIGKILL, as a crash: no shutdown code runs. Then the orphaned task
        process groups are killed too (a supervisor such as systemd would do
        the same), so that attempts of the dead server cannot pile up."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        self.kills += 1
        self.orphans_killed += len(reap_orphans())

    def stop(self):
        """SIGTERM and a bounded wait; returns the exit status (None if it
        had to be SIGKILLed after STOP_TIMEOUT_S)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = None
        self.proc = None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate_everything(self):
        """For every way out, including failures: no process of ours stays."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
        return reap_orphans()

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
