"""anchors: sockperf beside our figures, on the same cores and with the same frame size
(REPORT.md, Anchors). anchors.csv: one client at 200 msg/s per transport beside sockperf's
ping-pong and its under-load at 200 msg/s. anchors.rounds.csv: per saturation series, ROUNDS
rounds at 20,000 msg/s, each our point (as the sweep's) and then sockperf under-load and
sockperf ping-pong paced at the same rate, back to back, so that both sides of a ratio meet
the same minute of this shared machine. anchors.saturation.csv: per series, the medians of
those rounds, and its knee row of the sweep beside sockperf under-load at the knee's rate and
sockperf's one-way message rate. sockperf's server runs on the server's cores and its client
on the load generator's, as ours do, with the cores kept out of idle states alike
(analysis/pinning.py)."""
import resource
import statistics
import time

from analysis import pinning
from analysis import report as R
from analysis import witnesses
from analysis.benchkit import BenchError
from analysis.points import OTHER_CPU_MAX, SIZE, point
from analysis.scenarios import saturation
from pylib import procfs

ORDER = 80
CHARTS = ("anchors",)
ROUNDS = 3  # rounds at the fixed rate per series in a full run (quick: 1)


def points(quick):
    pins = pinning.split()
    pts = [point("anchors", f"anchor-{proto}", proto,
                 f"{proto} 1 client at 200 msg/s (vs sockperf)", 1, 1 if quick else 4, quick,
                 rate=200) for proto in ("tcp", "udp")]
    return [pinning.pin(pt, *pins) for pt in pts] if pins else pts


def after_s(quick):
    """sockperf: ping-pong and under-load per transport (4 runs); per series, its rounds at
    20,000 msg/s, each our point and two sockperf runs (15 s a round in the full run of
    2026-12-02, 8 s quick); per knee, under-load and one-way (8 runs; the quick sweep is
    too short to find knees). A sockperf run took 4.5 s full, 3.5 s quick."""
    series = len(saturation.series_options()[0])
    if quick:
        return 4 * 3.5 + series * 8
    return 4 * 4.5 + series * ROUNDS * 15 + 8 * 4.5


def after_lines(quick):
    """What runs after the anchors' points (--list)."""
    series = list(saturation.series_options()[0])
    rounds = 1 if quick else ROUNDS
    return ["sockperf ping-pong and under-load beside each of its two points",
            f"when the saturation sweep ran in the same run: {rounds} round(s) per series "
            f"({', '.join(series)}) at {saturation.FIXED_RATE} msg/s, each the sweep's point "
            f"for sockperf's {1 if quick else 3} s, then sockperf under-load and paced "
            "ping-pong at that rate; sockperf under-load and one-way beside each knee"]


around_loadgen = pinning.around_loadgen


class Sockperf:
    """sockperf runs on the cores our server and load generator use, each (mode, transport,
    frame size, rate) once per bench run, and once more (full runs) when other processes
    took more than OTHER_CPU_MAX % of a core meanwhile, as our points are: a pinned
    program cannot flee a busy core. A failure is reported to ctx and gives None."""

    def __init__(self, ctx, seconds=None):
        self.ctx = ctx
        self.seconds = seconds or (1 if ctx.quick else 3)
        pins = pinning.split()
        self.wraps = ((["taskset", "-c", pins[0]], ["taskset", "-c", pins[1]]) if pins
                      else ((), ()))
        self.done = {}

    def _once(self, mode, proto, size, mps):
        """One sockperf run (with the cores kept out of idle states, as our pinned points);
        its result with other_cpu_pct: the CPU, in % of one core, that neither sockperf's
        server nor its client (our children, reaped by then) used."""
        busy0, t0, ch0 = procfs.host_busy_s(), time.monotonic(), _children_cpu_s()
        with pinning.idle_poll():
            if mode == "one-way":
                res = witnesses.sockperf_oneway(proto, size, self.seconds, self.wraps)
            else:
                res = witnesses.sockperf_rtt(proto, size, self.seconds, mps, self.wraps,
                                             paced=mode == "paced ping-pong")
        ours, wall = _children_cpu_s() - ch0, time.monotonic() - t0
        res["other_cpu_pct"] = round(max(0.0, 100.0 * (procfs.host_busy_s() - busy0 - ours)
                                         / wall), 1)
        return res

    def __call__(self, mode, proto, size, mps=None, again=None):
        """sockperf in mode (ping-pong, under-load, paced ping-pong, one-way): each setting
        once per bench run, unless again (a name, such as a series' round) asks for a run
        of its own."""
        key = (mode, proto, size, mps, again)
        if key in self.done:
            return self.done[key]
        what = f"sockperf {mode} {proto} {size} B" + (f" at {int(mps)} msg/s" if mps else "") \
            + (f" for {again}" if again else "")
        print(f"[anchor] {what}", flush=True)
        res = None
        try:
            for attempt in (1, 2):
                res = self._once(mode, proto, size, mps)
                print("    " + ", ".join(f"{k} {v:g}" for k, v in res.items()), flush=True)
                if self.ctx.quick or attempt == 2 or \
                        res["other_cpu_pct"] <= OTHER_CPU_MAX:
                    break
                print(f"    other processes used {res['other_cpu_pct']} % of a core meanwhile: "
                      "running it once more", flush=True)
        except (BenchError, OSError) as e:
            print(f"    FAILED: {e}", flush=True)
            self.ctx.fail(what.replace(" ", "-"))
            res = None
        self.done[key] = res
        return res


def _children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wire_size(row):
    """The bytes of one MSG on the wire in this row (sockperf gets the same), or our
    frame's usual size when the row does not say."""
    sent, wire = R.num(row, "sent"), R.num(row, "bytes_sent_wire")
    return int(round(wire / sent)) if sent and wire else SIZE + 30


def _transport(row):
    return "tcp" if row.get("proto") == "tcp" else "udp"  # hybrid's chat is UDP


def run(ctx, pts):
    """Our points, sockperf beside each row that came back (anchors.csv), then beside the
    saturation sweep of this run, when there was one (anchors.saturation.csv)."""
    for pt in pts:
        ctx.point(pt)
    rows = ctx.rows("anchors")
    sp = Sockperf(ctx)
    for row in rows:
        size, mps = wire_size(row), float(row.get("offered_rate_msgs") or 200)
        row["sockperf_size_bytes"] = size
        pp = sp("ping-pong", row["proto"], size)
        if pp:
            row.update({"sockperf_p50_us": pp["p50_us"], "sockperf_p99_us": pp["p99_us"],
                        "sockperf_mean_us": pp["mean_us"],
                        "sockperf_observations": int(pp["observations"]),
                        "sockperf_other_cpu_pct": pp["other_cpu_pct"]})
        # The same rate as our client: idle wake-ups cost what a busy ping-pong hides.
        ul = sp("under-load", row["proto"], size, mps)
        if ul:
            row.update(_load_cols(ul, mps))
    if rows:
        ctx.write_rows("anchors")
    if not ctx.rows("saturation"):
        return  # no sweep in this run: nothing to compare at its rates
    run_opts = saturation.series_options()[0]
    ctx.total += len(run_opts) * (1 if ctx.quick else ROUNDS)  # the progress count
    for series, opts in run_opts.items():
        run_rounds(ctx, series, opts, sp)
    rounds = ctx.rows("anchors.rounds")
    if rounds:
        ctx.write_rows("anchors.rounds")  # with sockperf's columns, added after each point
    out = ctx.rows("anchors.saturation")
    for row in saturation_anchors(ctx.rows("saturation"), sp, rounds):
        out.append(row)
    if out:
        ctx.write_rows("anchors.saturation")


def run_rounds(ctx, series, opts, sp):
    """The rounds of one series at the fixed rate: our point (as the sweep's, measured for
    sockperf's seconds), then sockperf under-load and sockperf paced ping-pong at the same
    rate and frame size, ROUNDS times in a row (once quick). Their rows (ours, with
    sockperf's figures as columns) go to ctx's anchors.rounds; returns them."""
    out = []
    rate = saturation.FIXED_RATE
    for k in range(1, (1 if ctx.quick else ROUNDS) + 1):
        pt = saturation.make_point(series, rate, ctx.quick, opts, duration=sp.seconds)
        pt.scenario, pt.label = "anchors", f"anchor-round-{series}-{rate}-{k}"
        pt.what = f"{series} offered {rate} msg/s, round {k} beside sockperf"
        pt.cols["round"] = k
        row = ctx.point(pt, into="anchors.rounds")
        if row is None:
            continue
        size = wire_size(row)
        row["sockperf_size_bytes"] = size
        ul = sp("under-load", _transport(row), size, rate, again=f"{series} round {k}")
        if ul:
            row.update(_load_cols(ul, rate))
            row["ratio_load"] = _under_load(row)
        pp = sp("paced ping-pong", _transport(row), size, rate, again=f"{series} round {k}")
        if pp:
            row.update(_paced_cols(pp))
            row["ratio_paced"] = _paced(row)
        out.append(row)
    return out


def _load_cols(ul, mps):
    return {"sockperf_load_mps": int(mps), "sockperf_load_p50_us": ul["p50_us"],
            "sockperf_load_p99_us": ul["p99_us"], "sockperf_load_sent_mps": ul["sent_mps"],
            "sockperf_load_recv_mps": ul["recv_mps"],
            "sockperf_load_other_cpu_pct": ul["other_cpu_pct"]}


def _paced_cols(pp):
    return {"sockperf_paced_p50_us": pp["p50_us"], "sockperf_paced_p99_us": pp["p99_us"],
            "sockperf_paced_sent_mps": pp["sent_mps"], "sockperf_paced_recv_mps": pp["recv_mps"],
            "sockperf_paced_other_cpu_pct": pp["other_cpu_pct"]}


# the columns of a fixed-rate row that are the medians of its rounds, each over the rounds
# that have it (a sockperf run may have failed in one)
MEDIANS = ("ack_p50_us", "ack_p99_us", "sockperf_load_p50_us", "sockperf_load_p99_us",
           "sockperf_load_sent_mps", "sockperf_load_recv_mps", "sockperf_paced_p50_us",
           "sockperf_paced_p99_us", "sockperf_paced_sent_mps", "sockperf_paced_recv_mps",
           "ratio_load", "ratio_paced")
OTHERS = ("other_cpu_pct", "sockperf_load_other_cpu_pct", "sockperf_paced_other_cpu_pct")


def _nums(rows, key):
    return [v for v in (R.num(r, key) for r in rows) if v is not None]


def _median(rows, key):
    vals = _nums(rows, key)
    return statistics.median(vals) if vals else ""


def fixed_rate_row(series, rs):
    """The anchors.saturation.csv row of one series at the fixed rate from its rounds rs:
    each figure the median over the rounds that have it, and each ratio the median of the
    rounds' own ratios (ours and sockperf's taken moments apart, never across rounds;
    rounds_load and rounds_paced count them); the most CPU other processes took meanwhile."""
    new = {"label": f"anchor-sat-{series}-{saturation.FIXED_RATE}", "series": series,
           "proto": rs[0].get("proto"), "rate_kind": str(saturation.FIXED_RATE),
           "offered_rate_msgs": saturation.FIXED_RATE, "rounds": len(rs),
           "sockperf_size_bytes": rs[0].get("sockperf_size_bytes"),
           "sockperf_load_mps": saturation.FIXED_RATE,
           "server_cpus": rs[0].get("server_cpus"), "loadgen_cpus": rs[0].get("loadgen_cpus"),
           "cpu_latency_qos_us": rs[0].get("cpu_latency_qos_us", "")}
    new.update({k: _median(rs, k) for k in MEDIANS})
    for mode in ("load", "paced"):
        new[f"rounds_{mode}"] = sum(1 for r in rs if R.num(r, f"ratio_{mode}") is not None)
    for k in OTHERS:
        vals = _nums(rs, k)
        new[k] = max(vals) if vals else ""
    return new


def saturation_anchors(sat, sp, rounds=()):
    """Rows of anchors.saturation.csv from the saturation rows sat of this run and the
    rounds at the fixed rate: per series, the medians of its rounds (fixed_rate_row), and
    its knee row (when a rate failed above it) with sockperf under-load at the knee's
    offered rate and sockperf's one-way rate. sp(mode, proto, size, mps) runs sockperf."""
    out = []
    knees = saturation.mark_knees(list(sat))
    for series, (knee, first_fail) in knees.items():
        mine = [r for r in rounds if saturation.series_of(r) == series]
        if mine:
            out.append(fixed_rate_row(series, mine))
        if first_fail is None:
            continue
        for r in (r for r in sat if saturation.series_of(r) == series
                  and saturation.rate_of(r) == knee):
            size, mps = wire_size(r), R.num(r, "offered_rate_msgs")
            new = {"label": f"anchor-sat-{series}-knee", "series": series,
                   "proto": r.get("proto"), "rate_kind": "knee", "sat_label": r.get("label"),
                   "rounds": 1, "offered_rate_msgs": r.get("offered_rate_msgs"),
                   "ack_p50_us": r.get("ack_p50_us"), "ack_p99_us": r.get("ack_p99_us"),
                   "other_cpu_pct": r.get("other_cpu_pct"),
                   "server_cpus": r.get("server_cpus"), "loadgen_cpus": r.get("loadgen_cpus"),
                   "cpu_latency_qos_us": r.get("cpu_latency_qos_us", ""),
                   "sockperf_size_bytes": size}
            ul = sp("under-load", _transport(r), size, mps) if mps else None
            if ul:
                new.update(_load_cols(ul, mps))
                new["ratio_load"] = _under_load(new)
            ow = sp("one-way", _transport(r), size)
            if ow:
                new.update({"sockperf_oneway_mps": ow["recv_mps"],
                            "sockperf_oneway_sent_mps": ow["sent_mps"],
                            "sockperf_oneway_other_cpu_pct": ow["other_cpu_pct"]})
            out.append(new)
    return out


def _under_load(r):
    return R.ratio(R.num(r, "ack_p50_us"), R.num(r, "sockperf_load_p50_us"))


def _paced(r):
    return R.ratio(R.num(r, "ack_p50_us"), R.num(r, "sockperf_paced_p50_us"))


UNDER_LOAD = ("ours / sockperf under load", _under_load, 2)
PACED = ("ours / sockperf ping-pong at that rate", _paced, 2)

TABLES = [("anchors", "anchors.csv", [
    R.LABEL, R.PROTO, R.col("frame (B)", "sockperf_size_bytes"),
    R.col("our ACK p50 (µs)", "ack_p50_us"),
    R.col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1), UNDER_LOAD,
    R.col("sockperf RTT p50 (µs)", "sockperf_p50_us", 1),
    ("ours / sockperf", lambda r: R.ratio(R.num(r, "ack_p50_us"),
                                          R.num(r, "sockperf_p50_us")), 2),
    R.col("our ACK p99 (µs)", "ack_p99_us"), R.col("sockperf RTT p99 (µs)", "sockperf_p99_us", 1),
    R.OTHERS,
]), ("anchors_saturation", "anchors.saturation.csv", [
    R.LABEL, ("server", lambda r: r.get("series", ""), 0),
    R.col("offered msg/s", "offered_rate_msgs"), R.col("frame (B)", "sockperf_size_bytes"),
    R.col("rounds", "rounds"),
    R.col("our ACK p50 (µs)", "ack_p50_us", 1),
    R.col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1),
    R.col("ours / sockperf under load, per round", "ratio_load", 2),
    R.col("sockperf ping-pong at that rate p50 (µs)", "sockperf_paced_p50_us", 1),
    R.col("ours / sockperf ping-pong at that rate, per round", "ratio_paced", 2),
    R.col("our ACK p99 (µs)", "ack_p99_us"),
    R.col("sockperf under load p99 (µs)", "sockperf_load_p99_us", 1),
    R.col("sockperf one-way msg/s", "sockperf_oneway_mps"),
    ("our knee / sockperf one-way", lambda r: R.ratio(R.num(r, "offered_rate_msgs"),
                                                      R.num(r, "sockperf_oneway_mps")), 2),
    R.OTHERS,
]), ("anchors_rounds", "anchors.rounds.csv", [
    R.LABEL, R.SERVER, R.col("round", "round"),
    R.col("our ACK p50 (µs)", "ack_p50_us", 1),
    R.col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1), UNDER_LOAD,
    R.col("sockperf ping-pong at that rate p50 (µs)", "sockperf_paced_p50_us", 1), PACED,
    R.col("our ACK p99 (µs)", "ack_p99_us"),
    R.col("sockperf under load p99 (µs)", "sockperf_load_p99_us", 1),
    R.col("sockperf ping-pong at that rate p99 (µs)", "sockperf_paced_p99_us", 1),
    R.col("loadgen send lag p99 (µs)", "lag_p99_us"),
    R.OTHERS,
])]


def _short(r):
    """Where sockperf itself did not keep the rate asked, or lost answers: a remark."""
    f = R.num
    asked = f(r, "sockperf_load_mps")
    out = []
    for mode, key in (("under-load", "sockperf_load"), ("paced ping-pong", "sockperf_paced")):
        sent, got = f(r, f"{key}_sent_mps"), f(r, f"{key}_recv_mps")
        if asked and sent and got and (sent < 0.99 * asked or got < 0.995 * sent):
            out.append(f"{r['label']}: sockperf {mode} sent {R.n(sent)} msg/s of the "
                       f"{R.n(asked)} asked and had {R.n(got)} answered")
    return "; ".join(out) or None


def reading_anchors(outdir):
    rows = R.by_label(outdir, "anchors.csv")
    n, f = R.n, R.num
    out = []
    for proto, name in (("tcp", "TCP"), ("udp", "UDP")):
        r = rows.get(f"anchor-{proto}")
        if not r:
            continue
        out.append(f"{name}, one client at {n(f(r, 'offered_rate_msgs'))} msg/s: our ACK p50 "
                   f"{n(f(r, 'ack_p50_us'))} µs against sockperf's round trip at the same "
                   f"rate {n(f(r, 'sockperf_load_p50_us'), 1)} µs (x "
                   f"{n(_under_load(r), 2)}); "
                   f"sockperf's ping-pong, which never sleeps, {n(f(r, 'sockperf_p50_us'), 1)}"
                   " µs.")
    if not out:
        raise R.NoData("anchors.csv")
    sat = R.rows(outdir, "anchors.saturation.csv") or []
    fixed = [r for r in sat if r.get("rate_kind") == str(saturation.FIXED_RATE)]
    if fixed:
        out.append(_reading_fixed(fixed, R.rows(outdir, "anchors.rounds.csv") or []))
    knee = [f"{r.get('series')} x {n(f(r, 'ratio_load'), 2)} ({n(f(r, 'offered_rate_msgs'))} "
            "msg/s)" for r in sat if r.get("rate_kind") == "knee"]
    if knee:
        out.append("At each server's knee, our ACK p50 / sockperf under-load's at the same "
                   f"rate: {', '.join(knee)}.")
    short = [x for x in map(_short, list(rows.values()) + sat) if x]
    if short:
        out.append("sockperf fell short itself (read those ratios with care): "
                   + "; ".join(short) + ".")
    return " ".join(out) + "\n"


def _reading_fixed(fixed, rounds):
    """The sentences on the rows at the fixed rate: the medians' ratios to both sockperf
    modes, the spread of the per-round ratios, and sockperf's own two modes compared."""
    n, f = R.n, R.num
    k = max(int(f(r, "rounds") or 0) for r in fixed)
    what = (f"At {n(saturation.FIXED_RATE)} msg/s from 100 clients"
            + (f" (medians of {k} rounds' own ratios, ours and sockperf's back to back)"
               if k > 1 else ""))

    def spread(series, fn):
        vals = [v for v in (fn(r) for r in rounds if saturation.series_of(r) == series)
                if v is not None]
        return f" [{R.rng(vals, 2)}]" if len(vals) > 1 else ""

    ul = [f"{r.get('series')} x {n(f(r, 'ratio_load'), 2)}"
          f"{spread(r.get('series'), _under_load)}" for r in fixed]
    pp = [f"{r.get('series')} x {n(f(r, 'ratio_paced'), 2)}"
          f"{spread(r.get('series'), _paced)}" for r in fixed]
    text = (f"{what}, our ACK p50 / sockperf under-load's at the same rate: {', '.join(ul)}; "
            f"our ACK p50 / sockperf ping-pong's at the same rate: {', '.join(pp)}"
            + (" (in brackets, the range of the rounds' own ratios)" if k > 1 else "") + ".")
    own = {}
    for r in fixed:
        t = _transport(r)
        if t not in own and f(r, "sockperf_load_p50_us") and f(r, "sockperf_paced_p50_us"):
            own[t] = (f(r, "sockperf_load_p50_us"), f(r, "sockperf_paced_p50_us"))
    if own:
        text += (" sockperf's own two round trips at that rate: " + ", ".join(
            f"{t.upper()} under-load {n(a, 1)} µs against paced ping-pong {n(b, 1)} µs"
            for t, (a, b) in own.items()) + " (medians of the first series of each "
            "transport).")
    return text


READINGS = [("anchors", reading_anchors)]
