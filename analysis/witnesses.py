"""witnesses: sockperf and iperf3, the third-party tools the benchmark's figures are set
beside (the anchors): sockperf's round trip over the same loopback or the same emulated path,
iperf3's UDP loss through the same kind of loss rule, iperf3's TCP rate through a bottleneck.
Each runs its own server on a free port and is stopped after.
"""
import contextlib
import json
import re
import signal
import subprocess
import tempfile

from analysis.benchkit import BenchError
from pylib import procs
from pylib.ports import HOST, free_port, wait_port


def _clean(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _sockperf(proto, mode, size, seconds, wraps, server_out=subprocess.DEVNULL, host=HOST):
    """Runs sockperf's server (under wraps[0]) on host and its client in mode (under
    wraps[1], e.g. inside an emulated path) against it; returns the client's output. The
    server is stopped with SIGINT, after which it prints its own totals into server_out."""
    port = free_port("tcp" if proto == "tcp" else "udp")
    tcp = ["--tcp"] if proto == "tcp" else []
    srv = procs.spawn([*wraps[0], "sockperf", "server", "-i", host, "-p", str(port), *tcp],
                      stdout=server_out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proto)
        r = procs.run([*wraps[1], "sockperf", *mode, "-i", host, "-p", str(port), "-m",
                       str(size), "-t", str(seconds), *tcp], seconds + 30)
    finally:
        procs.stop(srv, signal.SIGINT, 5)
    return _clean(r.stdout + r.stderr)


def sockperf_rtt(proto, size, seconds, mps=None, wraps=((), ()), host=HOST, paced=False):
    """sockperf over loopback (or to host): full round trip (--full-rtt) percentiles in us.
    Without mps, ping-pong (one message in flight, as fast as it goes: the floor); with mps,
    under-load at that many messages per second, each one answered (--reply-every 1), or
    with paced, ping-pong at that rate (--mps: the next message leaves on schedule once the
    answer to the last one is in; one client thread, where under-load has a sending thread
    and a receiving one). wraps: the commands its server and its client run under
    (taskset -c ..., linkem ... --). Also sent_mps and recv_mps: the messages sockperf sent
    and got answered per second of its measured window (a rate it cannot keep shows there)."""
    if mps is None:
        mode = ["ping-pong"]
    elif paced:
        mode = ["ping-pong", "--mps", str(int(mps))]
    else:
        mode = ["under-load", "--mps", str(int(mps)), "--reply-every", "1"]
    text = _sockperf(proto, [*mode, "--full-rtt"], size, seconds, wraps, host=host)
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
    m = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); "
                  r"ReceivedMessages=(\d+)", text)
    if not m or float(m.group(1)) <= 0:
        raise BenchError(f"sockperf output has no valid duration:\n{text[-800:]}")
    res["sent_mps"] = round(int(m.group(2)) / float(m.group(1)), 1)
    res["recv_mps"] = round(int(m.group(3)) / float(m.group(1)), 1)
    return res


def sockperf_oneway(proto, size, seconds, wraps=((), ())):
    """sockperf throughput over loopback: one socket sending size-byte messages as fast as
    it can for seconds, nothing answered. Returns sent_mps (the client's rate) and recv_mps
    (the messages the server received per second: over UDP what it kept up with, over TCP
    the same as sent). TCP runs with TCP_NODELAY, as the chat does (sockperf's throughput
    mode would otherwise let Nagle pack messages together)."""
    with tempfile.TemporaryFile() as out:
        nodelay = ["--tcp-avoid-nodelay"] if proto == "tcp" else []
        text = _sockperf(proto, ["throughput", *nodelay], size, seconds, wraps, out)
        out.seek(0)
        srv = _clean(out.read().decode("utf-8", "replace"))
    m = re.search(r"Total of (\d+) messages sent in ([\d.]+) sec", text)
    got = re.search(r"Total (\d+) messages received", srv)
    if not m or not got or float(m.group(2)) <= 0:
        raise BenchError(f"sockperf throughput output unreadable:\n{text[-500:]}\n{srv[-300:]}")
    took = float(m.group(2))
    return {"sent_mps": round(int(m.group(1)) / took, 1),
            "recv_mps": round(int(got.group(1)) / took, 1)}


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


@contextlib.contextmanager
def iperf3_server(host=HOST):
    """An iperf3 server on host and a free port for the with block; yields the port."""
    port = free_port()
    srv = procs.spawn(["iperf3", "-s", "-B", host, "-p", str(port)])
    try:
        wait_port(port, "tcp")
        yield port
    finally:
        procs.stop(srv, signal.SIGTERM, 5)


def iperf3_tcp_argv(host, port, seconds, omit=1, cc=None):
    """The iperf3 client of one TCP flow to host:port (client to server): seconds measured
    after omit seconds left out (slow start), with congestion control cc (default: the
    system's), JSON on stdout."""
    return ["iperf3", "-c", host, "-p", str(port), "-t", str(seconds), "-O", str(omit),
            *(["-C", cc] if cc else []), "--json"]


def iperf3_tcp_result(text):
    """{mbps, retransmits} of an iperf3 TCP client's JSON: the rate its server received
    over the measured seconds, and the sender's retransmitted segments."""
    try:
        end = json.loads(text)["end"]
        return {"mbps": round(end["sum_received"]["bits_per_second"] / 1e6, 3),
                "retransmits": end["sum_sent"].get("retransmits", "")}
    except (ValueError, KeyError, TypeError) as e:
        raise BenchError(f"iperf3 output unreadable ({e}): {text[-500:]}")
