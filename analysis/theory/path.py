"""path: one tcp_client and one udp_client session through an emulated path of 50 ms round
trip (bin/linkem --delay 25 each way), as THEORY.md section 2.3 shows them. The server runs in
make theory's namespace (linkem's outside) on linkem's outer address; the client runs inside
linkem's namespace, where tcpdump captures linkem's device: the times are the client's own,
so each exchange shows as the round trip it costs. pcap.decode() reads the capture.
"""
import os

from analysis import benchkit as bk
from analysis import linkpath
from analysis.theory import pcap
from analysis.theory.common import sh
from pylib import procs

DELAY_MS = 25  # each way: a 50 ms round trip
LINES = {"tcp": ["hello over a path"], "udp": ["hello over a path"]}
# Inside linkem's namespace: tcpdump on its device until the client, fed one line through a
# pipe, has said BYE and exited, and the last packets of the goodbye are in. $1 the pcap, $2
# the filter, $3 the line, $4 the client's output, the client's argv after them.
INSIDE = ('tcpdump -i linkem0 -n -U --immediate-mode -s 0 -Z root -w "$1" "$2" 2> "$1.err" & '
          'n=0; until grep -q "listening on" "$1.err"; do n=$((n + 1)); '
          '[ $n -gt 500 ] && { cat "$1.err" >&2; exit 3; }; sleep 0.02; done; '
          'out=$4; printf "%s\\n" "$3" > "$out.in"; shift 4; "$@" < "$out.in" > "$out" 2>&1; '
          'rc=$?; sleep 0.3; kill -INT $!; wait; exit $rc')


def session(kind, tmp):
    """One client session through the path: {port, lines, delay_ms, dump (tcpdump's own
    decode), packets (pcap.decode()), client_output}."""
    lines = LINES[kind]
    srv = bk.Server(kind, tmp, f"path-{kind}", host=linkpath.OUTER)
    path = os.path.join(tmp, f"path-{kind}.pcap")
    out = os.path.join(tmp, f"path-{kind}.out")
    client = [os.path.join(bk.BIN, f"{kind}_client"), "--host", linkpath.OUTER, "--port",
              str(srv.port), "--id", "alice", "--max-retries", "1"]
    try:
        argv = linkpath.command(["--delay", DELAY_MS, "--seed", 1],
                                ["sh", "-c", INSIDE, "sh", path, f"{kind} port {srv.port}",
                                 lines[0], out, *client])
        r = procs.run(argv, 60)
    finally:
        srv.stop()
    with open(out, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if r.returncode != 0:
        raise bk.BenchError(f"{kind}_client through linkem exited {r.returncode}: "
                            f"{r.stderr[-400:]} {text[-400:]}")
    dump = sh(["tcpdump", "-r", path, "-n", "-S", "-v", "-ttttt"])
    dump = "\n".join(x for x in dump.splitlines() if not x.startswith("reading from file"))
    pkts, _ = pcap.read_pcap(path)
    return {"port": srv.port, "lines": lines, "delay_ms": DELAY_MS, "dump": dump,
            "packets": pcap.decode(pkts, srv.port), "client_output": text}


def capture(tmp):
    """Both sessions through the path."""
    return {"delay_ms": DELAY_MS, "tcp": session("tcp", tmp), "udp": session("udp", tmp)}
