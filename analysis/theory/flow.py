"""flow: flow control and the slow-consumer policy on a real connection (THEORY.md 1.3).

A client with a 4 KiB receive buffer stops reading while another floods its room: the
receive window closes, the server's send queue and then its bounded per-client queue fill,
and the slow-consumer policy cuts the reader off (PROTOCOL.md, Flow control).
"""
import re
import socket
import time

from analysis import benchkit as bk
from analysis.theory.common import sh, thin
from pylib.ports import HOST

MAX_QUEUE = 65536  # tcp_server --max-queue
FRAME_TEXT = 3000  # bytes of text per MSG frame of the talker
BURST = 20  # frames per burst, a sample after each


def ss_pair(port, peer_port):
    """(Recv-Q, Send-Q, info dict) of the server's socket towards peer_port, or None once
    the connection is gone."""
    txt = sh(["ss", "-tinmH", "state", "established",
              f"( sport = :{port} and dport = :{peer_port} )"])
    lines = [x for x in txt.splitlines() if x.strip()]
    if not lines:
        return None
    head = lines[0].split()
    info = " ".join(x.strip() for x in lines[1:])
    d = {}
    for key in ("snd_wnd", "cwnd", "rto", "backoff", "bytes_acked", "notsent"):
        m = re.search(rf"(?<![\w_]){key}:(\d+)", info)
        if m:
            d[key] = int(m.group(1))
    m = re.search(r"skmem:\(([^)]*)\)", info)
    if m:
        for item in m.group(1).split(","):
            mm = re.match(r"([a-z]+)(\d+)", item)
            if mm:
                d["skmem_" + mm.group(1)] = int(mm.group(2))
    return int(head[0]), int(head[1]), d


def registered(name, port, rcvbuf=None):
    """A TCP connection to port that said HELLO name and got its WELCOME."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window
    s.settimeout(10)
    s.connect((HOST, port))
    s.sendall(f"HELLO {name}\n".encode())
    buf = b""
    while b"WELCOME" not in buf:
        buf += s.recv(4096)
    return s


def capture(tmp):
    """{max_queue, samples: [{t_ms, msgs_sent, recv_q, send_q, snd_wnd, skmem_w, skmem_tb}]
    (about a dozen), cut_ms (None: never cut off), bytes_after (what reader could still
    read), log (the server's lines about reader)}."""
    srv = bk.Server("tcp", tmp, "flow", extra=("--max-queue", str(MAX_QUEUE)))
    samples, slow, talker = [], None, None
    try:
        slow = registered("reader", srv.port, rcvbuf=4096)
        slow_port = slow.getsockname()[1]
        talker = registered("talker", srv.port)
        talker.setblocking(False)
        text = "x" * FRAME_TEXT
        t0 = time.monotonic()
        cut, sent = None, 0
        # Bursts of frames, a sample after each: until the server cuts reader off (its send
        # buffer, autotuned up to tcp_wmem's maximum, and then --max-queue are full)
        while time.monotonic() - t0 < 30:
            for _ in range(BURST):
                try:
                    talker.sendall(f"MSG {sent} {text}\n".encode())
                    sent += 1
                except BlockingIOError:
                    break
            try:
                while talker.recv(65536):
                    pass
            except BlockingIOError:
                pass
            st = ss_pair(srv.port, slow_port)
            if st is None:
                cut = time.monotonic() - t0
                break
            rq, sq, d = st
            samples.append({"t_ms": round((time.monotonic() - t0) * 1000, 3),
                            "msgs_sent": sent, "recv_q": rq, "send_q": sq,
                            "snd_wnd": d.get("snd_wnd", 0),  # ss omits it when it is 0
                            "skmem_w": d.get("skmem_w", -1), "skmem_tb": d.get("skmem_tb", -1)})
        time.sleep(0.5)
        with open(srv.log, "rb") as f:
            log_lines = [x for x in f.read().decode("utf-8", "replace").splitlines()
                         if "reader" in x or "lento" in x]
        slow.setblocking(False)
        got = b""
        try:
            while True:
                chunk = slow.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (BlockingIOError, ConnectionResetError):
            pass
    finally:
        for so in (slow, talker):
            if so is not None:
                so.close()
        srv.stop()
    return {"max_queue": MAX_QUEUE, "samples": thin(samples),
            "cut_ms": None if cut is None else round(cut * 1000, 3), "bytes_after": len(got),
            "log": log_lines}
