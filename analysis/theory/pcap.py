"""pcap: the capture side of make theory. tcpdump writes the packets on lo to a pcap file
(Capture); read_pcap() and decode() read it back with our own decoder (IPv4, TCP with its
options, UDP), one dict per packet, for the per-packet tables and the header sizes.
"""
import signal
import struct
import time

from analysis.benchkit import BenchError
from pylib import procs

TCP_FLAGS = [(0x02, "SYN"), (0x10, "ACK"), (0x08, "PSH"), (0x01, "FIN"), (0x04, "RST")]


class Capture:
    """tcpdump -i lo -w file FILTER, ready when it says it is listening."""

    def __init__(self, path, bpf):
        self.path = path
        self.err = open(path + ".err", "w+b")
        self.p = procs.spawn(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-s", "0",
                              "-Z", "root", "-w", path, bpf], stderr=self.err)
        deadline = time.monotonic() + 10
        while True:
            self.err.seek(0)
            if b"listening on" in self.err.read():
                break
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.err.seek(0)
                raise BenchError(f"tcpdump did not start: {self.err.read().decode()}")
            time.sleep(0.02)

    def stop(self):
        time.sleep(0.3)  # the last ACK of the FIN exchange is on its way
        procs.stop(self.p, signal.SIGINT, 5)
        self.err.close()


def read_pcap(path):
    """Packets of a pcap written by tcpdump on lo or a TUN device: (list of (t_s, ip_bytes),
    link header length). Link types EN10MB (14-byte header, how Linux shows lo), LINUX_SLL,
    LINUX_SLL2 and RAW (a TUN device: the IP packet itself) are handled."""
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
    skip = {1: 14, 12: 0, 101: 0, 113: 16, 276: 20}.get(linktype)
    if skip is None:
        raise BenchError(f"{path}: link type {linktype} not handled")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        out.append((sec + frac / (1e9 if nano else 1e6), pkt[skip:]))
    return out, skip


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
    """One dict per IPv4 packet: t_ms (since the first), side (client or server), proto,
    ip_total, ip_hdr, l4_hdr (header bytes), flags, seq and ack relative to each side's ISN
    (TCP; None for UDP), win, opts (TCP option names), payload_len and text (the payload
    decoded as UTF-8)."""
    rows, t0, isn = [], None, {}
    for t, ip in packets:
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        t0 = t if t0 is None else t0
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto = ip[9]
        l4 = ip[ihl:total]
        r = {"t_ms": round((t - t0) * 1000, 6), "ip_total": total, "ip_hdr": ihl}
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
        payload = r.pop("payload")
        r.update(payload_len=len(payload), text=payload.decode("utf-8", "replace"))
        rows.append(r)
    return rows
