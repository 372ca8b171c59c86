"""sharing: one TCP flow (iperf3, a witness we did not write) and the chat on the bottleneck
link of section 10 (REPORT.md, same section). iperf3 runs alone through the link first, then
beside the chat's load generator, inside the same linkem namespace and towards the same
outside: the chat over UDP offering half the link (the flow should get the rest), then one
and a half times the link. UDP does not back off: its datagrams keep the queue full, and what
the flow then gets depends on how its congestion control reads the drops. CUBIC (most
distributions' default) shrinks its window at each loss; BBR (this machine's default, the
machine table says) paces at the delivery rate and round trip it measures rather than
reacting to each loss. So the flow runs with each beside the overload, with CUBIC at half.
"""
import contextlib

from analysis import linkpath, witnesses
from analysis import report as R
from analysis.benchkit import BenchError
from analysis.scenarios import bottleneck as B
from pylib import procs

ORDER = 165
CHARTS = ("sharing",)
# (chat transport, offered % of the link, iperf3's congestion control)
SHARES = (("udp", 50, "cubic"), ("udp", 150, "cubic"), ("udp", 150, "bbr"))
# seconds of iperf3 left out (slow start): the chat's warm-up, quick or not, so that both
# measure the same window (iperf3 3.12 takes whole seconds only)
IPERF3_OMIT = 1


def points(quick):
    out = []
    for proto, pct, cc in (SHARES[1:2] if quick else SHARES):
        pt = B.make("sharing", proto, pct, quick, f"share-{proto}-{pct}-{cc}",
                    warmup=IPERF3_OMIT)
        pt.cols["iperf3_cc"] = cc
        out.append(pt)
    return out


def _seconds(pt):
    """iperf3's measured seconds: the chat's measured window (its warm-up is iperf3's
    omitted start)."""
    return max(1, int(round(pt.duration)))


def _ccs(pts):
    return list(dict.fromkeys(pt.cols["iperf3_cc"] for pt in pts))


def after_s(quick):
    """iperf3 alone through the link with each congestion control (run before the points)."""
    pts = points(quick)
    return len(_ccs(pts)) * (_seconds(pts[0]) + IPERF3_OMIT + 1.5)


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """An iperf3 server outside, its client started inside with the load generator: the
    flow's rate over the chat's measured window, beside the chat's figures."""
    with witnesses.iperf3_server(linkpath.OUTER) as port:
        argv = witnesses.iperf3_tcp_argv(linkpath.OUTER, port, _seconds(pt), IPERF3_OMIT,
                                         pt.cols["iperf3_cc"])
        with linkpath.session(pt, before=f'{linkpath.quote(argv)} > "$0.iperf3" 2>&1 & ',
                              after="wait; ") as s:
            yield s.cols
            with open(s.counters + ".iperf3") as f:
                res = witnesses.iperf3_tcp_result(f.read())
            s.cols.update({"iperf3_mbps": res["mbps"], "iperf3_retransmits": res["retransmits"]})


def alone(pt, cc):
    """iperf3 alone through the point's link with congestion control cc:
    {iperf3_alone_mbps, iperf3_alone_retransmits}."""
    with witnesses.iperf3_server(linkpath.OUTER) as port:
        argv = witnesses.iperf3_tcp_argv(linkpath.OUTER, port, _seconds(pt), IPERF3_OMIT, cc)
        r = procs.run(linkpath.command(linkpath.link_args(pt), argv), _seconds(pt) + 60)
    res = witnesses.iperf3_tcp_result(r.stdout)
    return {"iperf3_alone_mbps": res["mbps"], "iperf3_alone_retransmits": res["retransmits"]}


def run(ctx, pts):
    """iperf3 alone through the link with each congestion control, then each point with
    iperf3 beside the chat; every row carries the flow's rate alone with its congestion
    control, measured in the same run."""
    base = {}
    for cc in _ccs(pts):
        print(f"[sharing] iperf3 ({cc}) alone through the link", flush=True)
        try:
            base[cc] = alone(pts[0], cc)
        except (OSError, TimeoutError, BenchError) as e:
            print(f"    FAILED: {e}", flush=True)
            ctx.fail(f"sharing-iperf3-{cc}-alone")
            base[cc] = {"iperf3_alone_mbps": "", "iperf3_alone_retransmits": ""}
        print(f"    {base[cc]}", flush=True)
    for pt in pts:
        row = ctx.point(pt)
        if row is not None:
            row.update(base[pt.cols["iperf3_cc"]])
            ctx.write_rows("sharing")


def flow_share(r):
    """iperf3's rate beside the chat, in % of its rate alone."""
    return R.ratio(R.num(r, "iperf3_mbps"), R.num(r, "iperf3_alone_mbps"), 100.0)


def chat_mbps(r):
    """What the chat got through: its acknowledged messages with UDP/IP headers, Mbit/s (a
    UDP message is acknowledged within its timeout or lost, so within the window)."""
    frame = R.ratio(R.num(r, "bytes_sent_wire"), R.num(r, "sent"))
    acked = R.num(r, "acked_rate_msgs")
    return None if frame is None or acked is None else acked * (frame + B.IP_UDP) * 8 / 1e6


TABLES = [("sharing", "sharing.csv", [
    R.LABEL, R.PROTO, ("offered / link (%)", B.offered_share, 0),
    ("iperf3 congestion control", lambda r: r.get("iperf3_cc", ""), 0),
    R.col("iperf3 alone (Mbit/s)", "iperf3_alone_mbps", 2),
    R.col("iperf3 beside the chat (Mbit/s)", "iperf3_mbps", 2),
    ("iperf3 beside / alone (%)", flow_share, 0),
    R.col("iperf3 retransmits", "iperf3_retransmits"),
    ("chat delivered (Mbit/s)", chat_mbps, 2), R.col("acked msg/s", "acked_rate_msgs"),
    ("lost (%)", R.lost_pct, 2), R.ms("ACK p50 (ms)", "ack_p50_us"),
    R.col("link up queue drops", "link_up_queue_drops"), R.col("loadgen bound", "loadgen_bound"),
    R.OTHERS,
])]


def reading_sharing(outdir):
    rows = R.need(outdir, "sharing.csv")
    n, f = R.n, R.num
    alone = {r.get("iperf3_cc"): f(r, "iperf3_alone_mbps") for r in rows.values()}
    out = ["iperf3 alone through the link reached " + ", ".join(
        f"{n(v, 2)} Mbit/s with {cc}" for cc, v in alone.items()) + "."]
    bneck = R.by_label(outdir, "bottleneck.csv")
    for r in rows.values():
        out.append(f"Beside the chat over UDP offering {n(B.offered_share(r))} % of the link, "
                   f"iperf3 with {r.get('iperf3_cc')} got {n(f(r, 'iperf3_mbps'), 2)} Mbit/s "
                   f"({n(flow_share(r))} % of its rate alone, "
                   f"{n(f(r, 'iperf3_retransmits'))} segments resent) and the chat "
                   f"{n(chat_mbps(r), 2)} Mbit/s ({n(R.lost_pct(r), 2)} % of its messages lost, "
                   f"ACK p50 {n(f(r, 'ack_p50_us') / 1000, 1)} ms")
        alone_row = bneck.get(f"bneck-udp-{n(f(r, 'load_pct'))}")
        if alone_row:
            out[-1] += (f"; without the flow, section 10's row at the same load: "
                        f"{n(R.lost_pct(alone_row), 2)} % lost, ACK p50 "
                        f"{n(f(alone_row, 'ack_p50_us') / 1000, 1)} ms")
        out[-1] += ")."
    lg = [r["label"] for r in rows.values() if f(r, "loadgen_bound") == 1]
    if lg:
        out.append(f"*Loadgen bound*: {', '.join(lg)} (the load generator fell behind its "
                   "schedule and sent its backlog at once: a burst into the queue).")
    return " ".join(out) + "\n"


READINGS = [("sharing", reading_sharing)]
