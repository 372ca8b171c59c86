"""report: REPORT.md's generated tables, computed from the CSVs in a results folder.

Each table lives in REPORT.md between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->`; update_report() replaces only what is between the markers.
Every table's first column is the run's label (the row key in the CSV it names), so that
tests/integration/test_report.py can recompute every cell from results/ on its own.
"""
import csv
import os
import re
import sys


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
    out.update(render_readings(outdir))
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


# --- generated readings: the sentences of REPORT.md that state numbers or comparisons ---
#
# Prose cannot be regenerated, so every number or comparison the report makes about this
# run is written here, from the CSVs, into blocks named reading_<section> (no table; the
# test re-renders them from results/ and compares).


def n(v, nd=0):
    """A number for prose: thousands separators, nd decimals, "n/a" when missing."""
    if v is None:
        return "n/a"
    return f"{v:,.{nd}f}"


def rng(values, nd=0, unit=""):
    """'a to b' (or just 'a' when they round alike) for prose."""
    lo, hi = n(min(values), nd), n(max(values), nd)
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def _by(outdir, source):
    return {r.get("label", ""): r for r in (_rows(outdir, source) or [])}


def _cmp(a, b, more="higher", less="lower"):
    """'higher' / 'lower' / 'the same' for a against b."""
    if a is None or b is None:
        return "not comparable"
    return "the same" if a == b else (more if a > b else less)


def _sizes(rows, proto, key="clients"):
    return sorted({int(_f(r, key)) for r in rows.values()
                   if r.get("proto") == proto and _f(r, key) is not None})


def reading_scale(outdir):
    rows = _by(outdir, "scale.csv")
    common = sorted(set(_sizes(rows, "tcp")) & set(_sizes(rows, "udp")))
    if not common:
        return "No data: `scale.csv` has no TCP and UDP points at the same size.\n"
    top = common[-1]
    t, u = rows.get(f"scale-tcp-{top}"), rows.get(f"scale-udp-{top}")
    out = []
    p50s = [_f(r, "ack_p50_us") for r in rows.values()
            if r.get("proto") in ("tcp", "udp") and _f(r, "clients") not in (None, top)
            and _f(r, "ack_p50_us") is not None]
    if p50s:
        out.append(f"Below {n(top)} clients the ACK p50 of both servers lies in "
                   f"{rng(p50s, unit=' µs')}.")
    out.append(
        f"At {n(top)} clients `tcp_server` holds {n(_f(t, 'server_threads_max'))} threads, "
        f"{n(_f(t, 'server_fds_max'))} descriptors and "
        f"{n(_ratio(_f(t, 'server_rss_kib_max'), 1024.0), 1)} MiB of RSS "
        f"({n(_ratio(_f(t, 'server_rss_kib_max'), _f(t, 'clients')), 1)} KiB per client); "
        f"`udp_server` holds {n(_f(u, 'server_threads_max'))} threads, "
        f"{n(_f(u, 'server_fds_max'))} descriptors and "
        f"{n(_ratio(_f(u, 'server_rss_kib_max'), 1024.0), 1)} MiB "
        f"({n(_ratio(_f(u, 'server_rss_kib_max'), _f(u, 'clients')), 1)} KiB per client).")
    tc, uc = _f(t, "server_cpu_pct"), _f(u, "server_cpu_pct")
    out.append(f"Server CPU at that point: {n(tc, 1)} % of a core for TCP against "
               f"{n(uc, 1)} % for UDP.")
    t50, u50, t99, u99 = (_f(t, "ack_p50_us"), _f(u, "ack_p50_us"), _f(t, "ack_p99_us"),
                          _f(u, "ack_p99_us"))
    out.append(f"At that point the ACK p50 is {n(t50)} µs (TCP) and {n(u50)} µs (UDP), the "
               f"ACK p99 {n(t99)} and {n(u99)} µs: TCP's p99 is {_cmp(t99, u99)} than UDP's here, "
               "in one run of a few seconds on a shared machine (see *others CPU*).")
    return " ".join(out) + "\n"


def reading_saturation(outdir):
    rows = _by(outdir, "saturation.csv")
    if not rows:
        return "No data: `saturation.csv` was not produced by this run.\n"
    out = []
    for proto, name in (("udp", "`udp_server`"), ("tcp", "`tcp_server`")):
        rs = sorted((r for r in rows.values() if r.get("proto") == proto),
                    key=lambda r: _f(r, "offered_rate_msgs") or 0)
        if not rs:
            continue
        full = [r for r in rs if (_ratio(_f(r, "acked_rate_msgs"),
                                         _f(r, "offered_rate_msgs")) or 0) >= 0.995
                and (_f(r, "ack_p50_us") or 1e12) < 10000]
        top = rs[-1]
        s = (f"The highest offered rate of which {name} acknowledged at least 99.5 % with an "
             f"ACK p50 under 10 ms is {n(_f(full[-1], 'offered_rate_msgs'))} msg/s"
             if full else f"{name} never acknowledged 99.5 % of the offered rate with an "
             "ACK p50 under 10 ms")
        s += (f"; at the top rate, {n(_f(top, 'offered_rate_msgs'))} msg/s, it acknowledged "
              f"{n(_ratio(_f(top, 'acked_rate_msgs'), _f(top, 'offered_rate_msgs'), 100.0), 1)}"
              f" % of it with an ACK p50 of {n(_f(top, 'ack_p50_us'))} µs and "
              f"{n(_f(top, 'server_cpu_pct'), 1)} % of a core.")
        out.append(s)
    bound = sum(1 for r in rows.values() if _f(r, "loadgen_bound") == 1)
    out.append(f"{bound} of the {len(rows)} rows are *loadgen bound*.")
    tl = [r for r in rows.values() if r.get("proto") == "tcp" and (_f(r, "lost") or 0) > 0]
    if tl:
        out.append("TCP rows with messages never acknowledged: " + ", ".join(
            f"{r['label']} ({n(_f(r, 'lost'))}, loadgen exit {r.get('loadgen_rc', '?')})"
            for r in tl) + "; TCP cannot lose data on a live connection, so read these as "
            "an overloaded load generator or server, not as TCP loss.")
    return " ".join(out) + "\n"


def _udpish(rows):
    return [r for r in rows.values() if r.get("proto") in ("udp", "hybrid")]


def reading_loss_counts(outdir):
    rows = _by(outdir, "loss.csv")
    if not rows:
        return "No data: `loss.csv` was not produced by this run.\n"
    out = []
    diffs = [(_f(r, "lost") or 0) - (_f(r, "nft_dropped") or 0) for r in _udpish(rows)
             if _f(r, "nft_dropped") is not None]
    if diffs:
        worst = max(abs(d) for d in diffs)
        out.append("For every UDP and hybrid row *lost - nft drops* is 0: the load generator "
                   "counts exactly the messages the kernel dropped." if worst == 0 else
                   f"For the UDP and hybrid rows *lost - nft drops* is at most {n(worst)} in "
                   "absolute value.")
    tcp = sorted((r for r in rows.values() if r.get("proto") == "tcp"
                  and (_f(r, "nft_dropped") or 0) > 0),
                 key=lambda r: _f(r, "injected_loss_pct") or 0)
    if tcp:
        lost = sum(_f(r, "lost") or 0 for r in tcp)
        out.append("For TCP the rules dropped " + ", ".join(
            f"{n(_f(r, 'nft_dropped'))}" for r in tcp) + " segments (at " + ", ".join(
            f"{n(_f(r, 'injected_loss_pct'))} %" for r in tcp) +
            f") and the load generator lost {n(lost)} messages.")
    return " ".join(out) + "\n"


def reading_loss(outdir):
    rows = _by(outdir, "loss.csv")
    if not rows:
        return "No data: `loss.csv` was not produced by this run.\n"
    out = []
    for proto, name in (("udp", "UDP"), ("hybrid", "Hybrid")):
        rs = sorted((r for r in rows.values() if r.get("proto") == proto
                     and (_f(r, "injected_loss_pct") or 0) > 0),
                    key=lambda r: _f(r, "injected_loss_pct"))
        if rs:
            out.append(f"{name} lost " + ", ".join(
                f"{n(_lost_pct(r), 2)} %" for r in rs) + " of the messages at " + ", ".join(
                f"{n(_f(r, 'injected_loss_pct'))}" for r in rs) +
                " % per direction, against " + ", ".join(
                f"{n(100.0 * (1 - (1 - _f(r, 'injected_loss_pct') / 100.0) ** 2), 2)}"
                for r in rs) + " % expected from 1-(1-p)^2.")
    ip = [abs(_lost_pct(r, "lost_uplink") - _f(r, "iperf3_lost_pct")) for r in rows.values()
          if _f(r, "iperf3_lost_pct") is not None and _lost_pct(r, "lost_uplink") is not None]
    if ip:
        out.append(f"UDP's uplink loss is within {n(max(ip), 2)} percentage points of iperf3's "
                   "through the same kind of rule.")
    tcp = sorted((r for r in rows.values() if r.get("proto") == "tcp"),
                 key=lambda r: _f(r, "injected_loss_pct") or 0)
    if tcp:
        p50 = [_f(r, "ack_p50_us") for r in tcp if _f(r, "ack_p50_us") is not None]
        out.append(f"TCP lost {n(sum(_f(r, 'lost') or 0 for r in tcp))} messages; its ACK p50 "
                   f"is {rng(p50, unit=' µs')} while its ACK p99 is "
                   + ", ".join(f"{n(_f(r, 'ack_p99_us'))} µs at {n(_f(r, 'injected_loss_pct'))} %"
                               for r in tcp) +
                   f", with a maximum of {n(max(_f(r, 'ack_max_us') or 0 for r in tcp))} µs.")
    for proto, name in (("udp", "UDP"), ("hybrid", "hybrid")):
        p99 = [_f(r, "ack_p99_us") for r in rows.values() if r.get("proto") == proto
               and _f(r, "ack_p99_us") is not None]
        if p99:
            out.append(f"The {name} ACK p99 (of the ACKs that came back) is "
                       f"{rng(p99, unit=' µs')}.")
    return " ".join(out) + "\n"


def reading_fanout(outdir):
    rows = _by(outdir, "fanout.csv")
    if not rows:
        return "No data: `fanout.csv` was not produced by this run.\n"
    out = []
    rooms = sorted(set(_sizes(rows, "tcp", "room_size")) & set(_sizes(rows, "udp", "room_size")))
    for k in [x for x in rooms if x > 1][::-1]:
        t, u = rows.get(f"fanout-tcp-{k}"), rows.get(f"fanout-udp-{k}")
        if t is None or u is None:
            continue
        tl, ul = _f(t, "fanout_last_p99_us"), _f(u, "fanout_last_p99_us")
        out.append(f"In rooms of {n(k)}, fan-out p50 is {n(_f(t, 'fanout_p50_us'))} µs for TCP "
                   f"and {n(_f(u, 'fanout_p50_us'))} µs for UDP; the last recipient's p99 is "
                   f"{n(tl)} and {n(ul)} µs (TCP's {_cmp(tl, ul, 'longer', 'shorter')}).")
    ok = all(_f(r, "fanout_received") == _f(r, "fanout_expected") for r in rows.values())
    out.append("Every expected delivery arrived, for both transports." if ok else
               "Some expected deliveries did not arrive: see *expected* and *received*.")
    return " ".join(out) + "\n"


def reading_compression(outdir):
    rows = _by(outdir, "compression.csv")
    if not rows:
        return "No data: `compression.csv` was not produced by this run.\n"
    sizes = sorted({int(_f(r, "size_bytes")) for r in rows.values()})
    lo, hi = sizes[0], sizes[-1]
    out = []

    def ratio(kind, size):
        r = rows.get(f"zip-{kind}-{size}")
        return None if r is None else _f(r, "compress_ratio")

    parts = [f"{kind} {n(ratio(kind, lo), 3)} at {lo} B and {n(ratio(kind, hi), 3)} at {hi} B"
             for kind in ("text", "hex", "random") if ratio(kind, lo) is not None]
    out.append("Compression ratios: " + "; ".join(parts) + " (below 1: smaller).")
    plain = [_f(r, "server_cpu_us_per_msg") for r in rows.values()
             if _f(r, "compress") == 0 and _f(r, "server_cpu_us_per_msg") is not None]
    zipped = [_f(r, "server_cpu_us_per_msg") for r in rows.values()
              if _f(r, "compress") == 1 and _f(r, "server_cpu_us_per_msg") is not None]
    if plain and zipped:
        out.append(f"The server spends {rng(plain, 1, ' µs')} of CPU per plain message and "
                   f"{rng(zipped, 1, ' µs')} per compressed one.")
    for size in (lo, hi):
        z, p = rows.get(f"zip-hex-{size}"), rows.get(f"plain-hex-{size}")
        if z and p:
            out.append(f"Hex at {size} B: ACK p50 {n(_f(z, 'ack_p50_us'))} µs compressed "
                       f"against {n(_f(p, 'ack_p50_us'))} µs plain.")
    return " ".join(out) + "\n"


def reading_setup(outdir):
    rows = _by(outdir, "scale.csv")
    if not rows:
        return "No data: `scale.csv` was not produced by this run.\n"
    out = []
    for proto, name in (("udp", "UDP"), ("hybrid", "Hybrid"), ("tcp", "TCP")):
        rs = [r for r in rows.values() if r.get("proto") == proto]
        if not rs:
            continue
        p50 = [_f(r, "connect_p50_us") for r in rs if _f(r, "connect_p50_us") is not None]
        top = max(rs, key=lambda r: _f(r, "clients") or 0)
        out.append(f"{name}: connect p50 {rng(p50, unit=' µs')} over the "
                   f"points; p99 {n(_f(top, 'connect_p99_us'))} µs at {n(_f(top, 'clients'))} "
                   "clients.")
    failed = sum(_f(r, "connect_failed") or 0 for r in rows.values())
    out.append("Every client connected in every run." if failed == 0 else
               f"{n(failed)} set-ups failed in all: see *failed*.")
    return " ".join(out) + "\n"


def reading_cdf(outdir):
    rows = _by(outdir, "cdf.csv")
    t, u = rows.get("cdf-tcp"), rows.get("cdf-udp")
    if not t or not u:
        return "No data: `cdf.csv` was not produced by this run.\n"
    parts = []
    for key, name in (("ack_p50_us", "p50"), ("ack_p99_us", "p99"), ("ack_p999_us", "p99.9")):
        a, b = _f(t, key), _f(u, key)
        parts.append(f"{name} {n(a)} µs for TCP against {n(b)} µs for UDP (TCP "
                     f"{_cmp(a, b)})")
    return (f"At {n(_f(t, 'acked_rate_msgs'))} acknowledged messages per second: "
            + "; ".join(parts) + ".\n")


def reading_anchors(outdir):
    rows = _by(outdir, "anchors.csv")
    out = []
    for proto, name in (("tcp", "TCP"), ("udp", "UDP")):
        r = rows.get(f"anchor-{proto}")
        if not r:
            continue
        out.append(f"{name}: our ACK p50 {n(_f(r, 'ack_p50_us'))} µs against sockperf's "
                   f"ping-pong {n(_f(r, 'sockperf_p50_us'), 1)} µs (x "
                   f"{n(_ratio(_f(r, 'ack_p50_us'), _f(r, 'sockperf_p50_us')), 2)}) and its "
                   f"under-load round trip at the same rate {n(_f(r, 'sockperf_load_p50_us'), 1)}"
                   f" µs (x {n(_ratio(_f(r, 'ack_p50_us'), _f(r, 'sockperf_load_p50_us')), 2)}).")
    if not out:
        return "No data: `anchors.csv` was not produced by this run.\n"
    return " ".join(out) + "\n"


def reading_hybrid(outdir):
    scale, loss = _by(outdir, "scale.csv"), _by(outdir, "loss.csv")
    hs = _sizes(scale, "hybrid")
    if not hs and not _sizes(loss, "hybrid"):
        return "No data: no hybrid point in this run.\n"
    out = []
    if hs:
        top = hs[-1]
        h, t, u = (scale.get(f"scale-{p}-{top}") for p in ("hybrid", "tcp", "udp"))
        out.append(f"At {n(top)} clients `udp_server --hybrid` holds "
                   f"{n(_f(h, 'server_threads_max'))} threads and "
                   f"{n(_f(h, 'server_fds_max'))} descriptors and "
                   f"{n(_ratio(_f(h, 'server_rss_kib_max'), 1024.0), 1)} MiB of RSS"
                   + (f", against {n(_f(u, 'server_threads_max'))} threads, "
                      f"{n(_f(u, 'server_fds_max'))} descriptors and "
                      f"{n(_ratio(_f(u, 'server_rss_kib_max'), 1024.0), 1)} MiB for plain UDP "
                      f"and {n(_f(t, 'server_threads_max'))} threads for `tcp_server`"
                      if t and u else "") + ".")
        cp = [(k, scale.get(f"scale-hybrid-{k}"), scale.get(f"scale-udp-{k}"),
               scale.get(f"scale-tcp-{k}")) for k in hs]
        out.append("Set-up p50 (hybrid / UDP / TCP): " + "; ".join(
            f"{n(k)} clients {n(_f(h, 'connect_p50_us'))} / "
            f"{n(_f(u, 'connect_p50_us')) if u else 'n/a'} / "
            f"{n(_f(t, 'connect_p50_us')) if t else 'n/a'} µs" for k, h, u, t in cp) + ".")
        hb = [_ratio(_f(h, "bytes_sent_wire"), _f(h, "sent")) for _, h, _, _ in cp]
        ub = [_ratio(_f(u, "bytes_sent_wire"), _f(u, "sent")) if u else None
              for _, _, u, _ in cp]
        diffs = [a - b for a, b in zip(hb, ub) if a is not None and b is not None]
        if diffs:
            out.append(f"Each hybrid `MSG` datagram carries {rng(diffs, 1)} bytes more on the "
                       "uplink than plain UDP's at the same points (the token and its space).")
        a, b = _f(h, "ack_p50_us"), _f(u, "ack_p50_us") if u else None
        out.append(f"Chat latency at {n(top)} clients: ACK p50 {n(a)} µs (hybrid) against "
                   f"{n(b)} µs (UDP).")
    lp = sorted((r for r in loss.values() if r.get("proto") == "hybrid"
                 and (_f(r, "injected_loss_pct") or 0) > 0),
                key=lambda r: _f(r, "injected_loss_pct"))
    if lp:
        out.append("Under injected loss the hybrid lost " + ", ".join(
            f"{n(_lost_pct(r), 2)} % at {n(_f(r, 'injected_loss_pct'))} %" for r in lp) +
            " per direction, where plain UDP lost " + ", ".join(
            f"{n(_lost_pct(loss[r['label'].replace('hybrid', 'udp')]), 2)} %"
            if r["label"].replace("hybrid", "udp") in loss else "n/a" for r in lp) +
            ": the chat datagrams are as exposed as plain UDP's.")
    return " ".join(out) + "\n"


READINGS = ["scale", "saturation", "loss_counts", "loss", "fanout", "compression", "setup",
            "cdf", "anchors", "hybrid"]


def render_readings(outdir):
    """{reading_<name>: prose} for every generated reading. A reading that cannot be
    written from what the run produced says so (and why on stderr) rather than stopping a
    ten-minute run at its last step."""
    g = globals()
    out = {}
    for name in READINGS:
        try:
            out[f"reading_{name}"] = g[f"reading_{name}"](outdir)
        except (ArithmeticError, LookupError, TypeError, ValueError) as e:
            print(f"report: reading {name} not written: {e!r}", file=sys.stderr)
            out[f"reading_{name}"] = (f"No data: this run's CSVs do not give the {name} "
                                      "reading (a failed or skipped point).\n")
    return out
