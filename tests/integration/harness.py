"""harness: start the real binaries on free loopback ports and talk to them over sockets.

Every process started here is killed at the end of its test (addCleanup) or, failing
that, when the interpreter exits (pylib.procs). Nothing here mocks anything: these are real
sockets. Imported as a top-level module by tests/integration/run.py, which also puts the
repository on sys.path for pylib.
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from pylib import netns, procfs, procs
from pylib.ports import HOST
from pylib.proto import hello_frame  # noqa: F401  (the tests import it from here)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# CHATBENCH_BIN: another build of the same programs (make test-asan/test-tsan use bin-asan/...)
BIN = os.path.abspath(os.environ.get("CHATBENCH_BIN") or os.path.join(ROOT, "bin"))
TIMEOUT = 5.0  # seconds any single expectation may wait


class Proc:
    """A running binary whose stdout (and stderr) lines are collected by a thread."""

    def __init__(self, argv, stdin=subprocess.DEVNULL, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env=env)
        procs.track(self.p)
        self.lines = []
        self._cv = threading.Condition()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_line(self, pattern, timeout=TIMEOUT, start=0):
        """Waits for a line matching regex pattern; returns the match. Raises on timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self._cv:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} from {self.argv[0]}; "
                                         f"got:\n" + "\n".join(self.lines[-30:]))
                if self.p.poll() is not None and not self._t.is_alive():
                    raise AssertionError(f"{self.argv[0]} exited ({self.p.returncode}) before "
                                         f"{pattern!r}; got:\n" + "\n".join(self.lines[-30:]))
                self._cv.wait(min(left, 0.1))

    def count(self, pattern):
        rx = re.compile(pattern)
        with self._cv:
            return sum(1 for l in self.lines if rx.search(l))

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and waits; returns the exit code (kills after timeout)."""
        rc = procs.stop(self.p, sig, timeout)
        self._t.join(2)
        return rc


def server_argv(kind, *args, io=None):
    """The command line of bin/<kind>_server with args; io: tcp_server's --io model (the
    TCP suites run once per model: a class attribute IO, subclassed)."""
    return [os.path.join(BIN, f"{kind}_server"), *args, *(("--io", io) if io else ())]


def start_server(kind, *args, test=None, io=None):
    """Starts bin/<kind>_server on a free port (--port 0); returns (proc, port)."""
    proc = Proc(server_argv(kind, "--port", "0", *args, io=io))
    if test is not None:
        test.addCleanup(proc.stop)
    word = "TCP" if kind == "tcp" else "UDP"
    m = proc.wait_line(rf"\[INFO\] Servidor {word} iniciado na porta (\d+)")
    return proc, int(m.group(1))


class TcpConn:
    """A line-oriented TCP client over a real socket."""

    def __init__(self, port, host=HOST):
        self.s = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.s.sendall(line if line.endswith(b"\n") else line + b"\n")

    def send_raw(self, data):
        self.s.sendall(data)

    def recv_line(self, timeout=TIMEOUT):
        """The next frame (bytes decoded as UTF-8 with replacement), or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timeout waiting for a line; have {self.buf[:200]!r}")
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                continue
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def expect(self, pattern, timeout=TIMEOUT):
        """Reads lines until one matches regex pattern (others are skipped); returns match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r}; saw {seen[-20:]}")
            line = self.recv_line(left)
            if line is None:
                raise AssertionError(f"EOF before {pattern!r}; saw {seen[-20:]}")
            seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def hello(self, cid):
        self.send(f"HELLO {cid}")
        return self.expect(rf"^WELCOME {re.escape(cid)} ")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class UdpConn:
    """A datagram client over a real socket bound to its own port."""

    def __init__(self, port, host=HOST):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((host, 0))
        self.addr = (host, port)

    @property
    def local_port(self):
        return self.s.getsockname()[1]

    def send(self, frame):
        if isinstance(frame, str):
            frame = frame.encode()
        self.s.sendto(frame, self.addr)

    def recv(self, timeout=TIMEOUT):
        """The next datagram as bytes, or None on timeout."""
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return None
        data, _ = self.s.recvfrom(70000)
        return data

    def expect(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r}; saw {seen[-20:]}")
            d = self.recv(left)
            if d is None:
                continue
            line = d.decode("utf-8", "replace").rstrip("\n")
            seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def hello(self, cid, room=None):
        self.send(hello_frame(cid, room))
        return self.expect(rf"^WELCOME {re.escape(cid)} ")

    def close(self):
        self.s.close()


def in_netns(test, script, scenario, params, timeout):
    """Runs `python3 script scenario JSON(params)` under `unshare -n` (a network namespace of
    its own; pylib.netns marks it private), for a test module that re-executes itself that
    way; returns the dict its last stdout line holds as JSON. Fails test with the output
    when it exits non-zero or prints nothing."""
    r = subprocess.run(["unshare", "-n", "--", sys.executable, os.path.abspath(script),
                        scenario, json.dumps(params)], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, **{netns.ENV: "1"}))
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        test.fail(f"scenario {scenario} failed ({r.returncode}):\n{r.stdout[-3000:]}\n"
                  f"{r.stderr[-3000:]}")
    return json.loads(lines[-1])


def netns_main(scenarios, script):
    """The other end of in_netns(), for the module script re-executed under unshare -n:
    runs scenarios["sc_" + argv[1]](JSON argv[2]) in the fresh namespace (lo up, the
    benchmark's sysctls) and prints its result as one JSON line; stops what it started."""
    name, params = sys.argv[1], json.loads(sys.argv[2])
    if not netns.in_private_netns():
        sys.exit(f"run by {os.path.basename(script)}'s tests inside unshare -n, never by hand "
                 "outside")
    netns.setup_netns()
    try:
        print(json.dumps(scenarios[f"sc_{name}"](params), default=str))
    finally:
        procs.cleanup()


def proc_stats(pid):
    """Threads, open fds and RSS (KiB) of a process, from /proc."""
    st = procfs.status(pid, ("Threads", "VmRSS"))
    return {"threads": st.get("Threads", 0), "fds": procfs.fd_count(pid),
            "rss_kib": st.get("VmRSS", 0)}


def thread_cpus(pid):
    """{thread id: its Cpus_allowed_list} for every thread of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        out[tid] = line.split(":", 1)[1].strip()
        except FileNotFoundError:
            pass  # it ended meanwhile
    return out


def wait_until(pred, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
