"""loss: packet loss injected in the kernel, 0 to 10 % each way (REPORT.md section 3).

nftables rules (analysis/lossrules.py) drop the chat port's packets inside the private
namespace, so the points need one (root, nft) and are skipped without it. Each row carries
the kernel's exact drop counts per direction; each UDP point is followed by an iperf3 -u run
through the same kind of rule, at our datagram size and rate (the anchor).
"""
import contextlib

from analysis import lossrules, witnesses
from analysis import report as R
from analysis.points import SIZE, point

ORDER = 30
CHARTS = ("loss_udp", "loss_tcp")
NEEDS = "loss injection needs a private network namespace (root, nft)"


def points(quick):
    pts = []
    for pct in ([5] if quick else [0, 1, 5, 10]):
        for proto in ("tcp", "udp", "hybrid"):
            # No warm-up under injected loss: loadgen's uplink/downlink split counts the
            # whole run, so only --warmup 0 makes it exact, and the nft counters then cover
            # the same messages as the load generator's.
            pts.append(point("loss", f"loss-{proto}-{pct}", proto,
                             f"{proto} {pct} % loss each way", 50, 1 if quick else 5, quick,
                             total=2000, warmup=0, cols={"injected_loss_pct": pct},
                             needs_netns=NEEDS))
    return pts


def extra_s(pt):
    """The iperf3 anchor after each UDP point."""
    return pt.duration + 1 if pt.proto == "udp" else 0.0


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """The loss rules on the chat port (hybrid: its UDP port) for the load generator's run,
    then the kernel's drop counts as columns."""
    cols = {}
    lossrules.set_loss(srv.data_port, pt.cols["injected_loss_pct"], pt.proto, "chat")
    try:
        yield cols
        drops = lossrules.loss_counters() or {"uplink": 0, "downlink": 0}
        cols.update({"nft_dropped": drops["uplink"] + drops["downlink"],
                     "nft_dropped_uplink": drops["uplink"],
                     "nft_dropped_downlink": drops["downlink"]})
    finally:
        lossrules.clear_loss()


def after_point(pt, row, quick):
    """UDP points: iperf3 -u at our uplink datagram size and rate under the same loss."""
    if pt.proto != "udp":
        return
    pct = pt.cols["injected_loss_pct"]
    print("    iperf3 -u anchor under the same loss", flush=True)
    sent = float(row.get("sent") or 0)
    wire = float(row.get("bytes_sent_wire") or 0)
    size = int(round(wire / sent)) if sent > 0 and wire > 0 else SIZE + 30
    size = max(size, 80)  # our loss rule for iperf3 spares datagrams of 64 bytes and less
    pps = float(row.get("offered_rate_msgs") or 2000)
    seconds = max(1, int(float(row.get("duration_s") or 1)))
    try:
        res = witnesses.iperf3_udp(size, pps, seconds,
                                   before=lambda port: lossrules.set_loss(port, pct, "udp",
                                                                          "all"))
    finally:
        lossrules.clear_loss()
    row.update({"iperf3_size_bytes": size, "iperf3_rate_pps": int(pps),
                "iperf3_packets": res["packets"], "iperf3_lost": res["lost"],
                "iperf3_lost_pct": round(res["lost_pct"], 3),
                "iperf3_jitter_us": round(res["jitter_us"], 2)})
    got = row["iperf3_lost_pct"]
    if pct > 0 and not pct / 3 <= got <= pct * 3:
        print(f"    WARNING: iperf3 lost {got} % through a {pct} % rule: "
              "nft numgen does not do what it should here", flush=True)


def expected_udp_loss(r):
    """1-(1-p)^2: a message and its ACK each cross one rule."""
    p = R.num(r, "injected_loss_pct")
    return None if r.get("proto") not in ("udp", "hybrid") or p is None else \
        100.0 * (1 - (1 - p / 100.0) ** 2)


TABLES = [
    ("loss", "loss.csv", [
        R.LABEL, R.PROTO, R.col("injected (%)", "injected_loss_pct"), R.col("sent", "sent"),
        ("lost (%)", R.lost_pct, 2),
        ("uplink lost (%)", lambda r: R.lost_pct(r, "lost_uplink"), 2),
        ("downlink lost (%)", lambda r: R.lost_pct(r, "lost_downlink"), 2),
        ("expected UDP loss (%)", expected_udp_loss, 2),
        R.col("iperf3 lost (%)", "iperf3_lost_pct", 2),
        ("uplink - iperf3 (points)", lambda r: None if R.num(r, "iperf3_lost_pct") is None or
         R.lost_pct(r, "lost_uplink") is None else
         R.lost_pct(r, "lost_uplink") - R.num(r, "iperf3_lost_pct"), 2),
        R.col("reordered", "reordered"),
        R.col("ACK p50 (µs)", "ack_p50_us"), R.col("ACK p99 (µs)", "ack_p99_us"),
        R.col("ACK p99.9 (µs)", "ack_p999_us"), R.col("ACK max (µs)", "ack_max_us"),
        R.OTHERS,
    ]),
    ("loss_counts", "loss.csv", [
        R.LABEL, R.PROTO, R.col("injected (%)", "injected_loss_pct"), R.col("sent", "sent"),
        R.col("lost", "lost"), R.col("lost uplink", "lost_uplink"),
        R.col("lost downlink", "lost_downlink"), R.col("lost unknown", "lost_unknown"),
        R.col("nft drops", "nft_dropped"), R.col("nft uplink drops", "nft_dropped_uplink"),
        R.col("nft downlink drops", "nft_dropped_downlink"),
        ("lost - nft drops", lambda r: None if r.get("proto") not in ("udp", "hybrid")
         or R.num(r, "lost") is None or R.num(r, "nft_dropped") is None
         else R.num(r, "lost") - R.num(r, "nft_dropped"), 0),
    ]),
]


def reading_loss_counts(outdir):
    rows = R.need(outdir, "loss.csv")
    n, f = R.n, R.num
    out = []
    diffs = [(f(r, "lost") or 0) - (f(r, "nft_dropped") or 0) for r in R.udpish(rows)
             if f(r, "nft_dropped") is not None]
    if diffs:
        worst = max(abs(d) for d in diffs)
        out.append("For every UDP and hybrid row *lost - nft drops* is 0: the load generator "
                   "counts exactly the messages the kernel dropped." if worst == 0 else
                   f"For the UDP and hybrid rows *lost - nft drops* is at most {n(worst)} in "
                   "absolute value.")
    tcp = sorted((r for r in rows.values() if r.get("proto") == "tcp"
                  and (f(r, "nft_dropped") or 0) > 0),
                 key=lambda r: f(r, "injected_loss_pct") or 0)
    if tcp:
        lost = sum(f(r, "lost") or 0 for r in tcp)
        out.append("For TCP the rules dropped " + ", ".join(
            f"{n(f(r, 'nft_dropped'))}" for r in tcp) + " segments (at " + ", ".join(
            f"{n(f(r, 'injected_loss_pct'))} %" for r in tcp) +
            f") and the load generator lost {n(lost)} messages.")
    return " ".join(out) + "\n"


def reading_loss(outdir):
    rows = R.need(outdir, "loss.csv")
    n, f, lost_pct = R.n, R.num, R.lost_pct
    out = []
    for proto, name in (("udp", "UDP"), ("hybrid", "Hybrid")):
        rs = sorted((r for r in rows.values() if r.get("proto") == proto
                     and (f(r, "injected_loss_pct") or 0) > 0),
                    key=lambda r: f(r, "injected_loss_pct"))
        if rs:
            out.append(f"{name} lost " + ", ".join(
                f"{n(lost_pct(r), 2)} %" for r in rs) + " of the messages at " + ", ".join(
                f"{n(f(r, 'injected_loss_pct'))}" for r in rs) +
                " % per direction, against " + ", ".join(
                f"{n(expected_udp_loss(r), 2)}" for r in rs) + " % expected from 1-(1-p)^2.")
    ip = [abs(lost_pct(r, "lost_uplink") - f(r, "iperf3_lost_pct")) for r in rows.values()
          if f(r, "iperf3_lost_pct") is not None and lost_pct(r, "lost_uplink") is not None]
    if ip:
        out.append(f"UDP's uplink loss is within {n(max(ip), 2)} percentage points of iperf3's "
                   "through the same kind of rule.")
    tcp = sorted((r for r in rows.values() if r.get("proto") == "tcp"),
                 key=lambda r: f(r, "injected_loss_pct") or 0)
    if tcp:
        p50 = [f(r, "ack_p50_us") for r in tcp if f(r, "ack_p50_us") is not None]
        out.append(f"TCP lost {n(sum(f(r, 'lost') or 0 for r in tcp))} messages; its ACK p50 "
                   f"is {R.rng(p50, unit=' µs')} while its ACK p99 is "
                   + ", ".join(f"{n(f(r, 'ack_p99_us'))} µs at {n(f(r, 'injected_loss_pct'))} %"
                               for r in tcp) +
                   f", with a maximum of {n(max(f(r, 'ack_max_us') or 0 for r in tcp))} µs.")
    for proto, name in (("udp", "UDP"), ("hybrid", "hybrid")):
        p99 = [f(r, "ack_p99_us") for r in rows.values() if r.get("proto") == proto
               and f(r, "ack_p99_us") is not None]
        if p99:
            out.append(f"The {name} ACK p99 (of the ACKs that came back) is "
                       f"{R.rng(p99, unit=' µs')}.")
    return " ".join(out) + "\n"


READINGS = [("loss_counts", reading_loss_counts), ("loss", reading_loss)]
