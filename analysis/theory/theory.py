#!/usr/bin/env python3
"""theory: regenerates every capture and reading that THEORY.md quotes (make theory).

Runs as root inside a private network namespace (unshare -n, the same re-exec as
analysis/bench.py, and benchkit's helpers for the namespace, the servers and the nftables
loss rules), so the captures hold only our own packets and the loss rules never touch the
host. Writes small text files into results/theory/:

  environment.txt   kernel, TCP knobs of the namespace, tool versions
  tcp_session.txt   tcpdump decode of tcp_client talking to tcp_server: handshake,
                    HELLO/WELCOME, MSG/ACK, BYE, FIN exchange; then a per-packet table
  udp_session.txt   the same for udp_client and udp_server (one datagram each, no handshake)
  headers.txt       header sizes read from both captures (IP, TCP with options, UDP)
  loss_ss.txt       ss -tin of one loadgen TCP connection at 0, 2 and 10 % injected loss,
                    with Reno and with BBR, the kernel's retransmission counters (nstat)
                    and loadgen's ACK latency
  flow_control.txt  a client that stops reading: its window closes, the server's send buffer
                    and then its bounded queue fill, and the slow-consumer policy cuts it off
  memory.txt        tcp_server and udp_server with 0, N and 2N idle clients: RSS, threads,
                    virtual size, kernel socket memory (ss -m skmem, sockstat, slabinfo)

Then, when it wrote into results/theory/, it rewrites THEORY.md's generated blocks from those
files (render_blocks; --update-doc does only that, without root).

Python 3 standard library, tcpdump, ss, nstat, nft.
Usage: theory.py [--out DIR] [--clients N] [--seconds S] [--only LIST] [--update-doc]
       theory.py --bench-figures   (the make bench figures THEORY.md quotes)
"""
import os
import sys

# The repository is the import root (pylib/, analysis/): set once, here, for this process.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from analysis import benchkit as bk  # noqa: E402  (servers, loadgen, the programs)
from analysis import lossrules  # noqa: E402
from pylib import markers, netns, procs  # noqa: E402
from pylib.ports import HOST  # noqa: E402

ROOT = bk.ROOT

LOSS_LEVELS = (0, 2, 10)  # % of the chat port's segments dropped, each direction
CCS = ("reno", "bbr")  # RFC 5681 loss-based (allowed in a namespace), then model-based


def log(msg):
    print(f"theory: {msg}", flush=True)


def write(outdir, name, text):
    with open(os.path.join(outdir, name), "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    log(f"wrote {os.path.relpath(os.path.join(outdir, name), ROOT)}")


def sh(argv, timeout=30):
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


def read_file(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"unreadable ({e.strerror})"


# --- capture: tcpdump on lo, then our own decode of the pcap ---


class Capture:
    """tcpdump -i lo -w file FILTER, ready when it says it is listening."""

    def __init__(self, path, bpf):
        self.path = path
        self.err = open(path + ".err", "w+b")
        self.p = procs.spawn(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-s", "0", "-Z", "root", "-w", path, bpf],
                          stderr=self.err)
        deadline = time.monotonic() + 10
        while True:
            self.err.seek(0)
            if b"listening on" in self.err.read():
                break
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.err.seek(0)
                raise bk.BenchError(f"tcpdump did not start: {self.err.read().decode()}")
            time.sleep(0.02)

    def stop(self):
        time.sleep(0.3)  # the last ACK of the FIN exchange is on its way
        procs.stop(self.p, signal.SIGINT, 5)
        self.err.close()


def read_pcap(path):
    """Packets of a pcap written by tcpdump on lo: list of (t_s, ip_bytes). Link types
    EN10MB (14-byte header, how Linux shows lo) and LINUX_SLL are handled."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    else:
        end = ">"
        magic = struct.unpack(">I", data[:4])[0]
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(end + "I", data[20:24])[0]
    skip = {1: 14, 113: 16, 276: 20}.get(linktype)
    if skip is None:
        raise bk.BenchError(f"{path}: link type {linktype} not handled")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        out.append((sec + frac / (1e9 if nano else 1e6), pkt[skip:]))
    return out, skip


TCP_FLAGS = [(0x02, "SYN"), (0x10, "ACK"), (0x08, "PSH"), (0x01, "FIN"), (0x04, "RST")]


def tcp_options(opts):
    """Names of the TCP options (RFC 9293 section 3.2, RFC 7323, RFC 2018)."""
    names, i = [], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            names.append("eol")
            break
        if kind == 1:
            names.append("nop")
            i += 1
            continue
        if i + 1 >= len(opts):
            break
        ln = opts[i + 1]
        body = opts[i + 2:i + ln]
        if kind == 2:
            names.append(f"mss {struct.unpack('>H', body)[0]}")
        elif kind == 3:
            names.append(f"wscale {body[0]}")
        elif kind == 4:
            names.append("sackOK")
        elif kind == 8:
            names.append("TS")
        elif kind == 5:
            names.append("SACK")
        else:
            names.append(f"opt{kind}")
        i += max(ln, 2)
    return names


def decode(packets, server_port):
    """One dict per IPv4 packet: direction, sizes of each header, TCP/UDP fields, payload."""
    rows, t0, isn = [], None, {}
    for t, ip in packets:
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        t0 = t if t0 is None else t0
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto = ip[9]
        l4 = ip[ihl:total]
        r = {"t_ms": (t - t0) * 1000, "ip_total": total, "ip_hdr": ihl}
        if proto == 6:
            sport, dport, seq, ack, off_flags, win = struct.unpack(">HHIIHH", l4[:16])
            thl = (off_flags >> 12) * 4
            flags = off_flags & 0x3F
            side = "client" if dport == server_port else "server"
            if flags & 0x02:
                isn[side] = seq
            other = "server" if side == "client" else "client"
            r.update(proto="tcp", side=side, l4_hdr=thl,
                     flags=",".join(n for b, n in TCP_FLAGS if flags & b),
                     seq=(seq - isn.get(side, seq)) & 0xFFFFFFFF,
                     ack=((ack - isn.get(other, ack)) & 0xFFFFFFFF) if flags & 0x10 else None,
                     win=win, opts=tcp_options(l4[20:thl]), payload=l4[thl:])
        elif proto == 17:
            sport, dport, ulen = struct.unpack(">HHH", l4[:6])
            side = "client" if dport == server_port else "server"
            r.update(proto="udp", side=side, l4_hdr=8, flags="", seq=None, ack=None, win=None,
                     opts=[], payload=l4[8:ulen])
        else:
            continue
        rows.append(r)
    return rows


def show_payload(p):
    text = p.decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def table(rows):
    lines = [f"{'#':>2} {'t_ms':>8}  {'from':<6} {'proto':<5} {'flags':<11} {'seq':>5} "
             f"{'ack':>5} {'win':>6} {'ip_hdr':>6} {'l4_hdr':>6} {'payload':>7}  text / options"]
    for i, r in enumerate(rows, 1):
        extra = show_payload(r["payload"]) if r["payload"] else " ".join(r["opts"])
        lines.append(
            f"{i:>2} {r['t_ms']:>8.3f}  {r['side']:<6} {r['proto']:<5} {r['flags'] or '-':<11} "
            f"{'' if r['seq'] is None else r['seq']:>5} {'' if r['ack'] is None else r['ack']:>5} "
            f"{'' if r['win'] is None else r['win']:>6} {r['ip_hdr']:>6} {r['l4_hdr']:>6} "
            f"{len(r['payload']):>7}  {extra}")
    return "\n".join(lines)


def run_client(kind, port, ident, lines, timeout=20):
    """bin/<kind>_client fed through a pipe: it sends the lines, waits for their ACKs,
    says BYE and exits."""
    argv = [os.path.join(bk.BIN, f"{kind}_client"), "--host", HOST, "--port", str(port),
            "--id", ident, "--max-retries", "1"]
    p = subprocess.run(argv, input="".join(x + "\n" for x in lines).encode(),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def session(kind, tmp, lines):
    """Captures one client session against a fresh server; returns (tcpdump text, rows,
    client output, link header length)."""
    srv = bk.Server(kind, tmp, f"capture-{kind}")
    pcap = os.path.join(tmp, f"{kind}.pcap")
    try:
        cap = Capture(pcap, f"{kind} port {srv.port}")
        try:
            rc, out = run_client(kind, srv.port, "alice", lines)
        finally:
            cap.stop()
        if rc != 0:
            raise bk.BenchError(f"{kind}_client exited {rc}: {out[-400:]}")
    finally:
        srv.stop()
    dump = sh(["tcpdump", "-r", pcap, "-n", "-S", "-v", "-ttttt"])
    dump = "\n".join(x for x in dump.splitlines() if not x.startswith("reading from file"))
    pkts, link = read_pcap(pcap)
    return dump, decode(pkts, srv.port), out, srv.port, link


def capture_sessions(outdir, tmp):
    lines = ["hello over tcp"]
    dump, rows, out, port, link = session("tcp", tmp, lines)
    write(outdir, "tcp_session.txt",
          "# tcp_client -> tcp_server on 127.0.0.1, inside a private network namespace.\n"
          f"# Server port {port} (--port 0). Client input through a pipe: {lines!r}; at EOF\n"
          "# it waits for the ACK, sends BYE and exits: the FIN exchange closes the capture.\n"
          "# Regenerate: make theory (analysis/theory/theory.py, capture_sessions).\n\n"
          "## tcpdump -r tcp.pcap -n -S -v -ttttt  (times: since the first packet)\n\n"
          f"{dump}\n\n"
          "## the same packets, decoded by theory.py (seq/ack relative to each side's ISN)\n\n"
          f"{table(rows)}\n\n## client output\n\n{out}")
    tcp_rows = rows
    dump, rows, out, port, _ = session("udp", tmp, ["hello over udp"])
    write(outdir, "udp_session.txt",
          "# udp_client -> udp_server on 127.0.0.1, inside a private network namespace.\n"
          f"# Server port {port} (--port 0). Client input through a pipe: ['hello over udp'];\n"
          "# at EOF it waits for the ACK, sends BYE and exits. Every frame is one datagram.\n"
          "# Regenerate: make theory (analysis/theory/theory.py, capture_sessions).\n\n"
          "## tcpdump -r udp.pcap -n -v -ttttt\n\n"
          f"{dump}\n\n## the same datagrams, decoded by theory.py\n\n{table(rows)}\n\n"
          f"## client output\n\n{out}")
    write(outdir, "headers.txt", headers_report(tcp_rows, rows, link))


def headers_report(tcp, udp, link):
    def first(rows, pred):
        return next((r for r in rows if pred(r)), None)

    syn = first(tcp, lambda r: r["flags"] == "SYN")
    data = first(tcp, lambda r: r["payload"] and r["side"] == "client")
    pure_ack = first(tcp, lambda r: r["flags"] == "ACK" and not r["payload"])
    dgram = first(udp, lambda r: r["payload"] and r["side"] == "client")
    out = ["# Header sizes read from results/theory/tcp_session.txt and udp_session.txt",
           f"# (the pcaps' IPv4 IHL and TCP data offset). Loopback's link header: {link} bytes",
           "# (Linux shows lo as Ethernet with zero addresses; it never leaves the host).", ""]
    for name, r in (("TCP SYN", syn), ("TCP data segment", data), ("TCP pure ACK", pure_ack),
                    ("UDP datagram", dgram)):
        if r is None:
            out.append(f"{name}: not in the capture")
            continue
        hdr = r["ip_hdr"] + r["l4_hdr"]
        out.append(f"{name}: ip_hdr={r['ip_hdr']} l4_hdr={r['l4_hdr']} headers={hdr} "
                   f"payload={len(r['payload'])} ip_total={r['ip_total']} "
                   f"options=[{' '.join(r['opts'])}]")

    def count(rows):
        pay = sum(len(r["payload"]) for r in rows)
        wire = sum(r["ip_total"] for r in rows)
        return len(rows), pay, wire

    n, pay, wire = count(tcp)
    out += ["", f"TCP session: {n} packets, {pay} payload bytes, {wire} IP bytes "
            f"({wire - pay} of headers, {100.0 * (wire - pay) / wire:.1f} %)"]
    n2, pay2, wire2 = count(udp)
    out.append(f"UDP session: {n2} datagrams, {pay2} payload bytes, {wire2} IP bytes "
               f"({wire2 - pay2} of headers, {100.0 * (wire2 - pay2) / wire2:.1f} %)")
    before = 0
    for r in tcp:
        if r["payload"]:
            break
        before += 1
    out.append(f"TCP packets before the first payload byte: {before} (SYN, SYN-ACK, ACK)")
    before = 0
    for r in udp:
        if r["payload"]:
            break
        before += 1
    out.append(f"UDP packets before the first payload byte: {before}")
    return "\n".join(out)


# --- loss: ss -tin of one loadgen connection under nftables loss ---


SS_KEYS = ("rto", "rtt", "cwnd", "ssthresh", "retrans", "unacked", "lost", "bytes_retrans",
           "data_segs_out", "snd_wnd", "rcv_space", "mss", "pmtu")
NSTAT_KEYS = ("TcpRetransSegs", "TcpExtTCPFastRetrans", "TcpExtTCPTimeouts",
              "TcpExtTCPLossProbes", "TcpExtTCPSackRecovery", "TcpExtTCPSlowStartRetrans",
              "TcpExtTCPSACKReorder", "TcpExtTCPLostRetransmit", "TcpExtTCPSpuriousRTOs")


def ss_conn(port):
    """ss -tin for the loadgen side of the connection to port (it sends the MSG data).
    Returns (raw info line, dict) or (None, None)."""
    txt = sh(["ss", "-tinH", "state", "established", f"( dport = :{port} )"])
    lines = [x for x in txt.splitlines() if x.strip()]
    info = " ".join(x.strip() for x in lines[1:2]) if len(lines) >= 2 else ""
    if not info:
        return None, None
    d = {}
    for key in SS_KEYS:
        m = re.search(rf"(?<![\w_]){key}:([\d./]+)", info)
        if m:
            d[key] = m.group(1)
    return info, d


def nstat_now():
    txt = sh(["nstat", "-az", *NSTAT_KEYS])
    vals = {}
    for line in txt.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in NSTAT_KEYS:
            vals[parts[0]] = int(parts[1])
    return vals


def loss_run(pct, tmp, seconds):
    srv = bk.Server("tcp", tmp, f"loss-{pct}")
    try:
        lossrules.set_loss(srv.port, pct, "tcp")
        before = nstat_now()
        outdir = os.path.join(tmp, f"loss-{pct}")
        os.makedirs(outdir, exist_ok=True)
        argv = [os.path.join(bk.BIN, "loadgen"), "--proto", "tcp", "--host", HOST,
                "--port", str(srv.port), "--clients", "1", "--threads", "1", "--rate", "500",
                "--size", "1000", "--duration", str(seconds), "--warmup", "0.5",
                "--out", outdir, "--label", f"theory-loss-{pct}", "--quiet"]
        lg = procs.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        samples, t0 = [], time.monotonic()
        while lg.poll() is None and time.monotonic() - t0 < seconds + 30:
            raw, d = ss_conn(srv.port)
            if d:
                samples.append((time.monotonic() - t0, raw, d))
            time.sleep(0.1)
        out = lg.communicate(timeout=30)[0].decode("utf-8", "replace")
        procs.stop(lg)
        after = nstat_now()
        dropped = lossrules.loss_counters() if pct > 0 else 0
        if isinstance(dropped, dict):  # {"uplink": n, "downlink": n} in newer benchkit
            dropped = sum(dropped.values())
        lossrules.clear_loss()
        rows = bk.read_csv(os.path.join(outdir, "summary.csv")) \
            if os.path.exists(os.path.join(outdir, "summary.csv")) else []
        if not rows:
            raise bk.BenchError(f"loadgen wrote no summary at {pct} % loss: {out[-400:]}")
        return samples, {k: after.get(k, 0) - before.get(k, 0) for k in NSTAT_KEYS}, \
            rows[-1], dropped
    finally:
        srv.stop()


def num(v):
    return float(v.split("/")[0])


SS_SHOW = re.compile(r"^(cubic|bbr|reno|wscale|rto|backoff|rtt|mss|cwnd|ssthresh|bytes_sent|"
                     r"bytes_retrans|bytes_acked|data_segs_out|retrans|lost|unacked|sacked|"
                     r"app_limited|snd_wnd|rcv_space|delivered)(:|$)")


def short_info(raw):
    """The ss -tin fields THEORY.md talks about, in ss's own order and spelling."""
    return " ".join(tok for tok in raw.split() if SS_SHOW.match(tok))


def set_cc(name):
    with open("/proc/sys/net/ipv4/tcp_congestion_control", "w") as f:
        f.write(name)


def capture_loss(outdir, tmp, seconds):
    """Each congestion control of CCS at each level of LOSS_LEVELS; the namespace's own
    default (net.ipv4.tcp_congestion_control is per namespace) is restored afterwards."""
    default_cc = read_file("/proc/sys/net/ipv4/tcp_congestion_control")
    summary = ["# One loadgen TCP client (500 MSG/s of 1000 bytes, 1 connection) against",
               "# tcp_server, inside a private network namespace; nftables drops the given share",
               "# of the port's segments in each direction (SYNs pass; benchkit.set_loss).",
               "# ss -tin sampled every 0.1 s on loadgen's socket (it sends the MSG data).",
               "# rto, rtt in ms; cwnd, ssthresh in segments; retrans = now/total.",
               f"# Congestion control set per run in the namespace (the host's default: "
               f"{default_cc}).",
               "# Regenerate: make theory (analysis/theory/theory.py, capture_loss).", "",
               f"{'cc':>5} {'loss_pct':>8} {'samples':>7} {'nft_dropped':>11} {'cwnd_min':>8} "
               f"{'cwnd_med':>8} {'cwnd_max':>8} {'ssthresh_min':>12} {'rto_max_ms':>10} "
               f"{'rtt_med_ms':>10} {'retrans_total':>13} {'ack_p50_us':>10} "
               f"{'ack_p99_us':>10} {'ack_max_us':>10} {'lost':>4}"]
    raw_out, counters = [], []
    try:
        for cc in CCS:
            set_cc(cc)
            for pct in LOSS_LEVELS:
                samples, delta, row, dropped = loss_run(pct, tmp, seconds)
                ds = [d for _, _, d in samples]
                cw = [num(d["cwnd"]) for d in ds if "cwnd" in d]
                ss_ = [num(d["ssthresh"]) for d in ds if "ssthresh" in d]
                rto = [num(d["rto"]) for d in ds if "rto" in d]
                rtt = [num(d["rtt"]) for d in ds if "rtt" in d]
                rtx = [int(d["retrans"].split("/")[1]) for d in ds if "retrans" in d]
                summary.append(
                    f"{cc:>5} {pct:>8} {len(ds):>7} "
                    f"{dropped if dropped is not None else '?':>11} "
                    f"{min(cw, default=0):>8.0f} {statistics.median(cw) if cw else 0:>8.0f} "
                    f"{max(cw, default=0):>8.0f} "
                    f"{(f'{min(ss_):.0f}' if ss_ else '-'):>12} {max(rto, default=0):>10.0f} "
                    f"{statistics.median(rtt) if rtt else 0:>10.3f} {max(rtx, default=0):>13} "
                    f"{float(row['ack_p50_us']):>10.0f} {float(row['ack_p99_us']):>10.0f} "
                    f"{float(row['ack_max_us']):>10.0f} {row['lost']:>4}")
                counters.append(f"{cc:>5} {pct:>3} %: " +
                                " ".join(f"{k}={v}" for k, v in delta.items()))
                raw_out.append(f"## {cc}, {pct} % loss: ss -tin samples (t_s, then the fields "
                               "THEORY.md uses)\n")
                step = max(1, len(samples) // 12)  # about a dozen lines, the last kept
                keep = samples[::step]
                if samples and samples[-1] is not keep[-1]:
                    keep.append(samples[-1])
                for t, raw, _ in keep:
                    raw_out.append(f"t={t:5.2f}s  {short_info(raw)}")
                raw_out.append("")
    finally:
        set_cc(default_cc)
    text = "\n".join(summary) + "\n\n## kernel counters during each run (nstat deltas, " + \
        "both ends of the connection)\n\n" + "\n".join(counters) + "\n\n" + "\n".join(raw_out)
    write(outdir, "loss_ss.txt", text)


# --- flow control: a client that stops reading ---


def ss_pair(port, peer_port):
    """(Recv-Q, Send-Q, info dict, raw info) of the server's socket towards peer_port."""
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


def capture_flow(outdir, tmp):
    """A client with a 4 KiB receive buffer that stops reading while another floods its room:
    the receive window closes, the server's send queue and then its bounded per-client queue
    fill, and the slow-consumer policy cuts the reader off (PROTOCOL.md, Flow control)."""
    max_queue = 65536
    srv = bk.Server("tcp", tmp, "flow", extra=("--max-queue", str(max_queue)))
    samples, slow, talker = [], None, None
    try:
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        slow.settimeout(10)
        slow.connect((HOST, srv.port))
        slow.sendall(b"HELLO reader\n")
        buf = b""
        while b"WELCOME" not in buf:
            buf += slow.recv(4096)
        slow_port = slow.getsockname()[1]
        talker = socket.create_connection((HOST, srv.port), timeout=10)
        talker.sendall(b"HELLO talker\n")
        buf = b""
        while b"WELCOME" not in buf:
            buf += talker.recv(4096)
        talker.setblocking(False)
        text = "x" * 3000
        t0 = time.monotonic()
        cut, sent = None, 0
        # Bursts of 20 frames, a sample after each: until the server cuts reader off (its
        # send buffer, autotuned up to tcp_wmem's maximum, and then --max-queue are full)
        while time.monotonic() - t0 < 30:
            for _ in range(20):
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
            samples.append((time.monotonic() - t0, sent) + st)
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
    out = ["# tcp_server --max-queue 65536. 'reader' registers with a 4 KiB receive buffer",
           "# (SO_RCVBUF before connect) and then never reads; 'talker', in the same room,",
           "# sends MSG frames of 3,000 bytes in bursts of 20. Sampled after each burst with",
           "# ss -tinm on the server's socket towards reader: Send-Q (bytes not yet",
           "# acknowledged by reader), snd_wnd (the window reader advertises; ss omits it",
           "# when it is 0), skmem w and tb (send-buffer bytes queued, and its limit).",
           "# Regenerate: make theory (analysis/theory/theory.py, capture_flow).", "",
           f"{'t_ms':>8} {'msgs_sent':>9} {'recv_q':>6} {'send_q':>7} {'snd_wnd':>7} "
           f"{'skmem_w':>8} {'skmem_tb':>8}"]
    step = max(1, len(samples) // 12)
    keep = samples[::step]
    if samples and samples[-1] is not keep[-1]:
        keep.append(samples[-1])
    for t, n, rq, sq, d in keep:
        out.append(f"{t * 1000:>8.1f} {n:>9} {rq:>6} {sq:>7} {d.get('snd_wnd', 0):>7} "
                   f"{d.get('skmem_w', -1):>8} {d.get('skmem_tb', -1):>8}")
    out.append("")
    out.append(f"connection to reader gone after: "
               f"{f'{cut * 1000:.1f} ms' if cut is not None else 'never (not cut off)'}")
    out.append(f"bytes reader could still read afterwards: {len(got)}")
    out.append("server log (reader's lines):")
    out += [f"  {x}" for x in log_lines]
    write(outdir, "flow_control.txt", "\n".join(out))


# --- memory: servers with 0 and N idle clients ---


def proc_status(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmSize", "Threads", "RssAnon", "VmPTE"):
                vals[k] = int(v.split()[0])
    vals["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return vals


def sockstat():
    vals = {}
    for path in ("/proc/net/sockstat",):
        with open(path) as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                for k, v in zip(parts[::2], parts[1::2]):
                    vals[f"{name}.{k}"] = int(v)
    return vals


def slab_sizes(names):
    """objsize of the named slab caches (bytes), from /proc/slabinfo."""
    out = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in names:
                    out[parts[0]] = int(parts[3])
    except OSError:
        pass
    return out


def skmem_sum(kind, port):
    """Sums ss -m skmem fields over the server's own sockets (source port = port)."""
    flag = "-tmnH" if kind == "tcp" else "-umnaH"
    txt = sh(["ss", flag, f"( sport = :{port} )"])
    tot, n = {}, 0
    for m in re.finditer(r"skmem:\(([^)]*)\)", txt):
        n += 1
        for item in m.group(1).split(","):
            mm = re.match(r"([a-z]+)(\d+)", item)
            if mm:
                tot[mm.group(1)] = tot.get(mm.group(1), 0) + int(mm.group(2))
    return n, tot


def drain(socks):
    for s in socks:
        try:
            while s.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass


def open_clients(kind, port, first, n):
    """n idle clients idle<first>.., registered (HELLO answered with WELCOME); everything
    they were sent (JOINED of the later ones) is drained."""
    socks = []
    for i in range(first, first + n):
        if kind == "tcp":
            s = socket.create_connection((HOST, port), timeout=10)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((HOST, port))
        socks.append(s)
        hello = f"HELLO idle{i}\n".encode()
        got = False
        for _attempt in range(5):  # a UDP HELLO or WELCOME may be dropped: ask again
            s.send(hello)
            buf = b""
            deadline = time.monotonic() + (10 if kind == "tcp" else 1)
            while time.monotonic() < deadline and not got:
                pl = select.poll()  # select() stops at fd 1024
                pl.register(s, select.POLLIN)
                if not pl.poll(max(0.0, deadline - time.monotonic()) * 1000):
                    break
                buf += s.recv(65536)
                got = b"WELCOME idle" in buf
            if got or kind == "tcp":
                break
        if not got:
            raise bk.BenchError(f"{kind}: client {i} got no WELCOME")
        s.setblocking(False)
    return socks


def snapshot(kind, srv):
    return proc_status(srv.pid), sockstat(), skmem_sum(kind, srv.port)


def measure(kind, tmp, n):
    """Snapshots of the server with 0, n and 2n idle clients."""
    srv = bk.Server(kind, tmp, f"mem-{kind}")
    socks, snaps = [], []
    try:
        time.sleep(0.3)
        snaps.append(snapshot(kind, srv))
        for step in range(2):
            socks += open_clients(kind, srv.port, step * n, n)
            for _ in range(3):  # JOINED frames still on their way
                time.sleep(0.5)
                drain(socks)
            snaps.append(snapshot(kind, srv))
    finally:
        for s in socks:
            s.close()
        srv.stop()
    return snaps


def capture_memory(outdir, tmp, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, 2 * n + 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    slabs = slab_sizes({"TCP", "UDP", "sock_inode_cache", "filp", "dentry", "task_struct",
                        "request_sock_TCP", "tw_sock_TCP"})
    out = [f"# tcp_server and udp_server (default options, -q) with 0, {n} and {2 * n} idle",
           "# clients, each registered (HELLO answered with WELCOME) in the lobby, every",
           "# JOINED drained. Inside a private network namespace.",
           "# 'first': per client for the first clients, 0 -> n (includes what the first",
           "# fan-outs touch once: malloc arenas, queue pages). 'marginal': per client for the",
           "# next ones, n -> 2n: the steady cost of one more client.",
           "# /proc/PID/status in kB. ss -m skmem summed over the server's sockets, in bytes:",
           "# r, t, f, w, o, bl are memory held now; rb and tb are buffer limits, not memory.",
           "# sockstat inuse counts this namespace's sockets: both ends of each connection.",
           "# Regenerate: make theory (analysis/theory/theory.py, capture_memory).", ""]
    for kind in ("tcp", "udp"):
        (st0, so0, (ns0, sk0)), (st1, so1, (ns1, sk1)), (st2, so2, (ns2, sk2)) = \
            measure(kind, tmp, n)
        out.append(f"## {kind}_server")
        out.append(f"{'':>22} {'0':>10} {n:>10} {2 * n:>10}   {'first':>9} {'marginal':>9}")
        for k in ("VmRSS", "RssAnon", "VmSize", "VmPTE", "Threads", "fds"):
            a, b, c = st0.get(k, 0), st1.get(k, 0), st2.get(k, 0)
            unit = "" if k in ("Threads", "fds") else " kB"
            out.append(f"{k + unit:>22} {a:>10} {b:>10} {c:>10}   {(b - a) / n:>9.2f} "
                       f"{(c - b) / n:>9.2f}")
        out.append(f"{'server sockets (ss)':>22} {ns0:>10} {ns1:>10} {ns2:>10}")
        for k in sorted(set(sk0) | set(sk1) | set(sk2)):
            a, b, c = sk0.get(k, 0), sk1.get(k, 0), sk2.get(k, 0)
            out.append(f"{'skmem ' + k + ' bytes':>22} {a:>10} {b:>10} {c:>10}   "
                       f"{(b - a) / n:>9.1f} {(c - b) / n:>9.1f}")
        key = "TCP" if kind == "tcp" else "UDP"
        for k in (f"{key}.inuse", "sockets.used"):
            out.append(f"{'sockstat ' + k:>22} {so0.get(k, 0):>10} {so1.get(k, 0):>10} "
                       f"{so2.get(k, 0):>10}")
        out.append("")
    out.append("## slab object sizes of this kernel (bytes, /proc/slabinfo objsize)")
    for k, v in sorted(slabs.items()):
        out.append(f"{k:>18}: {v}")
    write(outdir, "memory.txt", "\n".join(out))


# --- environment ---


def capture_environment(outdir, note):
    knobs = ["net/ipv4/tcp_congestion_control", "net/ipv4/tcp_available_congestion_control",
             "net/ipv4/tcp_sack", "net/ipv4/tcp_timestamps", "net/ipv4/tcp_window_scaling",
             "net/ipv4/tcp_rmem", "net/ipv4/tcp_wmem",
             "net/ipv4/tcp_early_retrans", "net/ipv4/tcp_recovery", "net/ipv4/tcp_syn_retries",
             "net/core/rmem_default", "net/core/rmem_max", "net/core/wmem_default"]
    lines = ["# The machine and the TCP settings the captures ran with (private namespace).",
             f"netns: {note}", f"kernel: {os.uname().release}",
             f"lo mtu: {read_file('/sys/class/net/lo/mtu')}",
             f"tcpdump: {sh(['tcpdump', '--version']).splitlines()[0]}",
             f"ss: {sh(['ss', '-V']).strip()}",
             f"nft: {sh(['nft', '--version']).strip()}",
             f"tcp_server: {sh([os.path.join(bk.BIN, 'tcp_server'), '--version']).strip()}",
             f"udp_server: {sh([os.path.join(bk.BIN, 'udp_server'), '--version']).strip()}",
             f"date_utc: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}",
             f"loadavg at start: {read_file('/proc/loadavg')} (the machine is shared: "
             "other processes' load shows in the latency tails)"]
    for k in knobs:
        lines.append(f"{k.replace('/', '.')}: {read_file('/proc/sys/' + k)}")
    ip = sh(["ip", "route", "show", "table", "local"]).splitlines()
    lines.append("rto_min: 200 ms unless a route sets rto_min (none in this namespace: "
                 f"{len([x for x in ip if 'rto_min' in x])} routes do)")
    write(outdir, "environment.txt", "\n".join(lines))


# --- THEORY.md's generated blocks ---
#
# The tables THEORY.md quotes from results/theory/ sit between
#   <!-- BEGIN GENERATED: name --> ... <!-- END GENERATED: name -->
# markers; render_blocks() makes them from the files alone, make theory rewrites them, and
# tests/integration/test_theory.py recomputes them, so the document and the files agree.

DOC = os.path.join(ROOT, "THEORY.md")


def _rows(text, first_word):
    """Whitespace-split lines of a fixed-width table whose first cell matches first_word."""
    return [ln.split() for ln in text.splitlines() if re.match(rf"^\s*{first_word}\s", ln)]


def block_capture(resdir, name="tcp_session.txt"):
    text = read_file(os.path.join(resdir, name))
    m = re.search(r"## the same (?:packets|datagrams)[^\n]*\n\n(.*?)\n\n## client output",
                  text, re.S)
    if not m:
        raise bk.BenchError(f"{name} has no decoded table")
    return "```\n" + m.group(1).rstrip() + "\n```\n"


def block_udp_capture(resdir):
    return block_capture(resdir, "udp_session.txt")


def block_headers(resdir):
    text = read_file(os.path.join(resdir, "headers.txt"))
    out = ["| packet | IP | TCP or UDP | headers | options |", "| --- | --- | --- | --- | --- |"]
    for m in re.finditer(r"(?m)^(TCP SYN|TCP data segment|TCP pure ACK|UDP datagram): "
                         r"ip_hdr=(\d+) l4_hdr=(\d+) headers=(\d+) .*options=\[([^\]]*)\]", text):
        out.append(f"| {m.group(1)} | {m.group(2)} | {m.group(3)} | {m.group(4)} | "
                   f"{m.group(5) or '-'} |")
    for m in re.finditer(r"(?m)^(TCP|UDP) session: (\d+) \w+, (\d+) payload bytes, (\d+) IP "
                         r"bytes \((\d+) of headers, ([\d.]+) %\)", text):
        out.append("")
        out.append(f"{m.group(1)} session: {m.group(2)} packets, {m.group(3)} bytes of chat "
                   f"in {m.group(4)} IP bytes, {m.group(5)} of them headers ({m.group(6)} %).")
    return "\n".join(out) + "\n"


def block_loss(resdir):
    text = read_file(os.path.join(resdir, "loss_ss.txt"))
    nstat = {}
    for m in re.finditer(r"(?m)^\s*(\w+)\s+(\d+) %: (.*)$", text):
        nstat[(m.group(1), m.group(2))] = dict(kv.split("=") for kv in m.group(3).split())
    out = ["| cc | loss | cwnd median (min-max) | ssthresh min | rto max (ms) | "
           "retransmitted: all / fast / after timeout | ACK p50 / p99 / max (ms) | lost |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in _rows(text, r"(?:reno|bbr|cubic)"):
        if len(r) != 15:
            continue
        cc, pct = r[0], r[1]
        n = nstat.get((cc, pct), {})
        ms = [float(x) / 1000 for x in r[11:14]]
        fmt = ["%.2f" % v if v < 10 else "%.0f" % v for v in ms]
        out.append(f"| {'Reno' if cc == 'reno' else cc.upper()} | {pct} % | {r[5]} "
                   f"({r[4]}-{r[6]}) | {r[7]} | {r[8]} | {n.get('TcpRetransSegs', '?')} / "
                   f"{n.get('TcpExtTCPFastRetrans', '?')} / {n.get('TcpExtTCPTimeouts', '?')} | "
                   f"{' / '.join(fmt)} | {r[14]} |")
    return "\n".join(out) + "\n"


def block_memory(resdir):
    text = read_file(os.path.join(resdir, "memory.txt"))
    out = ["| per client | tcp_server: first 1,000 | tcp_server: next 1,000 | "
           "udp_server: first 1,000 | udp_server: next 1,000 |",
           "| --- | --- | --- | --- | --- |"]
    parts = re.split(r"(?m)^## ", text)
    tables = {}
    for p in parts:
        name = p.split("\n", 1)[0].strip()
        if name in ("tcp_server", "udp_server"):
            tables[name] = {r[0] + (" " + r[1] if r[1] == "kB" else ""): r for r in
                            (ln.split() for ln in p.splitlines()[2:]) if len(r) >= 6}
    for key, label in (("VmRSS kB", "resident memory (VmRSS, kB)"),
                       ("VmSize kB", "address space (VmSize, kB)"),
                       ("Threads", "threads"), ("fds", "descriptors")):
        cells = []
        for srv in ("tcp_server", "udp_server"):
            r = tables.get(srv, {}).get(key)
            cells += [r[-2], r[-1]] if r else ["?", "?"]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    slabs = dict(re.findall(r"(?m)^\s*(\w+): (\d+)$", text))
    sock = sum(int(slabs.get(k, 0)) for k in ("TCP", "sock_inode_cache", "filp", "dentry"))
    out.append("")
    out.append(f"Kernel objects of one TCP socket on this kernel: tcp_sock {slabs.get('TCP')} + "
               f"socket inode {slabs.get('sock_inode_cache')} + file {slabs.get('filp')} + "
               f"dentry {slabs.get('dentry')} = {sock} bytes; of one thread: task_struct "
               f"{slabs.get('task_struct')} bytes and a 16 KiB kernel stack (x86-64).")
    return "\n".join(out) + "\n"


def block_flow(resdir):
    text = read_file(os.path.join(resdir, "flow_control.txt"))
    rows = [ln.split() for ln in text.splitlines() if re.match(r"^\s*[\d.]+\s+\d+\s+\d+\s", ln)]
    out = ["| t (ms) | frames sent by talker | Send-Q (bytes) | window reader offers (bytes) | "
           "send buffer: queued / limit (bytes) |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r[0]} | {r[1]} | {r[3]} | {r[4]} | {r[5]} / {r[6]} |")
    m = re.search(r"(?m)^connection to reader gone after: (.*)$", text)
    out.append("")
    out.append(f"Connection to reader closed by the server after: {m.group(1) if m else '?'}. "
               "Server log:")
    out.append("")
    out += [f"    {ln.strip()}" for ln in text.splitlines() if ln.startswith("  [")]
    return "\n".join(out) + "\n"


BLOCKS = (("theory-capture", block_capture), ("theory-udp-capture", block_udp_capture),
          ("theory-headers", block_headers), ("theory-flow", block_flow),
          ("theory-loss", block_loss), ("theory-memory", block_memory))


def render_blocks(resdir):
    return {name: fn(resdir) for name, fn in BLOCKS}


def update_doc(resdir, doc=DOC):
    """Rewrites THEORY.md's generated blocks from resdir. Returns the names replaced."""
    return markers.update_file(doc, render_blocks(resdir))


# --- main ---


def bench_figures(resdir):
    """The make bench figures THEORY.md's section 2 quotes, read from resdir's CSVs, as text:
    after a new benchmark run, compare them with the prose and update it."""
    def rows(name):
        return bk.read_csv(os.path.join(resdir, f"{name}.csv"))

    def ms(v):
        return f"{float(v) / 1000:.2f} ms" if v not in ("", None) else "-"

    out = [read_file(os.path.join(resdir, "machine.txt")).splitlines()[0], "", "loss (2.1):"]
    for r in rows("loss"):
        out.append(f"  {r['proto']} {r['injected_loss_pct']:>2} %: sent {r['sent']} lost "
                   f"{r['lost']} (uplink {r['lost_uplink']}, downlink {r['lost_downlink']}) "
                   f"ACK p50 {ms(r['ack_p50_us'])} p99 {ms(r['ack_p99_us'])} max "
                   f"{ms(r['ack_max_us'])} loadgen_bound {r['loadgen_bound']}")
    out.append("scale (2.2, 2.4):")
    for r in rows("scale"):
        n = int(r["clients"])
        rss = int(r["server_rss_kib_max"] or 0)
        out.append(f"  {r['proto']} {n:>5} clients: threads {r['server_threads_max']} RSS "
                   f"{rss / 1024:.1f} MiB ({rss / n:.1f} KiB per client) CPU per msg "
                   f"{r['server_cpu_us_per_msg']} us loadgen_bound {r['loadgen_bound']}")
    out.append("equal load (2.3, 2.4):")
    for r in rows("cdf"):
        out.append(f"  {r['proto']}: ACK p50 {ms(r['ack_p50_us'])} p99 {ms(r['ack_p99_us'])} "
                   f"p99.9 {ms(r['ack_p999_us'])} CPU per msg {r['server_cpu_us_per_msg']} us")
    out.append("anchors (2.3):")
    for r in rows("anchors"):
        out.append(f"  {r['proto']}: sockperf ping-pong p50 {r.get('sockperf_p50_us', '-')} us")
    return "\n".join(out)


ALL = {"env", "sessions", "loss", "flow", "memory"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "theory"))
    ap.add_argument("--clients", type=int, default=1000, help="idle clients for memory.txt")
    ap.add_argument("--seconds", type=float, default=4.0, help="loadgen run per loss level")
    ap.add_argument("--only", help="comma list of: env,sessions,loss,flow,memory")
    ap.add_argument("--bench-figures", action="store_true",
                    help="print the make bench figures THEORY.md quotes (from results/)")
    ap.add_argument("--update-doc", action="store_true",
                    help="only rewrite THEORY.md's generated blocks from --out, then exit")
    args = ap.parse_args()
    if args.bench_figures:
        print(bench_figures(os.path.join(ROOT, "results")))
        return 0
    if args.update_doc:
        log(f"THEORY.md: rewrote {', '.join(update_doc(args.out)) or 'nothing'}")
        return 0
    ok, why = netns.can_netns()
    if not ok or not shutil.which("tcpdump") or not shutil.which("nstat"):
        why = why or "tcpdump or nstat not installed (scripts/deps.sh bench)"
        print(f"theory: skipped: {why}. The captures need root (a private network namespace, "
              "nftables, tcpdump on lo): run 'make theory' as root.", file=sys.stderr)
        return 0
    if not netns.in_private_netns():
        netns.reexec_in_netns(__file__, sys.argv[1:])
    for b in ("tcp_server", "udp_server", "tcp_client", "udp_client", "loadgen"):
        if not os.access(os.path.join(bk.BIN, b), os.X_OK):
            print(f"theory: missing bin/{b}: build it first (make all)", file=sys.stderr)
            return 1
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    only = set(args.only.split(",")) if args.only else set(ALL)
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="chatbench-theory-")
    try:
        netns.setup_netns()
        t0 = time.monotonic()
        if "env" in only:
            capture_environment(args.out, "private namespace (unshare -n)")
        if "sessions" in only:
            capture_sessions(args.out, tmp)
        if "loss" in only:
            capture_loss(args.out, tmp, args.seconds)
        if "flow" in only:
            capture_flow(args.out, tmp)
        if "memory" in only:
            capture_memory(args.out, tmp, args.clients)
        if "env" in only:
            with open(os.path.join(args.out, "environment.txt"), "a") as f:
                f.write(f"loadavg at end: {read_file('/proc/loadavg')} "
                        f"({time.monotonic() - t0:.0f} s later)\n")
    except (bk.BenchError, subprocess.SubprocessError, OSError) as e:
        print(f"theory: failed: {e}", file=sys.stderr)
        return 1
    finally:
        lossrules.clear_loss()
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if os.path.abspath(args.out) == os.path.join(ROOT, "results", "theory") and only == ALL:
        done = update_doc(args.out)
        log(f"THEORY.md: rewrote the generated blocks {', '.join(done) or '(none found)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
