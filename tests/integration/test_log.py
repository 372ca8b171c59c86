"""test_log: a server whose log nobody reads keeps chatting (issue 15, item 1).

The servers write their log through a bounded buffer drained by one writer thread
(common/log.c). A stdout that takes nothing (a pipe nobody reads, a reader stopped with
SIGSTOP, like a terminal stopped with Ctrl-S) must not stop the chat: for tcp_server and
udp_server, two clients send 10,000 frames each while the log goes nowhere, and every frame
is acknowledged and relayed. Once the pipe is read again the log says how many lines it
dropped ("[WARN] N linhas de log descartadas") where they are missing: the [MESSAGE] lines
written plus the dropped ones are exactly the frames sent, each client's in its order.
Threads and descriptors come back to their baseline (make test-asan's LeakSanitizer checks
the heap), and a server whose stdout never drains still exits 0 on SIGTERM.

Real binaries, sockets and pipes; no timing thresholds: waits are on events, with generous
timeouts. Figures go to stderr as "robustness: ..." lines.
"""
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest

import harness
from harness import Proc, TcpConn, UdpConn, hello_frame, proc_stats, wait_until
from pylib.ports import free_port

FRAMES = 10000  # per client; two clients
SLOW = 4.0 if os.environ.get("CHATBENCH_SLOW") else 1.0
WAIT = 120.0 * SLOW  # 20,000 frames take a few seconds on an idle machine
# sanitizer builds keep freed memory in quarantine: RSS says nothing about leaks there
CHECK_RSS = not os.environ.get("CHATBENCH_SAN")
PAD = "x" * 94  # a [MESSAGE] line of about 125 bytes: 20,000 of them overflow the buffer
MSG_LINE = re.compile(r'^\[MESSAGE\] (alice|bob) : "(\d{5}) x+"$')
WARN_LINE = re.compile(r"^\[WARN\] (\d+) linhas de log descartadas$")


def report(what, value):
    print(f"robustness: {what}={value}", file=sys.stderr, flush=True)


class Peer:
    """A registered client over a real socket that counts the ACKs and FROMs it gets."""

    def __init__(self, kind, port, cid, pad=PAD):
        self.kind, self.cid, self.pad = kind, cid, pad
        self.acks = self.froms = 0
        self.buf = b""
        if kind == "tcp":
            wait_until(lambda: self._try_tcp(port), WAIT, f"{kind}_server accepting")
            self.conn.hello(cid)
        else:
            self.conn = UdpConn(port)
            wait_until(self._try_hello, WAIT, f"{kind}_server answering HELLO")
        self.sock = self.conn.s

    def _try_tcp(self, port):
        try:
            self.conn = TcpConn(port)
            return True
        except OSError:
            return False

    def _try_hello(self):
        self.conn.send(hello_frame(self.cid))
        d = self.conn.recv(0.5)
        return d is not None and d.startswith(f"WELCOME {self.cid} ".encode())

    def frame(self, i):
        return f"MSG {i} {i:05d} {self.pad}".encode()

    def take(self, data):
        """Counts the frames in what the socket gave (a stream for TCP, one datagram for UDP)."""
        if self.kind == "tcp":
            self.buf += data
            *lines, self.buf = self.buf.split(b"\n")
        else:
            lines = [data.rstrip(b"\n")]
        for line in lines:
            if line.startswith(b"ACK "):
                self.acks += 1
            elif line.startswith(b"FROM "):
                self.froms += 1

    def close(self):
        if self.kind == "udp":
            self.conn.send("BYE")
        self.conn.close()


def flood(peers, n, window, relayed=True):
    """Each peer sends n frames, at most window of them unacknowledged, and reads what comes
    back until every frame is ACKed and (relayed) it got n FROMs from the other. One thread,
    select(2) over all sockets, so nobody stops reading while it sends. Returns seconds."""
    start = time.monotonic()
    deadline = start + WAIT
    sent = {p: 0 for p in peers}
    out = {p: b"" for p in peers}
    for p in peers:
        p.sock.setblocking(False)
    while any(p.acks < n or (relayed and p.froms < n) for p in peers):
        if time.monotonic() > deadline:
            raise AssertionError("frames not all acknowledged and relayed: " + ", ".join(
                f"{p.cid} sent {sent[p]} acked {p.acks} got {p.froms}" for p in peers))
        for p in peers:
            while sent[p] < n and sent[p] - p.acks < window:
                if p.kind == "tcp":
                    out[p] += p.frame(sent[p] + 1) + b"\n"
                else:
                    try:
                        p.conn.send(p.frame(sent[p] + 1))
                    except BlockingIOError:
                        break  # the socket's send buffer is full: after the next select
                sent[p] += 1
        wants = [p.sock for p in peers if out[p]]
        readable, writable, _ = select.select([p.sock for p in peers], wants, [], 1.0)
        for p in peers:
            if p.sock in writable:
                out[p] = out[p][p.sock.send(out[p]):]
            while p.sock in readable:
                try:
                    data = p.sock.recv(262144)
                except BlockingIOError:
                    break
                if not data:
                    raise AssertionError(f"{p.cid}: the server closed the connection")
                p.take(data)
    for p in peers:
        p.sock.setblocking(True)
        p.sock.settimeout(harness.TIMEOUT * SLOW)
    return time.monotonic() - start


class LogStallTest:
    """Mixin: the same cases for both servers (self.kind)."""

    def server_on_pipe(self):
        """Starts the server with stdout into a fresh pipe; returns (popen, port, read_fd)."""
        port = free_port(self.kind)
        r, w = os.pipe()
        srv = subprocess.Popen([os.path.join(harness.BIN, f"{self.kind}_server"),
                                "--port", str(port)], stdout=w)
        os.close(w)
        self.addCleanup(os.close, r)
        self.addCleanup(lambda: srv.poll() is None and (srv.kill(), srv.wait()))
        return srv, port, r

    def reader(self, r):
        """cat from the log pipe: a real process that can be stopped and continued."""
        cat = Proc(["cat"], stdin=r)
        self.addCleanup(lambda: cat.alive() and cat.p.send_signal(signal.SIGCONT))
        self.addCleanup(cat.stop)  # runs after the SIGCONT above: cleanups run last first
        return cat

    def chat_through_a_stalled_log(self, read_from_start):
        srv, port, r = self.server_on_pipe()
        cat = self.reader(r) if read_from_start else None
        alice = Peer(self.kind, port, "alice")
        bob = Peer(self.kind, port, "bob")
        base = proc_stats(srv.pid)
        if cat is not None:
            cat.wait_line(r"^\[(REGISTER|CONNECT)\] .*bob")
            cat.p.send_signal(signal.SIGSTOP)
        window = 500 if self.kind == "tcp" else 64
        secs = flood([alice, bob], FRAMES, window)
        case = "stopped_reader" if read_from_start else "unread_pipe"
        report(f"log_{self.kind}_{case}_frames", 2 * FRAMES)
        report(f"log_{self.kind}_{case}_seconds", f"{secs:.2f}")
        grown = proc_stats(srv.pid)["rss_kib"] - base["rss_kib"]
        if CHECK_RSS:  # the log buffer is 1 MiB whatever the backlog
            self.assertLess(grown, 16 * 1024, "RSS grew while the log was stalled")

        # the log drains once someone reads it
        if cat is None:
            cat = self.reader(r)
        else:
            cat.p.send_signal(signal.SIGCONT)
        cat.wait_line(WARN_LINE.pattern, timeout=WAIT)  # the writer has room again
        alice.conn.send(b"MSG 99999 fim")
        mark = cat.wait_line(r'^\[MESSAGE\] alice : "fim"$', timeout=WAIT)
        lines = cat.lines[:cat.lines.index(mark.string)]
        dropped = sum(int(m.group(1)) for m in map(WARN_LINE.match, lines) if m)
        seqs = {"alice": [], "bob": []}
        for m in filter(None, map(MSG_LINE.match, lines)):
            seqs[m.group(1)].append(int(m.group(2)))
        for cid, s in seqs.items():
            self.assertEqual(s, sorted(set(s)), f"{cid}'s [MESSAGE] lines out of order")
        written = len(seqs["alice"]) + len(seqs["bob"])
        self.assertGreater(dropped, 0, "nothing dropped: the test did not fill the log")
        self.assertEqual(written + dropped, 2 * FRAMES,
                         "every [MESSAGE] line is either written or counted as dropped")
        report(f"log_{self.kind}_{case}_dropped_lines", dropped)

        # nothing left behind: after they leave, two new clients cost what these two did
        for p in (alice, bob):
            p.close()
        later = [Peer(self.kind, port, cid) for cid in ("carol", "dave")]
        want = {k: base[k] for k in ("threads", "fds")}
        wait_until(lambda: {k: proc_stats(srv.pid)[k] for k in want} == want,
                   WAIT, f"threads and fds back to {want}")
        for p in later:
            p.close()
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait(WAIT), 0)
        cat.wait_line(r"^\[INFO\] Servidor encerrado$", timeout=WAIT)  # flushed at exit

    def test_chat_goes_on_while_nobody_reads_the_log(self):
        self.chat_through_a_stalled_log(read_from_start=False)

    def test_chat_goes_on_while_the_log_reader_is_stopped(self):
        self.chat_through_a_stalled_log(read_from_start=True)

    def test_exits_on_sigterm_with_a_log_that_never_drains(self):
        srv, port, _ = self.server_on_pipe()
        alice = Peer(self.kind, port, "alice", pad="y" * 1000)
        flood([alice], 3000, 64, relayed=False)  # 3 MB of [MESSAGE] lines: the buffer is full
        srv.send_signal(signal.SIGTERM)
        start = time.monotonic()
        self.assertEqual(srv.wait(WAIT), 0)
        report(f"log_{self.kind}_stuck_exit_seconds", f"{time.monotonic() - start:.2f}")
        alice.close()


class TcpLogTest(LogStallTest, unittest.TestCase):
    kind = "tcp"


class UdpLogTest(LogStallTest, unittest.TestCase):
    kind = "udp"


if __name__ == "__main__":
    unittest.main()
