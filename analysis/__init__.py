"""analysis: chatbench's benchmark and theory captures (a package; the repository is the
import root, see pylib/__init__.py).

  bench.py        entry point and orchestrator of `make bench`: finds the scenarios, lists,
                  runs them, draws the charts, writes the tables and REPORT.md's blocks
  scenarios/      one module per benchmark scenario / REPORT.md section (the contract is in
                  scenarios/__init__.py)
  points.py       one point: its loadgen arguments, its time estimate, how it is run
  pinning.py      server and load generator on separate cores, and each side's core busy share
  shards.py       sharded runs: --start-at, the shards under mpirun (or printed for srun,
                  kubectl), loadgen merge; `python3 -m analysis.shards` for users
  sweep.py        the saturation sweep's criterion, verdicts and next rate (pure functions)
  benchkit.py     the programs under test, servers on free ports, /proc sampling, loadgen
  lossrules.py    nftables loss rules inside the private namespace
  witnesses.py    sockperf and iperf3, the third-party tools our figures are set beside
  machine.py      machine facts and versions (results/machine.txt)
  report.py       the shared table and reading machinery of REPORT.md
  charts/         gnuplot scripts (style.gp is loaded by each)
  theory/         make theory: captures and readings THEORY.md quotes
"""
