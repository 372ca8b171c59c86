"""compression: --compress by payload kind and size, with plain baselines (REPORT.md section
5). UDP only: PROTOCOL.md defines compressed frames for UDP."""
from analysis import report as R
from analysis.points import point

ORDER = 50
CHARTS = ("compression_ratio", "compression_cost")


def points(quick):
    pts = []
    for size in ([256] if quick else [64, 256, 1024]):
        for kind in (("hex", "random") if quick else ("hex", "text", "random")):
            pts.append(point("compression", f"zip-{kind}-{size}", "udp",
                             f"udp --compress {kind} {size} B", 100, 1 if quick else 3, quick,
                             rate=30, size=size, payload=kind, compress=True))
        pts.append(point("compression", f"plain-hex-{size}", "udp", f"udp plain hex {size} B",
                         100, 1 if quick else 3, quick, rate=30, size=size, payload="hex"))
    return pts


TABLES = [("compression", "compression.csv", [
    R.LABEL, ("payload", lambda r: r.get("payload", ""), 0), R.col("size (B)", "size_bytes"),
    R.col("compress", "compress"), R.col("ratio", "compress_ratio", 3),
    ("wire bytes per msg", lambda r: R.ratio(R.num(r, "bytes_sent_wire"), R.num(r, "sent")), 1),
    R.col("ACK p50 (µs)", "ack_p50_us"),
    R.col("server CPU per msg (µs)", "server_cpu_us_per_msg", 1),
    R.col("loadgen CPU per msg (µs)", "cpu_us_per_msg", 1),
    R.OTHERS,
])]


def reading_compression(outdir):
    rows = R.need(outdir, "compression.csv")
    n, f = R.n, R.num
    sizes = sorted({int(f(r, "size_bytes")) for r in rows.values()})
    lo, hi = sizes[0], sizes[-1]
    out = []

    def ratio(kind, size):
        r = rows.get(f"zip-{kind}-{size}")
        return None if r is None else f(r, "compress_ratio")

    parts = [f"{kind} {n(ratio(kind, lo), 3)} at {lo} B and {n(ratio(kind, hi), 3)} at {hi} B"
             for kind in ("text", "hex", "random") if ratio(kind, lo) is not None]
    out.append("Compression ratios: " + "; ".join(parts) + " (below 1: smaller).")
    plain = [f(r, "server_cpu_us_per_msg") for r in rows.values()
             if f(r, "compress") == 0 and f(r, "server_cpu_us_per_msg") is not None]
    zipped = [f(r, "server_cpu_us_per_msg") for r in rows.values()
              if f(r, "compress") == 1 and f(r, "server_cpu_us_per_msg") is not None]
    if plain and zipped:
        out.append(f"The server spends {R.rng(plain, 1, ' µs')} of CPU per plain message and "
                   f"{R.rng(zipped, 1, ' µs')} per compressed one.")
    for size in (lo, hi):
        z, p = rows.get(f"zip-hex-{size}"), rows.get(f"plain-hex-{size}")
        if z and p:
            out.append(f"Hex at {size} B: ACK p50 {n(f(z, 'ack_p50_us'))} µs compressed "
                       f"against {n(f(p, 'ack_p50_us'))} µs plain.")
    return " ".join(out) + "\n"


READINGS = [("compression", reading_compression)]
