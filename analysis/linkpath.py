"""linkpath: benchmark points over an emulated network path (bin/linkem). The load generator
(and any witness) runs in linkem's inner namespace, the server in the benchmark's own private
namespace (linkem's outside), listening on linkem's outer address; every row gets linkem's
exact per-direction counters (link_*) and both kernels' TCP retransmission counters (tcp_*).

through() turns a point into one over a path; a scenario's around_loadgen hook is
around_loadgen() or, when it reads linkem's per-packet log or starts a witness beside the load
generator, a context manager of its own around session(). read_log() and the functions after
it read the log; they are pure, so that tests/integration/test_paths.py drives them with
synthetic logs.
"""
import contextlib
import json
import os
import shlex
import shutil
import tempfile

from analysis import benchkit as bk
from analysis.benchkit import BenchError

OUTER = "10.77.0.1"  # linkem's default outer address: where the servers listen
NEEDS = "an emulated path needs root, a private network namespace and /dev/net/tun (linkem)"
DIRS = ("up", "down")  # up: from the load generator to the server
# linkem's --json counters per direction, each a column link_<dir>_<name>
COUNTERS = ("pkts_in", "bytes_in", "pkts_out", "bytes_out", "lost", "queue_drops",
            "duplicated", "reordered", "max_queue", "max_queue_bytes", "errors", "unsent",
            "kernel_drops_in", "kernel_drops_out", "reorder_untracked")
# The kernel's TCP counters (/proc/net/snmp, /proc/net/netstat) each row keeps, per side:
# column suffix -> (table, field). The inner namespace is the load generator's (its segments
# go up), the outer one the server's (down).
TCP_COUNTERS = {"retrans_segs": ("Tcp", "RetransSegs"), "timeouts": ("TcpExt", "TCPTimeouts"),
                "loss_probes": ("TcpExt", "TCPLossProbes"),
                "fast_retrans": ("TcpExt", "TCPFastRetrans")}
# Inside the namespace, around the load generator ("$@"): the congestion control it gets,
# then its kernel's counters once it is done ($0 is the file for them; the namespace is
# fresh, so they count this point alone). BEFORE and AFTER: what a scenario runs beside it.
INNER = ('cat /proc/sys/net/ipv4/tcp_congestion_control > "$0.cc"; {before}"$@"; rc=$?; '
         '{after}cat /proc/net/snmp /proc/net/netstat > "$0"; exit $rc')


def linkem():
    return os.path.join(bk.BIN, "linkem")


def through(pt, link_args):
    """Makes pt (analysis.points.Point) a point over the path link_args (linkem's options,
    e.g. ["--delay", "25", "--loss", "1"]): its load generator runs under linkem and targets
    OUTER, its server binds OUTER (before linkem creates it: pylib.netns sets
    ip_nonlocal_bind in the benchmark's namespace), and the options become the link column.
    Returns pt."""
    # "linkem" stands for the program until session() runs it: the build measured is the one
    # benchkit.snapshot_bins() copied, after the points were made
    pt.loadgen_wrap = ["linkem", "--quiet", *map(str, link_args), "--", *pt.loadgen_wrap]
    pt.host, pt.server_host = OUTER, OUTER
    pt.needs_netns = NEEDS
    if not os.path.exists("/dev/net/tun"):
        pt.unavailable = f"no /dev/net/tun on this machine: {NEEDS}"
    pt.cols["link"] = " ".join(map(str, link_args))
    return pt


def link_args(pt):
    """The linkem options pt was made with (through())."""
    w = pt.loadgen_wrap
    return w[w.index("--quiet") + 1:w.index("--")]


def kernel_counters(text):
    """{suffix: value} of TCP_COUNTERS from the text of /proc/net/snmp and /proc/net/netstat
    (pairs of lines: names, then values, each starting with the table's name)."""
    tables, pending = {}, {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name in pending:
            tables[name] = dict(zip(pending.pop(name), fields))
        else:
            pending[name] = fields
    out = {}
    for key, (table, field) in TCP_COUNTERS.items():
        try:
            out[key] = int(tables[table][field])
        except (KeyError, ValueError):
            out[key] = ""  # this kernel does not keep it
    return out


def _here_counters():
    with open("/proc/net/snmp") as a, open("/proc/net/netstat") as b:
        return kernel_counters(a.read() + b.read())


def report_cols(rep):
    """The link_* columns of linkem's --json report (a dict)."""
    cols = {"link_cpu_s": rep.get("cpu_s", ""), "link_duration_s": rep.get("duration_s", "")}
    for d in DIRS:
        for k in COUNTERS:
            cols[f"link_{d}_{k}"] = rep[d].get(k, "")
    return cols


def books_balance(cols):
    """The directions whose packets do not add up (linkem's own invariant: every packet read
    leaves its books once), as text; empty when both do."""
    bad = []
    for d in DIRS:
        def c(k):
            return int(cols[f"link_{d}_{k}"] or 0)
        if c("pkts_in") + c("duplicated") != c("pkts_out") + c("lost") + c("queue_drops") + \
                c("errors") + c("unsent"):
            bad.append(d)
    return ", ".join(bad)


class Session:
    """One run of the load generator under linkem: cols (the row's link_* and tcp_*
    columns, filled when the session ends), dir (a scratch folder, removed at the end), log
    (the per-packet log's path, or None)."""

    def __init__(self, log):
        self.cols = {}
        self.dir = tempfile.mkdtemp(prefix="chatbench-link-")
        self.log = os.path.join(self.dir, "link.log") if log else None
        self.report = os.path.join(self.dir, "link.json")
        self.counters = os.path.join(self.dir, "inner.counters")


@contextlib.contextmanager
def session(pt, log=False, before="", after=""):
    """Around one load generator run of a point made by through(): completes its linkem
    command with the report's path (and the log's, with log), and the shell around the load
    generator inside (before: commands ending in "; " or " & " started first; after:
    commands ending in "; " run once it is done, e.g. "wait; "). Yields the Session; at the
    end fills its cols from linkem's report and both sides' kernel counters, and fails the
    point when linkem's books do not balance."""
    s = Session(log)
    template = pt.loadgen_wrap
    i = template.index("--")
    pt.loadgen_wrap = [linkem(), *template[1:i], "--json", s.report,
                       *(["--log", s.log] if log else []), "--", *template[i + 1:],
                       "sh", "-c", INNER.format(before=before, after=after), s.counters]
    try:
        down0 = _here_counters()
        yield s
        down1 = _here_counters()
        try:
            with open(s.report) as f:
                s.cols.update(report_cols(json.load(f)))
            with open(s.counters) as f:
                up = kernel_counters(f.read())
            with open(s.counters + ".cc") as f:
                s.cols["tcp_cc"] = f.read().strip()
        except (OSError, ValueError, KeyError) as e:
            raise BenchError(f"{pt.label}: linkem's report or counters unreadable: {e}") from e
        for k in TCP_COUNTERS:
            s.cols[f"tcp_up_{k}"] = up[k]
            s.cols[f"tcp_down_{k}"] = (down1[k] - down0[k]) if down0[k] != "" else ""
        bad = books_balance(s.cols)
        if bad:
            raise BenchError(f"{pt.label}: linkem's counts do not add up ({bad}): {s.cols}")
    finally:
        pt.loadgen_wrap = template
        shutil.rmtree(s.dir, ignore_errors=True)


@contextlib.contextmanager
def around_loadgen(pt, srv):
    """A scenario's around_loadgen hook for a point over a path: session(), its columns."""
    with session(pt) as s:
        yield s.cols


def command(link, argv):
    """argv run alone under linkem with the options link (a witness on a path)."""
    return [linkem(), "--quiet", *map(str, link), "--", *map(str, argv)]


def quote(argv):
    """argv as one shell command line."""
    return " ".join(shlex.quote(str(a)) for a in argv)


# --- linkem's per-packet log ---


def read_log(path):
    """linkem's --log as tuples (t_s, dir, n, proto, length, src, dst, event, data): t_s a
    float (seconds since linkem started), n the packet's arrival number in its direction,
    data the first 16 payload bytes in hex ("-" when none)."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            t, d, n, proto, ln, src, dst, ev, data = line.split()
            out.append((float(t), d, int(n), proto, int(ln), src, dst, ev, data))
    return out


def runs(flags):
    """Lengths of the runs of True in a sequence of booleans."""
    out, k = [], 0
    for x in flags:
        if x:
            k += 1
        elif k:
            out.append(k)
            k = 0
    if k:
        out.append(k)
    return out


def loss_runs(rows, d):
    """Lengths of the runs of consecutive packets (by arrival number) that the loss model
    dropped in direction d: the bursts linkem's Gilbert-Elliott model made."""
    fate = {}
    for _, dd, n, *_rest, ev, _data in rows:
        if dd == d and ev in ("in", "drop-loss"):
            fate[n] = fate.get(n, False) or ev == "drop-loss"
    return runs(fate[n] for n in sorted(fate))


def flow_loss_runs(rows, d):
    """Lengths of the runs of consecutive losses within each flow (protocol, source,
    destination) of direction d: the bursts one connection or one client's socket saw. Many
    flows share the link, so a burst of the link is spread over them."""
    flows = {}
    for _, dd, n, proto, _ln, src, dst, ev, _data in rows:
        if dd == d and ev in ("in", "drop-loss"):
            seq = flows.setdefault((proto, src, dst), {})
            seq[n] = seq.get(n, False) or ev == "drop-loss"
    out = []
    for seq in flows.values():
        out += runs(seq[n] for n in sorted(seq))
    return out


def chat_words(data):
    """The first words of a chat datagram from the log's data field (empty when none)."""
    if data == "-":
        return []
    return bytes.fromhex(data).decode("ascii", "replace").split()


def ack_streams(rows):
    """What the load generator should count for plain UDP clients, replayed from the log
    with its own definitions (loadgen/seqstats.c, measure.c), for a run without warm-up: per
    client (its port), the ACKs in the order linkem delivered them; an ACK whose seq is
    below the highest seen is reordered, one seen before a duplicate; RFC 3550 jitter over
    first arrivals, J += (|D| - J)/16 with D the change of transit (here from the MSG's
    arrival at the link to its ACK's departure from it), its value after every first
    arrival averaged. Returns {acks, reordered, duplicates, late_duplicates, jitter_us}:
    late_duplicates are the copies the link delivered after the last first arrival, when a
    load generator of one thread may have stopped listening (it stops once every message is
    answered; its 10 ms tick may still read some of them)."""
    sent = {}  # (client port, seq) -> time the MSG entered the link
    streams = {}  # client port -> [(t_out, seq)] in delivery order
    for t, d, _n, proto, _ln, src, dst, ev, data in rows:
        if proto != "udp":
            continue
        w = chat_words(data)
        if len(w) < 2 or not w[1].isdigit():
            continue
        if d == "up" and ev == "in" and w[0] == "MSG":
            sent.setdefault((src.rsplit(":", 1)[1], int(w[1])), t)
        elif d == "down" and ev == "out" and w[0] == "ACK":
            streams.setdefault(dst.rsplit(":", 1)[1], []).append((t, int(w[1])))
    acks = reordered = 0
    jsum, jn = 0.0, 0
    copies, t_last = [], 0.0  # times of the duplicates; of the last first arrival
    for port, stream in streams.items():
        seen, hi, last, j = set(), None, None, 0.0
        for t, seq in stream:
            if seq in seen:
                copies.append(t)
                continue
            seen.add(seq)
            t_last = max(t_last, t)
            acks += 1
            if hi is not None and seq < hi:
                reordered += 1
            hi = seq if hi is None else max(hi, seq)
            t_in = sent.get((port, seq))
            # an unknown send time: the transit did not change, as loadgen pretends
            transit = t - t_in if t_in is not None else (last if last is not None else 0.0)
            if last is not None:
                j += (abs(transit - last) - j) / 16.0
            last = transit
            jsum += j
            jn += 1
    return {"acks": acks, "reordered": reordered, "duplicates": len(copies),
            "late_duplicates": sum(1 for t in copies if t > t_last),
            "jitter_us": round(jsum / jn * 1e6, 3) if jn else ""}
