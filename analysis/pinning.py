"""pinning: the server on some cores and the load generator on the others, and what those
cores did meanwhile. pin() pins a point; around_loadgen() (a scenario's hook) checks the
server's affinity and reads /proc/stat per core over the point's steady window, so that a row
can say whose cores were full: the saturation scenario's *server bound* verdict.

Why the core and not only the process: with this kernel's tick accounting, a tick that finds
a core in softirq is counted as softirq time, and the loopback's packets are processed in
softirq on the core of whoever sent them, in the sender's context or in ksoftirqd's. The
server's own CPU (/proc/PID/stat) leaves out what ksoftirqd did for it; its core's busy share
does not, and it also shows a neighbour that took the core. A core at 100 % is one the server
could not get more of, whoever took it (others CPU says how much was someone else).
"""
import contextlib
import os
import struct
import threading
import time

from analysis import points
from analysis.benchkit import BenchError
from pylib import procfs

# How each program is pinned: None runs it under `taskset -c LIST`; an option name passes
# LIST to the program itself. Both of ours have --cpus; sockperf (anchors) runs under taskset.
PIN_OPTION = {"server": "--cpus", "loadgen": "--cpus"}
# A pinned load generator busy-polls (loadgen --busy-poll, which needs its --cpus): its core
# is its own, and sockperf's client, the anchor it is compared with, busy-waits between
# sends too. A sleeping load generator adds its own wake-up from idle to every round trip
# and, at 5,000-20,000 msg/s here, a send lag p99 several times larger (README, Pinning).
BUSY_POLL = True
# ...and measures one interval (loadgen --interval longer than any point): its main thread
# shares the worker's core, and its work at each interval boundary (collecting eleven
# histograms, encoding the .hlog) held the worker back for 3 to 10 ms once a second: README,
# Pinning, gives the loadgen commands that show it (lag_max_us, --interval 1 against 60). A
# pinned point's time series has that one interval.
BUSY_POLL_INTERVAL_S = 3600
# While a pinned point or its sockperf anchor runs, the bench holds the kernel's CPU latency
# QoS request at 0 µs (PM QoS, /dev/cpu_dma_latency, as tuned's latency-performance profile
# does): cpuidle then polls instead of halting the cores. On this virtual machine a halted
# vCPU that a message wakes pays the hypervisor's wake-up, which doubled sockperf's own round
# trip in the runs of 2026-12-02 (README, Pinning); the server, the load generator and
# sockperf are all measured without it. Idle polling is idle time in /proc/stat, so the core
# busy shares still measure work, not polling.
IDLE_POLL = True
PM_QOS = "/dev/cpu_dma_latency"


def cpu_list(cores):
    """A set of core numbers written as taskset -c takes it: "0", "0-3,6"."""
    out, run = [], []
    for c in sorted(cores):
        if run and c != run[-1] + 1:
            out.append(run)
            run = []
        run.append(c)
    if run:
        out.append(run)
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in out)


def split(cores=None):
    """(server cores, load generator cores) as lists for taskset: the cores this process may
    run on (or cores), the first half for the server and the rest for the load generator
    (one each on two cores). None with fewer than two cores: nothing to split."""
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if len(cores) < 2:
        return None
    half = len(cores) // 2
    return cpu_list(cores[:half]), cpu_list(cores[half:])


def describe():
    """One line for the machine table: where pinned points put each program, and how."""
    pins = split()
    if pins is None:
        return "none (a single core: server and load generator share it)"
    how = {side: f"its own {opt}" if opt else "taskset -c" for side, opt in PIN_OPTION.items()}
    spin = ", busy-polling" if BUSY_POLL and PIN_OPTION["loadgen"] == "--cpus" else ""
    qos = ""
    if IDLE_POLL:
        why = idle_poll_unavailable()
        qos = (f"; cores kept out of idle states meanwhile ({PM_QOS} held at 0 µs)" if not why
               else f"; cores not kept out of idle states ({why})")
    return (f"server on cores {pins[0]} ({how['server']}), load generator on cores "
            f"{pins[1]} ({how['loadgen']}, one thread per core{spin}), in the scenarios that "
            f"pin (saturation, anchors){qos}; the others share every core")


def idle_poll_unavailable():
    """Why idle_poll() cannot hold the QoS request here ("" when it can)."""
    if not os.path.exists(PM_QOS):
        return f"no {PM_QOS} in this kernel"
    if not os.access(PM_QOS, os.W_OK):
        return f"{PM_QOS} needs root"
    return ""


@contextlib.contextmanager
def idle_poll():
    """Holds the CPU latency QoS request at 0 µs for the with block (the request lasts while
    the file stays open): no core enters an idle state it takes time to leave. Yields 0 when
    held, "" when it could not be (IDLE_POLL off, not root, no such file): the value of the
    cpu_latency_qos_us column."""
    if not IDLE_POLL or idle_poll_unavailable():
        yield ""
        return
    try:
        fd = os.open(PM_QOS, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        yield ""
        return
    try:
        try:
            held = 0 if os.write(fd, struct.pack("i", 0)) == 4 else ""
        except OSError:
            held = ""
        yield held
    finally:
        os.close(fd)


def _pinned(argv, opt, cpus, wrap):
    """(argv, wrap) of a program pinned to cpus: by its own option opt, or under taskset."""
    if opt:
        return [*argv, opt, cpus], wrap
    return argv, ["taskset", "-c", cpus, *wrap]


def pin(pt, server_cpus, loadgen_cpus):
    """Pins the point pt (analysis.points.Point): its server on server_cpus, its load
    generator on loadgen_cpus with one worker thread per core. Both lists become columns
    (server_cpus, loadgen_cpus). Returns pt."""
    threads = len(procfs.parse_cpu_list(loadgen_cpus))
    pt.args[pt.args.index("--threads") + 1] = threads
    pt.server_args, pt.server_wrap = _pinned(pt.server_args, PIN_OPTION["server"],
                                             server_cpus, pt.server_wrap)
    pt.args, pt.loadgen_wrap = _pinned(pt.args, PIN_OPTION["loadgen"], loadgen_cpus,
                                       pt.loadgen_wrap)
    if BUSY_POLL and PIN_OPTION["loadgen"] == "--cpus":
        pt.args += ["--busy-poll", "--interval", BUSY_POLL_INTERVAL_S]
    pt.cols.update({"server_cpus": server_cpus, "loadgen_cpus": loadgen_cpus})
    return pt


class CoreSampler:
    """/proc/stat per core every interval seconds on a thread, from entry to exit of a with
    block; share() gives the busy and softirq shares of some cores over a window."""

    def __init__(self, interval=0.1):
        self.interval = interval
        self.samples = []  # (monotonic s, procfs.core_ticks())
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        t0, k = time.monotonic(), 0
        while True:
            self.samples.append((time.monotonic(), procfs.core_ticks()))
            k += 1
            if self._stop.wait(max(0.0, t0 + k * self.interval - time.monotonic())):
                return

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        self.samples.append((time.monotonic(), procfs.core_ticks()))
        return False

    def share(self, cores, t_from, t_to):
        """(busy %, softirq %) of the cores (a set) taken together over [t_from, t_to]
        (monotonic s), 100 % when every one of them was busy all along; None without two
        samples in the window."""
        win = [s for t, s in self.samples if t_from <= t <= t_to]
        if len(win) < 2:
            return None
        a, b = win[0], win[-1]
        d = [sum(b[c][i] - a[c][i] for c in cores) for i in range(3)]
        if d[2] <= 0:
            return None
        return round(100.0 * d[0] / d[2], 1), round(100.0 * d[1] / d[2], 1)


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """A scenario's around_loadgen hook for a pinned point: fails the point when the server
    does not run on the cores pin() gave it, holds idle_poll() while the load generator
    runs (cpu_latency_qos_us: 0, or empty when it could not), and fills server_core_busy_pct,
    server_core_softirq_pct, loadgen_core_busy_pct and loadgen_core_softirq_pct: the
    shares of each side's cores over the steady window (points.steady_window)."""
    want = pt.cols.get("server_cpus")
    if want is None:
        raise BenchError(f"{pt.label}: around_loadgen of a point that pin() did not pin")
    got = procfs.status(srv.pid, ("Cpus_allowed_list",)).get("Cpus_allowed_list", "?")
    if procfs.parse_cpu_list(str(got)) != procfs.parse_cpu_list(want):
        raise BenchError(f"{pt.label}: the server runs on cores {got}, not {want}")
    cols = {}
    with idle_poll() as qos, CoreSampler() as cores:
        yield cols
        t_end = time.monotonic()
    cols["cpu_latency_qos_us"] = qos
    w0, w1 = points.steady_window(pt, t_end)
    for side in ("server", "loadgen"):
        got = cores.share(procfs.parse_cpu_list(pt.cols[f"{side}_cpus"]), w0, w1)
        busy, softirq = got if got else ("", "")
        cols[f"{side}_core_busy_pct"] = busy
        cols[f"{side}_core_softirq_pct"] = softirq
