"""scale: clients from 10 to 10,000 at 1 msg/s each (REPORT.md section 1).

Set-up is spread over clients/1000 s (--ramp); the set-up section (setup.py) reads this
scenario's connect_* columns, the hybrid section (hybrid.py) its hybrid rows. Hybrid
(udp_server --hybrid) goes up to 3,000 clients: the load generator holds two descriptors per
hybrid client and this container caps them at 20,000.
"""
from analysis import report as R
from analysis.points import point

ORDER = 10
CHARTS = ("scale_latency", "scale_memory", "scale_cpu")


def points(quick):
    pts = []
    for n in ([10, 300] if quick else [10, 100, 1000, 3000, 10000]):
        for proto in ("tcp", "udp", "hybrid") if n <= 3000 else ("tcp", "udp"):
            pts.append(point("scale", f"scale-{proto}-{n}", proto,
                             f"{proto} {n} clients at 1 msg/s each", n, 1 if quick else 5,
                             quick, rate=1, ramp=round(n / 1000.0, 1) if n >= 1000 else 0))
    return pts


TABLES = [("scale", "scale.csv", [
    R.LABEL, R.PROTO, R.col("clients", "clients"), R.col("connected", "connected"),
    R.col("acked msg/s", "acked_rate_msgs", 1),
    R.col("ACK p50 (µs)", "ack_p50_us"), R.col("ACK p99 (µs)", "ack_p99_us"),
    ("server RSS (MiB)", lambda r: R.ratio(R.num(r, "server_rss_kib_max"), 1024.0), 1),
    ("RSS per client (KiB)", lambda r: R.ratio(R.num(r, "server_rss_kib_max"),
                                               R.num(r, "clients")), 1),
    R.col("server threads", "server_threads_max"), R.col("server fds", "server_fds_max"),
    R.col("server CPU (%)", "server_cpu_pct", 1),
    R.col("server CPU per msg (µs)", "server_cpu_us_per_msg", 1),
    R.OTHERS,
])]


def reading_scale(outdir):
    rows = R.by_label(outdir, "scale.csv")
    n, f, ratio = R.n, R.num, R.ratio
    common = sorted(set(R.sizes(rows, "tcp")) & set(R.sizes(rows, "udp")))
    if not common:
        return "No data: `scale.csv` has no TCP and UDP points at the same size.\n"
    top = common[-1]
    t, u = rows.get(f"scale-tcp-{top}"), rows.get(f"scale-udp-{top}")
    out = []
    p50s = [f(r, "ack_p50_us") for r in rows.values()
            if r.get("proto") in ("tcp", "udp") and f(r, "clients") not in (None, top)
            and f(r, "ack_p50_us") is not None]
    if p50s:
        out.append(f"Below {n(top)} clients the ACK p50 of both servers lies in "
                   f"{R.rng(p50s, unit=' µs')}.")
    out.append(
        f"At {n(top)} clients `tcp_server` holds {n(f(t, 'server_threads_max'))} threads, "
        f"{n(f(t, 'server_fds_max'))} descriptors and "
        f"{n(ratio(f(t, 'server_rss_kib_max'), 1024.0), 1)} MiB of RSS "
        f"({n(ratio(f(t, 'server_rss_kib_max'), f(t, 'clients')), 1)} KiB per client); "
        f"`udp_server` holds {n(f(u, 'server_threads_max'))} threads, "
        f"{n(f(u, 'server_fds_max'))} descriptors and "
        f"{n(ratio(f(u, 'server_rss_kib_max'), 1024.0), 1)} MiB "
        f"({n(ratio(f(u, 'server_rss_kib_max'), f(u, 'clients')), 1)} KiB per client).")
    tc, uc = f(t, "server_cpu_pct"), f(u, "server_cpu_pct")
    out.append(f"Server CPU at that point: {n(tc, 1)} % of a core for TCP against "
               f"{n(uc, 1)} % for UDP.")
    t50, u50, t99, u99 = (f(t, "ack_p50_us"), f(u, "ack_p50_us"), f(t, "ack_p99_us"),
                          f(u, "ack_p99_us"))
    out.append(f"At that point the ACK p50 is {n(t50)} µs (TCP) and {n(u50)} µs (UDP), the "
               f"ACK p99 {n(t99)} and {n(u99)} µs: TCP's p99 is {R.cmp(t99, u99)} than UDP's "
               "here, in one run of a few seconds on a shared machine (see *others CPU*).")
    return " ".join(out) + "\n"


READINGS = [("scale", reading_scale)]
