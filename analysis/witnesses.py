"""witnesses: sockperf and iperf3, the third-party tools the benchmark's figures are set
beside (the anchors): sockperf's round trip over the same loopback, iperf3's UDP loss through
the same kind of loss rule. Each runs its own server on a free port and is stopped after.
"""
import json
import re
import signal

from analysis.benchkit import BenchError
from pylib import procs
from pylib.ports import HOST, free_port, wait_port


def sockperf_rtt(proto, size, seconds, mps=None):
    """sockperf over loopback: full round trip (--full-rtt) percentiles in us. Without mps,
    ping-pong (one message in flight, as fast as it goes: the floor); with mps, under-load
    at that many messages per second, each one answered (--reply-every 1)."""
    port = free_port("tcp" if proto == "tcp" else "udp")
    tcp = ["--tcp"] if proto == "tcp" else []
    srv = procs.spawn(["sockperf", "server", "-i", HOST, "-p", str(port), *tcp])
    try:
        wait_port(port, proto)
        mode = ["ping-pong"] if mps is None else ["under-load", "--mps", str(int(mps)),
                                                  "--reply-every", "1"]
        r = procs.run(["sockperf", *mode, "-i", HOST, "-p", str(port), "-m", str(size),
                       "-t", str(seconds), "--full-rtt", *tcp], seconds + 30)
    finally:
        procs.stop(srv, signal.SIGINT, 5)
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    res = {}
    for key, rx in (("p50_us", r"percentile 50\.000 =\s*([\d.]+)"),
                    ("p99_us", r"percentile 99\.000 =\s*([\d.]+)"),
                    ("p999_us", r"percentile 99\.900 =\s*([\d.]+)"),
                    ("max_us", r"<MAX> observation =\s*([\d.]+)"),
                    ("mean_us", r"avg-(?:latency|rtt)=([\d.]+)"),
                    ("observations", r"Total (\d+) observations")):
        m = re.search(rx, text)
        if not m:
            raise BenchError(f"sockperf output has no {key}:\n{text[-800:]}")
        res[key] = float(m.group(1))
    return res


def iperf3_udp(size, rate_pps, seconds, before=None):
    """iperf3 -u at size-byte datagrams and rate_pps packets/s; returns sent, lost, loss %.
    before(port), when given, runs once the server listens (to install loss rules)."""
    port = free_port()
    srv = procs.spawn(["iperf3", "-s", "-B", HOST, "-p", str(port)])
    try:
        wait_port(port, "tcp")
        if before:
            before(port)
        bps = int(rate_pps * size * 8)
        r = procs.run(["iperf3", "-c", HOST, "-p", str(port), "-u", "-l", str(size),
                       "-b", str(bps), "-t", str(seconds), "--json"], seconds + 30)
    finally:
        procs.stop(srv, signal.SIGTERM, 5)
    try:
        d = json.loads(r.stdout)
        s = d["end"]["sum"]
        return {"port": port, "packets": s["packets"], "lost": s["lost_packets"],
                "lost_pct": s["lost_percent"], "jitter_us": s["jitter_ms"] * 1000.0,
                "out_of_order": s.get("out_of_order", 0)}
    except (ValueError, KeyError) as e:
        raise BenchError(f"iperf3 output unreadable ({e}): {r.stdout[-500:]} {r.stderr[-300:]}")
