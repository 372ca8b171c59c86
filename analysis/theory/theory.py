#!/usr/bin/env python3
"""theory: regenerates every capture and reading that THEORY.md quotes (make theory).

Runs as root inside a private network namespace (unshare -n, pylib.netns, as
analysis/bench.py does), so the captures hold only our own packets and the loss rules never
touch the host. One module per experiment, each returning its data; render.py writes the
data to results/theory/data/<experiment>.json and the text files from it:

  environment   environment.txt   kernel, TCP knobs of the namespace, tool versions
  sessions      tcp_session.txt   tcpdump decode of tcp_client talking to tcp_server:
                                  handshake, HELLO/WELCOME, MSG/ACK, BYE, FIN exchange; then
                                  a per-packet table (pcap.py, our own decoder)
                udp_session.txt   the same for udp_client and udp_server (one datagram each)
                headers.txt       header sizes read from both captures (IP, TCP, UDP)
  loss          loss_ss.txt       ss -tin of one loadgen TCP connection at 0, 2 and 10 %
                                  injected loss, with Reno and with BBR, the kernel's
                                  retransmission counters (nstat) and loadgen's ACK latency
  flow          flow_control.txt  a client that stops reading: its window closes, the server's
                                  send buffer and then its bounded queue fill, and the
                                  slow-consumer policy cuts it off
  memory        memory.txt        tcp_server and udp_server with 0, N and 2N idle clients: RSS,
                                  threads, virtual size, kernel socket memory (ss -m skmem,
                                  sockstat, slabinfo)
  path          path_session.txt  tcp_client and udp_client through bin/linkem --delay 25 (a
                                  50 ms round trip), captured inside linkem's namespace: what
                                  each exchange costs in round trips

Then, when it wrote into results/theory/, it rewrites THEORY.md's generated blocks from the
data (render.update_doc; --update-doc does only that, without root, and also the blocks
that show make bench's figures, from results/).

Python 3 standard library, tcpdump, ss, nstat, nft; bin/linkem and /dev/net/tun (path).
Usage: theory.py [--out DIR] [--clients N] [--seconds S] [--only LIST] [--update-doc]
       theory.py --bench-figures   (the make bench figures THEORY.md quotes)
"""
import os
import sys

# The repository is the import root (pylib/, analysis/): set once, here, for this process.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from analysis import benchkit as bk  # noqa: E402
from analysis import lossrules  # noqa: E402
from analysis.theory import environment, flow, loss, memory, path, render, sessions  # noqa: E402
from analysis.theory.common import log  # noqa: E402
from pylib import netns, procs  # noqa: E402

RESULTS = os.path.join(bk.ROOT, "results", "theory")
# --only name -> the experiment's module, in the order make theory runs them
EXPERIMENTS = {"env": environment, "sessions": sessions, "loss": loss, "flow": flow,
               "memory": memory, "path": path}
PROGRAMS = ("tcp_server", "udp_server", "tcp_client", "udp_client", "loadgen", "linkem")


def name(mod):
    return mod.__name__.rsplit(".", 1)[1]


def save(outdir, mod, data):
    for path in render.save(outdir, name(mod), data):
        log(f"wrote {os.path.relpath(path, bk.ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--clients", type=int, default=1000, help="idle clients for memory.txt")
    ap.add_argument("--seconds", type=float, default=4.0, help="loadgen run per loss level")
    ap.add_argument("--only", help="comma list of: env,sessions,loss,flow,memory,path")
    ap.add_argument("--bench-figures", action="store_true",
                    help="print the make bench figures THEORY.md quotes (from results/)")
    ap.add_argument("--update-doc", action="store_true",
                    help="only rewrite THEORY.md's generated blocks from --out, then exit")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else set(EXPERIMENTS)
    if only - set(EXPERIMENTS):
        print(f"theory: unknown experiment(s) {', '.join(sorted(only - set(EXPERIMENTS)))}; "
              f"choose from {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    if args.bench_figures:
        print(render.bench_figures(os.path.dirname(RESULTS)))
        return 0
    if args.update_doc:
        done = render.update_doc(args.out) + render.update_doc_bench(os.path.dirname(RESULTS))
        log(f"THEORY.md: rewrote {', '.join(done) or 'nothing'}")
        return 0
    ok, why = netns.can_netns()
    if not ok or not shutil.which("tcpdump") or not shutil.which("nstat"):
        why = why or "tcpdump or nstat not installed (scripts/deps.sh bench)"
        print(f"theory: skipped: {why}. The captures need root (a private network namespace, "
              "nftables, tcpdump on lo): run 'make theory' as root.", file=sys.stderr)
        return 0
    if not netns.in_private_netns():
        netns.reexec_in_netns(__file__, sys.argv[1:])
    for b in PROGRAMS:
        if not os.access(os.path.join(bk.BIN, b), os.X_OK):
            print(f"theory: missing bin/{b}: build it first (make all)", file=sys.stderr)
            return 1
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="chatbench-theory-")
    try:
        netns.setup_netns()
        t0 = time.monotonic()
        env = environment.capture("private namespace (unshare -n)") if "env" in only else None
        if env is not None:
            save(args.out, environment, env)
        if "sessions" in only:
            save(args.out, sessions, sessions.capture(tmp))
        if "loss" in only:
            save(args.out, loss, loss.capture(tmp, args.seconds))
        if "flow" in only:
            save(args.out, flow, flow.capture(tmp))
        if "memory" in only:
            save(args.out, memory, memory.capture(tmp, args.clients))
        if "path" in only:
            save(args.out, path, path.capture(tmp))
        if env is not None:
            save(args.out, environment, environment.finish(env, time.monotonic() - t0))
    except (bk.BenchError, subprocess.SubprocessError, OSError) as e:
        print(f"theory: failed: {e}", file=sys.stderr)
        return 1
    finally:
        lossrules.clear_loss()
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if os.path.abspath(args.out) == RESULTS and only == set(EXPERIMENTS):
        done = render.update_doc(args.out)
        log(f"THEORY.md: rewrote the generated blocks {', '.join(done) or '(none found)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
