"""test_hostile_tcp: hostile input and faults against bin/tcp_server, in both I/O models.

Every case ends with two bystanders still chatting and the server's threads and descriptors
back to their baseline (hostile.py says more). TcpHostileTest runs them on the threaded
server, TcpHostileEpollTest on the event loops (--io epoll): a user must not be able to
tell them apart.
"""
import random
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import TIMEOUT, Proc, TcpConn, server_argv, start_server, wait_until
from hostile import (CHECK_RSS, CHURN, SAN, SLOW, HostileCase, RawConn, in_workers,
                     read_until_eof, report, rst_close)
from pylib.ports import free_port
from pylib.procfs import cpu_seconds


class TcpHostileTest(HostileCase, unittest.TestCase):
    ARGS = ()
    IO = "threads"  # tcp_server --io; TcpHostileEpollTest runs every case with epoll

    def setUp(self):
        self.seq = 1000
        self.start(*self.ARGS)

    def start(self, *args):
        """The server with args and its two bystanders; the baseline is taken."""
        self.proc, self.port = start_server("tcp", *args, test=self, io=self.IO)
        self.alice, self.bob = self.conn("alice"), self.conn("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()

    def restart(self, *args):
        self.proc.stop()
        self.start(*args)

    def conn(self, cid=None, cls=RawConn):
        return self.joined(cls(self.port), cid)

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
        self.restart("--hello-timeout", "1")
        idle = [self.conn(cls=TcpConn) for _ in range(30)]
        wait_until(lambda: self.stats()["fds"] >= self.base["fds"] + 30, what="30 accepted")
        for c in idle:
            self.assertIn(b"ERR timeout", read_until_eof(c.s, TIMEOUT * SLOW))
        wait_until(lambda: self.proc.count(r"nenhum HELLO a tempo") == 30, what="30 WARN lines")
        self.healthy()

    def test_slowloris_trickling_hello_is_cut_at_the_deadline(self):
        self.restart("--hello-timeout", "1")
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
        self.restart("--max-clients", "12")
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

    def test_idle_holders_are_dropped_and_free_their_slots(self):
        """Clients that say HELLO and then nothing (or only PING) could hold every slot for
        ever; --idle-timeout drops them. A client that chats stays."""
        idle_s = round(2 * SLOW)  # the bystanders must get through the end meanwhile
        self.restart("--max-clients", "6", "--idle-timeout", str(idle_s))
        holders = {cid: self.conn(cls=TcpConn) for cid in ("h0", "h1", "h2", "h3")}
        for cid, c in holders.items():
            c.send(f"HELLO {cid} hold")
            c.expect(rf"^WELCOME {cid} ")
        full = self.conn(cls=TcpConn)  # the seventh connection: refused
        self.assertEqual(full.recv_line(TIMEOUT * SLOW), "ERR server_full server full")
        gone, n, heard = set(), 0, []  # heard: what h3 got besides its ACKs
        deadline = time.monotonic() + (idle_s + 8) * SLOW
        while gone != {"h0", "h1", "h2"} and time.monotonic() < deadline:
            n += 1
            for who in (self.alice, self.bob, holders["h3"]):  # these keep talking
                who.send(f"MSG {n} keep")
                while (line := who.recv_line()) is not None and not line.startswith(f"ACK {n} "):
                    heard += [line] if who is holders["h3"] else []
            holders["h2"].send(f"PING {n}")  # a keep-alive is no activity
            for cid in ("h0", "h1", "h2"):  # what they got so far, without waiting
                c = holders[cid]
                while cid not in gone and (b"\n" in c.buf or self._readable(c.s, 0)):
                    if c.recv_line() == "BYE idle":
                        self.assertIsNone(c.recv_line())  # then closed
                        gone.add(cid)
            time.sleep(0.2)
        self.assertEqual(gone, {"h0", "h1", "h2"})
        for cid in ("h0", "h1", "h2"):
            self.assert_left_idle(cid, holders["h3"], heard, idle_s)
        late = [self.conn(f"late{i}") for i in range(3)]  # their slots are free again
        for c in late + [holders["h3"], full] + [holders[k] for k in ("h0", "h1", "h2")]:
            c.close()
        self.healthy()  # the bystanders' last MSG was well within idle_s
        self.assertEqual(self.proc.stop(), 0)
        self.proc.wait_line(r"^\[INFO\] Estatísticas: .* 3 ociosos, 1 recusadas$")

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
            return in_workers(self, cycles, total)

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
        argv = ["prlimit", "--nofile=24:24",
                *server_argv("tcp", "--port", "0", "--hello-timeout", "60", io=self.IO)]
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
        held = self.stats()
        self.assertGreaterEqual(held["fds"], self.base["fds"] + 150)
        if self.IO == "threads":  # a thread each; the event loops hold them all in a few
            self.assertGreaterEqual(held["threads"], self.base["threads"] + 150)
        else:  # (a sanitizer's runtime may start a thread of its own meanwhile)
            self.assertLessEqual(held["threads"], self.base["threads"] + (1 if SAN else 0))
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
        self.proc = Proc(server_argv("tcp", "--port", str(port), io=self.IO))
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor TCP iniciado")
        self.port = port
        conns = {cid: self.conn(cid) for cid in ("alice", "bob", "carol")}
        self.assertEqual(self.proc.stop(), 0)
        for c in conns.values():
            rest = (c.buf + read_until_eof(c.s)).decode()
            self.assertIn("BYE shutdown", rest)
        self.proc = Proc(server_argv("tcp", "--port", str(port), io=self.IO))
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor TCP iniciado")  # SO_REUSEADDR: same port at once
        self.alice, self.bob = self.conn("alice"), self.conn("bob")  # same ids again
        self.alice.expect(r"^JOINED bob lobby$")
        self.settle()
        self.healthy()


class TcpHostileEpollTest(TcpHostileTest):
    IO = "epoll"


if __name__ == "__main__":
    unittest.main()
