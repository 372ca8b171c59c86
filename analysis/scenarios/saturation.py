"""saturation: each server's knee (REPORT.md section 2). 100 clients, open loop, the server
pinned to one half of the cores and the load generator (one thread per core) to the other;
per server the total offered rate doubles from 5,000 msg/s until a rate fails the criterion,
is bisected between the last pass and the first failure, and goes a few rates past it
(analysis/sweep.py decides each next rate from the rows so far). Every row says whether it
passed and whose cores limited it: *server bound* (the server's cores busy, the load
generator keeping up) or *loadgen bound* (the load generator's own verdict).
"""
from analysis import benchkit as bk
from analysis import pinning
from analysis import report as R
from analysis import sweep
from analysis.points import point
from pylib import procfs

ORDER = 20
CHARTS = ("saturation", "saturation_latency")
CLIENTS = 100
FIXED_RATE = 20000  # the rate every series runs and the anchors compare at (issue 14)
FULL = sweep.Plan(start=5000, also=(FIXED_RATE,))
QUICK = sweep.Plan(start=FIXED_RATE, factor=8, cap=160000, resolution=None, past=0,
                   max_points=2, also=(FIXED_RATE,))

SERIES = bk.SERIES  # (proto, server options, what the series is)


def epoll_options():
    """(server options, "") for tcp_server's event-loop model, or (None, why not) when the
    tcp_server measured does not offer `--io epoll` in its --help (--loops, when it has it:
    one loop per server core)."""
    text, why = bk.epoll_offered()
    if text is None:
        return None, why
    opts = ["--io", "epoll"]
    pins = pinning.split()
    if "--loops" in text and pins:
        opts += ["--loops", str(len(procfs.parse_cpu_list(pins[0])))]
    return opts, ""


def series_options():
    """{series: server options} of the series this build can run, in SERIES order, and
    {series: why it is skipped}."""
    run, skipped = {}, {}
    for name, (_, opts, _) in SERIES.items():
        if name == "tcp-epoll":
            opts, why = epoll_options()
            if opts is None:
                skipped[name] = why
                continue
        run[name] = opts
    return run, skipped


def make_point(series, rate, quick, server_args, duration=None):
    """The point of one series at one total rate, pinned when there are cores to split
    (duration: measured seconds, 2 unless given; 1 quick)."""
    proto = SERIES[series][0]
    pt = point("saturation", f"sat-{series}-{rate}", proto, f"{series} offered {rate} msg/s",
               CLIENTS, duration or (1 if quick else 2), quick, total=rate,
               server_args=list(server_args), cols={"series": series, "sweep_rate_msgs": rate})
    pins = pinning.split()
    return pinning.pin(pt, *pins) if pins else pt


def ladder(plan):
    """The rates a series runs while every one passes: what --list shows of the sweep."""
    done, out = {}, []
    while (r := sweep.next_rate(done, plan)) is not None:
        done[r] = True
        out.append(r)
    return out


def points(quick):
    plan = QUICK if quick else FULL
    run, _ = series_options()
    return [make_point(s, r, quick, opts) for s, opts in run.items() for r in ladder(plan)]


def after_s(quick):
    """The sweep past the ladder's first failure: about three bisections and past rates per
    series instead of the ladder's top (about 5.5 s each, more for TCP's drain)."""
    return 0 if quick else len(series_options()[0]) * 3 * 5.5


around_loadgen = pinning.around_loadgen


def after_point(pt, row, quick):
    """The criterion and the verdicts, as columns."""
    why = sweep.failures(row)
    row["criterion_pass"] = int(not why)
    row["criterion_failed"] = "; ".join(why)
    for col, verdict in (("loadgen_limited", sweep.loadgen_limited),
                         ("server_bound", sweep.server_bound)):
        v = verdict(row)
        row[col] = "" if v is None else v


def mark_knees(rows):
    """Sorts rows (in place) by series and rate and sets each row's knee column: 1 on the
    knee of its series when a rate failed above it, else 0. Returns {series: (knee, first
    failing rate)} as sweep.knee gives them."""
    order = list(SERIES)
    rows.sort(key=lambda r: (order.index(series_of(r)) if series_of(r) in order else len(order),
                             rate_of(r)))
    knees = {}
    for s in dict.fromkeys(series_of(r) for r in rows):
        knees[s] = sweep.knee({rate_of(r): sweep.passes(r) for r in rows if series_of(r) == s})
    for r in rows:
        k, f = knees[series_of(r)]
        r["knee"] = int(f is not None and rate_of(r) == k)
    return knees


series_of = R.series_of


def rate_of(row):
    return R.num(row, "sweep_rate_msgs") or R.num(row, "offered_rate_msgs") or 0


def run(ctx, pts):
    """Each series swept in turn: the next rate from the rows so far until the sweep says
    it is over, or a point fails (the series stops there; the run reports the failure)."""
    if not pts:
        return
    plan = QUICK if ctx.quick else FULL
    run_opts, skipped = series_options()
    for name, why in skipped.items():
        print(f"[saturation] series {name} skipped: {why}", flush=True)
    steps = len(ladder(plan))
    for series, opts in run_opts.items():
        done = {}
        while (rate := sweep.next_rate(done, plan)) is not None:
            row = ctx.point(make_point(series, rate, ctx.quick, opts))
            if row is None:
                break
            done[rate] = bool(row["criterion_pass"])
        ctx.total += len(done) - steps  # the progress count: what ran instead of the ladder
        k, f = mark_knees(ctx.rows("saturation"))[series] if done else (None, None)
        print(f"[saturation] {series}: knee {k} msg/s, first failure {f} msg/s", flush=True)
        ctx.write_rows("saturation")


TABLES = [("saturation", "saturation.csv", [
    R.LABEL, R.SERVER,
    R.col("offered msg/s", "offered_rate_msgs"),
    ("acked / offered (%)", lambda r: R.ratio(R.num(r, "acked_rate_msgs"),
                                              R.num(r, "offered_rate_msgs"), 100.0), 1),
    R.col("ACK p50 (µs)", "ack_p50_us"), R.col("ACK p99 (µs)", "ack_p99_us"),
    ("lost (%)", R.lost_pct, 2), ("passes", lambda r: int(sweep.passes(r)), 0),
    R.col("server core busy (%)", "server_core_busy_pct", 1),
    R.col("server CPU (%)", "server_cpu_pct", 1),
    R.col("server CPU per msg (µs)", "server_cpu_us_per_msg", 2),
    # (its core is always busy: it busy-polls there) the lag its verdict is made of
    R.col("loadgen send lag p99 (µs)", "lag_p99_us"),
    R.col("loadgen bound (p99)", "loadgen_bound"),
    ("loadgen limited", sweep.loadgen_limited, 0), ("server bound", sweep.server_bound, 0),
    R.OTHERS,
])]


def _limits(rows):
    """'N server bound, N loadgen limited, N neither' of rows."""
    srv = sum(1 for r in rows if sweep.server_bound(r) == 1)
    lg = sum(1 for r in rows if sweep.loadgen_limited(r) == 1)
    return f"{srv} server bound, {lg} loadgen limited, {len(rows) - srv - lg} neither"


def _are(rows):
    return "1 row is" if len(rows) == 1 else f"{len(rows)} rows are"


def _oneway(outdir):
    """{series: (sockperf one-way msg/s, our knee / it)} from the anchors' knee rows."""
    out = {}
    for r in (R.rows(outdir, "anchors.saturation.csv") or []):
        ow = R.num(r, "sockperf_oneway_mps")
        if ow and r.get("rate_kind") == "knee":
            out[r.get("series", "")] = (ow, R.ratio(R.num(r, "offered_rate_msgs"), ow))
    return out


def reading_saturation(outdir):
    rows = list(R.need(outdir, "saturation.csv").values())
    n, f = R.n, R.num
    knees = mark_knees(rows)
    oneway = _oneway(outdir)
    lines = ["| server | knee (msg/s) | ACK p50 there (µs) | server CPU per msg there (µs) | "
             "first failing (msg/s) | why it failed | rows past the knee | "
             "knee / sockperf one-way |", "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    notes, lg_below, tails = [], False, []
    for s, (k, first) in knees.items():
        rs = [r for r in rows if series_of(r) == s]
        name = SERIES[s][2] if s in SERIES else s
        below = [r for r in rs if k is None or rate_of(r) <= k]
        lg = [r["label"] for r in below if sweep.loadgen_limited(r) == 1]
        tails += [r for r in below if f(r, "loadgen_bound") == 1 and
                  sweep.loadgen_limited(r) == 0]
        if first is None:  # no knee: every rate passed
            lines.append(f"| {name} | none up to {n(k)} | n/a | n/a | none | n/a | none | n/a |")
            notes.append(f"{name} passed every rate run, up to {n(k)} msg/s: no knee in this "
                         "run" + (f"; of its rows, {_are(lg)} *loadgen limited* "
                                  f"({', '.join(lg)})." if lg else "."))
            lg_below = lg_below or bool(lg)
            continue
        at = next((r for r in rs if rate_of(r) == k), None)
        fail = next(r for r in rs if rate_of(r) == first)
        past = [r for r in rs if k is None or rate_of(r) > k]
        ow = oneway.get(s)
        lines.append(
            f"| {name} | {n(f(at, 'offered_rate_msgs')) if at else 'none'} | "
            f"{n(f(at, 'ack_p50_us')) if at else 'n/a'} | "
            f"{n(f(at, 'server_cpu_us_per_msg'), 2) if at else 'n/a'} | "
            f"{n(f(fail, 'offered_rate_msgs'))} | {'; '.join(sweep.failures(fail))} | "
            f"{_limits(past)} | {n(ow[1], 2) if ow else 'n/a'} |")
        if at is None:
            notes.append(f"{name} failed from its lowest rate on: no knee in this run.")
        if lg:
            lg_below = True
            notes.append(f"At or below the knee of {name}, {_are(lg)} *loadgen limited* "
                         f"({', '.join(lg)}): the load generator, not the server, may have set "
                         "that knee.")
        noise = [r["label"] for r in past if sweep.passes(r)]
        if noise:
            notes.append(f"Past the knee of {name}, {', '.join(noise)} passed: the run was "
                         "noisy there (others CPU).")
    if not lg_below:
        notes.append("No row at or below a knee, nor of a series without one, is *loadgen "
                     "limited*: the load generator sent what was due and its lag p50 stayed "
                     "a small part of the ACK p50.")
    if tails:
        def lag99(r):
            return max(f(r, "lag_p99_us") or 0, f(r, "rx_lag_p99_us") or 0)
        worst = max(tails, key=lag99)
        notes.append(f"At or below the knees, {_are(tails)} *loadgen bound* by its own p99 "
                     "self-check while not *loadgen limited*: its send or receive lag p99 is "
                     f"a large part of the ACK p99 (the largest, {n(lag99(worst))} µs, in "
                     f"{worst['label']}). "
                     "That is time a message waited before the load generator sent or read "
                     "it: its core taken by the kernel, other processes or the host (steal), "
                     "or, over TCP near the knee, a socket buffer full because the server fell "
                     "behind. It is in the p99 of those rows, not in the rate or the p50 the "
                     "criterion judges.")
    if "tcp-epoll" not in knees:
        notes.append("This run has no `tcp-epoll` rows (the series runs when the `tcp_server` "
                     "measured offers `--io epoll`).")
    ows = [f"{n(ow)} msg/s for {s}" for s, (ow, _) in oneway.items() if s in knees]
    if ows:
        notes.append("sockperf's one-way rate on the same cores, with each series' frame "
                     f"size: {', '.join(ows)}.")
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


READINGS = [("saturation", reading_saturation)]
