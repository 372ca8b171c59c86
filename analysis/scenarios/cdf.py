"""cdf: the ACK latency distribution of both servers at equal load, 200 clients at 5 msg/s
each (REPORT.md section 7)."""
from analysis import report as R
from analysis.points import point

ORDER = 70
CHARTS = ("cdf", "cdf_tail")


def points(quick):
    return [point("cdf", f"cdf-{proto}", proto, f"{proto} 200 clients at 5 msg/s (CDF)",
                  200, 1 if quick else 8, quick, rate=5) for proto in ("tcp", "udp")]


TABLES = [("cdf", "cdf.csv", [
    R.LABEL, R.PROTO, R.col("acked msg/s", "acked_rate_msgs", 1),
    R.col("p50 (µs)", "ack_p50_us"), R.col("p90 (µs)", "ack_p90_us"),
    R.col("p99 (µs)", "ack_p99_us"), R.col("p99.9 (µs)", "ack_p999_us"),
    R.col("p99.99 (µs)", "ack_p9999_us"), R.col("max (µs)", "ack_max_us"),
    R.OTHERS,
])]


def reading_cdf(outdir):
    rows = R.by_label(outdir, "cdf.csv")
    t, u = rows.get("cdf-tcp"), rows.get("cdf-udp")
    if not t or not u:
        raise R.NoData("cdf.csv")
    parts = []
    for key, name in (("ack_p50_us", "p50"), ("ack_p99_us", "p99"), ("ack_p999_us", "p99.9")):
        a, b = R.num(t, key), R.num(u, key)
        parts.append(f"{name} {R.n(a)} µs for TCP against {R.n(b)} µs for UDP (TCP "
                     f"{R.cmp(a, b)})")
    return (f"At {R.n(R.num(t, 'acked_rate_msgs'))} acknowledged messages per second: "
            + "; ".join(parts) + ".\n")


READINGS = [("cdf", reading_cdf)]
