"""scale: clients from 10 to 100,000 (REPORT.md section 1), for four servers (series):
`tcp_server` with a thread per client (tcp), `tcp_server --io epoll` (tcp-epoll),
`udp_server` (udp) and `udp_server --hybrid` (hybrid).

Up to 10,000 clients each client sends 1 message per second, from one load generator
process, and set-up is spread over clients/1000 s (--ramp). Past what one process can hold
(20,000 descriptors here, and a process needs a few more than its sockets), the load
generator runs as shards of at most SHARD_MAX sockets, started by mpirun and merged by
`loadgen merge` (analysis/shards.py): 19,000 TCP clients in 2 shards against each TCP model
(as many as one server process can hold), 100,000 UDP clients in 6 shards against one
`udp_server`, each client sending one message every 10 s, over five source addresses (one
address's ephemeral ports would not do). Hybrid stops at 3,000 clients: the load generator
holds two descriptors per hybrid client.

The 100,000-client point: no ramp, since the load generator paces set-up itself (64
handshakes in flight per worker; a ramp of clients/1000 s would be 100 s of it); keep-alive
PINGs after 15 s without sending (--ping-interval), so that a client that sends every 10 s
sends none while measured and udp_server's 30 s timeout still never expires a client that
waits for --start-at; the run counts them (keepalives). The set-up section (setup.py) reads
this scenario's connect_* columns, the event-loop section (eventloop.py) its tcp and
tcp-epoll rows, the hybrid section (hybrid.py) its hybrid rows.
"""
import math

from analysis import benchkit as bk
from analysis import report as R
from analysis.points import point

ORDER = 10
# Its points run last: right after 19,000 threads and 100,000 sockets were torn down, the
# same saturation sweep measured tcp_server at 20,000 msg/s with 66 % of a core and an ACK
# p50 of 90 us, against 36 % and 31 us when run alone (2026-12-02): the kernel was still
# cleaning up. The other scenarios run on a quiet machine first.
RUN_LAST = True
CHARTS = ("scale_latency", "scale_memory", "scale_cpu")
SHARD_MAX = 18000  # sockets per load generator process (of its 20,000 descriptors)
SOURCES_PER = 20000  # UDP sockets per source address (28,232 ephemeral ports on the host)

SERIES = bk.SERIES  # (proto, server options, name in prose)
SIZES = (10, 100, 1000, 3000, 10000)
HYBRID_MAX = 3000
TCP_TOP = 19000
UDP_TOP, UDP_TOP_RATE, UDP_TOP_DURATION, UDP_TOP_PING = 100000, 0.1, 10, 15


def sources(n):
    """--source for n UDP sockets: 127.0.0.2 onwards, SOURCES_PER sockets an address."""
    k = max(1, math.ceil(n / SOURCES_PER))
    return "127.0.0.2" if k == 1 else f"127.0.0.2-127.0.0.{1 + k}"


def make_point(series, n, quick, rate=1, duration=None, ramp=None, shards=None, extra=()):
    """The point of one series at n clients: as many load generator shards as SHARD_MAX
    needs (or shards), rate messages/s per client, the usual duration and ramp unless
    given, extra loadgen options."""
    proto, opts, _ = SERIES[series]
    shards = shards or math.ceil(n / SHARD_MAX)
    if duration is None:
        duration = 1 if quick else 5
    if ramp is None:
        ramp = round(n / 1000.0, 1) if n >= 1000 else 0
    what = f"{series} {n} clients at {rate:g} msg/s each" + (
        f", {shards} load generator shards" if shards > 1 else "")
    pt = point("scale", f"scale-{series}-{n}", proto, what, n, duration, quick, rate=rate,
               ramp=ramp, server_args=list(opts), cols={"series": series}, shards=shards)
    if shards > 1:  # a worker thread per shard: the shards share the cores
        pt.args[pt.args.index("--threads") + 1] = 1
    pt.args += list(extra)
    return pt


def points(quick):
    names = [s for s in SERIES if s != "tcp-epoll" or bk.epoll_offered()[0] is not None]
    pts = []
    for n in ((10, 300) if quick else SIZES):
        pts += [make_point(s, n, quick) for s in names if s != "hybrid" or n <= HYBRID_MAX]
    if quick:  # the sharded path, small: two shards over two source addresses
        return pts + [make_point("udp", 600, quick, shards=2,
                                 extra=["--source", sources(2 * SOURCES_PER)])]
    pts += [make_point(s, TCP_TOP, quick) for s in ("tcp", "tcp-epoll") if s in names]
    pts.append(make_point("udp", UDP_TOP, quick, rate=UDP_TOP_RATE, duration=UDP_TOP_DURATION,
                          ramp=0, extra=["--source", sources(UDP_TOP), "--ping-interval",
                                         UDP_TOP_PING]))
    return pts


TABLES = [("scale", "scale.csv", [
    R.LABEL, R.SERVER, R.col("clients", "clients"), R.col("shards", "shards"),
    R.col("msg/s per client", "rate_per_client", 1), R.col("connected", "connected"),
    R.col("acked msg/s", "acked_rate_msgs", 1),
    R.col("ACK p50 (µs)", "ack_p50_us"), R.col("ACK p99 (µs)", "ack_p99_us"),
    ("server RSS (MiB)", lambda r: R.ratio(R.num(r, "server_rss_kib_max"), 1024.0), 1),
    ("RSS per client (KiB)", lambda r: R.ratio(R.num(r, "server_rss_kib_max"),
                                               R.num(r, "clients")), 1),
    R.col("server threads", "server_threads_max"), R.col("server fds", "server_fds_max"),
    R.col("server CPU (%)", "server_cpu_pct", 1),
    R.col("server CPU per msg (µs)", "server_cpu_us_per_msg", 1),
    R.OTHERS,
])]


def by_series(rows):
    """{series: {clients: row}} of scale.csv's rows."""
    out = {}
    for r in rows.values():
        n = R.num(r, "clients")
        if n is not None:
            out.setdefault(R.series_of(r), {})[int(n)] = r
    return out


def holds(r, name):
    """'NAME held T threads, F descriptors and M MiB of RSS (K KiB per client), C µs of CPU
    per message' of one row."""
    n, f, ratio = R.n, R.num, R.ratio
    rss = f(r, "server_rss_kib_max")
    return (f"{name} held {n(f(r, 'server_threads_max'))} threads, "
            f"{n(f(r, 'server_fds_max'))} descriptors and {n(ratio(rss, 1024.0), 1)} MiB of "
            f"RSS ({n(ratio(rss, f(r, 'clients')), 1)} KiB per client) at "
            f"{n(f(r, 'clients'))} clients, and spent {n(f(r, 'server_cpu_us_per_msg'), 1)} µs "
            "of CPU per message")


def sharded_sentence(r):
    """What a sharded point's merged row says: how it ran and that every client was in."""
    n, f = R.n, R.num
    k, conn, sent = f(r, "shards"), f(r, "connected"), f(r, "sent")
    out = (f"`{r['label']}` ran the load generator as {n(k)} shards "
           f"({r.get('shard_launcher') or 'launcher not recorded'}, --start-at "
           f"{n(f(r, 'shard_lead_s'))} s after the launch"
           + (f", {n(f(r, 'shards_late'))} shard(s) late" if f(r, "shards_late") else
              ", every shard on time") +
           f"): {n(conn)} of {n(f(r, 'clients'))} clients set up in "
           f"{n(f(r, 'setup_s'), 1)} s, {n(sent)} measured messages "
           f"({n(R.ratio(sent, conn), 2)} per client), {n(f(r, 'lost'))} lost")
    if r.get("proto") == "udp":
        out += (f", {n(f(r, 'keepalives'))} keep-alive PINGs in the whole run (after "
                f"{n(f(r, 'ping_interval_s'))} s without sending), "
                f"{n(f(r, 'reregistered'))} clients registered again after the server "
                "forgot them")
    return out + "."


def reading_scale(outdir):
    rows = R.by_label(outdir, "scale.csv")
    n, f = R.n, R.num
    ser = by_series(rows)
    if "tcp" not in ser or "udp" not in ser:
        return "No data: `scale.csv` has no TCP and UDP points.\n"
    out = []
    shared = set.intersection(*(set(v) for v in ser.values()))
    below = [f(r, "ack_p50_us") for s in ser for k, r in ser[s].items()
             if shared and k <= max(shared) and f(r, "ack_p50_us") is not None]
    if below:
        out.append(f"Up to {n(max(shared))} clients, where every series ran, the ACK p50 lies "
                   f"in {R.rng(below, unit=' µs')}.")
    tops = [holds(ser[s][max(ser[s])], SERIES[s][2] if s in SERIES else s)
            for s in SERIES if s in ser]
    out.append("At its largest point " + "; ".join(tops) + ".")
    common = sorted(set(ser["tcp"]) & set(ser["udp"]))
    if common:
        top = common[-1]
        t, u = ser["tcp"][top], ser["udp"][top]
        t99, u99 = f(t, "ack_p99_us"), f(u, "ack_p99_us")
        out.append(f"At {n(top)} clients, the largest size both ran, server CPU was "
                   f"{n(f(t, 'server_cpu_pct'), 1)} % of a core for TCP (threads) against "
                   f"{n(f(u, 'server_cpu_pct'), 1)} % for UDP, the ACK p50 "
                   f"{n(f(t, 'ack_p50_us'))} µs against {n(f(u, 'ack_p50_us'))} µs and the "
                   f"ACK p99 {n(t99)} against {n(u99)} µs: TCP's p99 is {R.cmp(t99, u99)} "
                   "than UDP's here, in one run of a few seconds on a shared machine (see "
                   "*others CPU*).")
    out += [sharded_sentence(r) for r in rows.values() if (f(r, "shards") or 1) > 1]
    lg = [r["label"] for r in rows.values() if f(r, "loadgen_bound") == 1]
    out.append(f"{len(lg)} of {len(rows)} rows are *loadgen bound*" +
               (f" ({', '.join(lg)}): read their latency as the pair's." if lg else "."))
    return " ".join(out) + "\n"


READINGS = [("scale", reading_scale)]
