"""memory: what one more client costs each server (THEORY.md section 3).

tcp_server and udp_server (default options, -q) with 0, n and 2n idle clients, each
registered (HELLO answered with WELCOME) in the lobby, every JOINED drained: the server's
/proc status, the kernel's socket memory for its sockets (ss -m skmem), the namespace's
sockstat, and the slab object sizes of this kernel.
"""
import re
import resource
import select
import socket
import time

from analysis import benchkit as bk
from analysis.theory.common import sh
from pylib import procfs
from pylib.ports import HOST
from pylib.proto import hello_frame

STATUS_KEYS = ("VmRSS", "RssAnon", "VmSize", "VmPTE", "Threads")
SLABS = ("TCP", "UDP", "sock_inode_cache", "filp", "dentry", "task_struct", "request_sock_TCP",
         "tw_sock_TCP")


def sockstat():
    vals = {}
    with open("/proc/net/sockstat") as f:
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
    """(sockets, {field: bytes}): ss -m skmem fields summed over the server's own sockets
    (source port = port)."""
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
        # a UDP server answers a stranger with no more than it sent: padded
        hello = (f"HELLO idle{i}" if kind == "tcp" else hello_frame(f"idle{i}")).encode() + b"\n"
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
    """{status (kB, counts; fds), sockstat, sockets, skmem} of the server now."""
    status = procfs.status(srv.pid, STATUS_KEYS)
    status["fds"] = procfs.fd_count(srv.pid)
    sockets, skmem = skmem_sum(kind, srv.port)
    return {"status": status, "sockstat": sockstat(), "sockets": sockets, "skmem": skmem}


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


def capture(tmp, n):
    """{clients: n, servers: {tcp: [3 snapshots], udp: [...]}, slabs: {cache: bytes}}."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, 2 * n + 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    slabs = slab_sizes(set(SLABS))
    return {"clients": n, "servers": {kind: measure(kind, tmp, n) for kind in ("tcp", "udp")},
            "slabs": slabs}
