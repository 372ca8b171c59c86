"""scenarios: one module per benchmark scenario, which is also one section of REPORT.md.
bench.py finds them here (every module of this folder), runs and lists them in ORDER, and
report.py renders their tables and readings in that order. Adding a scenario means adding a
module here, its gnuplot scripts in analysis/charts/ and its section (with the generated
blocks' markers) in REPORT.md; no central list to edit.

A scenario module provides:
  ORDER      int: its place in the run, in --list and in tables.md (REPORT.md places the
             blocks by their markers). Gaps of 10 leave room.
  points(quick) -> [analysis.points.Point]: its points, full or quick (bench-quick), built
             with analysis.points.point(); the scenario name is the module's name. A section
             that reads other scenarios' CSVs has no points (return []). A point may carry
             cols (columns known before the run), needs_netns, unavailable (why it
             cannot run here at all: skipped), host, server_host, server_args,
             server_wrap / loadgen_wrap (a command each program runs under: taskset, a link
             emulator: analysis/linkpath.py), and shards (the load generator as that many
             processes, merged: analysis/shards.py) without any change to the runner.
  TABLES     [(block name, "x.csv", columns)]: each table, its CSV in the results folder and
             its columns (report.LABEL first, then report.col(...) or (header, fn(row), nd));
             tests/integration/test_report.py must know every column header.
  READINGS   [(name, fn(outdir) -> str)]: the prose of block reading_<name>, from the CSVs
             (report.by_label, report.num, report.n, report.rng...), ending with a newline.
  CHARTS     (names,): gnuplot scripts analysis/charts/<name>.gp, drawn into <name>.png from
             the CSVs the script names (dir."/x.csv"); skipped while a CSV is missing.
and, when it needs them:
  RUN_LAST   True: its points run after every other scenario's (--list shows them last; the
             report keeps its ORDER): a scenario whose aftermath would disturb the others
  extra_s(pt) -> float          seconds a point takes beyond points.estimate_s() (--list)
  after_s(quick) -> float       seconds of work after its points (--list)
  after_lines(quick) -> [str]   what that work is, one line each (--list)
  around_loadgen(pt, srv)       a context manager around the loadgen run of one point, once
                                the server runs; yields a dict of columns it fills for the row
                                (loss: the nftables rules and their drop counts)
  after_point(pt, row, quick)   more measurement for one point, its columns added to row
                                (loss: the iperf3 anchor); an exception fails the point
  run(ctx, pts)                 the whole scenario's loop, instead of one ctx.point(pt) per
                                point: an adaptive sweep, or work after the points (anchors).
                                ctx is bench.Run: ctx.point(pt, into=None) -> row or None
                                (into: the rows of <into>.csv instead), ctx.rows(),
                                ctx.write_rows(), ctx.fail(what), ctx.quick
"""
import importlib
import os
import pkgutil

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIRED = ("ORDER", "points", "TABLES", "READINGS", "CHARTS")

_loaded = None


def load():
    """Every scenario module, in ORDER. Raises ImportError when a module breaks the
    contract (a missing attribute, an ORDER or block name used twice)."""
    global _loaded
    if _loaded is None:
        mods = [importlib.import_module(f"{__name__}.{m.name}")
                for m in pkgutil.iter_modules([HERE]) if not m.name.startswith("_")]
        for mod in mods:
            missing = [a for a in REQUIRED if not hasattr(mod, a)]
            if missing:
                raise ImportError(f"{mod.__file__}: a scenario module lacks {missing}")
            mod.NAME = mod.__name__.rsplit(".", 1)[1]
        mods.sort(key=lambda m: m.ORDER)
        for what, names in (("ORDER", [m.ORDER for m in mods]),
                            ("table", [t[0] for m in mods for t in m.TABLES]),
                            ("reading", [r[0] for m in mods for r in m.READINGS]),
                            ("chart", [c for m in mods for c in m.CHARTS])):
            twice = sorted({str(x) for x in names if names.count(x) > 1})
            if twice:
                raise ImportError(f"scenarios: {what} {', '.join(twice)} claimed twice")
        _loaded = mods
    return _loaded
