"""burst: loss in bursts against independent loss at the same average, 2 % each way, over a
path of 50 ms round trip (REPORT.md section 12). The chat of section 9 at twice its rate (20
clients at 20 msg/s in rooms of 5: more packets, so more bursts to measure) runs over TCP and
UDP through three links: independent loss, and Gilbert-Elliott bursts of mean length 10 and
40 packets (linkem's --burst-loss P:L).

linkem's per-packet log gives the bursts the link made, per direction (runs of consecutive
packets by arrival number that the loss model dropped, to set beside the length asked), and
the runs each flow saw (a connection's, or a client's socket's, consecutive losses): many
flows share the link, so a burst of the link is spread over them, one or two packets each,
unless it lasts longer than a flow's gap between packets. TCP repairs a loss when a later
segment shows it (fast retransmit, a tail loss probe) or when its retransmission timer
fires (RTT + at least 200 ms, doubling when the resend is lost too); both kernels' counters
say which happened.
"""
import contextlib
import math

from analysis import linkpath
from analysis import report as R
from analysis.points import point
from analysis.scenarios import rtt

ORDER = 180
CHARTS = ("burst",)
RTT_MS = 50
LINKS = (("indep", ["--loss", "2"], 1), ("burst10", ["--burst-loss", "2:10"], 10),
         ("burst40", ["--burst-loss", "2:40"], 40))  # (name, options, mean burst asked)
RATE = 20  # msg/s per client


def points(quick):
    grid = [("udp", LINKS[1])] if quick else \
        [(proto, lk) for lk in LINKS for proto in ("tcp", "udp")]
    out = []
    for proto, (name, opts, mean) in grid:
        pt = point("burst", f"burst-{proto}-{name}", proto,
                   f"{proto} over RTT {RTT_MS} ms, {' '.join(opts)}", rtt.CLIENTS,
                   1 if quick else 8, quick, rate=RATE, room=rtt.ROOM,
                   cols={"rtt_ms": RTT_MS, "link_loss_pct": 2, "burst_asked": mean})
        out.append(linkpath.through(pt, ["--delay", str(RTT_MS // 2), *opts, "--seed", "13"]))
    return out


def extra_s(pt):
    return 1.5  # reading linkem's log back


def burst_cols(rows):
    """Per direction: the link's loss runs (count, mean, longest) and the mean run one flow
    saw, from linkem's log rows."""
    cols = {}
    for d in linkpath.DIRS:
        link, flow = linkpath.loss_runs(rows, d), linkpath.flow_loss_runs(rows, d)
        cols.update({f"log_{d}_bursts": len(link),
                     f"log_{d}_burst_mean": round(sum(link) / len(link), 3) if link else "",
                     f"log_{d}_burst_max": max(link) if link else "",
                     f"log_{d}_flow_burst_mean": round(sum(flow) / len(flow), 3) if flow else ""})
    return cols


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """The point under linkem with its per-packet log, read back into its bursts."""
    with linkpath.session(pt, log=True) as s:
        yield s.cols
        s.cols.update(burst_cols(linkpath.read_log(s.log)))


def run(ctx, pts):
    """Each point, then its fan-out p99.9 from the latency spectrum it wrote."""
    for pt in pts:
        row = ctx.point(pt)
        if row is not None:
            rtt.add_percentile(ctx.outdir, "burst", row, "fanout", 99.9, "fanout_p999_us")
            ctx.write_rows("burst")


def link_lost_pct(r, d):
    return R.ratio(R.num(r, f"link_{d}_lost"), R.num(r, f"link_{d}_pkts_in"), 100.0)


def mean_se(r, d):
    """The standard error of a mean burst length L over n bursts (geometric lengths:
    variance L (L - 1)), from the asked L."""
    big_l, k = R.num(r, "burst_asked"), R.num(r, f"log_{d}_bursts")
    return None if big_l is None or not k else math.sqrt(big_l * (big_l - 1) / k)


TABLES = [("burst", "burst.csv", [
    R.LABEL, R.PROTO, ("link", lambda r: r.get("link", ""), 0),
    R.col("burst asked", "burst_asked"),
    ("link up lost (%)", lambda r: link_lost_pct(r, "up"), 2),
    R.col("up bursts", "log_up_bursts"), R.col("up mean burst", "log_up_burst_mean", 2),
    R.col("up longest burst", "log_up_burst_max"),
    R.col("up mean burst per flow", "log_up_flow_burst_mean", 2),
    ("link down lost (%)", lambda r: link_lost_pct(r, "down"), 2),
    R.col("down bursts", "log_down_bursts"), R.col("down mean burst", "log_down_burst_mean", 2),
    R.col("down longest burst", "log_down_burst_max"),
    R.col("down mean burst per flow", "log_down_flow_burst_mean", 2),
]), ("burst_latency", "burst.csv", [
    R.LABEL, R.PROTO, ("link", lambda r: r.get("link", ""), 0),
    R.ms("ACK p50 (ms)", "ack_p50_us"), R.ms("ACK p99 (ms)", "ack_p99_us"),
    R.ms("ACK p99.9 (ms)", "ack_p999_us"), R.ms("ACK max (ms)", "ack_max_us"),
    R.ms("fan-out p99.9 (ms)", "fanout_p999_us"), ("lost (%)", R.lost_pct, 2),
    ("fan-out lost (%)", rtt.fanout_lost_pct, 2),
    *rtt.tcp_cols("timeouts", "loss_probes", "fast_retrans"), R.OTHERS,
])]


def reading_burst(outdir):
    rows = R.need(outdir, "burst.csv")
    n, f = R.n, R.num
    out = []
    for name, _, asked in LINKS:
        r = rows.get(f"burst-udp-{name}") or rows.get(f"burst-tcp-{name}")
        if r is None:
            continue
        parts = []
        for d in linkpath.DIRS:
            se = mean_se(r, d)
            if not f(r, f"log_{d}_bursts"):
                parts.append(f"{d} no burst in this run")
                continue
            k = f(r, f"log_{d}_bursts")
            parts.append(f"{d} {n(k)} burst{'' if k == 1 else 's'} of mean "
                         f"{n(f(r, f'log_{d}_burst_mean'), 2)}" +
                         (f" (± {n(se, 1)}, one standard error)" if se else "") +
                         f", {n(f(r, f'log_{d}_flow_burst_mean'), 2)} per flow")
        what = f"mean burst asked {n(asked)}" if asked > 1 else \
            "independent: runs of mean 1 / (1 - 0.02) = 1.02 expected"
        out.append(f"`{r.get('link')}` ({r['label']}; {what}): " + "; ".join(parts) + ".")
    tcp = [rows.get(f"burst-tcp-{name}") for name, _, _ in LINKS]
    tcp = [r for r in tcp if r]
    if tcp:
        out.append("TCP (lost " + ", ".join(n(f(r, "lost")) for r in tcp) + "): ACK p99 " +
                   ", ".join(f"{n(f(r, 'ack_p99_us') / 1000)}" for r in tcp) + " ms, p99.9 " +
                   ", ".join(f"{n(f(r, 'ack_p999_us') / 1000)}" for r in tcp) + " ms, max " +
                   ", ".join(f"{n(f(r, 'ack_max_us') / 1000)}" for r in tcp) + " ms; " +
                   "retransmission timeouts " + ", ".join(
                       n((f(r, "tcp_up_timeouts") or 0) + (f(r, "tcp_down_timeouts") or 0))
                       for r in tcp) + ", tail loss probes " + ", ".join(
                       n((f(r, "tcp_up_loss_probes") or 0) + (f(r, "tcp_down_loss_probes") or 0))
                       for r in tcp) + " (in the order " +
                   ", ".join(r.get("link", "") for r in tcp) + ").")
        # a segment whose resend timed out too waited at least 200 ms, then 400 ms more
        doubled = [r for r in tcp if (f(r, "ack_max_us") or 0) >= (RTT_MS + 600) * 1000 and
                   (f(r, "tcp_up_timeouts") or 0) + (f(r, "tcp_down_timeouts") or 0) >= 2]
        if doubled:
            out.append("The slowest message of " + ", ".join(
                f"`{r.get('link')}` ({n(f(r, 'ack_max_us') / 1000)} ms, "
                f"{n((f(r, 'tcp_up_timeouts') or 0) + (f(r, 'tcp_down_timeouts') or 0))} "
                "timeouts)" for r in doubled) +
                f" waited longer than RTT + 200 + 400 ms = {n(RTT_MS + 600)} ms, as one does "
                "when its resend is lost too and the timeout doubles.")
    udp = [r for r in (rows.get(f"burst-udp-{name}") for name, _, _ in LINKS) if r]
    if udp:
        out.append("UDP lost " + ", ".join(f"{n(R.lost_pct(r), 2)} %" for r in udp) +
                   " of its messages and " + ", ".join(
                       f"{n(rtt.fanout_lost_pct(r), 2)} %" for r in udp) +
                   " of the fan-out deliveries, with an ACK p99 of " + ", ".join(
                       f"{n(f(r, 'ack_p99_us') / 1000, 1)} ms" for r in udp) + " (same order).")
    return " ".join(out) + "\n"


READINGS = [("burst", reading_burst)]
