"""test_hostile: hostile input and faults against bin/tcp_server and bin/udp_server.

Real sockets, real binaries. Every case ends the same way: two bystanders, registered
before the attack, still chat (a MSG reaches the other and is ACKed), and the server's
threads and file descriptors are back to what they were before the attack
(harness.proc_stats). Cases that could grow memory also bound the growth of its RSS.
test_tcp_server.py and test_udp_server.py test the protocol; this file goes further:
floods, races, resets, resource exhaustion, churn.

CHATBENCH_CHURN sets the connect/disconnect cycles (default 10,000; sanitizer and valgrind
runs use fewer). Figures (cycles, cases) are printed as "robustness: ..." lines for
analysis/robustness.sh.
"""
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import zlib

import harness
from harness import TIMEOUT, Proc, TcpConn, UdpConn, proc_stats, start_server, wait_until
from pylib.ports import free_port
from pylib.procfs import cpu_seconds

CHURN = int(os.environ.get("CHATBENCH_CHURN", "10000"))
# under ThreadSanitizer or valgrind everything is slower: give waits more time
SLOW = 4.0 if os.environ.get("CHATBENCH_SLOW") else 1.0
# sanitizer builds (make test-asan/test-tsan) hold freed memory in quarantine: RSS says
# nothing about leaks there, LeakSanitizer does
CHECK_RSS = not os.environ.get("CHATBENCH_SAN")
ZMARK = b"\xff"


def report(what, value):
    """A figure for analysis/robustness.sh, on stderr so that it shows in any run."""
    print(f"robustness: {what}={value}", file=sys.stderr, flush=True)


def rst_close(sock):
    """Closes with SO_LINGER 0: the peer gets a RST, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class RawConn(TcpConn):
    """TcpConn that also returns lines as the exact bytes received."""

    def recv_bytes(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timeout waiting for a line; have {self.buf[:200]!r}")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def read_until_eof(sock, timeout=TIMEOUT):
    """Everything the peer sends until it closes (or resets) the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


# --- TCP ---


class TcpHostileTest(unittest.TestCase):
    ARGS = ()

    def setUp(self):
        self.proc, self.port = start_server("tcp", *self.ARGS, test=self)
        self.alice = self.conn("alice")
        self.bob = self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.seq = 1000
        self.settle()

    def conn(self, cid=None, cls=RawConn):
        c = cls(self.port)
        self.addCleanup(c.close)
        if cid is not None:
            c.hello(cid)
        return c

    def stats(self):
        return proc_stats(self.proc.p.pid)

    def settle(self):
        """Takes the baseline: the server with its two bystanders."""
        self.base = self.stats()

    def assert_bystanders_chat(self):
        """alice -> bob and bob -> alice still work, with their ACKs."""
        for a, b, name in ((self.alice, self.bob, "alice"), (self.bob, self.alice, "bob")):
            self.seq += 1
            a.send(f"MSG {self.seq} still here")
            a.expect(rf"^ACK {self.seq} \d+$", timeout=TIMEOUT * SLOW)
            b.expect(rf"^FROM {name} {self.seq} still here$", timeout=TIMEOUT * SLOW)

    def assert_back_to_baseline(self, rss_slack_kib=None):
        want = {k: self.base[k] for k in ("threads", "fds")}
        last = {}

        def same():
            last.update(self.stats())
            return {k: last[k] for k in want} == want

        try:
            wait_until(same, timeout=TIMEOUT * 2 * SLOW, what="threads and fds at baseline")
        except AssertionError:
            self.fail(f"server holds {last}, baseline {self.base}")
        if rss_slack_kib is not None and CHECK_RSS:
            grown = last["rss_kib"] - self.base["rss_kib"]
            self.assertLess(grown, rss_slack_kib, f"RSS grew by {grown} KiB")
        self.assertTrue(self.proc.alive())

    def healthy(self, rss_slack_kib=None):
        self.assert_bystanders_chat()
        self.assert_back_to_baseline(rss_slack_kib)

    # --- malformed input ---

    def test_oversized_frame_one_error_then_usable(self):
        c = self.conn("mallory")
        c.send_raw(b"MSG 1 " + b"A" * (1 << 20) + b"\nPING after\n")
        self.assertEqual(c.recv_line(TIMEOUT * SLOW), "ERR too_long frame too long")
        self.assertEqual(c.recv_line(), "PONG after")  # exactly one ERR, nothing relayed
        self.assertNotIn("AAAA", " ".join(self.proc.lines))
        c.close()
        self.healthy()

    def test_endless_line_without_lf_bounded_memory(self):
        c = self.conn("mallory")
        chunk = b"B" * 65536
        for _ in range(128):  # 8 MiB, no LF
            c.send_raw(chunk)
        c.send_raw(b"\nPING end\n")
        self.assertEqual(c.recv_line(TIMEOUT * SLOW), "ERR too_long frame too long")
        self.assertEqual(c.recv_line(TIMEOUT * SLOW), "PONG end")
        c.close()
        self.healthy(rss_slack_kib=4096)  # 8 MiB went through a 4 KiB buffer

    def test_nul_bytes_refused_never_relayed(self):
        c = self.conn("mallory")
        c.send_raw(b"MSG 1 a\x00b\n\x00\nHELLO \x00\nPING ok\n")
        for _ in range(3):
            self.assertEqual(c.expect(r"^ERR (\S+)").group(1), "bad_frame")
        c.expect(r"^PONG ok$")
        self.bob.send("PING barrier")
        for line in iter(lambda: self.bob.recv_bytes(), b"PONG barrier"):
            self.assertNotIn(b"\x00", line)
            self.assertFalse(line.startswith(b"FROM mallory 1"), line)
        c.close()
        self.healthy()

    def test_invalid_utf8_relayed_as_bytes_and_escaped_in_log(self):
        raw = b"caf\xc3 \xff\xfe \xed\xa0\x80 \xc0\xaf"
        self.alice.send_raw(b"MSG 7 " + raw + b"\n")
        self.assertEqual(self.bob.recv_bytes(), b"FROM alice 7 " + raw)
        m = self.proc.wait_line(r'^\[MESSAGE\] alice : "caf')
        line = m.string
        self.assertNotIn("\ufffd", line)  # no raw invalid byte reached the log
        self.assertIn("\\xff\\xfe", line)
        self.assertIn("\\xc0\\xaf", line)
        self.healthy()

    def test_terminal_escapes_never_reach_the_log_raw(self):
        evil = b"\x1b[2J\x1b]0;owned\x07\x08\x7f \xc2\x9b31m \xe2\x80\xae"
        self.alice.send_raw(b"MSG 8 " + evil + b"\n")
        self.assertEqual(self.bob.recv_bytes(), b"FROM alice 8 " + evil)  # relayed as it came
        line = self.proc.wait_line(r'^\[MESSAGE\] alice : ').string
        for ch in line:
            self.assertFalse(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F, f"raw {ch!r} in {line!r}")
        self.assertIn("\\x1b[2J\\x1b]0;owned\\x07\\x08\\x7f", line)
        self.assertIn("\\xc2\\x9b", line)  # C1 CSI, escaped too
        self.assertIn("\\xe2\\x80\\xae", line)  # bidi override: cannot reorder the line
        self.alice.send_raw(b"MSG 9 a\rb\n")  # a CR inside a frame is refused
        self.alice.expect(r"^ERR bad_frame ")
        self.healthy()

    def test_frame_split_into_single_bytes_and_pipelined(self):
        c = self.conn("mallory")
        c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"JOIN side\nMSG 1 one byte at a time\r\n":
            c.send_raw(bytes([b]))
        c.expect(r"^JOINED mallory side$")
        c.expect(r"^ACK 1 1$")
        c.send_raw(b"".join(b"MSG %d x\n" % i for i in range(2, 2002)))  # one burst
        for i in range(2, 2002):
            self.assertEqual(c.recv_line(TIMEOUT * SLOW), f"ACK {i} {i}")
        c.close()
        self.healthy()

    def test_garbage_flood_keeps_everyone(self):
        c = self.conn("mallory")
        c.send("JOIN junk")
        c.expect(r"^JOINED mallory junk$")
        rnd = random.Random(7)
        lines = 0
        blob = bytearray()
        for _ in range(3000):
            n = rnd.randrange(0, 300)
            blob += bytes(rnd.randrange(1, 256) for _ in range(n)).replace(b"\n", b"") + b"\n"
            lines += 1
        blob += b"PING done\n"
        done = threading.Event()
        answers = []

        def reader():
            while True:
                line = c.recv_line(TIMEOUT * SLOW)
                if line is None or line == "PONG done":
                    break
                answers.append(line.split(" ", 1)[0])
            done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        c.send_raw(bytes(blob))
        t.join(TIMEOUT * 4 * SLOW)
        self.assertTrue(done.is_set(), "no PONG after the garbage")
        self.assertEqual(len(answers), lines)  # one answer per line: ACK, ERR...
        self.assertLessEqual(set(answers), {"ACK", "ERR", "JOINED", "PONG", "USER", "USERS",
                                            "WELCOME", "BYE", "LEFT"})
        c.close()
        self.healthy()

    def test_bad_ids_rooms_and_numbers(self):
        c = self.conn()
        for frame, code in (("HELLO " + "x" * 33, "bad_id"), ("HELLO a/b", "bad_id"),
                            ("HELLO é", "bad_id"), ("HELLO a b c", "bad_frame"),
                            ("HELLO a b!", "bad_room"), ("HELLO a  b", "bad_frame"),
                            ("HELLO ", "bad_frame")):
            c.send(frame)
            self.assertEqual(c.expect(r"^ERR (\S+)").group(1), code, frame)
        c.hello("mallory")
        for frame, code in (("JOIN " + "r" * 33, "bad_room"), ("JOIN ../etc", "bad_room"),
                            ("MSG 18446744073709551615 x", "bad_frame"),
                            ("MSG -1 x", "bad_frame"), ("TO bob 99999999999999999999 x", "bad_frame"),
                            ("TO " + "b" * 40 + " 1 x", "bad_id")):
            c.send(frame)
            self.assertEqual(c.expect(r"^ERR (\S+)").group(1), code, frame)
        c.send("MSG 18446744073709551614 max")
        c.expect(r"^ACK 18446744073709551614 1$")
        c.close()
        self.healthy()

    # --- registration ---

    def test_frames_before_hello(self):
        c = self.conn()
        for frame in ("MSG 1 x", "plain text", "TO bob 1 x", "JOIN r", "WHO", "BYE"):
            c.send(frame)
            c.expect(r"^ERR not_registered ")
        c.send("PING 5")
        c.expect(r"^PONG 5$")
        c.hello("late")
        self.alice.expect(r"^JOINED late lobby$")
        c.close()
        self.healthy()

    def test_duplicate_id_race(self):
        conns = [self.conn() for _ in range(20)]
        barrier = threading.Barrier(len(conns))

        def hello(c):
            barrier.wait()
            c.send("HELLO twin")

        ts = [threading.Thread(target=hello, args=(c,), daemon=True) for c in conns]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        answers = [c.expect(r"^(WELCOME|ERR id_in_use)").group(1) for c in conns]
        self.assertEqual(answers.count("WELCOME"), 1, answers)
        self.assertEqual(answers.count("ERR id_in_use"), 19)
        self.bob.send("WHO")
        self.bob.expect(r"^USERS 3$")
        for c in conns:
            c.close()
        self.healthy()

    def test_idle_unregistered_connections_are_timed_out(self):
        self.proc.stop()
        self.proc, self.port = start_server("tcp", "--hello-timeout", "1", test=self)
        self.alice, self.bob = self.conn("alice"), self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        idle = [self.conn(cls=TcpConn) for _ in range(30)]
        wait_until(lambda: self.stats()["fds"] >= self.base["fds"] + 30, what="30 accepted")
        for c in idle:
            self.assertIn(b"ERR timeout", read_until_eof(c.s, TIMEOUT * SLOW))
        wait_until(lambda: self.proc.count(r"nenhum HELLO a tempo") == 30, what="30 WARN lines")
        self.healthy()

    def test_slowloris_trickling_hello_is_cut_at_the_deadline(self):
        self.proc.stop()
        self.proc, self.port = start_server("tcp", "--hello-timeout", "1", test=self)
        self.alice, self.bob = self.conn("alice"), self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        c = self.conn(cls=TcpConn)
        c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        closed = False
        for b in b"HELLO " + b"s" * 30:  # one byte every 0.1 s keeps it busy, not alive
            try:
                c.send_raw(bytes([b]))
            except OSError:
                closed = True
                break
            r = c.s.recv(4096, socket.MSG_DONTWAIT) if self._readable(c.s, 0.1) else b""
            if b"ERR timeout" in r:
                closed = True
                break
            self.assert_bystanders_chat()  # the others are served meanwhile
        self.assertTrue(closed, "a trickling client outlived --hello-timeout 1")
        c.close()
        self.healthy()

    @staticmethod
    def _readable(sock, timeout):
        import select
        return bool(select.select([sock], [], [], timeout)[0])

    def test_hello_flood_past_max_clients(self):
        self.proc.stop()
        self.proc, self.port = start_server("tcp", "--max-clients", "12", test=self)
        self.alice, self.bob = self.conn("alice"), self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        got = {"WELCOME": 0, "full": 0}
        conns = []
        for i in range(40):  # ids never seen before, past the limit of 12 connections
            c = self.conn(cls=TcpConn)
            conns.append(c)
            try:
                c.send(f"HELLO flood{i}")
            except OSError:
                pass  # refused and closed before we wrote: the ERR is still readable
            line = c.recv_line(TIMEOUT * SLOW)  # None: our HELLO made its close a reset
            if line is not None and line.startswith("WELCOME"):
                got["WELCOME"] += 1
            else:
                self.assertIn(line, ("ERR server_full server full", None))
                if line is not None:
                    self.assertIsNone(c.recv_line())  # then closed
                got["full"] += 1
        self.assertEqual(got, {"WELCOME": 10, "full": 30})
        # refusals are logged at most once a second (a flood is not a write per connection)
        self.proc.wait_line(r"^\[WARN\] Conexão de .* recusada: servidor cheio \(1 recusadas")
        self.assertLess(self.proc.count(r"^\[WARN\] Conexão de .* recusada"), 30)
        self.assert_bystanders_chat()
        for c in conns:
            c.close()
        self.assert_back_to_baseline()
        late = self.conn("late")  # recovered: room again once the flood left
        late.close()
        self.healthy()
        self.assertEqual(self.proc.stop(), 0)
        self.proc.wait_line(r"^\[INFO\] Estatísticas: .* 30 recusadas$")

    # --- broken connections ---

    def test_half_closed_client_gets_its_answers(self):
        c = self.conn("half")
        c.send("MSG 1 last words")
        c.s.shutdown(socket.SHUT_WR)
        rest = read_until_eof(c.s, TIMEOUT * SLOW).decode()
        self.assertIn("ACK 1 1", rest)
        self.bob.expect(r"^FROM half 1 last words$")
        self.bob.expect(r"^LEFT half lobby quit$")
        c.close()
        self.healthy()

    def test_reset_in_the_middle_of_a_frame(self):
        for i in range(20):
            c = self.conn(f"rst{i}")
            self.bob.expect(rf"^JOINED rst{i} lobby$")
            c.send_raw(b"MSG 1 half a fra")
            rst_close(c.s)
            self.bob.expect(rf"^LEFT rst{i} lobby (error|quit)$")
        self.bob.send("PING b")
        for line in iter(lambda: self.bob.recv_line(), "PONG b"):
            self.assertNotIn("half a fra", line)  # a partial frame is never relayed
        self.healthy()

    def test_client_killed_mid_broadcast(self):
        members = [self.conn(f"m{i}") for i in range(6)]
        code = ("import socket,sys,time\n"
                "s=socket.create_connection(('127.0.0.1',%d))\n"
                "s.sendall(b'HELLO victim\\n')\n"
                "while True: s.recv(10)\n" % self.port)
        victim = subprocess.Popen([sys.executable, "-c", code])
        self.addCleanup(victim.kill)
        self.bob.expect(r"^JOINED victim lobby$")
        n = 3000
        sender_done = threading.Event()

        def flood():
            self.alice.send_raw(b"".join(b"MSG %d %s\n" % (i, b"z" * 100) for i in range(n)))
            sender_done.set()

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        self.bob.expect(r"^FROM alice 100 ")
        victim.kill()  # SIGKILL while the room's fan-out is running
        victim.wait()
        t.join(TIMEOUT * SLOW)
        for m in members + [self.bob]:
            seen = 101 if m is self.bob else 0
            others = []
            while seen < n:
                line = m.recv_line(TIMEOUT * SLOW)
                self.assertIsNotNone(line, "a member lost its connection")
                if line.startswith("FROM alice "):
                    self.assertEqual(int(line.split()[2]), seen)  # all of them, in order
                    seen += 1
                else:
                    others.append(line)
            if not any(re.match(r"^LEFT victim lobby (error|quit|slow)$", l) for l in others):
                m.expect(r"^LEFT victim lobby (error|quit|slow)$")
        acks = 0
        while acks < n:
            if self.alice.recv_line(TIMEOUT * SLOW).startswith("ACK "):
                acks += 1
        for m in members:
            m.close()
        self.healthy()

    # --- resources ---

    def test_connect_disconnect_churn(self):
        def cycles(k, count, out):
            for j in range(count):
                s = socket.create_connection((harness.HOST, self.port), timeout=TIMEOUT * SLOW)
                mode = j % 4
                if mode == 1:  # register, then leave abruptly
                    s.sendall(f"HELLO c{k}_{j}\n".encode())
                    f = s.makefile("rb")
                    if not f.readline().startswith(b"WELCOME"):
                        out.append("no WELCOME")
                    f.close()
                elif mode == 2:
                    s.sendall(b"PING x\n")
                    if s.recv(64) != b"PONG x\n":
                        out.append("no PONG")
                elif mode == 3:
                    rst_close(s)
                    continue
                s.close()

        def run(total):
            errors, ts = [], []
            workers = 8
            for k in range(workers):
                t = threading.Thread(target=cycles, args=(k, total // workers, errors), daemon=True)
                t.start()
                ts.append(t)
            for t in ts:
                t.join()
            self.assertEqual(errors, [])
            return total // workers * workers

        warm = run(max(CHURN // 10, 8))  # malloc arenas and thread stacks settle first
        self.assert_back_to_baseline()
        self.settle()
        t0 = time.monotonic()
        done = run(CHURN)
        report("tcp_churn_cycles", done + warm)
        report("tcp_churn_seconds", round(time.monotonic() - t0, 1))
        self.healthy(rss_slack_kib=2048)
        report("tcp_churn_rss_growth_kib", self.stats()["rss_kib"] - self.base["rss_kib"])

    def test_join_churn_frees_rooms(self):
        c = self.conn("nomad")
        for i in range(3000):
            c.send(f"JOIN room{i}")
        c.send("PING j")
        c.expect(r"^PONG j$", timeout=TIMEOUT * SLOW)
        self.assert_bystanders_chat()
        base = self.stats()["rss_kib"]
        for i in range(3000, 6000):
            c.send(f"JOIN room{i}")
        c.send("PING k")
        c.expect(r"^PONG k$", timeout=TIMEOUT * SLOW)
        if CHECK_RSS:
            self.assertLess(self.stats()["rss_kib"] - base, 1024)  # rooms are freed when empty
        c.close()
        self.healthy()

    def test_out_of_file_descriptors_no_busy_loop_and_recovery(self):
        self.proc.stop()
        # soft = hard: the server cannot raise it; stdio, listener, signalfd, eventfd...
        argv = ["prlimit", "--nofile=24:24", os.path.join(harness.BIN, "tcp_server"),
                "--port", "0", "--hello-timeout", "60"]
        self.proc = Proc(argv)
        self.addCleanup(self.proc.stop)
        self.port = int(self.proc.wait_line(r"Servidor TCP iniciado na porta (\d+)").group(1))
        self.alice, self.bob = self.conn("alice"), self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        hogs = []
        for _ in range(40):  # more than the server can hold: the rest wait in the backlog
            hogs.append(self.conn(cls=TcpConn))
        wait_until(lambda: self.proc.count(r"accept: Too many open files") > 0,
                   timeout=TIMEOUT * SLOW, what="EMFILE")
        cpu0, t0 = cpu_seconds(self.proc.p.pid), time.monotonic()
        time.sleep(2.0)
        cpu = cpu_seconds(self.proc.p.pid) - cpu0
        wall = time.monotonic() - t0
        report("emfile_cpu_seconds_per_second", round(cpu / wall, 3))
        self.assertLess(cpu, 0.25 * wall * SLOW, "busy loop while out of fds")
        self.assertLess(self.proc.count(r"accept: Too many open files"), 200)
        self.assert_bystanders_chat()  # served all along
        for c in hogs:
            c.close()
        self.assert_back_to_baseline()
        fresh = self.conn("fresh")  # recovered
        self.alice.expect(r"^JOINED fresh lobby$")
        fresh.close()
        self.healthy()

    def test_mass_reset_of_registered_clients(self):
        conns = [self.conn(f"r{i}") for i in range(150)]
        self.assertGreaterEqual(self.stats()["threads"], self.base["threads"] + 150)
        for c in conns:
            c.send_raw(b"MSG 1 cut")  # mid-frame, and some unread JOINED in their buffers
        for c in conns:
            rst_close(c.s)
        self.healthy()

    def test_sigterm_during_a_flood(self):
        stop = threading.Event()
        flooders = [self.conn(f"f{i}") for i in range(4)]

        def flood(c, k):
            i = 0
            try:
                while not stop.is_set():
                    c.send_raw(b"".join(b"MSG %d flood %d\n" % (i + j, k) for j in range(50)))
                    i += 50
            except OSError:
                pass  # the server closed us: that is the point

        ts = [threading.Thread(target=flood, args=(c, k), daemon=True)
              for k, c in enumerate(flooders)]
        self.addCleanup(stop.set)  # the flood ends even when the test fails
        for t in ts:
            t.start()
        self.bob.expect(r"^FROM f\d+ 500 ", timeout=TIMEOUT * SLOW)
        rc = self.proc.stop(timeout=TIMEOUT * 2 * SLOW)
        stop.set()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(rc, 0)  # not killed, not crashed: a clean exit mid-flood
        self.proc.wait_line(r"^\[INFO\] Servidor encerrado$")
        self.assertIn("BYE shutdown", (self.bob.buf + read_until_eof(self.bob.s)).decode())

    def test_server_restart_clients_reconnect(self):
        self.proc.stop()
        port = free_port()
        self.proc = Proc([os.path.join(harness.BIN, "tcp_server"), "--port", str(port)])
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor TCP iniciado")
        self.port = port
        conns = {cid: self.conn(cid) for cid in ("alice", "bob", "carol")}
        self.assertEqual(self.proc.stop(), 0)
        for c in conns.values():
            rest = (c.buf + read_until_eof(c.s)).decode()
            self.assertIn("BYE shutdown", rest)
        self.proc = Proc([os.path.join(harness.BIN, "tcp_server"), "--port", str(port)])
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor TCP iniciado")  # SO_REUSEADDR: same port at once
        self.alice, self.bob = self.conn("alice"), self.conn("bob")  # same ids again
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        self.healthy()


# --- UDP ---


def zpack(frame, level=9):
    c = zlib.compressobj(level)
    return ZMARK + c.compress(frame) + c.flush()


class UdpHostileTest(unittest.TestCase):
    ARGS = ()

    def setUp(self):
        self.start(*self.ARGS)

    def start(self, *args):
        self.proc, self.port = start_server("udp", *args, test=self)
        self.alice = self.client("alice")
        self.bob = self.client("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.seq = 1000
        self.base = proc_stats(self.proc.p.pid)

    def restart(self, *args):
        self.proc.stop()
        self.start(*args)

    def client(self, cid=None):
        c = UdpConn(self.port)
        self.addCleanup(c.close)
        if cid is not None:
            c.hello(cid)
        return c

    def stats(self):
        return proc_stats(self.proc.p.pid)

    def barrier(self, c, token):
        """Datagrams that arrived before the answer to PING token."""
        c.send(f"PING {token}")
        seen = []
        while True:
            d = c.recv(TIMEOUT * SLOW)
            self.assertIsNotNone(d, f"no PONG {token}")
            if d.rstrip(b"\n") == f"PONG {token}".encode():
                return seen
            seen.append(d)

    def ping_until_pong(self, c, token):
        """UDP may drop a datagram while the server is flooded: ask until it answers."""
        deadline = time.monotonic() + TIMEOUT * 2 * SLOW
        while time.monotonic() < deadline:
            c.send(f"PING {token}")
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                d = c.recv(max(0.0, end - time.monotonic()))
                if d is not None and d.rstrip(b"\n") == f"PONG {token}".encode():
                    return
        self.fail(f"no PONG {token}")

    def healthy(self, rss_slack_kib=None, users=2):
        self.ping_until_pong(self.alice, "h1")
        self.ping_until_pong(self.bob, "h2")
        for a, b, name in ((self.alice, self.bob, "alice"), (self.bob, self.alice, "bob")):
            self.seq += 1
            a.send(f"MSG {self.seq} still here")
            a.expect(rf"^ACK {self.seq} \d+$", timeout=TIMEOUT * SLOW)
            b.expect(rf"^FROM {name} {self.seq} still here$", timeout=TIMEOUT * SLOW)
        s = self.stats()
        self.assertEqual((s["threads"], s["fds"]), (self.base["threads"], self.base["fds"]))
        if rss_slack_kib is not None and CHECK_RSS:
            self.assertLess(s["rss_kib"] - self.base["rss_kib"], rss_slack_kib)
        self.alice.send("WHO")
        self.alice.expect(rf"^USERS {users}$")  # nobody else stayed in the table

    def test_unregistered_addresses_change_nothing(self):
        for i in range(50):
            c = self.client()
            for frame in ("MSG 1 x", "plain", "TO bob 1 x", "JOIN r", "WHO", "PING 1", "BYE"):
                c.send(frame)
                c.expect(r"^ERR not_registered ")
            c.close()
        self.assertEqual([d for d in self.barrier(self.bob, "u") if b"FROM" in d], [])
        self.healthy()

    def test_hello_flood_past_max_clients(self):
        self.restart("--max-clients", "12")
        clients = [self.client() for _ in range(40)]
        for i, c in enumerate(clients):
            c.send(f"HELLO flood{i}")
        answers = [c.expect(r"^(WELCOME|ERR server_full)").group(1) for c in clients]
        self.assertEqual(answers.count("WELCOME"), 10)
        self.assertEqual(answers.count("ERR server_full"), 30)
        wait_until(lambda: self.proc.count(r"^\[WARN\] Servidor cheio") == 30, what="30 WARN")
        for c, a in zip(clients, answers):
            if a == "WELCOME":
                c.send("BYE")
                c.expect(r"^BYE quit$")
        late = self.client("late")  # room again
        late.send("BYE")
        self.healthy()

    def test_duplicate_ids_from_many_addresses(self):
        clients = [self.client() for _ in range(20)]
        for c in clients:
            c.send("HELLO bob")
        for c in clients:
            c.expect(r"^ERR id_in_use ")
        self.healthy()

    def test_zlib_bomb(self):
        bomb = zpack(b"\0" * (3 << 20))  # 3 MiB of zeros in about 3 KiB: fits one datagram
        self.assertLess(len(bomb), 4096)
        for _ in range(20):
            self.alice.send(bomb)
            self.alice.expect(r"^ERR bad_zlib ")
        self.healthy(rss_slack_kib=2048)  # inflation stops at --max-frame

    def test_truncated_and_corrupt_zlib(self):
        good = zpack(b"MSG 1 " + b"hello " * 50)
        rnd = random.Random(3)
        cases = [good[:k] for k in range(1, len(good))]  # every truncation
        for _ in range(200):  # flipped bytes
            b = bytearray(good)
            b[rnd.randrange(1, len(b))] ^= 1 << rnd.randrange(8)
            cases.append(bytes(b))
        cases += [good + b"trailing", ZMARK, ZMARK + os.urandom(100)]
        for d in cases:
            self.alice.send(d)
        seen = self.barrier(self.alice, "z")
        # every one got ERR bad_zlib, or (a flip zlib could not notice) an answer to a frame
        self.assertEqual(len(seen), len(cases))
        self.assertGreater(sum(1 for d in seen if d.startswith(b"ERR bad_zlib")),
                           len(good) - 1)
        self.healthy()

    def test_empty_and_64k_datagrams(self):
        self.alice.send(b"")
        self.alice.send(b"x" * 65507)  # the largest UDP payload: over --max-frame 4096
        self.alice.expect(r"^ERR too_long ")
        self.assertEqual(self.barrier(self.alice, "e"), [])  # the empty one was silent
        self.healthy()

    def test_max_frame_65507_relay_of_a_maximal_frame(self):
        self.restart("--max-frame", "65507")
        text = b"y" * (65507 - len(b"MSG 1 "))
        self.alice.send(b"MSG 1 " + text)
        self.alice.expect(r"^ACK 1 1$")
        # FROM alice 1 <text> is longer than any UDP datagram: it cannot be relayed, and
        # the server must survive trying (the sender counts a send error)
        self.assertEqual([d for d in self.barrier(self.bob, "m") if d.startswith(b"FROM")], [])
        self.alice.send(b"MSG 2 " + b"y" * 60000)
        self.bob.expect(r"^FROM alice 2 y{60000}$")
        self.healthy()

    def test_nul_control_and_invalid_utf8(self):
        self.alice.send(b"MSG 1 a\0b")
        self.alice.expect(r"^ERR bad_frame ")
        evil = b"\x1b[2J\x1b]0;owned\x07 \xff\xfe \xc2\x9b"
        self.alice.send(b"MSG 2 " + evil)
        d = self.bob.recv(TIMEOUT)
        self.assertEqual(d, b"FROM alice 2 " + evil + b"\n")
        line = self.proc.wait_line(r'^\[MESSAGE\] alice : ').string
        for ch in line:
            self.assertFalse(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch == "\ufffd", line)
        self.healthy()

    def test_embedded_lf_cannot_forge_a_log_line(self):
        # an LF inside a datagram would reach line-oriented peers (nc) as a second frame
        self.alice.send(b"MSG 3 hi\n[MESSAGE] admin : \"forged\"\r\n")
        self.alice.expect(r"^ERR bad_frame ")
        self.alice.send(b"MSG 4 after\n")
        self.alice.expect(r"^ACK 4 ")
        self.bob.expect(r"^FROM alice 4 after")  # nothing of the forged frame was relayed
        self.assertEqual(self.proc.count(r"^\[MESSAGE\] admin"), 0)
        self.assertEqual(self.proc.count(r"forged"), 0)
        self.healthy()

    def test_datagram_flood_from_many_addresses(self):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(50)]
        for s in socks:
            self.addCleanup(s.close)
            s.bind((harness.HOST, 0))
        n = 0
        for i in range(200):
            for s in socks:
                s.sendto(b"MSG %d flood" % i if i % 2 else b"\xff\x78\x9c", (harness.HOST, self.port))
                n += 1
        report("udp_flood_datagrams", n)
        self.healthy(rss_slack_kib=16384)  # the 8 MiB outbound ring gets touched

    def test_register_bye_churn(self):
        def cycles(k, count, errors):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(TIMEOUT * SLOW)
            for j in range(count):
                if j % 50 == 0:  # a new source port now and then
                    s.close()
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.settimeout(TIMEOUT * SLOW)
                    s.bind((harness.HOST, 0))
                cid = f"u{k}_{j}"
                try:
                    s.sendto(f"HELLO {cid}".encode(), (harness.HOST, self.port))
                    while not s.recv(200).startswith(b"WELCOME"):
                        pass  # JOINED/LEFT of the other workers' clients
                    s.sendto(b"BYE", (harness.HOST, self.port))
                    while not s.recv(200).startswith(b"BYE quit"):
                        pass
                except socket.timeout:
                    errors.append("timeout")
            s.close()

        total = max(CHURN // 2, 8)
        workers = 8
        errors, ts = [], []
        for k in range(workers):
            t = threading.Thread(target=cycles, args=(k, total // workers, errors), daemon=True)
            t.start()
            ts.append(t)
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        report("udp_churn_cycles", total // workers * workers)
        # bystanders heard JOINED/LEFT for each: drain before checking them
        for c in (self.alice, self.bob):
            self.ping_until_pong(c, "churn")
        self.healthy(rss_slack_kib=4096)

    def test_client_gone_mid_broadcast(self):
        members = [self.client(f"m{i}") for i in range(5)]
        victim = self.client("victim")
        got = [0] * len(members)
        for batch in range(10):  # batches small enough for a default receive buffer
            for i in range(50):
                self.alice.send(f"MSG {batch * 50 + i} to all")
            if batch == 2:
                victim.close()  # its port is gone: datagrams to it go nowhere
            for k, m in enumerate(members):
                got[k] += len([d for d in self.barrier(m, f"v{batch}")
                               if d.startswith(b"FROM alice")])
        self.assertEqual(got, [500] * len(members))
        for m in members:
            m.send("BYE")
            m.expect(r"^BYE quit$")
        self.ping_until_pong(self.bob, "drain")
        self.healthy(users=3)  # the victim stays until its timeout

    def test_sigterm_during_a_flood(self):
        stop = threading.Event()

        flooders = [self.client(f"f{k}") for k in range(4)]  # all registered before

        def flood(u, k):
            i = 0
            while not stop.is_set():
                u.send(f"MSG {i} flood {k}")
                i += 1

        ts = [threading.Thread(target=flood, args=(u, k), daemon=True)
              for k, u in enumerate(flooders)]
        self.addCleanup(stop.set)  # the flood ends even when the test fails
        for t in ts:
            t.start()
        for _ in range(200):  # the flood is on (any 200: UDP may drop some)
            self.bob.expect(r"^FROM f\d+ ", timeout=TIMEOUT * SLOW)
        rc = self.proc.stop(timeout=TIMEOUT * 2 * SLOW)
        stop.set()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(rc, 0)
        self.proc.wait_line(r"^\[INFO\] Servidor encerrado$")
        # bob's receive buffer is full of FROMs, so his BYE may be lost: UDP. The server
        # must still have said it to all six.
        self.proc.wait_line(r"^\[INFO\] BYE shutdown enviado a 6 clientes$")

    def test_server_restart_clients_register_again(self):
        self.proc.stop()
        port = free_port("udp")
        self.proc = Proc([os.path.join(harness.BIN, "udp_server"), "--port", str(port)])
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor UDP iniciado")
        self.port = port
        a, b = UdpConn(port), UdpConn(port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.hello("alice")
        b.hello("bob")
        self.assertEqual(self.proc.stop(), 0)
        a.expect(r"^BYE shutdown$")
        self.proc = Proc([os.path.join(harness.BIN, "udp_server"), "--port", str(port)])
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor UDP iniciado")
        a.send("PING 1")  # the keep-alive learns the server forgot it
        a.expect(r"^ERR not_registered ")
        a.hello("alice")
        b.hello("bob")
        self.alice, self.bob = a, b
        self.alice.expect(r"^JOINED bob lobby$")
        self.base = self.stats()
        self.healthy()


if __name__ == "__main__":
    unittest.main()
