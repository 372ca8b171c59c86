"""shards: one load run as N loadgen processes started by a launcher that already exists,
then `loadgen merge` (README, "More than one process or machine"). The driver picks the
shared --start-at, starts the shards (Open MPI's mpirun, or N local processes with
--shard I/N), waits, merges, and hands back the merged summary row; for srun and a
Kubernetes Indexed Job it prints what to run instead. It coordinates nothing itself: the
launcher starts the processes, each shard finds its slice alone, the merge adds them up.

  python3 -m analysis.shards --shards 4 --out DIR [--launcher L] [--hosts a,b] [--lead S]
                             [--chart FILE.png] -- LOADGEN_ARGS...

LOADGEN_ARGS are one run's (--clients is the whole run's, --label names it); the driver adds
--start-at, --out and, for local processes, --shard. The benchmark's sharded points
(analysis/points.py, the scale scenario) call run().
"""
import argparse
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a file: the repository is the import root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from analysis import benchkit as bk  # noqa: E402
from analysis import machine  # noqa: E402
from pylib import procs  # noqa: E402

LAUNCHERS = ("mpirun", "local", "srun", "kubectl")
RUNS_HERE = ("mpirun", "local")  # the others print their commands
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
# Options the driver owns: each shard gets them from the driver or from its launcher.
OWNED = ("--start-at", "--out", "--shard", "--shards", "--launcher")
MANIFEST = os.path.join(bk.ROOT, "deploy", "k8s", "loadgen-indexed-job.yaml")

# --start-at is picked this far ahead: the launch, then every shard's set-up. Set-up is
# paced by the load generator itself (at most 64 handshakes in flight per worker): 100,000
# UDP clients in 6 shards took 5.6 to 12.7 s over loopback on this 2-core machine (idle to
# busy, 8,000 to 18,000 a second); SETUP_RATE is below that, for a busier machine still.
LAUNCH_S = 3.0
SETUP_RATE = 6000.0  # clients per second, all shards together
K8S_LEAD = 120  # s: the manifest's own advice (deploy/k8s/loadgen-indexed-job.yaml)


class ShardError(Exception):
    """The sharded run failed: the message says what the launcher or the merge said."""


def opt(argv, name, default=None):
    """The value of option name in a loadgen argv (strings), or default."""
    argv = [str(a) for a in argv]
    return argv[argv.index(name) + 1] if name in argv else default


def lead_s(argv, launch=LAUNCH_S):
    """Seconds from the launch to --start-at: the launch, the ramp, the set-up of every
    client of the run (argv's --clients and --ramp)."""
    clients = float(opt(argv, "--clients", 1000))
    return math.ceil(launch + float(opt(argv, "--ramp", 0)) + clients / SETUP_RATE)


def check_argv(argv):
    """Raises ShardError when argv holds an option the driver owns or lacks --label (the
    merge finds the shards' rows by it)."""
    argv = [str(a) for a in argv]
    owned = [o for o in OWNED if o in argv]
    if owned:
        raise ShardError(f"leave {', '.join(owned)} to the driver: it gives every shard the "
                         "same --start-at and its own --out or --shard")
    if "--label" not in argv:
        raise ShardError("give the run a --label: the merge finds the shards' rows by it")


# --- the launchers' command lines ---


def mpirun_argv(n, argv, out, start_at, loadgen, hosts=None, wrap=()):
    """mpirun starting n ranks of loadgen (each reads its rank from OMPI_COMM_WORLD_RANK),
    unbound (the shards share the cores with the server unless wrap pins them), allowed to
    run as root and to put more ranks than cores on a host."""
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(n)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    if hosts:
        cmd += ["--host", ",".join(hosts)]
    return cmd + [*map(str, wrap), loadgen, *map(str, argv), "--start-at", f"{start_at:.3f}",
                  "--out", out]


def local_argvs(n, argv, out, start_at, loadgen, wrap=()):
    """n loadgen command lines, shard i of n each: the launcher for one host without one."""
    return [[*map(str, wrap), loadgen, *map(str, argv), "--shard", f"{i}/{n}", "--start-at",
             f"{start_at:.3f}", "--out", out] for i in range(n)]


def srun_text(n, argv, out, lead, loadgen="bin/loadgen"):
    """The shell lines that run the shards with Slurm's srun and merge them: a directory per
    shard (a shared filesystem may not honour the CSV appends' flock)."""
    line = shlex.join([loadgen, *map(str, argv)])
    label = opt(argv, "--label")
    return "\n".join([
        f"export T=$(( $(date +%s) + {lead} ))   # every shard's --start-at",
        f"srun --ntasks {n} --kill-on-bad-exit=1 sh -c "
        + shlex.quote(f'exec {line} --start-at "$T" --out {shlex.quote(out)}/shard-$SLURM_PROCID'),
        f"{shlex.quote(loadgen)} merge {shlex.quote(out)}/shard-* --out "
        f"{shlex.quote(out)}/merged --label {shlex.quote(label)}", ""])


def kubectl_text(n, argv, out, lead, template=MANIFEST):
    """deploy/k8s/loadgen-indexed-job.yaml made into this run: n completions (all at once),
    this command line with --shards n, a directory per shard under out (on the pods'
    volume), START_AT filled in by the sed of the comment at its top."""
    with open(template, encoding="utf-8") as f:
        lines = f.read().split("\n")
    label = opt(argv, "--label")
    line = (f"exec {shlex.join(['loadgen', *map(str, argv)])} --shards {n} "
            f'--start-at "$START_AT" --out "{out}/shard-$JOB_COMPLETION_INDEX" --quiet')
    body, seen = [], set()
    for x in lines:
        key = x.strip().split(":", 1)[0]
        if key in ("completions", "parallelism"):
            x = x.split(":", 1)[0] + f": {n}" + (x[x.index(" #"):] if " #" in x else "")
            seen.add(key)
        elif key == "command":
            x = x.split(":", 1)[0] + ": " + json.dumps(["sh", "-c", line])
            seen.add(key)
        body.append(x)
    if seen != {"completions", "parallelism", "command"}:
        raise ShardError(f"{template}: no completions, parallelism or command line to fill in")
    head = [f"# {label}: {n} loadgen shards as a Kubernetes Indexed Job (analysis/shards.py)",
            f"#   START_AT=$(( $(date +%s) + {lead} ))",
            "#   sed \"s/@START_AT@/$START_AT/\" THIS_FILE | kubectl apply -f -",
            "#   kubectl wait --for=condition=complete job/chatbench-loadgen --timeout=600s",
            f"#   loadgen merge {out}/shard-* --out {out}/merged --label {label}", "#"]
    return "\n".join(head + body)


# --- a run ---


@dataclasses.dataclass
class Result:
    """A sharded run: the merged summary row and each shard's; t0, t1 (monotonic s) around
    the launch, and window, the merged measured window (monotonic s) from the rows' t0_unix;
    late, the shards whose warm-up started after --start-at (their windows do not line up)."""
    row: dict
    shard_rows: list
    merged_dir: str
    start_at: float
    t0: float
    t1: float
    window: tuple
    late: list


def _launch(n, argv, out, start_at, launcher, hosts, wrap, timeout, loadgen):
    """Starts the shards with launcher and waits for all of them; returns (rc, output)."""
    if launcher == "mpirun":
        r = procs.run(mpirun_argv(n, argv, out, start_at, loadgen, hosts, wrap), timeout,
                      env=dict(os.environ, **MPI_ENV))
        return r.returncode, (r.stdout + r.stderr).strip()
    ps = []
    for a in local_argvs(n, argv, out, start_at, loadgen, wrap):
        try:
            ps.append(procs.spawn(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        except OSError as e:
            for q in ps:
                procs.stop(q)
            raise ShardError(f"cannot start {a[0]}: {e.strerror}") from None
    rc, text, deadline = 0, [], time.monotonic() + timeout
    for p in ps:
        try:
            o, e = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in ps:
                procs.stop(q)
            raise ShardError(f"a shard did not finish within {timeout:.0f} s")
        procs.stop(p)  # reaped: forget it
        rc = rc or p.returncode
        text.append((o + e).decode("utf-8", "replace").strip())
    return rc, "\n".join(t for t in text if t)


def run(n, argv, out, launcher="mpirun", hosts=None, lead=None, wrap=(), timeout=None,
        loadgen=None):
    """Runs one load run as n shards into out (their rows, .hist and .hlog files) and merges
    them into out/merged. argv: loadgen's options for the whole run, --label included.
    Returns a Result; raises ShardError when no merged row came out (a shard exit status of
    1, a failed run such as TCP loss, still merges: the row says what happened)."""
    if launcher not in RUNS_HERE:
        raise ShardError(f"launcher {launcher} is not run from here: print its commands")
    check_argv(argv)
    loadgen = loadgen or os.path.join(bk.BIN, "loadgen")
    label = opt(argv, "--label")
    lead = lead_s(argv) if lead is None else lead
    if timeout is None:
        timeout = lead + float(opt(argv, "--warmup", 1)) + float(opt(argv, "--duration", 8)) \
            + 120
    os.makedirs(out, exist_ok=True)
    off = time.time() - time.monotonic()  # Unix time of a monotonic reading
    t0 = time.monotonic()
    start_at = round(t0 + off + lead, 3)
    try:
        rc, text = _launch(n, argv, out, start_at, launcher, hosts, wrap, timeout, loadgen)
    except TimeoutError as e:
        raise ShardError(str(e)) from None
    t1 = time.monotonic()
    merged = os.path.join(out, "merged")
    m = procs.run([loadgen, "merge", out, "--out", merged, "--label", label, "--quiet"], 60)
    rows = bk.read_csv(os.path.join(merged, "summary.csv")) \
        if os.path.exists(os.path.join(merged, "summary.csv")) else []
    if m.returncode != 0 or not rows:
        raise ShardError(f"{launcher} exited {rc}; loadgen merge exited {m.returncode}: "
                         f"{' '.join((m.stderr + ' ' + text).split())[-600:]}")
    row = dict(rows[-1])
    shard_rows = [r for r in bk.read_csv(os.path.join(out, "summary.csv"))
                  if r.get("label") == label]
    late = [r["shard"] for r in shard_rows if float(r["t0_unix"]) > start_at + 0.001]
    w0 = float(row["t0_unix"]) + float(row["warmup_s"]) - off
    row.update({"loadgen_rc": rc, "shard_launcher": launcher, "shard_lead_s": lead,
                "shards_late": len(late)})
    if rc != 0:
        row["loadgen_stderr"] = " ".join(text.split())[-300:]
    return Result(row, shard_rows, merged, start_at, t0, t1,
                  (w0, w0 + float(row["measured_s"])), late)


# --- the command line ---


CHART = """load style
f = dir."/latency.csv"
set datafile separator comma
set title "{label}: ACK latency of each shard and of their merge"
set xlabel "ACK round trip (µs)"
set ylabel "messages acknowledged within x (%)"
set logscale x
set yrange [0:100]
set key bottom right
shard(i) = strcol('shard') eq sprintf('%d', i) && strcol('kind') eq 'ack'
plot for [i=0:{last}] f u (shard(i) ? column('value_us') : NaN):(column('percentile')) \\
       w l lt 8 lw 1 t (i == 0 ? 'each shard' : ''), \\
     dir."/merged/latency.csv" u (strcol('kind') eq 'ack' ? column('value_us') : NaN):\\
       (column('percentile')) w l lt 1 lw 3 t 'merged (histograms added)'
"""


def chart(out, label, n, png):
    """The ACK latency distribution of every shard and of the merge (gnuplot, the benchmark's
    style): the merged curve is the histograms added, not an average of percentiles."""
    gp = os.path.join(out, "shards.gp")
    with open(gp, "w") as f:
        f.write("set datafile columnheaders\n" + CHART.format(label=label, last=n - 1))
    r = subprocess.run(["gnuplot", "-e", f"dir='{out}'", "-e", f"out='{png}'", "-e",
                        f"style='{os.path.join(bk.ROOT, 'analysis', 'charts', 'style.gp')}'",
                        gp], capture_output=True, text=True)
    if r.returncode != 0:
        raise ShardError(f"gnuplot: {r.stderr.strip()}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m analysis.shards",
        description="Runs one loadgen run as N shards under a launcher (mpirun, or local "
        "processes) and merges them; or prints the srun or kubectl commands that do it.",
        epilog="Example: python3 -m analysis.shards --shards 3 --out /tmp/r -- --proto udp "
        "--port 5001 --clients 30000 --rate 1 --duration 10 --label r1")
    ap.add_argument("--shards", type=int, required=True, help="number of shards (processes)")
    ap.add_argument("--out", required=True, help="the shards' directory; the merge goes to "
                    "OUT/merged (srun: a directory per shard under it; kubectl: a path on "
                    "the pods' volume)")
    ap.add_argument("--launcher", choices=LAUNCHERS, default="mpirun",
                    help="mpirun (Open MPI) or local run here; srun and kubectl print what to "
                    "run (default mpirun)")
    ap.add_argument("--hosts", help="mpirun: the hosts, a,b,c (default this one)")
    ap.add_argument("--lead", type=float, help="seconds from the launch to --start-at "
                    "(default: 3 + --ramp + clients / 6000; kubectl: at least 120)")
    ap.add_argument("--chart", help="also draw the shards' and the merged ACK latency "
                    "distribution into this PNG (gnuplot)")
    ap.add_argument("--json", action="store_true", help="print the merged row as JSON")
    ap.add_argument("--version", action="version",
                    version=f"analysis.shards chatbench {machine.version()}")
    ap.add_argument("loadgen", nargs=argparse.REMAINDER,
                    help="-- then loadgen's options for the whole run")
    a = ap.parse_args(argv)
    lg = a.loadgen[1:] if a.loadgen[:1] == ["--"] else a.loadgen
    if a.shards < 1 or not lg:
        ap.error("give --shards N (N >= 1) and, after --, loadgen's options")
    try:
        check_argv(lg)
        lead = a.lead if a.lead is not None else lead_s(lg)
        if a.launcher == "srun":
            print(srun_text(a.shards, lg, a.out, lead), end="")
            return 0
        if a.launcher == "kubectl":  # pods wait to be scheduled and pull the image first
            print(kubectl_text(a.shards, lg, a.out, lead if a.lead is not None else
                               max(lead, K8S_LEAD)))
            return 0
        res = run(a.shards, lg, os.path.abspath(a.out), a.launcher,
                  a.hosts.split(",") if a.hosts else None, lead)
        if a.chart:
            chart(os.path.abspath(a.out), opt(lg, "--label"), a.shards, os.path.abspath(a.chart))
    except ShardError as e:
        print(f"analysis.shards: {e}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(res.row))
    else:
        r = res.row
        print(f"{a.shards} shards ({a.launcher}), --start-at {res.start_at:.3f}: "
              f"{r['connected']} of {r['clients']} clients connected, {r['sent']} sent, "
              f"{r['acked']} acked, {r['lost']} lost; ACK p50 {r['ack_p50_us']} us, p99 "
              f"{r['ack_p99_us']} us; merged into {res.merged_dir}")
        if res.late:
            print(f"warning: shard(s) {', '.join(res.late)} started after --start-at: their "
                  "windows do not line up; give a longer --lead", file=sys.stderr)
    return 0 if str(res.row["loadgen_rc"]) == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
