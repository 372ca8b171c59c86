"""sweep: the saturation scenario's decisions, as pure functions of its rows: whether a row
passes the criterion, who limited it, which offered rate to run next, and where the knee is.
No I/O, so that tests/integration/test_analysis.py drives them with synthetic rows.

The criterion (issue 14): a row passes when the server acknowledged at least 99.5 % of the
offered rate with an ACK p50 of at most 10 ms and, over UDP (plain or hybrid), lost at most
0.5 % of the messages. The knee of a series is the highest passing rate below its lowest
failing one.
"""
import dataclasses
import math

ACKED_MIN_PCT = 99.5  # acknowledged / offered
P50_MAX_US = 10000.0  # ACK p50
LOSS_MAX_PCT = 0.5  # UDP and hybrid: lost / sent
CORE_BUSY_MIN_PCT = 90.0  # the server's cores, for a row to be server bound
# The load generator's share of a row's figures, judged on what the criterion looks at (the
# rate and the p50): as loadgen's own self-check, but on the medians (README, loadgen).
DUE_MIN = 0.95  # sent / due
LAG_FLOOR_US, LAG_SHARE = 100.0, 0.25  # its lag p50 against max(floor, share x ACK p50)


def _num(row, key):
    try:
        return float(row.get(key, ""))
    except (TypeError, ValueError):
        return None


def failures(row):
    """Why the row fails the criterion: a list of short reasons, empty when it passes. A
    figure the row lacks fails it (a run that measured nothing kept up with nothing)."""
    out = []
    offered, acked = _num(row, "offered_rate_msgs"), _num(row, "acked_rate_msgs")
    if not offered or acked is None:
        out.append("no rates")
    elif 100.0 * acked / offered < ACKED_MIN_PCT:
        out.append(f"acked {100.0 * acked / offered:.1f} % < {ACKED_MIN_PCT} %")
    p50 = _num(row, "ack_p50_us")
    if p50 is None or p50 <= 0:
        out.append("no ACK p50")
    elif p50 > P50_MAX_US:
        out.append(f"ACK p50 {p50 / 1000:.1f} ms > {P50_MAX_US / 1000:.0f} ms")
    if row.get("proto") in ("udp", "hybrid"):
        sent, lost = _num(row, "sent"), _num(row, "lost")
        if sent and lost is not None and 100.0 * lost / sent > LOSS_MAX_PCT:
            out.append(f"lost {100.0 * lost / sent:.2f} % > {LOSS_MAX_PCT} %")
    return out


def passes(row):
    return not failures(row)


def loadgen_limited(row):
    """1 when the load generator may have set the figures the criterion judges: it sent
    under 95 % of the messages due (then it, not the server, capped the acknowledged
    rate), or its own send or receive lag
    p50 exceeds max(100 µs, 25 % of the ACK p50) (the p50 is then partly its own delay);
    0 otherwise; None without the figures. loadgen's self-check (loadgen_bound) applies the
    same rule to the p99, where the milliseconds the host steals from its virtual core land
    too: the criterion does not look at the p99, so neither does this verdict."""
    due, p50 = _num(row, "sent_share_of_due"), _num(row, "ack_p50_us")
    lags = [_num(row, k) for k in ("lag_p50_us", "rx_lag_p50_us")]
    if due is None or p50 is None or None in lags:
        return None
    return int(due < DUE_MIN or max(lags) > max(LAG_FLOOR_US, LAG_SHARE * p50))


def server_bound(row):
    """1 when the server's cores were busy (>= 90 %, softirq included) while the load
    generator kept up (loadgen_limited says it did not set the row's figures), 0
    otherwise; None without the figures."""
    busy, lg = _num(row, "server_core_busy_pct"), loadgen_limited(row)
    if busy is None or lg is None:
        return None
    return int(busy >= CORE_BUSY_MIN_PCT and lg == 0)


def knee(done):
    """(knee, first failing rate) of {offered rate: passed}: the highest passing rate below
    the lowest failing one, and that failing rate (None when nothing failed; the knee is then
    the highest rate run, a lower bound). A rate that passed above a failure is noise and
    does not move the knee."""
    fails = [r for r, ok in done.items() if not ok]
    first_fail = min(fails) if fails else None
    below = [r for r, ok in done.items() if ok and (first_fail is None or r < first_fail)]
    return (max(below) if below else None), first_fail


@dataclasses.dataclass
class Plan:
    """How one series is swept: start, then start x factor... up to cap until a rate fails;
    then bisect between the knee and the first failure until they are within resolution
    (a share of the knee; None: no bisection); then rates x past_factor above the highest
    run until `past` rates lie above the knee. Below a failing start: start / factor...
    down to floor. At most max_points rates in all; then each rate of `also` that the
    sweep did not run (the anchors' fixed rate), whatever it passes or fails."""
    start: int = 5000
    factor: float = 2.0
    cap: int = 320000
    floor: int = 625
    resolution: float = 0.125
    past: int = 3
    past_factor: float = 1.5
    max_points: int = 14
    also: tuple = ()


def _round(x, digits):
    """x rounded to `digits` significant digits, as an int."""
    step = 10 ** max(0, int(math.floor(math.log10(x))) - digits + 1)
    return int(round(x / step) * step)


def _between(lo, hi):
    """A round rate strictly between lo and hi, near their middle (None when none is)."""
    for digits in (2, 3, 4):
        mid = _round((lo + hi) / 2.0, digits)
        if lo < mid < hi:
            return mid
    return None


def next_rate(done, plan):
    """The next offered rate of a series, given {rate: passed} of the rates run so far;
    None once its sweep is over."""
    nxt = _sweep(done, plan)
    return nxt if nxt is not None else next((r for r in plan.also if r not in done), None)


def _sweep(done, plan):
    if len(done) >= plan.max_points:
        return None
    if not done:
        return plan.start
    k, f = knee(done)
    if f is None:  # nothing failed yet: go up
        nxt = _round(max(done) * plan.factor, 3)
        return nxt if nxt <= plan.cap else None
    if k is None:  # the lowest rate run failed: go down
        nxt = _round(min(done) / plan.factor, 3)
        return nxt if nxt >= plan.floor and nxt not in done else None
    if plan.resolution is not None and (f - k) / k > plan.resolution:
        mid = _between(k, f)
        if mid is not None and mid not in done:
            return mid
    if sum(1 for r in done if r > k) < plan.past:
        nxt = _round(max(done) * plan.past_factor, 3)
        return nxt if nxt <= plan.cap and nxt not in done else None
    return None
