"""benchkit: the process plumbing of one benchmark point.

The programs under test (bin/, or a snapshot of it), servers on free ports, /proc sampling of
the server, the load generator, CSV in and out. Every process goes through pylib.procs, so
bench.py's cleanup() stops whatever is left on every exit path (normal end, error, Ctrl-C).
"""
import csv
import os
import re
import shutil
import subprocess
import threading
import time

from pylib import procfs, procs
from pylib.ports import HOST

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("CHATBENCH_BIN") or os.path.join(ROOT, "bin")  # another build to measure
PROGRAMS = ("tcp_server", "udp_server", "loadgen", "linkem")


class BenchError(Exception):
    """A scenario point failed; the message says what to look at."""


def snapshot_bins(dest):
    """Copies the programs under test into dest and measures those copies from then on:
    one build for the whole run, immune to a `make` rebuilding bin/ meanwhile. Returns the
    names that are missing or not executable."""
    global BIN
    os.makedirs(dest, exist_ok=True)
    missing = []
    for name in PROGRAMS:
        src = os.path.join(BIN, name)
        if not os.access(src, os.X_OK):
            missing.append(name)
            continue
        shutil.copy2(src, os.path.join(dest, name))
    if not missing:
        BIN = dest
    return missing


# The servers the scenarios compare, a series each: (proto, server options, name in prose).
SERIES = {
    "tcp": ("tcp", [], "`tcp_server` (a thread per client)"),
    "tcp-epoll": ("tcp", ["--io", "epoll"], "`tcp_server --io epoll`"),
    "udp": ("udp", [], "`udp_server`"),
    "hybrid": ("hybrid", [], "`udp_server --hybrid`"),
}


def help_of(prog):
    """(the --help text of bin/<prog>, "") or (None, why not): what a scenario reads to tell
    whether the build it measures offers an option (CHATBENCH_BIN may be an older one)."""
    try:
        r = subprocess.run([os.path.join(BIN, prog), "--help"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"{prog} --help failed ({e})"
    return r.stdout + r.stderr, ""


def epoll_offered():
    """(tcp_server's --help text, "") when the tcp_server measured offers --io epoll (the
    tcp-epoll series), else (None, why not)."""
    text, why = help_of("tcp_server")
    if text is not None and ("--io" not in text or "epoll" not in text):
        return None, "this tcp_server has no --io epoll"
    return text, why


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows, fields=None):
    """Writes rows (dicts) atomically; the columns are fields, or every key in the order
    the rows first use it."""
    if fields is None:
        fields = []
        for r in rows:
            for k in r:
                if k not in fields:
                    fields.append(k)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, path)


# --- servers and sampling ---


# Servers run as a deployment should (PROTOCOL.md, "Idle clients"): a client that only
# holds a slot is dropped. Every load generator client sends at least once a second, and
# shards may wait a while between set-up and --start-at: far above either.
IDLE_TIMEOUT_S = 300


class Server:
    """bin/<kind>_server on a free port; stdout goes to a log file (never a full pipe)."""

    def __init__(self, kind, logdir, label, extra=(), host=HOST, wrap=()):
        """kind: tcp, udp or hybrid (udp_server --hybrid); extra: more server options;
        host: the address it binds; wrap: a command the server runs under (taskset -c 0...),
        which must exec it so that the pid sampled is the server's. self.port is the port
        the load generator is given (hybrid: the TCP control port); self.data_port the port
        chat travels on (hybrid: the UDP port, where the loss rules go)."""
        self.kind = kind
        prog = "udp" if kind == "hybrid" else kind
        self.log = os.path.join(logdir, f"{label}.{kind}_server.log")
        argv = [*wrap, os.path.join(BIN, f"{prog}_server"), "--host", host, "--port", "0", "-q",
                "--idle-timeout", str(IDLE_TIMEOUT_S),
                *(["--hybrid", "--control-port", "0"] if kind == "hybrid" else []), *extra]
        self.f = open(self.log, "wb")
        self.p = procs.spawn(argv, stdout=self.f, stderr=subprocess.STDOUT)
        word = "TCP" if kind == "tcp" else "UDP"
        rx = re.compile(rf"\[INFO\] Servidor {word} iniciado na porta (\d+)".encode())
        rxc = re.compile("Modo híbrido: controle TCP na porta (\\d+)".encode())
        deadline = time.monotonic() + 10
        while True:
            with open(self.log, "rb") as f:
                head = f.read(4096)
            m = rx.search(head)
            mc = rxc.search(head) if kind == "hybrid" else m
            if m and mc:
                self.data_port = int(m.group(1))
                self.port = int(mc.group(1))
                break
            if self.p.poll() is not None or time.monotonic() > deadline:
                tail = open(self.log, "rb").read()[-500:].decode("utf-8", "replace")
                self.stop()
                raise BenchError(f"{kind}_server did not start ({argv}): {tail}")
            time.sleep(0.02)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        rc = procs.stop(self.p, timeout=15)
        self.f.close()
        return rc


class Sampler:
    """Samples one process from /proc every interval seconds (user and system CPU, RSS,
    threads, open fds) on a thread; rows() gives them with t_s from start()."""

    FIELDS = ["label", "t_s", "cpu_user_s", "cpu_sys_s", "rss_kib", "threads", "fds"]

    def __init__(self, pid, label, interval):
        self.pid, self.label, self.interval = pid, label, interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self._t.start()
        return self

    def sample(self, record=True):
        """One sample now (a dict, or None once the process is gone); record=False keeps
        it out of the series (for a reading between the fixed-interval ones)."""
        try:
            utime, stime = procfs.cpu_times(self.pid)
            st = procfs.status(self.pid, ("VmRSS", "Threads"))
            fds = procfs.fd_count(self.pid)
        except (OSError, ValueError, IndexError):
            return None  # the process is gone
        row = {"label": self.label, "t_s": round(time.monotonic() - self.t0, 3),
               "cpu_user_s": utime, "cpu_sys_s": stime, "rss_kib": st.get("VmRSS", 0),
               "threads": st.get("Threads", 0), "fds": fds}
        if record:
            self.samples.append(row)
        return row

    def _loop(self):
        # A fixed grid: the next sample is due at t0 + k * interval, however long one took.
        k = 0
        while not self._stop.is_set():
            if self.sample() is None:
                return
            k += 1
            self._stop.wait(max(0.0, self.t0 + k * self.interval - time.monotonic()))

    def finish(self):
        self._stop.set()
        self._t.join(5)
        self.sample()  # the final state, just before the server is stopped
        return self.samples


def summarize_samples(samples, t_from, t_to):
    """Aggregates for one run: peak RSS/threads/fds over the run and CPU over [t_from, t_to]
    (seconds from the sampler's start; the steady window of the load generator)."""
    out = {"server_rss_kib_max": 0, "server_threads_max": 0, "server_fds_max": 0,
           "server_cpu_s": "", "server_cpu_pct": "", "server_window_s": ""}
    if not samples:
        return out
    out["server_rss_kib_max"] = max(s["rss_kib"] for s in samples)
    out["server_threads_max"] = max(s["threads"] for s in samples)
    out["server_fds_max"] = max(s["fds"] for s in samples)
    win = [s for s in samples if t_from <= s["t_s"] <= t_to]
    if len(win) >= 2:
        a, b = win[0], win[-1]
        cpu = (b["cpu_user_s"] + b["cpu_sys_s"]) - (a["cpu_user_s"] + a["cpu_sys_s"])
        dt = b["t_s"] - a["t_s"]
        out["server_cpu_s"] = round(cpu, 3)
        out["server_window_s"] = round(dt, 3)
        out["server_cpu_pct"] = round(100.0 * cpu / dt, 2) if dt > 0 else ""
    return out


# --- load generator ---


def run_loadgen(port, proto, label, outdir, args, timeout, host=HOST, wrap=()):
    """Runs bin/loadgen once with --out outdir against host:port, under the command wrap
    when given (taskset, linkem ... --); returns (summary row, started, ended) with
    monotonic start/end times. Raises BenchError when it wrote no summary row."""
    argv = [*wrap, os.path.join(BIN, "loadgen"), "--proto", proto, "--host", host, "--port",
            str(port), "--label", label, "--out", outdir, "--quiet", *map(str, args)]
    t0 = time.monotonic()
    r = procs.run(argv, timeout)
    t1 = time.monotonic()
    summary = os.path.join(outdir, "summary.csv")
    rows = [x for x in read_csv(summary) if x.get("label") == label] \
        if os.path.exists(summary) else []
    if not rows:
        raise BenchError(f"loadgen wrote no summary for {label} (exit {r.returncode}): "
                         f"{(r.stderr or r.stdout).strip()[-800:]}")
    row = rows[-1]
    row["loadgen_rc"] = r.returncode
    if r.returncode != 0:
        row["loadgen_stderr"] = " ".join(r.stderr.split())[-300:]
    return row, t0, t1
