"""sessions: one real client session per transport, captured (THEORY.md sections 1.1, 1.2).

tcp_client and udp_client each talk to a fresh server through a pipe (HELLO, one MSG, BYE)
while tcpdump captures the server's port on lo; the capture is decoded by pcap.decode().
headers() reads the header sizes and overheads off both captures.
"""
import os
import subprocess

from analysis import benchkit as bk
from analysis.theory import pcap
from analysis.theory.common import sh
from pylib.ports import HOST

LINES = {"tcp": ["hello over tcp"], "udp": ["hello over udp"]}


def run_client(kind, port, ident, lines, timeout=20):
    """bin/<kind>_client fed through a pipe: it sends the lines, waits for their ACKs,
    says BYE and exits."""
    argv = [os.path.join(bk.BIN, f"{kind}_client"), "--host", HOST, "--port", str(port),
            "--id", ident, "--max-retries", "1"]
    p = subprocess.run(argv, input="".join(x + "\n" for x in lines).encode(),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def session(kind, tmp):
    """Captures one client session against a fresh server: {port, lines, dump (tcpdump's own
    decode), packets (pcap.decode()), client_output}, and the link header length."""
    lines = LINES[kind]
    srv = bk.Server(kind, tmp, f"capture-{kind}")
    path = os.path.join(tmp, f"{kind}.pcap")
    try:
        cap = pcap.Capture(path, f"{kind} port {srv.port}")
        try:
            rc, out = run_client(kind, srv.port, "alice", lines)
        finally:
            cap.stop()
        if rc != 0:
            raise bk.BenchError(f"{kind}_client exited {rc}: {out[-400:]}")
    finally:
        srv.stop()
    dump = sh(["tcpdump", "-r", path, "-n", "-S", "-v", "-ttttt"])
    dump = "\n".join(x for x in dump.splitlines() if not x.startswith("reading from file"))
    pkts, link = pcap.read_pcap(path)
    return {"port": srv.port, "lines": lines, "dump": dump,
            "packets": pcap.decode(pkts, srv.port), "client_output": out}, link


def headers(tcp, udp):
    """What the captures say about headers: a SYN, a data segment, a pure ACK and a
    datagram (their header sizes and options, None when absent), each session's packets,
    payload and IP bytes, and how many packets came before the first payload byte."""
    def first(rows, pred):
        return next((r for r in rows if pred(r)), None)

    picks = (("TCP SYN", tcp, lambda r: r["flags"] == "SYN"),
             ("TCP data segment", tcp, lambda r: r["payload_len"] and r["side"] == "client"),
             ("TCP pure ACK", tcp, lambda r: r["flags"] == "ACK" and not r["payload_len"]),
             ("UDP datagram", udp, lambda r: r["payload_len"] and r["side"] == "client"))
    examples = []
    for name, rows, pred in picks:
        r = first(rows, pred)
        examples.append({"name": name, "packet": None if r is None else {
            k: r[k] for k in ("ip_hdr", "l4_hdr", "payload_len", "ip_total", "opts")}})

    def totals(rows):
        before = next((i for i, r in enumerate(rows) if r["payload_len"]), len(rows))
        return {"packets": len(rows), "payload": sum(r["payload_len"] for r in rows),
                "wire": sum(r["ip_total"] for r in rows), "before_payload": before}

    return {"examples": examples, "tcp": totals(tcp), "udp": totals(udp)}


def capture(tmp):
    """Both sessions and their header summary."""
    tcp, link = session("tcp", tmp)
    udp, _ = session("udp", tmp)
    return {"link_header": link, "tcp": tcp, "udp": udp,
            "headers": headers(tcp["packets"], udp["packets"])}
