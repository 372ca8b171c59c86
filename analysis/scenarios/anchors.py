"""anchors: sockperf beside our figures, on the same cores and with the same frame size
(REPORT.md, Anchors). anchors.csv: one client at 200 msg/s per transport beside sockperf's
ping-pong and its under-load at 200 msg/s. anchors.saturation.csv: each saturation series at
20,000 msg/s and at its knee beside sockperf under-load at the same rate, and its knee beside
sockperf's one-way message rate. sockperf's server runs on the server's cores and its client
on the load generator's, as ours do (analysis/pinning.py)."""
import resource
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


def points(quick):
    pins = pinning.split()
    pts = [point("anchors", f"anchor-{proto}", proto,
                 f"{proto} 1 client at 200 msg/s (vs sockperf)", 1, 1 if quick else 4, quick,
                 rate=200) for proto in ("tcp", "udp")]
    return [pinning.pin(pt, *pins) for pt in pts] if pins else pts


def after_s(quick):
    """sockperf: ping-pong and under-load per transport, then under-load at 20,000 msg/s
    and at each knee and a one-way run per frame size: about 10 runs quick (a knee at
    20,000 is the same run), 13 full, each its -t plus about 1.5 s of start and warm-up."""
    return 10 * 2.8 if quick else 13 * 4.5


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
        """One sockperf run; its result with other_cpu_pct: the CPU, in % of one core, that
        neither sockperf's server nor its client (our children, reaped by then) used."""
        busy0, t0, ch0 = procfs.host_busy_s(), time.monotonic(), _children_cpu_s()
        if mode == "one-way":
            res = witnesses.sockperf_oneway(proto, size, self.seconds, self.wraps)
        else:
            res = witnesses.sockperf_rtt(proto, size, self.seconds, mps, self.wraps)
        ours, wall = _children_cpu_s() - ch0, time.monotonic() - t0
        res["other_cpu_pct"] = round(max(0.0, 100.0 * (procfs.host_busy_s() - busy0 - ours)
                                         / wall), 1)
        return res

    def __call__(self, mode, proto, size, mps=None):
        key = (mode, proto, size, mps)
        if key in self.done:
            return self.done[key]
        what = f"sockperf {mode} {proto} {size} B" + (f" at {int(mps)} msg/s" if mps else "")
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
    if not rows:
        return
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
    ctx.write_rows("anchors")
    out = ctx.rows("anchors.saturation")
    for row in saturation_anchors(ctx.rows("saturation"), sp):
        out.append(row)
    if out:
        ctx.write_rows("anchors.saturation")


def _load_cols(ul, mps):
    return {"sockperf_load_mps": int(mps), "sockperf_load_p50_us": ul["p50_us"],
            "sockperf_load_p99_us": ul["p99_us"], "sockperf_load_sent_mps": ul["sent_mps"],
            "sockperf_load_recv_mps": ul["recv_mps"],
            "sockperf_load_other_cpu_pct": ul["other_cpu_pct"]}


def saturation_anchors(sat, sp):
    """Rows of anchors.saturation.csv from the saturation rows sat of this run: per series,
    its row at 20,000 msg/s and its knee row (when a rate failed above it), each with
    sockperf under-load at that row's offered rate; the knee rows with sockperf's one-way
    rate too. sp(mode, proto, size, mps) runs sockperf."""
    out = []
    knees = saturation.mark_knees(list(sat))
    for series, (knee, first_fail) in knees.items():
        rs = [r for r in sat if saturation.series_of(r) == series]
        picks = [(str(saturation.FIXED_RATE), r) for r in rs
                 if saturation.rate_of(r) == saturation.FIXED_RATE]
        if first_fail is not None:
            picks += [("knee", r) for r in rs if saturation.rate_of(r) == knee]
        for kind, r in picks:
            size, mps = wire_size(r), R.num(r, "offered_rate_msgs")
            new = {"label": f"anchor-sat-{series}-{kind}", "series": series,
                   "proto": r.get("proto"), "rate_kind": kind, "sat_label": r.get("label"),
                   "offered_rate_msgs": r.get("offered_rate_msgs"),
                   "ack_p50_us": r.get("ack_p50_us"), "ack_p99_us": r.get("ack_p99_us"),
                   "other_cpu_pct": r.get("other_cpu_pct"),
                   "server_cpus": r.get("server_cpus"), "loadgen_cpus": r.get("loadgen_cpus"),
                   "sockperf_size_bytes": size}
            ul = sp("under-load", _transport(r), size, mps) if mps else None
            if ul:
                new.update(_load_cols(ul, mps))
            if kind == "knee":
                ow = sp("one-way", _transport(r), size)
                if ow:
                    new.update({"sockperf_oneway_mps": ow["recv_mps"],
                                "sockperf_oneway_sent_mps": ow["sent_mps"],
                                "sockperf_oneway_other_cpu_pct": ow["other_cpu_pct"]})
            out.append(new)
    return out


def _under_load(r):
    return R.ratio(R.num(r, "ack_p50_us"), R.num(r, "sockperf_load_p50_us"))


UNDER_LOAD = ("ours / sockperf under load", _under_load, 2)

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
    R.col("our ACK p50 (µs)", "ack_p50_us"),
    R.col("sockperf under load p50 (µs)", "sockperf_load_p50_us", 1), UNDER_LOAD,
    R.col("our ACK p99 (µs)", "ack_p99_us"),
    R.col("sockperf under load p99 (µs)", "sockperf_load_p99_us", 1),
    R.col("sockperf one-way msg/s", "sockperf_oneway_mps"),
    ("our knee / sockperf one-way", lambda r: R.ratio(R.num(r, "offered_rate_msgs"),
                                                      R.num(r, "sockperf_oneway_mps")), 2),
    R.OTHERS,
])]


def _short(r):
    """Where sockperf itself did not keep the rate asked, or lost answers: a remark."""
    f = R.num
    asked, sent, got = f(r, "sockperf_load_mps"), f(r, "sockperf_load_sent_mps"), \
        f(r, "sockperf_load_recv_mps")
    if asked and sent and got and (sent < 0.99 * asked or got < 0.995 * sent):
        return (f"{r['label']}: sockperf sent {R.n(sent)} msg/s of the {R.n(asked)} asked and "
                f"had {R.n(got)} answered")
    return None


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
    for kind, what in ((str(saturation.FIXED_RATE),
                        f"At {n(saturation.FIXED_RATE)} msg/s from 100 clients"),
                       ("knee", "At each server's knee")):
        parts = [f"{r.get('series')} x {n(_under_load(r), 2)}"
                 + (f" ({n(f(r, 'offered_rate_msgs'))} msg/s)" if kind == "knee" else "")
                 for r in sat if r.get("rate_kind") == kind]
        if parts:
            out.append(f"{what}, our ACK p50 / sockperf's at the same rate: "
                       f"{', '.join(parts)}.")
    short = [x for x in map(_short, list(rows.values()) + sat) if x]
    if short:
        out.append("sockperf fell short itself (read those ratios with care): "
                   + "; ".join(short) + ".")
    return " ".join(out) + "\n"


READINGS = [("anchors", reading_anchors)]
