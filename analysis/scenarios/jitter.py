"""jitter: a path with 20 ms of delay each way plus up to 5 ms of jitter that may reorder
packets (`--delay 20 --jitter 5 --reorder`), for UDP (REPORT.md section 11); once more with 1 %
of the packets duplicated. 8 clients send 300 messages a second each, one every 3.3 ms, so
that jitter of up to 5 ms each way puts some of a client's datagrams out of order.

The load generator counts, per client, ACKs that arrive below the highest sequence number
seen (reordered), copies (duplicates) and RFC 3550's jitter. Each of the three is replayed
from linkem's per-packet log with the load generator's own definitions
(linkpath.ack_streams): the order in which the link delivered each client's ACKs, and the
transit from a MSG's arrival at the link to its ACK's departure from it. The counts must
agree exactly; the jitter differs by what the hosts add (the load generator's and the
server's own timing). linkem's own reordered counts are per direction, while an ACK stream
is out of order when either its MSGs were (the server answers in arrival order) or the ACKs
themselves.
"""
import contextlib

from analysis import linkpath
from analysis import report as R
from analysis.points import point

ORDER = 170
CHARTS = ("jitter",)
LINK = ["--delay", "20", "--jitter", "5", "--reorder", "--seed", "5"]
CLIENTS, RATE = 8, 300


def points(quick):
    out = []
    for name, extra in ([("dup", ["--dup", "1"])] if quick else
                        [("reorder", []), ("dup", ["--dup", "1"])]):
        # no warm-up: the load generator then counts every ACK the log shows
        pt = point("jitter", f"jitter-udp-{name}", "udp",
                   f"udp over --delay 20 --jitter 5 --reorder{' --dup 1' if extra else ''}",
                   CLIENTS, 1 if quick else 4, quick, rate=RATE, warmup=0)
        # one worker: it stops listening when the last message is answered, a moment the
        # log shows (copies delivered after it: late_duplicates)
        pt.args[pt.args.index("--threads") + 1] = 1
        out.append(linkpath.through(pt, LINK + extra))
    return out


def extra_s(pt):
    """Reading linkem's log back (about 2 s per 100,000 lines)."""
    return 2.0


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """The point under linkem with its per-packet log, replayed into log_* columns."""
    with linkpath.session(pt, log=True) as s:
        yield s.cols
        rows = linkpath.read_log(s.log)
        got = linkpath.ack_streams(rows)
        s.cols.update({f"log_{k}": v for k, v in got.items()})
        s.cols["log_lines"] = len(rows)


def _diff(r, a, b):
    x, y = R.num(r, a), R.num(r, b)
    return None if x is None or y is None else x - y


TABLES = [("jitter", "jitter.csv", [
    R.LABEL, ("link", lambda r: r.get("link", ""), 0), R.col("sent", "sent"),
    R.col("lost", "lost"), R.col("reordered", "reordered"),
    R.col("reordered, from the log", "log_reordered"),
    R.col("link up reordered", "link_up_reordered"),
    R.col("link down reordered", "link_down_reordered"),
    R.col("duplicates", "duplicates"), R.col("duplicates, from the log", "log_duplicates"),
    R.col("of them after the last ACK", "log_late_duplicates"),
    R.col("link up duplicated", "link_up_duplicated"),
    R.col("link down duplicated", "link_down_duplicated"),
    R.col("jitter (µs)", "jitter_us"), R.col("jitter from the log (µs)", "log_jitter_us"),
    R.ms("ACK p50 (ms)", "ack_p50_us"), R.ms("ACK p99 (ms)", "ack_p99_us"), R.OTHERS,
])]


def reading_jitter(outdir):
    rows = R.need(outdir, "jitter.csv")
    n, f = R.n, R.num
    out = []
    for r in rows.values():
        d = _diff(r, "reordered", "log_reordered")
        parts = [f"{n(f(r, 'reordered'))} reordered ACKs against {n(f(r, 'log_reordered'))} "
                 "replayed from linkem's log" +
                 (" (equal)" if d == 0 else f" ({n(abs(d))} {'more' if d > 0 else 'fewer'})")]
        late = f(r, "log_late_duplicates") or 0
        d = _diff(r, "duplicates", "log_duplicates")
        parts.append(f"{n(f(r, 'duplicates'))} duplicate ACKs against "
                     f"{n(f(r, 'log_duplicates'))} in the log" +
                     (" (equal)" if d == 0 else
                      f", {n(late)} of which the link delivered after the last message was "
                      "answered, when the load generator stops listening" if d == -late else
                      f" ({n(abs(d))} {'more' if d > 0 else 'fewer'}; {n(late)} delivered "
                      "after the last message was answered)"))
        out.append(f"`{r.get('link')}`: the load generator counted " + "; ".join(parts) +
                   f". linkem reordered {n(f(r, 'link_up_reordered'))} packets up and "
                   f"{n(f(r, 'link_down_reordered'))} down, and duplicated "
                   f"{n(f(r, 'link_up_duplicated'))} up and {n(f(r, 'link_down_duplicated'))} "
                   f"down. RFC 3550 jitter {n(f(r, 'jitter_us') / 1000, 2)} ms, from the log "
                   f"{n(f(r, 'log_jitter_us') / 1000, 2)} ms; ACK p50 "
                   f"{n(f(r, 'ack_p50_us') / 1000, 1)} ms, p99 {n(f(r, 'ack_p99_us') / 1000, 1)}"
                   f" ms; {n(f(r, 'lost'))} lost.")
    return " ".join(out) + "\n"


READINGS = [("jitter", reading_jitter)]
