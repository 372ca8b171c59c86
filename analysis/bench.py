#!/usr/bin/env python3
"""bench.py: runs chatbench's benchmark scenarios and writes CSVs, charts and REPORT.md tables.

  analysis/bench.py            every scenario into results/ and REPORT.md (about 20 min)
  analysis/bench.py --quick    reduced points into bench-quick/ (about 2 min); REPORT.md
                               is left alone, its tables go to bench-quick/tables.md

The scenarios are the modules of analysis/scenarios/ (their contract is written there),
run in their ORDER, those marked RUN_LAST (scale: its teardown would disturb the rest)
after the others. As root, the whole run re-executes itself inside a private network
namespace (unshare -n): only that namespace's loopback (and the emulated links that
bin/linkem makes from it, analysis/linkpath.py) carries traffic, and the nftables rules that
inject loss and the per-namespace sysctls (somaxconn, port range, tw_reuse, nonlocal bind)
never touch the host's network. Without root or nftables the loss scenario is skipped, and
without root the emulated paths' scenarios, and the report says so.

Each scenario point starts its own server on a free port, samples it from /proc, runs
bin/loadgen against it with --out, and stops it (analysis/points.py). Outputs per scenario S:
S.csv (one row per point: the load generator's summary + server aggregates + what was
injected), S.server.csv (raw /proc samples), S.latency.csv (percentile spectra),
S.timeseries.csv.
"""
import os
import sys

# The repository is the import root (pylib/, analysis/): set once, here, for this process.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from analysis import benchkit as bk  # noqa: E402
from analysis import machine, points, report, scenarios  # noqa: E402
from analysis.theory import render as theory_render  # noqa: E402
from pylib import markers, netns, procs  # noqa: E402

ROOT = bk.ROOT
CHARTS = os.path.join(ROOT, "analysis", "charts")
MAX_RETRIES = 4  # reruns per run at most, so that a busy machine cannot stretch it much


# --- one run of the selected points ---


class Run:
    """The points of one bench run: runs each (ctx.point), keeps each scenario's rows and
    samples, and rewrites its CSVs after every point. Scenario modules get it as ctx."""

    def __init__(self, outdir, raw, logs, interval, netns_ok, quick, total):
        self.outdir, self.raw, self.logs = outdir, raw, logs
        self.interval, self.netns, self.quick = interval, netns_ok, quick
        self.total, self.done, self.retries = total, 0, 0
        self.failures = []
        self.by = {}
        self.modules = {}  # scenario name -> module, set by scenarios()
        self.t_start = time.monotonic()

    def _state(self, scn):
        return self.by.setdefault(scn, {"rows": [], "server": [], "lat": [], "ts": []})

    def rows(self, scn):
        """The rows of scenario scn so far (the list itself: a scenario may add columns)."""
        return self._state(scn)["rows"]

    def fail(self, what):
        self.failures.append(what)

    def write_rows(self, scn):
        bk.write_csv(os.path.join(self.outdir, f"{scn}.csv"), self.rows(scn))

    def point(self, pt, into=None):
        """Runs one point (again when others took the CPU meanwhile), prints what it gave,
        keeps and writes its row: with its scenario's rows, or into another set of rows
        (<into>.csv; the scenario's hooks still apply). Returns the row, or None when skipped
        or failed (a failure is recorded and the run goes on)."""
        scn, mod = pt.scenario, self.modules[pt.scenario]
        self.done += 1
        el = time.monotonic() - self.t_start
        print(f"[{self.done}/{self.total}] {scn}: {pt.what}  ({el:.0f} s elapsed)", flush=True)
        st = self._state(into or scn)
        if (pt.needs_netns and not self.netns) or pt.unavailable:
            print(f"    skipped: {pt.unavailable or pt.needs_netns}", flush=True)
            return None
        try:
            for attempt in (1, 2):
                row, samples, lat, ts = points.run(pt, self.raw, self.logs, self.interval,
                                                   getattr(mod, "around_loadgen", None))
                other = row.get("other_cpu_pct")
                row["attempts"] = attempt
                if self.quick or attempt == 2 or other in ("", None) or \
                        other <= points.OTHER_CPU_MAX or self.retries >= MAX_RETRIES or \
                        pt.clients >= 3000:
                    break  # (thousands of clients: a rerun costs too much of the budget)
                self.retries += 1
                print(f"    other processes used {other} % of a core meanwhile: "
                      "running this point once more", flush=True)
                shutil.rmtree(os.path.join(self.raw, pt.label), ignore_errors=True)
            if hasattr(mod, "after_point"):
                mod.after_point(pt, row, self.quick)
        except (bk.BenchError, OSError) as e:
            print(f"    FAILED: {e}", flush=True)
            self.fail(pt.label)
            return None
        rc = row.get("loadgen_rc")
        if rc not in (0, "0"):
            print(f"    note: loadgen exited {rc}: {row.get('loadgen_stderr', '')}", flush=True)
        print("    sent {sent} acked {acked} lost {lost}  ack p50 {ack_p50_us} us p99 "
              "{ack_p99_us} us  server cpu {cpu}%  rss {rss} KiB  others {oth}%".format(
                  cpu=row.get("server_cpu_pct"), rss=row.get("server_rss_kib_max"),
                  oth=row.get("other_cpu_pct"),
                  **{k: row.get(k, "?") for k in ("sent", "acked", "lost", "ack_p50_us",
                                                  "ack_p99_us")}), flush=True)
        st["rows"].append(row)
        st["server"].extend(samples)
        st["lat"].extend(lat)
        st["ts"].extend(ts)
        scn = into or scn
        self.write_rows(scn)
        bk.write_csv(os.path.join(self.outdir, f"{scn}.server.csv"), st["server"],
                     bk.Sampler.FIELDS)
        if st["lat"]:
            bk.write_csv(os.path.join(self.outdir, f"{scn}.latency.csv"), st["lat"])
        if st["ts"]:
            bk.write_csv(os.path.join(self.outdir, f"{scn}.timeseries.csv"), st["ts"])
        return row

    def scenarios(self, selected):
        """Runs every scenario of selected [(module, points)] in turn: its own run(ctx, pts)
        when it has one, else each point once."""
        self.modules = {mod.NAME: mod for mod, _ in selected}
        for mod, pts in run_order(selected):
            if hasattr(mod, "run"):
                mod.run(self, pts)
            else:
                for pt in pts:
                    self.point(pt)
        return self.failures


def run_order(selected):
    """selected [(module, points)] in the order they run: ORDER, but RUN_LAST scenarios after
    the rest (sorted() is stable)."""
    return sorted(selected, key=lambda s: getattr(s[0], "RUN_LAST", False))


# --- charts ---


def run_charts(outdir, names):
    """One gnuplot run per chart analysis/charts/<name>.gp (style.gp is loaded by each).
    Returns (PNGs made, charts failed) and prints any chart skipped or failed."""
    made, failed = [], []
    style = os.path.join(CHARTS, "style.gp")
    for name in sorted(names):
        gp = os.path.join(CHARTS, name + ".gp")
        png = os.path.join(outdir, name + ".png")
        with open(gp) as f:
            sources = re.findall(r'dir\."/([\w.]+\.csv)"', f.read())
        absent = [x for x in sources if not os.path.exists(os.path.join(outdir, x))]
        if absent:
            print(f"  chart {name}: skipped, no {', '.join(absent)} in this run", flush=True)
            continue
        r = subprocess.run(["gnuplot", "-e", f"dir='{outdir}'", "-e", f"out='{png}'",
                            "-e", f"style='{style}'", gp], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
            failed.append(name)
            print(f"  chart {name}: FAILED\n    " + r.stderr.strip().replace("\n", "\n    "),
                  flush=True)
        else:
            made.append(png)
    return made, failed


# --- main ---


def parse_args(names):
    ap = argparse.ArgumentParser(description="chatbench benchmark driver: scenario matrix, "
                                 "server sampling, loss in a netns, anchors, charts, REPORT.md.")
    ap.add_argument("--quick", action="store_true",
                    help="reduced matrix (about 2 min) into bench-quick/, REPORT.md untouched")
    ap.add_argument("--out", help="output folder (default results/, or bench-quick/ with --quick)")
    ap.add_argument("--only", default="",
                    help=f"comma list of scenarios to run ({','.join(names)}); charts and "
                    "tables use whatever CSVs exist")
    ap.add_argument("--interval", type=float, default=None,
                    help="server sampling interval in seconds (default 0.5, quick 0.25)")
    ap.add_argument("--no-report", action="store_true", help="do not touch REPORT.md")
    ap.add_argument("--charts-only", action="store_true",
                    help="only redraw the charts and tables from the existing CSVs")
    ap.add_argument("--keep", action="store_true",
                    help="keep the raw loadgen outputs and server logs (path printed)")
    ap.add_argument("--list", action="store_true", help="print the matrix and exit")
    ap.add_argument("--no-netns", action="store_true",
                    help="run on the host's loopback even as root (loss scenario skipped)")
    ap.add_argument("--version", action="version",
                    version=f"bench.py chatbench {machine.version()}")
    return ap.parse_args()


def enter_netns(args):
    """Re-executes this script inside `unshare -n` when it can and should (then it does not
    return); otherwise returns why the run stays on the host's loopback ("" when it is
    already inside)."""
    ok, why = netns.can_netns()
    if args.no_netns or netns.in_private_netns() or not ok:
        return why if not ok else ("disabled by --no-netns" if args.no_netns else "")
    netns.reexec_in_netns(__file__, sys.argv[1:])


def list_points(selected, quick):
    """--list: every point with its loadgen command line and time estimate."""
    flat = [(mod, pt) for mod, pts in run_order(selected) for pt in pts]

    def est(mod, pt):
        return points.estimate_s(pt) + (mod.extra_s(pt) if hasattr(mod, "extra_s") else 0)

    for i, (mod, pt) in enumerate(flat, 1):
        srv = ""
        if pt.server_wrap or pt.server_args:  # pinned, or server options beyond the usual
            prog = "tcp_server" if pt.proto == "tcp" else "udp_server"
            srv = "  server: " + " ".join(map(str, [*pt.server_wrap, prog, *pt.server_args]))
        print(f"[{i}/{len(flat)}] {pt.scenario}: {pt.what}  (~{est(mod, pt):.0f} s){srv}  " +
              " ".join(map(str, [*pt.loadgen_wrap, "loadgen", *pt.args])))
    for mod, pts in run_order(selected):
        if pts and hasattr(mod, "after_lines"):
            for line in mod.after_lines(quick):
                print(f"  + {mod.NAME}: {line}")
    total = sum(est(mod, pt) for mod, pt in flat) + sum(
        mod.after_s(quick) for mod, pts in selected if pts and hasattr(mod, "after_s"))
    print(f"estimated time: {total:.0f} s ({total / 60:.1f} min) without reruns; "
          f"limit {'150 s' if quick else '25 min'}")


def clear_previous(outdir, mods, quick):
    """A full run replaces the previous one whole: no stale CSV or chart from an older run
    (or a skipped scenario) may mix into the tables. Only what this driver writes goes:
    results/ is shared (results/theory/...)."""
    ours = {m.NAME for m in mods if m.points(quick)} | {c for m in mods for c in m.CHARTS}
    for name in os.listdir(outdir):
        path = os.path.join(outdir, name)
        if not os.path.isfile(path):
            continue
        if name in ("machine.txt", "tables.md") or (
                name.endswith((".csv", ".png")) and name.split(".")[0] in ours):
            os.remove(path)


def main():
    mods = scenarios.load()
    args = parse_args([m.NAME for m in mods if m.points(False)])
    why_no_netns = enter_netns(args)
    in_netns = netns.in_private_netns()
    outdir = os.path.abspath(args.out or os.path.join(ROOT, "bench-quick" if args.quick
                                                      else "results"))
    os.makedirs(outdir, exist_ok=True)
    interval = args.interval or (0.25 if args.quick else 0.5)
    selected = [(m, m.points(args.quick)) for m in mods]
    with_points = [m.NAME for m, pts in selected if pts]
    if args.only:
        keep = set(args.only.split(","))
        bad = keep - set(with_points)
        if bad:
            print(f"bench.py: unknown scenario(s) {', '.join(sorted(bad))}; choose from "
                  f"{', '.join(with_points)}", file=sys.stderr)
            return 2
        selected = [(m, pts if m.NAME in keep else []) for m, pts in selected]
    if args.list:
        list_points(selected, args.quick)
        return 0

    # SIGTERM ends the run like Ctrl-C does: through the finally below. SIGINT is set
    # explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raw = tempfile.mkdtemp(prefix="chatbench-bench-")
    logs = os.path.join(raw, "logs")
    os.makedirs(logs)
    t_start = time.monotonic()
    failures = []
    try:
        if in_netns:
            knobs = netns.setup_netns()
            note = ("private namespace (unshare -n); loss injected with nftables numgen random; "
                    "paths emulated by bin/linkem")
        else:
            knobs = {}
            note = f"host loopback; loss and emulated path scenarios skipped ({why_no_netns})"
            print(f"bench: no private network namespace ({why_no_netns}): the loss scenario "
                  "and the emulated paths' are skipped; run as root with nftables installed "
                  "for them.", flush=True)
        if not args.charts_only:
            missing = bk.snapshot_bins(os.path.join(raw, "bin"))
            if missing:
                print(f"bench: missing bin/{', bin/'.join(missing)}: build them first "
                      "(make all)", file=sys.stderr)
                return 1
            if not args.only:
                clear_previous(outdir, mods, args.quick)
            with open(os.path.join(outdir, "machine.txt"), "w") as f:
                for k, v in machine.machine_facts(note, knobs):
                    f.write(f"{k}: {v}\n")
            total = sum(len(pts) for _, pts in selected)
            failures = Run(outdir, raw, logs, interval, in_netns, args.quick,
                           total).scenarios(selected)
        made, failed = run_charts(outdir, [c for m in mods for c in m.CHARTS])
        print(f"charts: {len(made)} written to {outdir}" +
              (f", {len(failed)} failed: {', '.join(failed)}" if failed else ""), flush=True)
        tables = report.render_all(outdir)
        with open(os.path.join(outdir, "tables.md"), "w") as f:
            for name, text in tables.items():
                f.write(markers.block(name, text) + "\n")
        if not args.quick and not args.no_report and outdir == os.path.join(ROOT, "results"):
            n = report.update_report(os.path.join(ROOT, "REPORT.md"), tables)
            print(f"REPORT.md: {n} generated tables refreshed", flush=True)
            done = theory_render.update_doc_bench(outdir)
            print(f"THEORY.md: {', '.join(done) or 'no'} block(s) refreshed", flush=True)
        el = time.monotonic() - t_start
        print(f"bench: done in {el:.0f} s; {len(failures)} point(s) failed"
              + (": " + ", ".join(failures) if failures else ""), flush=True)
        return 1 if failures or failed else 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping every process it started", file=sys.stderr)
        return 130
    finally:
        procs.cleanup()
        if args.keep:
            print(f"bench: raw outputs and server logs kept in {raw}")
        else:
            shutil.rmtree(raw, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
