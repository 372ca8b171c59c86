#!/usr/bin/env python3
"""Runs every tests/integration/test_*.py with unittest and prints a closing summary.

Usage: run.py [--summary-file F] [-k PATTERN] [module ...]
The summary file gets "passed failed" for scripts/run-tests.sh.
"""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# Import roots, set once, here: the repository (pylib, analysis) and this folder (harness and
# the test modules, imported by name).
sys.path[0:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--summary-file")
    ap.add_argument("-k", dest="pattern", action="append", default=[])
    ap.add_argument("modules", nargs="*", help="test modules, e.g. test_tcp_server")
    args = ap.parse_args()

    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [f"*{p}*" for p in args.pattern]
    if args.modules:
        suite = loader.loadTestsFromNames([m.removesuffix(".py") for m in args.modules])
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"integration: {passed} passed, {failed} failed, {len(result.skipped)} skipped")
    if args.summary_file:
        with open(args.summary_file, "w") as f:
            f.write(f"{passed} {failed}\n")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
