"""fanout: rooms of 1, 10 and 100 members, 100 clients (REPORT.md section 4); 1 msg/s per
client in rooms of 100, 5 msg/s in the others."""
from analysis import report as R
from analysis.points import point

ORDER = 40
CHARTS = ("fanout",)


def points(quick):
    pts = []
    for k in ([1, 10] if quick else [1, 10, 100]):
        for proto in ("tcp", "udp"):
            pts.append(point("fanout", f"fanout-{proto}-{k}", proto, f"{proto} rooms of {k}",
                             100, 1 if quick else 5, quick, rate=1 if k == 100 else 5, room=k))
    return pts


TABLES = [("fanout", "fanout.csv", [
    R.LABEL, R.PROTO, R.col("room", "room_size"), R.col("expected", "fanout_expected"),
    R.col("received", "fanout_received"),
    R.col("fan-out p50 (µs)", "fanout_p50_us"), R.col("fan-out p99 (µs)", "fanout_p99_us"),
    R.col("last recipient p99 (µs)", "fanout_last_p99_us"),
    R.col("ACK p99 (µs)", "ack_p99_us"), R.col("server CPU (%)", "server_cpu_pct", 1),
    R.OTHERS,
])]


def reading_fanout(outdir):
    rows = R.need(outdir, "fanout.csv")
    n, f = R.n, R.num
    out = []
    rooms = sorted(set(R.sizes(rows, "tcp", "room_size")) &
                   set(R.sizes(rows, "udp", "room_size")))
    for k in [x for x in rooms if x > 1][::-1]:
        t, u = rows.get(f"fanout-tcp-{k}"), rows.get(f"fanout-udp-{k}")
        if t is None or u is None:
            continue
        tl, ul = f(t, "fanout_last_p99_us"), f(u, "fanout_last_p99_us")
        out.append(f"In rooms of {n(k)}, fan-out p50 is {n(f(t, 'fanout_p50_us'))} µs for TCP "
                   f"and {n(f(u, 'fanout_p50_us'))} µs for UDP; the last recipient's p99 is "
                   f"{n(tl)} and {n(ul)} µs (TCP's {R.cmp(tl, ul, 'longer', 'shorter')}).")
    ok = all(f(r, "fanout_received") == f(r, "fanout_expected") for r in rows.values())
    out.append("Every expected delivery arrived, for both transports." if ok else
               "Some expected deliveries did not arrive: see *expected* and *received*.")
    return " ".join(out) + "\n"


READINGS = [("fanout", reading_fanout)]
