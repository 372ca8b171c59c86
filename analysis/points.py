"""points: one benchmark point. point() builds it (its load generator arguments), estimate_s()
says how long it takes, run() runs it: a fresh server on a free port, sampled from /proc, the
load generator against it with --out, the server stopped; one CSV row out.
"""
import contextlib
import dataclasses
import os
import resource
import shutil

from analysis import benchkit as bk
from analysis import shards
from pylib import procfs
from pylib.ports import HOST

SIZE = 100  # payload bytes of every scenario but compression
SEED = 42
OTHER_CPU_MAX = 40.0  # % of one core other processes may use before a measurement reruns


@dataclasses.dataclass
class Point:
    """One run of the load generator against a fresh server.

    scenario: the module's name (its CSVs are <scenario>.csv...); label: the row's key in
    them; proto: tcp, udp or hybrid; what: the progress line; args: loadgen's arguments;
    cols: columns known before the run, added to its row (what was injected);
    needs_netns: why the point cannot run outside a private network namespace, or None;
    unavailable: why it cannot run on this machine at all (a device missing), or None;
    host: the address the load generator targets; server_host: the one the server binds
    (default: host; 0.0.0.0 when host only exists once a wrapper runs); server_args: more
    server options; server_wrap, loadgen_wrap: commands each runs under (taskset -c N, a
    link emulator's `... --`); the server's must exec it (its pid is the one sampled);
    shards: load generator processes, launched and merged by analysis/shards.py when above
    1 (the row is then the merged one)."""
    scenario: str
    label: str
    proto: str
    what: str
    args: list
    clients: int
    duration: float
    timeout_ms: int
    ramp: float = 0.0
    cols: dict = dataclasses.field(default_factory=dict)
    needs_netns: str = None
    unavailable: str = None
    host: str = HOST
    server_host: str = None
    server_args: list = dataclasses.field(default_factory=list)
    server_wrap: list = dataclasses.field(default_factory=list)
    loadgen_wrap: list = dataclasses.field(default_factory=list)
    shards: int = 1

    @property
    def warmup(self):
        return float(self.args[self.args.index("--warmup") + 1])


def point(scenario, label, proto, what, clients, duration, quick, rate=None, total=None,
          size=SIZE, payload="hex", room=1, compress=False, ramp=0.0, warmup=None, cols=None,
          needs_netns=None, **more):
    """A Point with the load generator's usual arguments: rate messages/s per client or
    total messages/s in all, warm-up 1 s (0.25 s quick) unless warmup, the UDP ACK timeout
    1 s (0.5 s quick), one thread per core, a fixed seed. more: the other Point fields
    (host, server_host, server_args, server_wrap, loadgen_wrap, shards)."""
    timeout_ms = 500 if quick else 1000
    if warmup is None:
        warmup = 0.25 if quick else 1
    args = ["--clients", clients, "--threads", os.cpu_count() or 2,
            "--duration", duration, "--warmup", warmup, "--size", size,
            "--payload", payload, "--room-size", room, "--timeout", timeout_ms,
            "--seed", SEED]
    args += ["--rate", rate] if rate is not None else ["--total-rate", total]
    if ramp:
        args += ["--ramp", ramp]
    if compress:
        args.append("--compress")
    return Point(scenario, label, proto, what, args, clients, duration, timeout_ms, ramp,
                 dict(cols or {}), needs_netns, **more)


def estimate_s(pt):
    """Rough wall time of one point: warm-up, duration, ramp, the UDP drain, the server's
    start and stop and the load generator's set-up (about 1.5 s, more with thousands of
    clients; sharded: the lead to --start-at instead, which covers the ramp and the set-up).
    A scenario adds its own extra work (its extra_s())."""
    if pt.shards > 1:
        t = pt.warmup + pt.duration + 2.5 + shards.lead_s(pt.args)
    else:
        t = pt.warmup + pt.duration + pt.ramp + 1.5 + pt.clients / 2000.0
    if pt.proto != "tcp":
        t += pt.timeout_ms / 1000.0
    return t


def steady_window(pt, t_end):
    """(from, to) in monotonic seconds: the steady window of pt's load generator run that
    ended at t_end, the last `duration` seconds before its final drain (UDP waits --timeout
    for the last ACKs), trimmed by 0.25 s at both ends (a sharded run knows its window from
    its rows: shards.Result.window, trimmed alike). A TCP run past the knee drains its
    backlog for longer, so its window falls partly in that catch-up, where the server still
    works flat out."""
    drain = 0.25 + (pt.timeout_ms / 1000.0 if pt.proto != "tcp" else 0.0)
    end = t_end - drain
    return end - pt.duration + 0.25, end


def sharded(pt, port, out, timeout):
    """The load generator of pt as pt.shards processes under mpirun (local processes when
    Open MPI is not installed), merged: a shards.Result. Raises BenchError when nothing
    merged."""
    argv = ["--proto", pt.proto, "--host", pt.host, "--port", port, "--label", pt.label,
            "--quiet", *pt.args]
    launcher = "mpirun" if shutil.which("mpirun") else "local"
    try:
        return shards.run(pt.shards, argv, out, launcher, wrap=pt.loadgen_wrap, timeout=timeout)
    except shards.ShardError as e:
        raise bk.BenchError(f"{pt.label}: {e}") from None


def run(pt, raw, logs, interval, around=None):
    """Runs one point; returns (row, server samples, latency rows, timeseries rows).

    around(pt, srv), when given, is a context manager entered once the server runs and left
    once the load generator has finished (before the server stops); it yields a dict that
    it may fill with columns for the row (the loss scenario's rules and drop counts)."""
    proto = pt.proto
    extra = ["--max-clients", str(max(10000, pt.clients + 100)), *pt.server_args]
    srv = bk.Server(proto, logs, pt.label, extra, pt.server_host or pt.host, pt.server_wrap)
    sampler = bk.Sampler(srv.pid, pt.label, interval).start()
    out = os.path.join(raw, pt.label)
    os.makedirs(out, exist_ok=True)
    hook_cols, window, merged = {}, None, None
    try:
        with (around(pt, srv) if around else contextlib.nullcontext({})) as hook_cols:
            budget = 150 + pt.duration * 3 + pt.ramp + pt.clients / 100
            busy0, srv0 = procfs.host_busy_s(), sampler.sample(record=False)
            ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if pt.shards > 1:
                res = sharded(pt, srv.port, out, budget)
                row, t0, t1, window, merged = res.row, res.t0, res.t1, res.window, \
                    res.merged_dir
            else:
                row, t0, t1 = bk.run_loadgen(srv.port, proto, pt.label, out, pt.args, budget,
                                             pt.host, pt.loadgen_wrap)
            ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            busy1, srv1 = procfs.host_busy_s(), sampler.sample(record=False)
    finally:
        samples = sampler.finish()
        rc = srv.stop()
    # The load generator's whole CPU (set-up included; its own cpu_*_s start at t0): the
    # only child reaped meanwhile (sharded: every shard, their launcher and the merge).
    lg_cpu = round((ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime), 3)
    w0, w1 = steady_window(pt, t1) if window is None else (window[0] + 0.25,
                                                           window[1] - 0.25)
    agg = bk.summarize_samples(samples, w0 - sampler.t0, w1 - sampler.t0)
    row = dict(row)
    row.update({"scenario": pt.scenario, "server_rc": rc, "wall_s": round(t1 - t0, 2)})
    # CPU that neither the server nor the load generator used during the run: other
    # processes on this shared machine. A busy neighbour shows here, not as our latency.
    try:
        ours = lg_cpu
        if srv0 and srv1:
            ours += (srv1["cpu_user_s"] + srv1["cpu_sys_s"]) - \
                (srv0["cpu_user_s"] + srv0["cpu_sys_s"])
        row["other_cpu_pct"] = round(max(0.0, 100.0 * (busy1 - busy0 - ours) / (t1 - t0)), 1)
    except (ValueError, ZeroDivisionError):
        row["other_cpu_pct"] = ""
    row.update(pt.cols)
    row["loadgen_total_cpu_s"] = lg_cpu
    row.update(hook_cols)
    row.update(agg)
    try:
        rate = float(row.get("achieved_rate_msgs") or 0)
        if agg["server_cpu_s"] != "" and rate > 0 and agg["server_window_s"]:
            row["server_cpu_us_per_msg"] = round(
                agg["server_cpu_s"] * 1e6 / (rate * agg["server_window_s"]), 3)
    except ValueError:
        pass
    # a sharded point: the merged spectrum, and each shard's time series (rows by shard)
    lat, ts = (bk.read_csv(os.path.join(where, name))
               if os.path.exists(os.path.join(where, name)) else []
               for where, name in ((merged or out, "latency.csv"), (out, "timeseries.csv")))
    return row, samples, lat, ts
