"""saturation: the open-loop total rate stepped up, 100 clients (REPORT.md section 2)."""
from analysis import report as R
from analysis.points import point

ORDER = 20
CHARTS = ("saturation", "saturation_latency")


def points(quick):
    pts = []
    for r in ([5000, 20000] if quick else [2500, 5000, 10000, 20000, 30000, 40000]):
        for proto in ("tcp", "udp"):
            pts.append(point("saturation", f"sat-{proto}-{r}", proto,
                             f"{proto} offered {r} msg/s", 100, 1 if quick else 4, quick,
                             total=r))
    return pts


TABLES = [("saturation", "saturation.csv", [
    R.LABEL, R.PROTO, R.col("offered msg/s", "offered_rate_msgs"),
    R.col("achieved msg/s", "achieved_rate_msgs"), R.col("acked msg/s", "acked_rate_msgs"),
    ("acked / offered (%)", lambda r: R.ratio(R.num(r, "acked_rate_msgs"),
                                              R.num(r, "offered_rate_msgs"), 100.0), 1),
    R.col("ACK p50 (µs)", "ack_p50_us"), R.col("ACK p99 (µs)", "ack_p99_us"),
    ("lost (%)", R.lost_pct, 2),
    R.col("server CPU (%)", "server_cpu_pct", 1), R.col("loadgen bound", "loadgen_bound"),
    R.OTHERS,
])]


def reading_saturation(outdir):
    rows = R.need(outdir, "saturation.csv")
    n, f, ratio = R.n, R.num, R.ratio
    out = []
    for proto, name in (("udp", "`udp_server`"), ("tcp", "`tcp_server`")):
        rs = sorted((r for r in rows.values() if r.get("proto") == proto),
                    key=lambda r: f(r, "offered_rate_msgs") or 0)
        if not rs:
            continue
        full = [r for r in rs if (ratio(f(r, "acked_rate_msgs"),
                                        f(r, "offered_rate_msgs")) or 0) >= 0.995
                and (f(r, "ack_p50_us") or 1e12) < 10000]
        top = rs[-1]
        s = (f"The highest offered rate of which {name} acknowledged at least 99.5 % with an "
             f"ACK p50 under 10 ms is {n(f(full[-1], 'offered_rate_msgs'))} msg/s"
             if full else f"{name} never acknowledged 99.5 % of the offered rate with an "
             "ACK p50 under 10 ms")
        s += (f"; at the top rate, {n(f(top, 'offered_rate_msgs'))} msg/s, it acknowledged "
              f"{n(ratio(f(top, 'acked_rate_msgs'), f(top, 'offered_rate_msgs'), 100.0), 1)}"
              f" % of it with an ACK p50 of {n(f(top, 'ack_p50_us'))} µs and "
              f"{n(f(top, 'server_cpu_pct'), 1)} % of a core.")
        out.append(s)
    bound = sum(1 for r in rows.values() if f(r, "loadgen_bound") == 1)
    out.append(f"{bound} of the {len(rows)} rows are *loadgen bound*.")
    tl = [r for r in rows.values() if r.get("proto") == "tcp" and (f(r, "lost") or 0) > 0]
    if tl:
        out.append("TCP rows with messages never acknowledged: " + ", ".join(
            f"{r['label']} ({n(f(r, 'lost'))}, loadgen exit {r.get('loadgen_rc', '?')})"
            for r in tl) + "; TCP cannot lose data on a live connection, so read these as "
            "an overloaded load generator or server, not as TCP loss.")
    return " ".join(out) + "\n"


READINGS = [("saturation", reading_saturation)]
