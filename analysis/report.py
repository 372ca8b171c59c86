"""report: REPORT.md's generated tables and readings, computed from the CSVs of a results
folder; the shared machinery that every scenario module (analysis/scenarios/) uses to
declare its tables (TABLES) and write its readings (READINGS).

Each table lives in REPORT.md between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->`; update_report() replaces only what is between the markers.
Every table's first column is the run's label (the row key in the CSV it names), so that
tests/integration/test_report.py can recompute every cell from results/ on its own.

Readings: prose cannot be regenerated, so every number or comparison the report makes about
a run is written by a function of its scenario module, from the CSVs, into a block named
reading_<name> (no table; the test re-renders them from results/ and compares).
"""
import os
import sys

from analysis import scenarios
from analysis.benchkit import read_csv
from pylib import markers


def rows(outdir, name):
    """The rows of outdir/name (a CSV), or None when the run did not write it."""
    path = os.path.join(outdir, name)
    return read_csv(path) if os.path.exists(path) else None


def by_label(outdir, source):
    """{label: row} of a CSV ({} when absent)."""
    return {r.get("label", ""): r for r in (rows(outdir, source) or [])}


class NoData(Exception):
    """Raised by a reading whose CSV this run did not produce (args[0]: the CSV's name); its
    block then says so."""


def need(outdir, source):
    """by_label() of a CSV a reading cannot do without: raises NoData when it is absent or
    empty."""
    found = by_label(outdir, source)
    if not found:
        raise NoData(source)
    return found


def num(row, key):
    """A cell as a float, None when empty or not a number."""
    v = row.get(key, "")
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def ratio(a, b, scale=1.0):
    return None if a is None or b in (None, 0) else scale * a / b


def lost_pct(r, key="lost"):
    return ratio(num(r, key), num(r, "sent"), 100.0)


def udpish(rows_by_label):
    return [r for r in rows_by_label.values() if r.get("proto") in ("udp", "hybrid")]


def sizes(rows_by_label, proto, key="clients"):
    """The sorted distinct integer values of key over the rows of proto."""
    return sorted({int(num(r, key)) for r in rows_by_label.values()
                   if r.get("proto") == proto and num(r, key) is not None})


# --- tables ---


def fmt(v, nd=0):
    """A number as the tables print it: nd decimals, "n/a" when missing."""
    if v is None or v == "":
        return "n/a"
    if isinstance(v, str):
        return v
    if nd == 0:
        return str(int(round(v)))
    return f"{v:.{nd}f}"


# Column: (header, function(row) -> value, decimals). A string value is printed as is.
def col(header, key, nd=0):
    return (header, lambda r: num(r, key), nd)


def ms(header, key, nd=2):
    """A column of a µs figure shown in milliseconds (the emulated paths' scale)."""
    return (header, lambda r: ratio(num(r, key), 1000.0), nd)


def series_of(row):
    """A row's server series (tcp, tcp-epoll, udp, hybrid): its series column, or its proto
    in a run from before the column existed (when proto named the server)."""
    return row.get("series") or row.get("proto", "")


LABEL = ("label", lambda r: r.get("label", ""), 0)
SERVER = ("server", series_of, 0)
OTHERS = ("others CPU (%)", lambda r: num(r, "other_cpu_pct"), 0)
PROTO = ("proto", lambda r: r.get("proto", ""), 0)


def render_table(outdir, source, columns):
    data = rows(outdir, source)
    if not data:
        return (f"No data: `{source}` was not produced by this run (a skipped scenario: the "
                "machine table's netns row says why).\n")
    lines = [f"Source: `results/{source}`", "",
             "| " + " | ".join(c[0] for c in columns) + " |",
             "|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(columns))) + "|"]
    for r in data:
        lines.append("| " + " | ".join(fmt(fn(r), nd) for _, fn, nd in columns) + " |")
    return "\n".join(lines) + "\n"


def render_machine(outdir):
    path = os.path.join(outdir, "machine.txt")
    if not os.path.exists(path):
        return "No data: `machine.txt` was not produced by this run.\n"
    lines = ["Source: `results/machine.txt`", "", "| fact | value |", "| --- | --- |"]
    with open(path) as f:
        for line in f:
            if ":" in line:
                k, v = line.rstrip("\n").split(":", 1)
                lines.append(f"| {k} | {v.strip().replace('|', '/')} |")
    return "\n".join(lines) + "\n"


# --- readings: helpers for prose ---


def n(v, nd=0):
    """A number for prose: thousands separators, nd decimals, "n/a" when missing."""
    if v is None:
        return "n/a"
    return f"{v:,.{nd}f}"


def rng(values, nd=0, unit=""):
    """'a to b' (or just 'a' when they round alike) for prose."""
    lo, hi = n(min(values), nd), n(max(values), nd)
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def cmp(a, b, more="higher", less="lower"):
    """'higher' / 'lower' / 'the same' for a against b."""
    if a is None or b is None:
        return "not comparable"
    return "the same" if a == b else (more if a > b else less)


# --- every block, in the scenarios' order ---


def render_readings(outdir):
    """{reading_<name>: prose} for every reading of every scenario. A reading that cannot
    be written from what the run produced says so (and why on stderr) rather than stopping
    a ten-minute run at its last step."""
    out = {}
    for scn in scenarios.load():
        for name, fn in scn.READINGS:
            try:
                out[f"reading_{name}"] = fn(outdir)
            except NoData as e:
                out[f"reading_{name}"] = f"No data: `{e.args[0]}` was not produced by this run.\n"
            except (ArithmeticError, LookupError, TypeError, ValueError) as e:
                print(f"report: reading {name} not written: {e!r}", file=sys.stderr)
                out[f"reading_{name}"] = (f"No data: this run's CSVs do not give the {name} "
                                          "reading (a failed or skipped point).\n")
    return out


def render_all(outdir):
    """{name: markdown} for every generated block: the machine table, then every
    scenario's tables, then every scenario's readings."""
    out = {"machine": render_machine(outdir)}
    for scn in scenarios.load():
        for name, source, columns in scn.TABLES:
            out[name] = render_table(outdir, source, columns)
    out.update(render_readings(outdir))
    return out


def update_report(path, blocks):
    """Replaces the text between each pair of markers; returns how many were replaced.
    Markers missing from the file are left missing (the prose decides where tables go)."""
    return len(markers.update_file(path, blocks))
