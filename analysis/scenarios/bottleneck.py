"""bottleneck: a 10 Mbit/s link with a drop-tail queue of 50 packets in each direction and
10 ms of delay each way (REPORT.md section 10). 20 clients send 1,000-byte messages (rooms of
1: the ACK only) at a total rate stepped from half the link's capacity to one and a half
times it, over TCP and over UDP. The capacity in messages is the link's rate over the bytes
one message puts on the wire (its frame plus UDP and IP headers, 28 bytes): about 1,190 msg/s.

Below the capacity both deliver everything at about one round trip. Above it the link's
queue fills: UDP loses what does not fit (linkem counts the queue drops), while TCP keeps
every message and queues the excess, in the link's queue and then in its own socket
buffers, so its latency keeps growing for as long as the overload lasts (bufferbloat).
"""
from analysis import linkpath
from analysis import report as R
from analysis.points import point

ORDER = 160
CHARTS = ("bottleneck_latency", "bottleneck_loss")
RATE_BPS = 10_000_000
QUEUE = 50  # packets
DELAY_MS = 10  # each way
SIZE = 1000  # payload bytes
FRAME_EXTRA = 21  # bytes of a MSG frame beyond its payload ("MSG <seq> <t_ns> ...\n")
IP_UDP = 28  # IPv4 + UDP headers
CLIENTS = 20
LOADS = (50, 80, 95, 110, 150)  # offered, % of the capacity
LINK = ["--rate", "10mbit", "--queue", str(QUEUE), "--delay", str(DELAY_MS), "--seed", "11"]


def capacity_msgs():
    """Messages per second the link carries, one message per packet (UDP's case)."""
    return RATE_BPS / (8.0 * (SIZE + FRAME_EXTRA + IP_UDP))


def make(scenario, proto, pct, quick, label=None, warmup=None):
    """A point of proto offering pct % of the capacity over LINK (warm-up: point()'s default
    unless warmup)."""
    total = int(round(capacity_msgs() * pct / 100.0, -1))
    pt = point(scenario, label or f"bneck-{proto}-{pct}", proto,
               f"{proto} offering {pct} % of a 10 Mbit/s link ({total} msg/s)", CLIENTS,
               1 if quick else 4, quick, total=total, size=SIZE, warmup=warmup,
               cols={"load_pct": pct, "link_rate_bps": RATE_BPS, "link_queue_pkts": QUEUE})
    return linkpath.through(pt, LINK)


def points(quick):
    if quick:
        return [make("bottleneck", "tcp", 150, quick)]
    return [make("bottleneck", proto, pct, quick) for proto in ("tcp", "udp") for pct in LOADS]


around_loadgen = linkpath.around_loadgen


def offered_share(r):
    """The offered load in % of the link: offered messages times the bytes of one on the
    wire with UDP/IP headers, over the link's rate (the same for both transports)."""
    frame = R.ratio(R.num(r, "bytes_sent_wire"), R.num(r, "sent"))
    off, rate = R.num(r, "offered_rate_msgs"), R.num(r, "link_rate_bps")
    if frame is None or off is None or not rate:
        return None
    return 100.0 * off * (frame + IP_UDP) * 8 / rate


TABLES = [("bottleneck", "bottleneck.csv", [
    R.LABEL, R.PROTO, R.col("offered msg/s", "offered_rate_msgs"),
    ("offered / link (%)", offered_share, 0), R.col("acked msg/s", "acked_rate_msgs"),
    R.ms("ACK p50 (ms)", "ack_p50_us"), R.ms("ACK p99 (ms)", "ack_p99_us"),
    R.ms("ACK max (ms)", "ack_max_us"), ("lost (%)", R.lost_pct, 2),
    R.col("link up max queue", "link_up_max_queue"),
    R.col("link up queue drops", "link_up_queue_drops"), R.col("link up in", "link_up_pkts_in"),
    R.col("TCP retransmits up", "tcp_up_retrans_segs"), R.col("loadgen bound", "loadgen_bound"),
    R.OTHERS,
])]


def reading_bottleneck(outdir):
    rows = R.need(outdir, "bottleneck.csv")
    n, f = R.n, R.num
    out = []
    for proto, name in (("tcp", "TCP"), ("udp", "UDP")):
        rs = sorted((r for r in rows.values() if r.get("proto") == proto),
                    key=lambda r: f(r, "load_pct") or 0)
        if not rs:
            continue
        out.append(
            f"{name}, offering " + ", ".join(f"{n(offered_share(r))} %" for r in rs) +
            " of the link: ACK p50 " + ", ".join(f"{n(f(r, 'ack_p50_us') / 1000, 1)}"
                                                 for r in rs) +
            " ms, max " + ", ".join(f"{n(f(r, 'ack_max_us') / 1000)}" for r in rs) +
            " ms; lost " + ", ".join(f"{n(R.lost_pct(r), 2)} %" for r in rs) +
            "; the link's queue held at most " + ", ".join(
                n(f(r, "link_up_max_queue")) for r in rs) + f" of its {n(QUEUE)} packets and "
            "dropped " + ", ".join(n(f(r, "link_up_queue_drops")) for r in rs) + ".")
    over = [r for r in rows.values() if r.get("proto") == "udp" and (offered_share(r) or 0) > 100]
    if over:
        out.append("UDP's loss past the capacity against 1 - capacity / offered: " + ", ".join(
            f"{n(R.lost_pct(r), 1)} % against {n(100 * (1 - 100 / offered_share(r)), 1)} %"
            for r in sorted(over, key=offered_share)) + ".")
    tcp = [r for r in rows.values() if r.get("proto") == "tcp"]
    if tcp:
        lost = sum(f(r, "lost") or 0 for r in tcp)
        ret = sum(f(r, "tcp_up_retrans_segs") or 0 for r in tcp)
        out.append(f"TCP lost {n(lost)} messages in all; its kernel resent {n(ret)} segments "
                   f"that the queue had dropped (congestion control: {tcp[0].get('tcp_cc')}).")
    lg = [r for r in rows.values() if f(r, "loadgen_bound") == 1]
    if lg:
        out.append("*Loadgen bound*: " + ", ".join(
            f"{r['label']} (its sends fell up to {n(f(r, 'lag_max_us') / 1000)} ms behind "
            "schedule, then went out at once: a burst the queue met, not the offered rate)"
            for r in lg) + ".")
    return " ".join(out) + "\n"


READINGS = [("bottleneck", reading_bottleneck)]
