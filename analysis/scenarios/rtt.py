"""rtt: the round trip of a real path (REPORT.md section 9). Every point runs the load
generator behind bin/linkem (analysis/linkpath.py) with a one-way delay of RTT/2 each way,
RTT 0 (linkem without delay: loopback plus the link's own few tens of µs), 10, 50 and 200 ms,
each without loss and with 1 % independent loss each way (every packet, set-up ones too), for
TCP, UDP and the hybrid: 20 clients at 10 msg/s in rooms of 5, so that every message is an
ACK and four fan-out deliveries. The rows without loss get a sockperf ping-pong through the
same path beside them (the bare round trip of the path).

What the load generator measures as set-up (connect_*, loadgen/client.c): from the start of
connect() (TCP, hybrid) or the first HELLO (UDP) to the WELCOME, for the hybrid to the PONG
of its data path (loadgen/hybrid.c); the JOIN that follows is not in it. So, in round trips:
TCP 2 (SYN / SYN-ACK, then HELLO / WELCOME: the handshake's last ACK goes with the HELLO),
UDP 1 (HELLO / WELCOME), hybrid 3 (the control connection's two, then PING / PONG on UDP).
"""
import os

from analysis import benchkit as bk
from analysis import linkpath, witnesses
from analysis import report as R
from analysis.points import SIZE, point

ORDER = 150
CHARTS = ("rtt_setup", "rtt_latency")
RTTS = (0, 10, 50, 200)  # ms, round trip: a delay of half each way
LOSSES = (0, 1)  # % each way, independent
PROTOS = ("tcp", "udp", "hybrid")
NAMES = {"tcp": "TCP", "udp": "UDP", "hybrid": "hybrid"}
TITLES = {"tcp": "TCP", "udp": "UDP", "hybrid": "Hybrid"}  # at the start of a sentence
CLIENTS, RATE, ROOM = 20, 10, 5
SETUP_RTTS = {"tcp": 2, "udp": 1, "hybrid": 3}  # round trips before WELCOME / PONG (above)
RTO_MIN_MS = 200  # Linux's TCP_RTO_MIN: no retransmission timeout is shorter
LINK_SEED = 7
SOCKPERF_S = 2


def label(proto, rtt, loss):
    return f"rtt-{proto}-{rtt}ms-loss{loss}"


def link(rtt, loss):
    """linkem's options for a round trip of rtt ms and loss % each way."""
    return ((["--delay", f"{rtt / 2:g}"] if rtt else []) +
            (["--loss", str(loss)] if loss else []) + ["--seed", str(LINK_SEED)])


def points(quick):
    grid = [(50, 1, "tcp")] if quick else \
        [(rtt, loss, proto) for rtt in RTTS for loss in LOSSES for proto in PROTOS]
    return [linkpath.through(
        point("rtt", label(proto, rtt, loss), proto,
              f"{proto} over RTT {rtt} ms, {loss} % loss each way", CLIENTS, 1 if quick else 4,
              quick, rate=RATE, room=ROOM, cols={"rtt_ms": rtt, "link_loss_pct": loss}),
        link(rtt, loss)) for rtt, loss, proto in grid]


around_loadgen = linkpath.around_loadgen


def extra_s(pt):
    """The sockperf ping-pong beside the rows without loss (one per RTT: the UDP row's)."""
    # sockperf's own start and warm-up take about 2 s beyond its -t
    return SOCKPERF_S + 4.0 if _anchored(pt.proto, pt.cols["link_loss_pct"]) else 0.0


def _anchored(proto, loss):
    return proto == "udp" and not loss


def after_point(pt, row, quick):
    """sockperf ping-pong (UDP, our frame's size) through a path like the point's: the
    round trip of the path alone, set beside our ACK p50."""
    if not _anchored(pt.proto, pt.cols["link_loss_pct"]):
        return
    print("    sockperf ping-pong through the same path", flush=True)
    res = witnesses.sockperf_rtt("udp", SIZE + 30, 1 if quick else SOCKPERF_S,
                                 wraps=((), linkpath.command(linkpath.link_args(pt), [])),
                                 host=linkpath.OUTER)
    row.update({"sockperf_rtt_p50_us": res["p50_us"], "sockperf_rtt_p99_us": res["p99_us"],
                "sockperf_observations": int(res["observations"])})


def add_percentile(outdir, scn, row, kind, pct, col):
    """Sets row[col] to percentile pct of the latency kind from <scn>.latency.csv (the
    spectrum loadgen wrote for this row; the summary has no p99.9 of every kind)."""
    path = os.path.join(outdir, f"{scn}.latency.csv")
    got = [r["value_us"] for r in (bk.read_csv(path) if os.path.exists(path) else [])
           if r["label"] == row["label"] and r["kind"] == kind and float(r["percentile"]) == pct]
    row[col] = got[0] if got else ""


def run(ctx, pts):
    """Each point, then its fan-out p99.9 from the latency spectrum it wrote."""
    for pt in pts:
        row = ctx.point(pt)
        if row is not None:
            add_percentile(ctx.outdir, "rtt", row, "fanout", 99.9, "fanout_p999_us")
            ctx.write_rows("rtt")


# --- tables and readings ---


def rtts(r):
    """A figure of the row in round trips of its path (None at RTT 0)."""
    return lambda key: R.ratio(R.num(r, key), (R.num(r, "rtt_ms") or 0) * 1000.0)


TCP_NAMES = {"retrans_segs": "retransmits", "timeouts": "timeouts",
             "loss_probes": "loss probes", "fast_retrans": "fast retransmits"}


def tcp_cols(*kinds):
    """Table columns of the kernels' TCP counters (linkpath.TCP_COUNTERS) of each kind, up
    (the load generator's kernel) then down (the server's)."""
    return [R.col(f"TCP {TCP_NAMES[k]} {d}", f"tcp_{d}_{k}") for k in kinds
            for d in ("up", "down")]


def fanout_lost_pct(r):
    return R.ratio(R.num(r, "fanout_lost"), R.num(r, "fanout_expected"), 100.0)


TABLES = [("rtt", "rtt.csv", [
    R.LABEL, R.PROTO, R.col("RTT (ms)", "rtt_ms"), R.col("loss (%)", "link_loss_pct"),
    R.ms("set-up p50 (ms)", "connect_p50_us"), R.ms("set-up p99 (ms)", "connect_p99_us"),
    ("set-up p50 / RTT", lambda r: rtts(r)("connect_p50_us"), 2),
    R.ms("ACK p50 (ms)", "ack_p50_us"), R.ms("ACK p99 (ms)", "ack_p99_us"),
    R.ms("ACK p99.9 (ms)", "ack_p999_us"), R.ms("ACK max (ms)", "ack_max_us"),
    R.ms("fan-out p50 (ms)", "fanout_p50_us"), R.ms("fan-out p99 (ms)", "fanout_p99_us"),
    R.ms("fan-out p99.9 (ms)", "fanout_p999_us"), ("lost (%)", R.lost_pct, 2),
    ("fan-out lost (%)", fanout_lost_pct, 2), R.ms("sockperf RTT p50 (ms)", "sockperf_rtt_p50_us"),
    R.OTHERS,
]), ("rtt_link", "rtt.csv", [
    R.LABEL, R.PROTO, R.col("RTT (ms)", "rtt_ms"), R.col("loss (%)", "link_loss_pct"),
    R.col("link up in", "link_up_pkts_in"), R.col("link up lost", "link_up_lost"),
    R.col("link down in", "link_down_pkts_in"), R.col("link down lost", "link_down_lost"),
    *tcp_cols("retrans_segs", "timeouts", "loss_probes", "fast_retrans"),
])]


def _rows(outdir):
    return R.need(outdir, "rtt.csv")


def _get(rows, proto, rtt, loss):
    return rows.get(label(proto, rtt, loss))


def _series(rows, proto, loss, key, scale=None):
    """[(rtt, value)] over the RTTs with a row of proto at loss; the value in round trips
    when scale is "rtt" (RTT 0 left out), in ms when "ms"."""
    out = []
    for rtt in RTTS:
        r = _get(rows, proto, rtt, loss)
        if r is None:
            continue
        v = rtts(r)(key) if scale == "rtt" else R.num(r, key)
        if scale == "ms" and v is not None:
            v /= 1000.0
        if v is not None:
            out.append((rtt, v))
    return out


def _list(pairs, nd=2, unit=""):
    return ", ".join(R.n(v, nd) + unit for _, v in pairs) + " at " + \
        ", ".join(R.n(rtt) for rtt, _ in pairs) + " ms"


def reading_rtt_setup(outdir):
    rows = _rows(outdir)
    n, f = R.n, R.num
    out = []
    devs = []
    for proto in PROTOS:
        s = [(rtt, v) for rtt, v in _series(rows, proto, 0, "connect_p50_us", "rtt") if rtt]
        if s:
            devs += [(abs(v / SETUP_RTTS[proto] - 1), label(proto, rtt, 0)) for rtt, v in s]
            out.append(f"{TITLES[proto]} set-up p50 is {_list(s)} of round trip without loss "
                       f"({SETUP_RTTS[proto]} expected).")
    if devs:
        worst, where = max(devs)
        out.append(f"The furthest from its expected number of round trips is {where}, "
                   f"{n(100 * worst, 1)} % above it (what the hosts themselves take weighs most "
                   "on the shortest path).")
    order = sorted(SETUP_RTTS, key=SETUP_RTTS.get)  # udp, tcp, hybrid
    ranked = [rtt for rtt in RTTS if rtt and all(_get(rows, p, rtt, 0) for p in PROTOS)]
    kept = [rtt for rtt in ranked if [f(_get(rows, p, rtt, 0), "connect_p50_us")
                                      for p in order] == sorted(
        f(_get(rows, p, rtt, 0), "connect_p50_us") for p in order)]
    if ranked:
        where = (f"at every round trip ({', '.join(n(x) for x in ranked)} ms)" if kept == ranked
                 else f"at {', '.join(n(x) for x in kept) or 'none'} of the round trips "
                 f"{', '.join(n(x) for x in ranked)} ms")
        out.append(f"The set-up p50 is ordered {' < '.join(NAMES[p] for p in order)} {where}.")
    base = [(p, _get(rows, p, 0, 0)) for p in PROTOS if _get(rows, p, 0, 0)]
    if base:
        out.append("Without delay (RTT 0: linkem's own path) the set-up p50 is " + ", ".join(
            f"{n(f(r, 'connect_p50_us') / 1000, 2)} ms ({NAMES[p]})" for p, r in base) + ".")
    lossy = [r for r in rows.values() if (f(r, "link_loss_pct") or 0) > 0]
    if lossy:
        slow = [r for r in lossy if (f(r, "connect_max_us") or 0) >= 1e6]
        out.append(f"With 1 % loss, {n(len(slow))} of the {n(len(lossy))} rows have a set-up "
                   "that took over a second (a lost set-up packet waits for its resend: the "
                   "kernel's first SYN timeout, loadgen's HELLO or PING retry, each 1 s)" +
                   (": " + ", ".join(f"{r['label']} {n(f(r, 'connect_max_us') / 1000)} ms"
                                     for r in slow) if slow else "") + ".")
    return " ".join(out) + "\n"


def reading_rtt_latency(outdir):
    rows = _rows(outdir)
    n, f = R.n, R.num
    out = []
    for proto in PROTOS:
        a = [(rtt, v) for rtt, v in _series(rows, proto, 0, "ack_p50_us", "rtt") if rtt]
        fo = [(rtt, v) for rtt, v in _series(rows, proto, 0, "fanout_p50_us", "rtt") if rtt]
        if a:
            out.append(f"Without loss the {NAMES[proto]} ACK p50 is {_list(a)} of round trip"
                       + (f", its fan-out p50 {_list(fo)}" if fo else "") + ".")
    sp = [(rtt, f(r, "sockperf_rtt_p50_us"), f(r, "ack_p50_us")) for rtt in RTTS
          for r in [_get(rows, "udp", rtt, 0)] if r and f(r, "sockperf_rtt_p50_us")]
    if sp:
        out.append("sockperf's ping-pong through the same paths: " + ", ".join(
            f"{n(s / 1000, 2)} ms" for _, s, _ in sp) + " at " + ", ".join(
            f"{n(rtt)}" for rtt, _, _ in sp) + " ms (UDP's ACK p50: " + ", ".join(
            f"{n(a / 1000, 2)} ms" for _, _, a in sp) + ").")
    tcp = [(rtt, _get(rows, "tcp", rtt, 1)) for rtt in RTTS if _get(rows, "tcp", rtt, 1)]
    if tcp:
        lost = sum(f(r, "lost") or 0 for _, r in tcp)
        parts = []
        for rtt, r in tcp:
            p99, top = f(r, "ack_p99_us"), f(r, "ack_max_us")
            in_rtt = f" ({n(p99 / 1000 / rtt, 1)} RTT)" if rtt else ""
            parts.append(f"{n(p99 / 1000, 1)} ms{in_rtt} at {n(rtt)} ms, max "
                         f"{n(top / 1000, 1)} ms")
        out.append(f"With 1 % loss TCP lost {n(lost)} messages; its ACK p99 is " +
                   "; ".join(parts) + ".")
        tot = {k: sum(f(r, f"tcp_{d}_{k}") or 0 for _, r in tcp for d in ("up", "down"))
               for k in ("retrans_segs", "timeouts", "loss_probes", "fast_retrans")}
        slow = [f"{n(rtt)} ms" for rtt, r in tcp
                if (f(r, "ack_max_us") or 0) >= (rtt + RTO_MIN_MS) * 1000]
        out.append(f"Over those rows the two kernels retransmitted {n(tot['retrans_segs'])} "
                   f"segments: {n(tot['fast_retrans'])} by fast retransmit, "
                   f"{n(tot['loss_probes'])} by tail loss probe and "
                   f"{n(tot['timeouts'])} after a retransmission timeout. A repair by timeout "
                   "takes at least RTT + 200 ms; the slowest message reaches that at " +
                   (", ".join(slow) if slow else "no RTT") + ".")
    for proto in ("udp", "hybrid"):
        rs = [(rtt, _get(rows, proto, rtt, 1)) for rtt in RTTS if _get(rows, proto, rtt, 1)]
        if rs:
            out.append(f"{TITLES[proto]} with 1 % loss lost " + ", ".join(
                f"{n(R.lost_pct(r), 2)} %" for _, r in rs) + " of its messages (1.99 % "
                "expected: an MSG or its ACK dropped) with an ACK p99 of " + ", ".join(
                f"{n(f(r, 'ack_p99_us') / 1000, 1)} ms" for _, r in rs) + " at " +
                ", ".join(n(rtt) for rtt, _ in rs) + " ms.")
    if not out:
        raise R.NoData("rtt.csv")
    return " ".join(out) + "\n"


READINGS = [("rtt_setup", reading_rtt_setup), ("rtt_latency", reading_rtt_latency)]


# --- THEORY.md section 2.3: what a round trip costs each protocol, from these rows ---


def theory_table(outdir):
    """THEORY.md's table of section 2.3 (its generated block theory-rtt), from outdir's
    rtt.csv; a line saying so when the run has none."""
    rows = R.by_label(outdir, "rtt.csv")
    if not rows:
        return ("No data: the committed `make bench` run has no round-trip scenario (rtt.csv); "
                "the table fills in from it.\n")
    n, f = R.n, R.num
    with_rtt = [rtt for rtt in RTTS if rtt]

    def cells(fn):
        return " | ".join(fn(p) for p in PROTOS)

    def per_rtt(proto, loss, key, scale, nd):
        s = dict(_series(rows, proto, loss, key, scale))
        return " / ".join(n(s[r], nd) if r in s else "n/a" for r in with_rtt)

    rtt_list = " / ".join(str(r) for r in with_rtt)
    lines = [f"| measured through linkem (R = {rtt_list} ms) | TCP (`tcp_server`) | "
             "UDP (`udp_server`) | hybrid (`udp_server --hybrid`) |", "| --- | --- | --- | --- |",
             "| set-up, expected (round trips) | " + cells(lambda p: str(SETUP_RTTS[p])) + " |",
             "| set-up p50 (round trips) | " +
             cells(lambda p: per_rtt(p, 0, "connect_p50_us", "rtt", 2)) + " |",
             "| ACK p50: the sender knows it arrived (round trips) | " +
             cells(lambda p: per_rtt(p, 0, "ack_p50_us", "rtt", 2)) + " |",
             "| fan-out p50: it reached the room (round trips) | " +
             cells(lambda p: per_rtt(p, 0, "fanout_p50_us", "rtt", 2)) + " |",
             "| 1 % loss each way: messages lost (%) | " +
             cells(lambda p: " / ".join(
                 n(R.lost_pct(_get(rows, p, r, 1)), 2) if _get(rows, p, r, 1) else "n/a"
                 for r in with_rtt)) + " |",
             "| 1 % loss each way: ACK p99 (ms) | " +
             cells(lambda p: per_rtt(p, 1, "ack_p99_us", "ms", 1)) + " |",
             "| 1 % loss each way: ACK max (ms) | " +
             cells(lambda p: per_rtt(p, 1, "ack_max_us", "ms", 1)) + " |"]
    src = next(iter(rows.values()))
    return "\n".join(lines) + (f"\n\nSource: `results/rtt.csv` ({n(f(src, 'clients'))} clients "
                               f"at {n(f(src, 'rate_per_client'))} msg/s in rooms of "
                               f"{n(f(src, 'room_size'))}; REPORT.md section 9).\n")
