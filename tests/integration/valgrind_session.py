#!/usr/bin/env python3
"""valgrind_session: a full session of each server under valgrind memcheck (make test-valgrind).

Each server runs under valgrind --leak-check=full; a session drives every verb, the error
paths, broken connections and some churn over real sockets; then SIGTERM. It passes when
the server exits 0 (valgrind's --error-exitcode would change that) and valgrind's log says
0 errors and no byte lost (definitely, indirectly or possibly). Logs are kept in
build-valgrind/. Prints "robustness: ..." lines for analysis/robustness.sh.

Usage: tests/integration/valgrind_session.py [tcp|tcp_epoll|udp ...]   (default: all three;
tcp_epoll is tcp_server --io epoll)
"""
import os
import re
import socket
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
# Import roots, set once, here: the repository (pylib) and this folder (harness).
sys.path[0:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]
import harness  # noqa: E402
from harness import Proc, TcpConn, UdpConn, hello_frame  # noqa: E402

LOGDIR = os.path.join(harness.ROOT, "build-valgrind")
WAIT = 60.0  # valgrind is slow to start and to run


def valgrind(name, kind, *args):
    os.makedirs(LOGDIR, exist_ok=True)
    log = os.path.join(LOGDIR, f"{name}_server.log")
    if os.path.exists(log):
        os.unlink(log)
    argv = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
            "--track-fds=no", f"--log-file={log}",
            *harness.server_argv(kind, "--port", "0", *args)]
    proc = Proc(argv)
    word = "TCP" if kind == "tcp" else "UDP"
    m = proc.wait_line(rf"Servidor {word} iniciado na porta (\d+)", timeout=WAIT)
    return proc, int(m.group(1)), log


def tcp_session(port):
    def conn(cid=None):
        c = TcpConn(port)
        c.s.settimeout(WAIT)
        if cid:
            c.send(f"HELLO {cid}")
            c.expect(rf"^WELCOME {cid} ", WAIT)
        return c

    a, b, c = conn("alice"), conn("bob"), conn("carol")
    a.send("MSG 1 hello")
    a.expect(r"^ACK 1 1$", WAIT)
    b.expect(r"^FROM alice 1 hello$", WAIT)
    a.send("TO bob 2 psst")
    b.expect(r"^PRIV alice 2 psst$", WAIT)
    a.send("TO nobody 3 x")
    a.expect(r"^ERR unknown_user", WAIT)
    c.send("JOIN games")
    c.expect(r"^JOINED carol games$", WAIT)
    c.send("WHO")
    c.expect(r"^USERS 3$", WAIT)
    for bad in (b"MSG 1 a\x00b\n", b"HELLO other\n", b"JOIN !\n", b"\x1b[2J\xff\n",
                b"X" * 10000 + b"\n", b"MSG 99999999999999999999 x\n"):
        a.send_raw(bad)
    a.send("PING done")
    a.expect(r"^PONG done$", WAIT)
    d = conn()
    d.send("WHO")
    d.expect(r"^ERR not_registered", WAIT)
    d.send("HELLO alice")
    d.expect(r"^ERR id_in_use", WAIT)
    d.close()
    e = conn("eve")  # a reset in the middle of a frame
    e.send_raw(b"MSG 5 half")
    e.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    e.close()
    f = conn("frank")  # half-closed
    f.send("MSG 1 bye")
    f.s.shutdown(socket.SHUT_WR)
    f.expect(r"^ACK 1 1$", WAIT)
    f.close()
    for i in range(100):  # churn
        g = conn(f"g{i}" if i % 2 else None)
        g.close()
    b.send("BYE")
    b.expect(r"^BYE quit$", WAIT)
    b.close()
    a.send("PING end")
    a.expect(r"^PONG end$", WAIT)
    return [a, c]  # still connected at SIGTERM: shutdown frees them


def udp_session(port):
    def client(cid=None):
        u = UdpConn(port)
        if cid:
            u.send(hello_frame(cid))
            u.expect(rf"^WELCOME {cid} ", WAIT)
        return u

    a, b = client("alice"), client("bob")
    z = client()
    # compressed: the padding must not compress away, or the WELCOME would not fit
    z.send(b"\xff" + zlib.compress(b"HELLO zed #" + os.urandom(40).hex().encode()))
    a.expect(r"^JOINED zed lobby$", WAIT)
    a.send("MSG 1 hi")
    a.expect(r"^ACK 1 1$", WAIT)
    b.expect(r"^FROM alice 1 hi$", WAIT)
    a.send("TO zed 2 psst")
    a.expect(r"^ACK 2 2$", WAIT)
    b.send("JOIN games")
    b.expect(r"^JOINED bob games$", WAIT)
    a.send("WHO")
    a.expect(r"^USERS 3$", WAIT)
    bomb = b"\xff" + zlib.compress(b"\0" * (3 << 20), 9)
    for bad in (b"MSG 1 a\x00b", b"\xff" + zlib.compress(b"MSG 3 x")[:-2], bomb, b"\xff\x00",
                b"x" * 60000, b"", b"HELLO other", b"\x1b[2J\xff"):
        a.send(bad)
    a.send("PING done")
    a.expect(r"^PONG done$", WAIT)
    u = client()
    u.send("MSG 1 who am i")  # 14 bytes: too short for any answer
    u.send("MSG 2 who am i, long enough for the whole ERR not_registered")
    u.expect(r"^ERR not_registered", WAIT)
    u.send("HELLO short")  # too short for its WELCOME: ERR pad, not registered
    u.expect(r"^ERR pad$", WAIT)
    for i in range(100):
        c = client(f"c{i}")
        c.send("BYE")
        c.expect(r"^BYE quit$", WAIT)
        c.close()
    t = client("sleepy")  # --timeout 2: forgotten by the keep-alive thread
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        a.send("PING t")  # alice and bob keep themselves alive
        b.send("PING t")
        d = t.recv(0.5)
        if d is not None and d.startswith(b"BYE timeout"):
            break
    else:
        raise AssertionError("sleepy was never timed out")
    return [a, b, z]


def check_log(kind, log):
    with open(log) as f:
        text = f.read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    errors = int(errors.group(1)) if errors else -1
    lost = {k: 0 for k in ("definitely", "indirectly", "possibly")}
    for k in lost:
        m = re.search(rf"{k} lost: ([\d,]+) bytes", text)
        if m:
            lost[k] = int(m.group(1).replace(",", ""))
    freed = "All heap blocks were freed" in text
    print(f"robustness: valgrind_{kind}_errors={errors}")
    print(f"robustness: valgrind_{kind}_lost_bytes={sum(lost.values())}")
    print(f"robustness: valgrind_{kind}_all_heap_freed={int(freed)}")
    return errors == 0 and sum(lost.values()) == 0


# name: (server, its options, the session that drives it)
SESSIONS = {
    "tcp": ("tcp", (), tcp_session),
    "tcp_epoll": ("tcp", ("--io", "epoll"), tcp_session),
    "udp": ("udp", ("--timeout", "2"), udp_session),
}


def main():
    names = sys.argv[1:] or list(SESSIONS)
    ok = True
    for name in names:
        kind, args, session = SESSIONS[name]
        proc, port, log = valgrind(name, kind, *args)
        try:
            keep = session(port)
            rc = proc.stop(timeout=WAIT)
        finally:
            if proc.alive():
                proc.p.kill()
        for k in keep:
            k.close()
        good = check_log(name, log) and rc == 0
        print(f"valgrind {name}_server: exit {rc}, {'clean' if good else 'NOT CLEAN'} "
              f"(log: {os.path.relpath(log, harness.ROOT)})")
        if not good:
            with open(log) as f:
                print(f.read()[-6000:])
        ok = ok and good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
