"""setup: connection set-up time (REPORT.md section 6), from the scale scenario's points
(their connect_* and setup_s columns): no points of its own."""
from analysis import report as R
from analysis.scenarios import scale

ORDER = 60
CHARTS = ("setup",)
NAMES = {"udp": "UDP", "hybrid": "Hybrid", "tcp": "TCP (threads)", "tcp-epoll": "TCP (epoll)"}


def points(quick):
    return []


TABLES = [("setup", "scale.csv", [
    R.LABEL, R.SERVER, R.col("clients", "clients"), R.col("connected", "connected"),
    R.col("failed", "connect_failed"), R.col("connect p50 (µs)", "connect_p50_us"),
    R.col("connect p99 (µs)", "connect_p99_us"), R.col("connect max (µs)", "connect_max_us"),
    R.col("all set up (s)", "setup_s", 1),
])]


def reading_setup(outdir):
    rows = R.need(outdir, "scale.csv")
    n, f = R.n, R.num
    out = []
    ser = scale.by_series(rows)
    for s, name in NAMES.items():
        rs = list(ser.get(s, {}).values())
        if not rs:
            continue
        p50 = [f(r, "connect_p50_us") for r in rs if f(r, "connect_p50_us") is not None]
        top = max(rs, key=lambda r: f(r, "clients") or 0)
        setup = f(top, "setup_s")
        out.append(f"{name}: connect p50 {R.rng(p50, unit=' µs')} over the "
                   f"points; p99 {n(f(top, 'connect_p99_us'))} µs at {n(f(top, 'clients'))} "
                   "clients" + (f", all of whom were set up in {n(setup, 1)} s" +
                                (f" (--ramp {n(f(top, 'ramp_s'))} s)"
                                 if f(top, "ramp_s") else " (no --ramp)")
                                if setup is not None else "") + ".")
    failed = sum(f(r, "connect_failed") or 0 for r in rows.values())
    out.append("Every client connected in every run." if failed == 0 else
               f"{n(failed)} set-ups failed in all: see *failed*.")
    return " ".join(out) + "\n"


READINGS = [("setup", reading_setup)]
