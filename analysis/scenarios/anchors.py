"""anchors: one client at 200 msg/s per transport, then sockperf over the same loopback with
the same frame size: ping-pong (the floor) and under-load at our rate (REPORT.md, Anchors)."""
from analysis import report as R
from analysis import witnesses
from analysis.benchkit import BenchError
from analysis.points import SIZE, point

ORDER = 80
CHARTS = ("anchors",)


def points(quick):
    return [point("anchors", f"anchor-{proto}", proto,
                  f"{proto} 1 client at 200 msg/s (vs sockperf)", 1, 1 if quick else 4, quick,
                  rate=200) for proto in ("tcp", "udp")]


def after_s(quick):
    """sockperf, two runs per transport."""
    return 4 if quick else 14


def run(ctx, pts):
    """Our points, then sockperf beside each row that came back; anchors.csv rewritten."""
    for pt in pts:
        ctx.point(pt)
    rows = ctx.rows("anchors")
    if not rows:
        return
    seconds = 1 if ctx.quick else 3
    for row in rows:
        size = SIZE + 30
        sent = float(row.get("sent") or 0)
        wire = float(row.get("bytes_sent_wire") or 0)
        if sent > 0 and wire > 0:
            size = int(round(wire / sent))
        print(f"[anchor] sockperf ping-pong {row['proto']} {size} B", flush=True)
        try:
            sp = witnesses.sockperf_rtt(row["proto"], size, seconds)
        except (BenchError, OSError) as e:
            print(f"    FAILED: {e}", flush=True)
            ctx.fail(f"sockperf-{row['proto']}")
            continue
        row.update({"sockperf_size_bytes": size, "sockperf_p50_us": sp["p50_us"],
                    "sockperf_p99_us": sp["p99_us"], "sockperf_mean_us": sp["mean_us"],
                    "sockperf_observations": int(sp["observations"])})
        print(f"    sockperf ping-pong round trip p50 {sp['p50_us']} us, p99 "
              f"{sp['p99_us']} us", flush=True)
        # The same rate as our client: idle wake-ups cost what a busy ping-pong hides.
        mps = float(row.get("offered_rate_msgs") or 200)
        try:
            ul = witnesses.sockperf_rtt(row["proto"], size, seconds, mps=mps)
        except (BenchError, OSError) as e:
            print(f"    FAILED (under-load): {e}", flush=True)
            ctx.fail(f"sockperf-load-{row['proto']}")
            continue
        row.update({"sockperf_load_mps": int(mps), "sockperf_load_p50_us": ul["p50_us"],
                    "sockperf_load_p99_us": ul["p99_us"]})
        print(f"    sockperf under-load {int(mps)} msg/s round trip p50 {ul['p50_us']} us, "
              f"p99 {ul['p99_us']} us", flush=True)
    ctx.write_rows("anchors")


TABLES = [("anchors", "anchors.csv", [
    R.LABEL, R.PROTO, R.col("frame (B)", "sockperf_size_bytes"),
    R.col("our ACK p50 (µs)", "ack_p50_us"),
    R.col("sockperf RTT p50 (µs)", "sockperf_p50_us", 1),
    ("ours / sockperf", lambda r: R.ratio(R.num(r, "ack_p50_us"),
                                          R.num(r, "sockperf_p50_us")), 2),
    R.col("our ACK p99 (µs)", "ack_p99_us"), R.col("sockperf RTT p99 (µs)", "sockperf_p99_us", 1),
    R.col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1),
    ("ours / sockperf under load", lambda r: R.ratio(R.num(r, "ack_p50_us"),
                                                     R.num(r, "sockperf_load_p50_us")), 2),
    R.OTHERS,
])]


def reading_anchors(outdir):
    rows = R.by_label(outdir, "anchors.csv")
    n, f, ratio = R.n, R.num, R.ratio
    out = []
    for proto, name in (("tcp", "TCP"), ("udp", "UDP")):
        r = rows.get(f"anchor-{proto}")
        if not r:
            continue
        out.append(f"{name}: our ACK p50 {n(f(r, 'ack_p50_us'))} µs against sockperf's "
                   f"ping-pong {n(f(r, 'sockperf_p50_us'), 1)} µs (x "
                   f"{n(ratio(f(r, 'ack_p50_us'), f(r, 'sockperf_p50_us')), 2)}) and its "
                   f"under-load round trip at the same rate {n(f(r, 'sockperf_load_p50_us'), 1)}"
                   f" µs (x {n(ratio(f(r, 'ack_p50_us'), f(r, 'sockperf_load_p50_us')), 2)}).")
    if not out:
        raise R.NoData("anchors.csv")
    return " ".join(out) + "\n"


READINGS = [("anchors", reading_anchors)]
