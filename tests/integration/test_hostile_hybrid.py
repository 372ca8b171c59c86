"""test_hostile_hybrid: hostile input and faults against udp_server --hybrid (hostile.py says
what every case checks at its end): floods of control connections, guessed and stolen
tokens, control peers that never read, idle sessions. Two bystander sessions, alice and bob,
are bound before each attack and must still chat over UDP after it."""
import os
import select
import socket
import time
import unittest

import harness
from harness import HOST, TIMEOUT, TcpConn, UdpConn, wait_until
from hostile import SLOW, HostileCase, read_until_eof, report
from test_hybrid import Session, start_hybrid


class HybridHostileTest(HostileCase, unittest.TestCase):
    def setUp(self):
        self.start()

    def start(self, *args):
        self.proc, self.uport, self.cport = start_hybrid(self, *args)
        self.alice, self.bob = self.session("alice"), self.session("bob")
        self.alice.udp.expect(r"^JOINED bob lobby$")
        self.seq = 1000
        self.base = self.stats()

    def restart(self, *args):
        self.proc.stop()
        self.start(*args)

    def session(self, cid, room=None):
        return Session(self, self.uport, self.cport, cid, room)

    def ctl(self):
        """A control connection, closed when the test ends."""
        c = TcpConn(self.cport)
        self.addCleanup(c.close)
        return c

    def assert_bystanders_chat(self):
        for a, b in ((self.alice, self.bob), (self.bob, self.alice)):
            self.seq += 1
            a.send(f"MSG {self.seq} still here")
            a.udp.expect(rf"^ACK {self.seq} \d+$", timeout=TIMEOUT * SLOW)
            b.udp.expect(rf"^FROM {a.id} {self.seq} still here$", timeout=TIMEOUT * SLOW)

    def healthy(self, users=2):
        self.assert_bystanders_chat()
        want = {k: self.base[k] for k in ("threads", "fds")}
        last = {}

        def same():
            last.update(self.stats())
            return {k: last[k] for k in want} == want

        try:  # control threads end on their own: wait for them
            wait_until(same, timeout=TIMEOUT * 2 * SLOW, what="threads and fds at baseline")
        except AssertionError:
            self.fail(f"server holds {last}, baseline {self.base}")
        self.alice.ctl.send("WHO")
        self.alice.ctl.expect(rf"^USERS {users}$")
        self.assertTrue(self.proc.alive())

    def refused(self):
        """Stops the server; its count of datagrams refused for their token."""
        self.assertEqual(self.proc.stop(), 0)
        m = self.proc.wait_line(r"^\[INFO\] Recusados por token ausente ou inválido: (\d+)$")
        return int(m.group(1))

    # --- control connections ---

    def test_control_flood_without_hello(self):
        self.restart("--hello-timeout", "1")
        conns = [self.ctl() for _ in range(100)]
        wait_until(lambda: self.stats()["threads"] >= self.base["threads"] + 100,
                   timeout=TIMEOUT * SLOW, what="100 control threads")
        self.assert_bystanders_chat()  # served while 100 threads wait for a HELLO
        for c in conns:
            self.assertIn(b"ERR timeout", read_until_eof(c.s, TIMEOUT * 2 * SLOW))
        report("hybrid_control_flood_connections", len(conns))
        self.healthy()

    def test_control_flood_against_max_clients(self):
        """--max-clients 4: two bystanders and a flood of 80 connections. Connections past
        max-clients + 64 are refused at once; HELLOs past max-clients get server_full."""
        self.restart("--max-clients", "4", "--hello-timeout", "600")  # none times out here
        conns, answers = [], {"WELCOME": 0, "full": 0, "refused": 0}
        for i in range(80):
            c = self.ctl()
            conns.append(c)
            try:
                c.send(f"HELLO f{i}")
                line = c.recv_line(TIMEOUT * SLOW)
            except OSError:
                line = None  # refused and closed before our HELLO: a reset
            if line is not None and line.startswith("WELCOME f"):
                answers["WELCOME"] += 1
                continue
            self.assertIn(line, ("ERR server_full server full", None))
            # its HELLO refused (the connection stays, and answers PING), or refused at
            # accept (then closed)
            try:
                c.send("PING open")
                open_ = c.recv_line(TIMEOUT * SLOW) == "PONG open"
            except OSError:
                open_ = False
            answers["full" if open_ else "refused"] += 1
        self.assertEqual(answers["WELCOME"], 2)  # 4 slots, 2 held by the bystanders
        self.assertEqual(answers["full"], 4 + 64 - 2 - 2)  # the threads it would start
        self.assertEqual(answers["refused"], 80 - 2 - answers["full"])
        self.proc.wait_line(r"^\[WARN\] Conexão de controle de .* recusada: servidor cheio$")
        self.assert_bystanders_chat()
        for c in conns:
            c.close()
        for i in range(2):  # the slots are free again
            self.bob.udp.expect(rf"^LEFT f\d+ lobby quit$")
        self.session("late").ctl.close()
        self.bob.udp.expect(r"^LEFT late lobby quit$")
        self.healthy()

    def test_control_peers_that_never_read(self):
        """Five registered sessions ask WHO without reading the answers: each is cut off
        (LEFT ... slow) once its writes block for 5 s; nobody else waits for them."""
        stuck = []
        for i in range(5):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((HOST, self.cport))
            s.sendall(f"HELLO stuck{i}\n".encode())
            stuck.append(s)
        joined = set()  # five threads: in any order
        while len(joined) < 5:
            joined.add(self.bob.udp.expect(r"^JOINED (stuck\d) lobby$").group(1))
        for s in stuck:
            s.setblocking(False)
            try:
                for _ in range(20000):
                    s.send(b"WHO\n" * 50)  # until its send buffer is full
            except (BlockingIOError, OSError):
                pass
        self.assert_bystanders_chat()  # while five writers are blocked
        left = set()
        while len(left) < 5:
            m = self.bob.udp.expect(r"^LEFT (stuck\d) lobby slow$", timeout=30 * SLOW)
            left.add(m.group(1))
        self.healthy()

    # --- the data path ---

    def test_tokens_guessed_at_random(self):
        s = UdpConn(self.uport)
        self.addCleanup(s.close)
        real = {self.alice.token, self.bob.token}
        n = 0
        for _ in range(20000):
            tok = os.urandom(8).hex()
            if tok not in real:
                s.send(f"{tok} MSG 1 guess")
                n += 1
        self.assertIsNone(s.recv(0.5))  # never an answer to the guesser
        self.assertEqual([d for d in self.barrier_from(self.bob) if b"guess" in d], [])
        self.healthy()
        report("hybrid_guessed_tokens", n)
        # every guess refused and counted (UDP may lose some on the way: never more)
        got = self.refused()
        self.assertLessEqual(got, n)
        self.assertGreater(got, 0)

    def test_valid_token_from_other_addresses(self):
        thieves = []
        for k in range(20):
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(t.close)
            t.bind((f"127.0.3.{k + 1}", 0))  # other addresses, and other ports of this one
            thieves.append(t)
            u = UdpConn(self.uport)
            self.addCleanup(u.close)
            thieves.append(u.s)
        for i, t in enumerate(thieves):
            t.sendto(f"{self.alice.token} MSG {i} stolen".encode(), (HOST, self.uport))
            t.sendto(f"{self.alice.token} PING steal".encode(), (HOST, self.uport))
        for t in thieves:
            self.assertFalse(select.select([t], [], [], 0.05)[0])  # nothing reflected
        self.assertEqual([d for d in self.barrier_from(self.bob) if b"stolen" in d], [])
        # alice's binding did not move, and her count of chat frames saw none of them
        self.alice.send("MSG 9000 mine")
        self.alice.udp.expect(r"^ACK 9000 1$")
        self.bob.udp.expect(r"^FROM alice 9000 mine$")
        self.healthy()
        self.assertEqual(self.refused(), 2 * len(thieves))

    def barrier_from(self, sess):
        """What sess's UDP socket got before the answer to a PING of its own."""
        token = f"b{time.monotonic_ns()}"
        sess.send(f"PING {token}")
        seen = []
        while True:
            d = sess.udp.recv(TIMEOUT * SLOW)
            self.assertIsNotNone(d, f"no PONG {token}")
            if d.rstrip(b"\n") == f"PONG {token}".encode():
                return seen
            seen.append(d)

    # --- idle sessions ---

    def test_idle_sessions_are_dropped(self):
        """--idle-timeout: sessions that say HELLO and then only PING (over UDP or their
        control connection) are ended: BYE idle on the control connection, LEFT ... idle to
        the room, the control connection closed. One that chats stays."""
        idle_s = round(2 * SLOW)
        self.restart("--idle-timeout", str(idle_s), "--max-clients", "5")
        holders = {cid: self.session(cid, "hold") for cid in ("h0", "h1", "h2")}
        n, heard = 0, []  # heard: what h2 got besides its ACKs
        deadline = time.monotonic() + (idle_s + 8) * SLOW
        bye = set()
        while len(bye) < 2 and time.monotonic() < deadline:
            n += 1
            for who in (self.alice, self.bob, holders["h2"]):  # these keep talking
                who.send(f"MSG {n} keep")
                while (d := who.udp.recv(TIMEOUT * SLOW)) is not None and \
                        not d.startswith(f"ACK {n} ".encode()):
                    heard += [d.decode().rstrip("\n")] if who is holders["h2"] else []
            holders["h0"].send(f"PING {n}")  # over UDP: no activity
            holders["h1"].ctl.send(f"PING {n}")  # over its control connection: none either
            for cid in ("h0", "h1"):
                c = holders[cid].ctl
                while cid not in bye and (b"\n" in c.buf or select.select([c.s], [], [], 0)[0]):
                    line = c.recv_line()
                    if line == "BYE idle":
                        self.assertIsNone(c.recv_line())  # then closed
                        bye.add(cid)
                    elif line is None:
                        self.fail(f"{cid}: closed without BYE idle")
            time.sleep(0.2)
        self.assertEqual(bye, {"h0", "h1"})
        for cid in ("h0", "h1"):
            self.assert_left_idle(cid, holders["h2"].udp, heard, idle_s)
        holders["h2"].ctl.close()
        self.healthy()
        self.assertEqual(self.proc.stop(), 0)
        self.proc.wait_line(r"^\[INFO\] Descartados .* por ociosidade: 2$")


if __name__ == "__main__":
    unittest.main()
