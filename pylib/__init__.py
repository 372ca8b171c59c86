"""pylib: the Python helpers that analysis/ (the benchmark, the theory captures) and
tests/integration/ (the integration suite) share. Python 3 standard library only.

Import root: the repository. Modules are imported as packages, `pylib.ports`,
`analysis.benchkit`, `analysis.scenarios.scale`, never through a folder put on sys.path. The
entry points put the repository first on sys.path, once, in their first lines, and nothing
else edits sys.path:
  analysis/bench.py, analysis/theory/theory.py   (the benchmark and make theory)
  tests/integration/run.py, tests/integration/valgrind_session.py,
  tests/integration/mpi_hosts.py   (the tests)

  pylib.ports    a free port; waiting until a port is bound (read from /proc/net, no connect)
  pylib.procs    processes we start: spawn (dies with us, roomy descriptor limit), run with a
                 deadline, stop (signal, wait, kill), cleanup of whatever is left at exit
  pylib.procfs   what /proc says about a process (status fields, descriptors, CPU) and the host
  pylib.netns    a private network namespace: can we make one, re-executing a script inside
                 `unshare -n`, and its set-up (lo up, roomy per-namespace sysctls)
  pylib.markers  `<!-- BEGIN GENERATED: name -->` blocks of REPORT.md and THEORY.md: read,
                 format, replace
"""
