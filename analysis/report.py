"""report: REPORT.md's generated tables, computed from the CSVs in a results folder.

Each table lives in REPORT.md between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->`; update_report() replaces only what is between the markers.
Every table's first column is the run's label (the row key in the CSV it names), so that
tests/integration/test_report.py can recompute every cell from results/ on its own.
"""
import csv
import os
import re


def _rows(outdir, name):
    path = os.path.join(outdir, name)
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _f(row, key):
    v = row.get(key, "")
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _ratio(a, b, scale=1.0):
    return None if a is None or b in (None, 0) else scale * a / b


def fmt(v, nd=0):
    """A number as the tables print it: nd decimals, "n/a" when missing."""
    if v is None or v == "":
        return "n/a"
    if isinstance(v, str):
        return v
    if nd == 0:
        return str(int(round(v)))
    return f"{v:.{nd}f}"


# Column: (header, function(row) -> value, decimals). A string value is printed as is.
def col(header, key, nd=0):
    return (header, lambda r: _f(r, key), nd)


LABEL = ("label", lambda r: r.get("label", ""), 0)
OTHERS = ("others CPU (%)", lambda r: _f(r, "other_cpu_pct"), 0)
PROTO = ("proto", lambda r: r.get("proto", ""), 0)


def _lost_pct(r, key="lost"):
    return _ratio(_f(r, key), _f(r, "sent"), 100.0)


TABLES = [
    ("scale", "scale.csv", None, [
        LABEL, PROTO, col("clients", "clients"), col("connected", "connected"),
        col("acked msg/s", "acked_rate_msgs", 1),
        col("ACK p50 (µs)", "ack_p50_us"), col("ACK p99 (µs)", "ack_p99_us"),
        ("server RSS (MiB)", lambda r: _ratio(_f(r, "server_rss_kib_max"), 1024.0), 1),
        ("RSS per client (KiB)", lambda r: _ratio(_f(r, "server_rss_kib_max"),
                                                  _f(r, "clients")), 1),
        col("server threads", "server_threads_max"), col("server fds", "server_fds_max"),
        col("server CPU (%)", "server_cpu_pct", 1),
        col("server CPU per msg (µs)", "server_cpu_us_per_msg", 1),
        OTHERS,
    ]),
    ("saturation", "saturation.csv", None, [
        LABEL, PROTO, col("offered msg/s", "offered_rate_msgs"),
        col("achieved msg/s", "achieved_rate_msgs"), col("acked msg/s", "acked_rate_msgs"),
        ("acked / offered (%)", lambda r: _ratio(_f(r, "acked_rate_msgs"),
                                                 _f(r, "offered_rate_msgs"), 100.0), 1),
        col("ACK p50 (µs)", "ack_p50_us"), col("ACK p99 (µs)", "ack_p99_us"),
        ("lost (%)", _lost_pct, 2),
        col("server CPU (%)", "server_cpu_pct", 1), col("loadgen bound", "loadgen_bound"),
        OTHERS,
    ]),
    ("loss", "loss.csv", None, [
        LABEL, PROTO, col("injected (%)", "injected_loss_pct"), col("sent", "sent"),
        ("lost (%)", _lost_pct, 2),
        ("uplink lost (%)", lambda r: _lost_pct(r, "lost_uplink"), 2),
        ("downlink lost (%)", lambda r: _lost_pct(r, "lost_downlink"), 2),
        ("expected UDP loss (%)", lambda r: None if r.get("proto") not in ("udp", "hybrid") or
         _f(r, "injected_loss_pct") is None else
         100.0 * (1 - (1 - _f(r, "injected_loss_pct") / 100.0) ** 2), 2),
        col("iperf3 lost (%)", "iperf3_lost_pct", 2),
        ("uplink - iperf3 (points)", lambda r: None if _f(r, "iperf3_lost_pct") is None or
         _lost_pct(r, "lost_uplink") is None else
         _lost_pct(r, "lost_uplink") - _f(r, "iperf3_lost_pct"), 2),
        col("reordered", "reordered"),
        col("ACK p50 (µs)", "ack_p50_us"), col("ACK p99 (µs)", "ack_p99_us"),
        col("ACK p99.9 (µs)", "ack_p999_us"), col("ACK max (µs)", "ack_max_us"),
        OTHERS,
    ]),
    ("loss_counts", "loss.csv", None, [
        LABEL, PROTO, col("injected (%)", "injected_loss_pct"), col("sent", "sent"),
        col("lost", "lost"), col("lost uplink", "lost_uplink"),
        col("lost downlink", "lost_downlink"), col("lost unknown", "lost_unknown"),
        col("nft drops", "nft_dropped"), col("nft uplink drops", "nft_dropped_uplink"),
        col("nft downlink drops", "nft_dropped_downlink"),
        ("lost - nft drops", lambda r: None if r.get("proto") not in ("udp", "hybrid")
         or _f(r, "lost") is None
         or _f(r, "nft_dropped") is None else _f(r, "lost") - _f(r, "nft_dropped"), 0),
    ]),
    ("fanout", "fanout.csv", None, [
        LABEL, PROTO, col("room", "room_size"), col("expected", "fanout_expected"),
        col("received", "fanout_received"),
        col("fan-out p50 (µs)", "fanout_p50_us"), col("fan-out p99 (µs)", "fanout_p99_us"),
        col("last recipient p99 (µs)", "fanout_last_p99_us"),
        col("ACK p99 (µs)", "ack_p99_us"), col("server CPU (%)", "server_cpu_pct", 1),
        OTHERS,
    ]),
    ("compression", "compression.csv", None, [
        LABEL, ("payload", lambda r: r.get("payload", ""), 0), col("size (B)", "size_bytes"),
        col("compress", "compress"), col("ratio", "compress_ratio", 3),
        ("wire bytes per msg", lambda r: _ratio(_f(r, "bytes_sent_wire"), _f(r, "sent")), 1),
        col("ACK p50 (µs)", "ack_p50_us"),
        col("server CPU per msg (µs)", "server_cpu_us_per_msg", 1),
        col("loadgen CPU per msg (µs)", "cpu_us_per_msg", 1),
        OTHERS,
    ]),
    ("setup", "scale.csv", None, [
        LABEL, PROTO, col("clients", "clients"), col("connected", "connected"),
        col("failed", "connect_failed"), col("connect p50 (µs)", "connect_p50_us"),
        col("connect p99 (µs)", "connect_p99_us"), col("connect max (µs)", "connect_max_us"),
    ]),
    ("cdf", "cdf.csv", None, [
        LABEL, PROTO, col("acked msg/s", "acked_rate_msgs", 1),
        col("p50 (µs)", "ack_p50_us"), col("p90 (µs)", "ack_p90_us"),
        col("p99 (µs)", "ack_p99_us"), col("p99.9 (µs)", "ack_p999_us"),
        col("p99.99 (µs)", "ack_p9999_us"), col("max (µs)", "ack_max_us"),
        OTHERS,
    ]),
    ("anchors", "anchors.csv", None, [
        LABEL, PROTO, col("frame (B)", "sockperf_size_bytes"),
        col("our ACK p50 (µs)", "ack_p50_us"), col("sockperf RTT p50 (µs)", "sockperf_p50_us", 1),
        ("ours / sockperf", lambda r: _ratio(_f(r, "ack_p50_us"), _f(r, "sockperf_p50_us")), 2),
        col("our ACK p99 (µs)", "ack_p99_us"), col("sockperf RTT p99 (µs)", "sockperf_p99_us", 1),
        col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1),
        ("ours / sockperf under load", lambda r: _ratio(_f(r, "ack_p50_us"),
                                                        _f(r, "sockperf_load_p50_us")), 2),
        OTHERS,
    ]),
]


def render_table(outdir, source, columns):
    rows = _rows(outdir, source)
    if not rows:
        return (f"No data: `{source}` was not produced by this run (a skipped scenario: the "
                "machine table's netns row says why).\n")
    lines = [f"Source: `results/{source}`", "",
             "| " + " | ".join(c[0] for c in columns) + " |",
             "|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(columns))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(fn(r), nd) for _, fn, nd in columns) + " |")
    return "\n".join(lines) + "\n"


def render_machine(outdir):
    path = os.path.join(outdir, "machine.txt")
    if not os.path.exists(path):
        return "No data: `machine.txt` was not produced by this run.\n"
    lines = ["Source: `results/machine.txt`", "", "| fact | value |", "| --- | --- |"]
    with open(path) as f:
        for line in f:
            if ":" in line:
                k, v = line.rstrip("\n").split(":", 1)
                lines.append(f"| {k} | {v.strip().replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def render_all(outdir):
    """{name: markdown} for every generated block."""
    out = {"machine": render_machine(outdir)}
    for name, source, _, columns in TABLES:
        out[name] = render_table(outdir, source, columns)
    return out


def update_report(path, tables):
    """Replaces the text between each pair of markers; returns how many were replaced.
    Markers missing from the file are left missing (the prose decides where tables go)."""
    with open(path) as f:
        text = f.read()
    n = 0
    for name, body in tables.items():
        rx = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?"
                        rf"(<!-- END GENERATED: {re.escape(name)} -->)", re.S)
        text, k = rx.subn(lambda m: m.group(1) + body + m.group(2), text)
        n += k
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return n
