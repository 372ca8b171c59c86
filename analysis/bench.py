#!/usr/bin/env python3
"""bench.py: runs chatbench's benchmark matrix and writes CSVs, charts and REPORT.md tables.

  analysis/bench.py            full matrix into results/ and REPORT.md (at most ~10 min)
  analysis/bench.py --quick    reduced matrix into bench-quick/ (at most ~90 s); REPORT.md
                               is left alone, its tables go to bench-quick/tables.md

As root, the whole run re-executes itself inside a private network namespace (unshare -n):
only that namespace's loopback carries traffic, and the nftables rules that inject loss and
the per-namespace sysctls (somaxconn, port range, tw_reuse) never touch the host's network.
Without root or nftables the loss scenario is skipped and the report says so.

Each scenario point starts its own server on a free port, samples it from /proc, runs
bin/loadgen against it with --out, and stops it. Outputs per scenario S: S.csv (one row per
point: the load generator's summary + server aggregates + what was injected), S.server.csv
(raw /proc samples), S.latency.csv (percentile spectra), S.timeseries.csv.
"""
import argparse
import csv
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchkit as bk  # noqa: E402
import report  # noqa: E402

ROOT = bk.ROOT
HERE = os.path.join(ROOT, "analysis")
SIZE = 100  # payload bytes of every scenario but compression
SEED = 42
OTHER_CPU_MAX = 40.0  # % of one core used by other processes before a point is run again
MAX_RETRIES = 4  # reruns per run at most, so that a busy machine cannot stretch it past 10 min


# --- the matrix ---


def matrix(quick):
    """The scenario points, in order. Each point: scenario, label, proto, what (for the
    progress line), loadgen args, and optional loss. quick: fewer points, 1 s runs."""
    q = quick
    pts = []
    warm = 0.25 if q else 1

    def add(scn, label, proto, what, clients, duration, rate=None, total=None, size=SIZE,
            payload="hex", room=1, compress=False, loss=None, ramp=0.0):
        timeout_ms = 500 if q else 1000
        # No warm-up under injected loss: loadgen's uplink/downlink split counts the whole
        # run, so only --warmup 0 makes it exact, and the nft counters then cover the same
        # messages as the load generator's.
        args = ["--clients", clients, "--threads", os.cpu_count() or 2,
                "--duration", duration, "--warmup", 0 if loss is not None else warm,
                "--size", size,
                "--payload", payload, "--room-size", room, "--timeout", timeout_ms,
                "--seed", SEED]
        args += ["--rate", rate] if rate is not None else ["--total-rate", total]
        if ramp:
            args += ["--ramp", ramp]
        if compress:
            args.append("--compress")
        pts.append({"scenario": scn, "label": label, "proto": proto, "what": what,
                    "args": args, "clients": clients, "duration": duration,
                    "timeout_ms": timeout_ms, "loss": loss, "ramp": ramp})

    # 1. scale: 1 msg/s per client, 10 to 10,000 clients; set-up spread over clients/1000 s
    #    (the set-up scenario reads its connect_* columns).
    #    Hybrid (udp_server --hybrid) up to 3,000: the load generator holds two descriptors
    #    per hybrid client and this container caps them at 20,000.
    for n in ([10, 300] if q else [10, 100, 1000, 3000, 10000]):
        for proto in ("tcp", "udp", "hybrid") if n <= 3000 else ("tcp", "udp"):
            add("scale", f"scale-{proto}-{n}", proto, f"{proto} {n} clients at 1 msg/s each",
                n, 1 if q else 5, rate=1, ramp=round(n / 1000.0, 1) if n >= 1000 else 0)
    # 2. saturation: open-loop total rate stepped past the knee, 100 clients.
    rates = [5000, 20000] if q else [2500, 5000, 10000, 20000, 30000, 40000]
    for r in rates:
        for proto in ("tcp", "udp"):
            add("saturation", f"sat-{proto}-{r}", proto, f"{proto} offered {r} msg/s",
                100, 1 if q else 4, total=r)
    # 3. loss injected in the kernel (needs the private namespace).
    for pct in ([5] if q else [0, 1, 5, 10]):
        for proto in ("tcp", "udp", "hybrid"):
            add("loss", f"loss-{proto}-{pct}", proto, f"{proto} {pct} % loss each way",
                50, 1 if q else 5, total=2000, loss=pct)
    # 4. fan-out: rooms of 1, 10 and 100 (100 clients; 1 msg/s each in rooms of 100).
    for k in ([1, 10] if q else [1, 10, 100]):
        for proto in ("tcp", "udp"):
            add("fanout", f"fanout-{proto}-{k}", proto, f"{proto} rooms of {k}",
                100, 1 if q else 5, rate=1 if k == 100 else 5, room=k)
    # 5. compression (UDP only, by PROTOCOL.md): payload kinds by sizes, and plain baselines.
    for size in ([256] if q else [64, 256, 1024]):
        for kind in (("hex", "random") if q else ("hex", "text", "random")):
            add("compression", f"zip-{kind}-{size}", "udp", f"udp --compress {kind} {size} B",
                100, 1 if q else 3, rate=30, size=size, payload=kind, compress=True)
        add("compression", f"plain-hex-{size}", "udp", f"udp plain hex {size} B",
            100, 1 if q else 3, rate=30, size=size, payload="hex")
    # 6. latency CDF at equal load, and low-load points to set beside sockperf.
    for proto in ("tcp", "udp"):
        add("cdf", f"cdf-{proto}", proto, f"{proto} 200 clients at 5 msg/s (CDF)",
            200, 1 if q else 8, rate=5)
    for proto in ("tcp", "udp"):
        add("anchors", f"anchor-{proto}", proto, f"{proto} 1 client at 200 msg/s (vs sockperf)",
            1, 1 if q else 4, rate=200)
    return pts


def estimate_s(pt):
    """Rough wall time of one point: warm-up, duration, ramp, the UDP drain, the server's
    start and stop and the load generator's set-up (about 1.5 s, more with thousands of
    clients), and the iperf3 anchor after each UDP loss point."""
    a = pt["args"]
    warm = float(a[a.index("--warmup") + 1])
    t = warm + pt["duration"] + pt["ramp"] + 1.5 + pt["clients"] / 2000.0
    if pt["proto"] != "tcp":
        t += pt["timeout_ms"] / 1000.0
    if pt["scenario"] == "loss" and pt["proto"] == "udp":
        t += pt["duration"] + 1
    return t


# --- one point ---


def run_point(pt, raw, logs, interval, netns):
    """Runs one point; returns (row, server samples, latency rows, timeseries rows)."""
    proto = pt["proto"]
    extra = ["--max-clients", str(max(10000, pt["clients"] + 100))]
    srv = bk.Server(proto, logs, pt["label"], extra)
    sampler = bk.Sampler(srv.pid, pt["label"], interval).start()
    out = os.path.join(raw, pt["label"])
    os.makedirs(out, exist_ok=True)
    extra_cols = {}
    try:
        if pt["loss"] is not None:
            bk.set_loss(srv.data_port, pt["loss"], proto, "chat")
        budget = 150 + pt["duration"] * 3 + pt["ramp"] + pt["clients"] / 100
        busy0, srv0 = bk.host_busy_s(), sampler.sample(record=False)
        ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        row, t0, t1 = bk.run_loadgen(srv.port, proto, pt["label"], out, pt["args"], budget)
        ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy1, srv1 = bk.host_busy_s(), sampler.sample(record=False)
        # The load generator's whole CPU (set-up included; its own cpu_*_s start at t0):
        # the only child reaped meanwhile.
        extra_cols["loadgen_total_cpu_s"] = round(
            (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime), 3)
        if pt["loss"] is not None:
            drops = bk.loss_counters() or {"uplink": 0, "downlink": 0}
            extra_cols.update({"nft_dropped": drops["uplink"] + drops["downlink"],
                               "nft_dropped_uplink": drops["uplink"],
                               "nft_dropped_downlink": drops["downlink"]})
            bk.clear_loss()
    finally:
        samples = sampler.finish()
        rc = srv.stop()
    # The steady window: the last `duration` seconds before the load generator's final
    # drain (UDP waits --timeout for the last ACKs), trimmed by 0.25 s at both ends.
    drain = 0.25 + (pt["timeout_ms"] / 1000.0 if proto != "tcp" else 0.0)
    end = (t1 - sampler.t0) - drain
    agg = bk.summarize_samples(samples, end - pt["duration"] + 0.25, end)
    row = dict(row)
    row.update({"scenario": pt["scenario"], "server_rc": rc, "wall_s": round(t1 - t0, 2)})
    # CPU that neither the server nor the load generator used during the run: other
    # processes on this shared machine. A busy neighbour shows here, not as our latency.
    try:
        ours = extra_cols["loadgen_total_cpu_s"]
        if srv0 and srv1:
            ours += (srv1["cpu_user_s"] + srv1["cpu_sys_s"]) - (srv0["cpu_user_s"] +
                                                                 srv0["cpu_sys_s"])
        row["other_cpu_pct"] = round(max(0.0, 100.0 * (busy1 - busy0 - ours) / (t1 - t0)), 1)
    except (ValueError, ZeroDivisionError):
        row["other_cpu_pct"] = ""
    if pt["loss"] is not None:
        row["injected_loss_pct"] = pt["loss"]
    row.update(extra_cols)
    row.update(agg)
    try:
        rate = float(row.get("achieved_rate_msgs") or 0)
        if agg["server_cpu_s"] != "" and rate > 0 and agg["server_window_s"]:
            row["server_cpu_us_per_msg"] = round(
                agg["server_cpu_s"] * 1e6 / (rate * agg["server_window_s"]), 3)
    except ValueError:
        pass
    lat = bk.read_csv(os.path.join(out, "latency.csv")) \
        if os.path.exists(os.path.join(out, "latency.csv")) else []
    ts = bk.read_csv(os.path.join(out, "timeseries.csv")) \
        if os.path.exists(os.path.join(out, "timeseries.csv")) else []
    return row, samples, lat, ts


def iperf_anchor(row, pct):
    """iperf3 -u at our uplink datagram size and rate under the same injected loss."""
    sent = float(row.get("sent") or 0)
    wire = float(row.get("bytes_sent_wire") or 0)
    size = int(round(wire / sent)) if sent > 0 and wire > 0 else SIZE + 30
    size = max(size, 80)  # our loss rule for iperf3 spares datagrams of 64 bytes and less
    pps = float(row.get("offered_rate_msgs") or 2000)
    seconds = max(1, int(float(row.get("duration_s") or 1)))
    res = bk.iperf3_udp(size, pps, seconds, before=lambda port: bk.set_loss(port, pct, "udp",
                                                                            "all"))
    bk.clear_loss()
    return {"iperf3_size_bytes": size, "iperf3_rate_pps": int(pps),
            "iperf3_packets": res["packets"], "iperf3_lost": res["lost"],
            "iperf3_lost_pct": round(res["lost_pct"], 3),
            "iperf3_jitter_us": round(res["jitter_us"], 2)}


# --- output ---


def write_csv(path, rows, fields=None):
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


def run_charts(outdir):
    """One gnuplot run per analysis/*.gp chart (style.gp is loaded by each). Returns the
    list of PNGs made and prints any chart that failed."""
    made, failed = [], []
    for gp in sorted(os.listdir(HERE)):
        if not gp.endswith(".gp") or gp == "style.gp":
            continue
        name = gp[:-3]
        png = os.path.join(outdir, name + ".png")
        with open(os.path.join(HERE, gp)) as f:
            sources = re.findall(r'dir\."/([\w.]+\.csv)"', f.read())
        absent = [x for x in sources if not os.path.exists(os.path.join(outdir, x))]
        if absent:
            print(f"  chart {name}: skipped, no {', '.join(absent)} in this run", flush=True)
            continue
        r = subprocess.run(["gnuplot", "-e", f"dir='{outdir}'", "-e", f"out='{png}'",
                            "-e", f"style='{os.path.join(HERE, 'style.gp')}'",
                            os.path.join(HERE, gp)], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
            failed.append(name)
            print(f"  chart {name}: FAILED\n    " + r.stderr.strip().replace("\n", "\n    "),
                  flush=True)
        else:
            made.append(png)
    return made, failed


# --- main ---


def parse_args():
    ap = argparse.ArgumentParser(description="chatbench benchmark driver: scenario matrix, "
                                 "server sampling, loss in a netns, anchors, charts, REPORT.md.")
    ap.add_argument("--quick", action="store_true",
                    help="reduced matrix (about 90 s) into bench-quick/, REPORT.md untouched")
    ap.add_argument("--out", help="output folder (default results/, or bench-quick/ with --quick)")
    ap.add_argument("--only", default="",
                    help="comma list of scenarios to run (scale,saturation,loss,fanout,"
                    "compression,cdf,anchors); charts and tables use whatever CSVs exist")
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
    ap.add_argument("--version", action="version", version=f"bench.py chatbench {bk.version()}")
    return ap.parse_args()


def reexec_in_netns(args):
    ok, why = bk.can_netns()
    if args.no_netns or bk.in_private_netns() or not ok:
        return why if not ok else ("disabled by --no-netns" if args.no_netns else "")
    env = dict(os.environ, CHATBENCH_NETNS="1")
    argv = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), *sys.argv[1:]]
    os.execvpe("unshare", argv, env)


def main():
    args = parse_args()
    why_no_netns = reexec_in_netns(args)
    netns = bk.in_private_netns()
    outdir = os.path.abspath(args.out or os.path.join(ROOT, "bench-quick" if args.quick
                                                      else "results"))
    os.makedirs(outdir, exist_ok=True)
    interval = args.interval or (0.25 if args.quick else 0.5)
    pts = matrix(args.quick)
    if args.only:
        keep = set(args.only.split(","))
        bad = keep - {p["scenario"] for p in pts}
        if bad:
            print(f"bench.py: unknown scenario(s) {', '.join(sorted(bad))}; choose from "
                  f"{', '.join(dict.fromkeys(p['scenario'] for p in pts))}", file=sys.stderr)
            return 2
        pts = [p for p in pts if p["scenario"] in keep]
    if args.list:
        for i, p in enumerate(pts, 1):
            print(f"[{i}/{len(pts)}] {p['scenario']}: {p['what']}  (~{estimate_s(p):.0f} s)  "
                  "loadgen " + " ".join(map(str, p["args"])))
        total = sum(estimate_s(p) for p in pts) + (
            (4 if args.quick else 14) if any(p["scenario"] == "anchors" for p in pts) else 0)
        print(f"estimated time: {total:.0f} s ({total / 60:.1f} min) without reruns; "
              f"limit {'90 s' if args.quick else '10 min'}")
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
        if netns:
            knobs = bk.setup_netns()
            note = "private namespace (unshare -n); loss injected with nftables numgen random"
        else:
            knobs = {}
            note = f"host loopback; loss scenario skipped ({why_no_netns})"
            print(f"bench: no private network namespace ({why_no_netns}): the loss scenario "
                  "is skipped; run as root with nftables installed for it.", flush=True)
        if not args.charts_only:
            missing = bk.snapshot_bins(os.path.join(raw, "bin"))
            if missing:
                print(f"bench: missing bin/{', bin/'.join(missing)}: build them first "
                      "(make all)", file=sys.stderr)
                return 1
            if not args.only:
                # A full matrix replaces the previous run whole: no stale CSV or chart from
                # an older run (or a skipped scenario) may mix into the tables.
                # Only what this driver writes: results/ is shared (results/theory/...).
                ours = {p["scenario"] for p in matrix(args.quick)}
                ours |= {g[:-3] for g in os.listdir(HERE) if g.endswith(".gp")}
                for name in os.listdir(outdir):
                    path = os.path.join(outdir, name)
                    if not os.path.isfile(path):
                        continue
                    if name in ("machine.txt", "tables.md") or (
                            name.endswith((".csv", ".png")) and name.split(".")[0] in ours):
                        os.remove(path)
            with open(os.path.join(outdir, "machine.txt"), "w") as f:
                for k, v in bk.machine_facts(note, knobs):
                    f.write(f"{k}: {v}\n")
            failures = run_matrix(pts, outdir, raw, logs, interval, netns, args.quick)
        made, failed = run_charts(outdir)
        print(f"charts: {len(made)} written to {outdir}" +
              (f", {len(failed)} failed: {', '.join(failed)}" if failed else ""), flush=True)
        tables = report.render_all(outdir)
        with open(os.path.join(outdir, "tables.md"), "w") as f:
            for name, text in tables.items():
                f.write(f"<!-- BEGIN GENERATED: {name} -->\n{text}"
                        f"<!-- END GENERATED: {name} -->\n\n")
        if not args.quick and not args.no_report and outdir == os.path.join(ROOT, "results"):
            n = report.update_report(os.path.join(ROOT, "REPORT.md"), tables)
            print(f"REPORT.md: {n} generated tables refreshed", flush=True)
        el = time.monotonic() - t_start
        print(f"bench: done in {el:.0f} s; {len(failures)} point(s) failed"
              + (": " + ", ".join(failures) if failures else ""), flush=True)
        return 1 if failures or failed else 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping every process it started", file=sys.stderr)
        return 130
    finally:
        bk.cleanup()
        bk.clear_loss()
        if args.keep:
            print(f"bench: raw outputs and server logs kept in {raw}")
        else:
            shutil.rmtree(raw, ignore_errors=True)


def run_matrix(pts, outdir, raw, logs, interval, netns, quick):
    """Runs every point; rewrites each scenario's CSVs after each point. Returns the labels
    of points that failed (the run goes on without them)."""
    by = {}
    failures = []
    retries = 0
    n = len(pts)
    t_start = time.monotonic()
    for i, pt in enumerate(pts, 1):
        scn = pt["scenario"]
        el = time.monotonic() - t_start
        print(f"[{i}/{n}] {scn}: {pt['what']}  ({el:.0f} s elapsed)", flush=True)
        st = by.setdefault(scn, {"rows": [], "server": [], "lat": [], "ts": []})
        if pt["loss"] is not None and not netns:
            print("    skipped: loss injection needs a private network namespace (root, nft)",
                  flush=True)
            continue
        try:
            for attempt in (1, 2):
                row, samples, lat, ts = run_point(pt, raw, logs, interval, netns)
                other = row.get("other_cpu_pct")
                row["attempts"] = attempt
                if quick or attempt == 2 or other in ("", None) or other <= OTHER_CPU_MAX \
                        or retries >= MAX_RETRIES or pt["clients"] >= 3000:
                    break  # (thousands of clients: a rerun costs too much of the budget)
                retries += 1
                print(f"    other processes used {other} % of a core meanwhile: "
                      "running this point once more", flush=True)
                shutil.rmtree(os.path.join(raw, pt["label"]), ignore_errors=True)
            if scn == "loss" and pt["proto"] == "udp":
                print("    iperf3 -u anchor under the same loss", flush=True)
                row.update(iperf_anchor(row, pt["loss"]))
                got = row.get("iperf3_lost_pct")
                if pt["loss"] > 0 and got is not None and not \
                        pt["loss"] / 3 <= got <= pt["loss"] * 3:
                    print(f"    WARNING: iperf3 lost {got} % through a {pt['loss']} % rule: "
                          "nft numgen does not do what it should here", flush=True)
        except (bk.BenchError, OSError) as e:
            print(f"    FAILED: {e}", flush=True)
            failures.append(pt["label"])
            bk.clear_loss()
            continue
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
        write_csv(os.path.join(outdir, f"{scn}.csv"), st["rows"])
        write_csv(os.path.join(outdir, f"{scn}.server.csv"), st["server"], bk.Sampler.FIELDS)
        if st["lat"]:
            write_csv(os.path.join(outdir, f"{scn}.latency.csv"), st["lat"])
        if st["ts"]:
            write_csv(os.path.join(outdir, f"{scn}.timeseries.csv"), st["ts"])
    if "anchors" in by and by["anchors"]["rows"]:
        rows = by["anchors"]["rows"]
        for row in rows:
            size = SIZE + 30
            sent = float(row.get("sent") or 0)
            wire = float(row.get("bytes_sent_wire") or 0)
            if sent > 0 and wire > 0:
                size = int(round(wire / sent))
            print(f"[anchor] sockperf ping-pong {row['proto']} {size} B", flush=True)
            try:
                sp = bk.sockperf_rtt(row["proto"], size, 1 if quick else 3)
            except bk.BenchError as e:
                print(f"    FAILED: {e}", flush=True)
                failures.append(f"sockperf-{row['proto']}")
                continue
            row.update({"sockperf_size_bytes": size, "sockperf_p50_us": sp["p50_us"],
                        "sockperf_p99_us": sp["p99_us"], "sockperf_mean_us": sp["mean_us"],
                        "sockperf_observations": int(sp["observations"])})
            print(f"    sockperf ping-pong round trip p50 {sp['p50_us']} us, p99 "
                  f"{sp['p99_us']} us", flush=True)
            # The same rate as our client: idle wake-ups cost what a busy ping-pong hides.
            mps = float(row.get("offered_rate_msgs") or 200)
            try:
                ul = bk.sockperf_rtt(row["proto"], size, 1 if quick else 3, mps=mps)
            except bk.BenchError as e:
                print(f"    FAILED (under-load): {e}", flush=True)
                failures.append(f"sockperf-load-{row['proto']}")
                continue
            row.update({"sockperf_load_mps": int(mps), "sockperf_load_p50_us": ul["p50_us"],
                        "sockperf_load_p99_us": ul["p99_us"]})
            print(f"    sockperf under-load {int(mps)} msg/s round trip p50 {ul['p50_us']} us, "
                  f"p99 {ul['p99_us']} us", flush=True)
        write_csv(os.path.join(outdir, "anchors.csv"), rows)
    return failures


if __name__ == "__main__":
    sys.exit(main())
