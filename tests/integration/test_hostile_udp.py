"""test_hostile_udp: hostile input and faults against bin/udp_server (hostile.py says what
every case checks at its end)."""
import os
import random
import re
import select
import socket
import threading
import time
import unittest
import zlib

import harness
from harness import TIMEOUT, Proc, UdpConn, hello_frame, server_argv, start_server, wait_until
from hostile import CHECK_RSS, CHURN, SLOW, ZMARK, HostileCase, in_workers, report
from pylib.ports import free_port


def zpack(frame, level=9):
    c = zlib.compressobj(level)
    return ZMARK + c.compress(frame) + c.flush()


class UdpHostileTest(HostileCase, unittest.TestCase):
    ARGS = ()

    def setUp(self):
        self.start(*self.ARGS)

    def start(self, *args):
        self.proc, self.port = start_server("udp", *args, test=self)
        self.alice = self.client("alice")
        self.bob = self.client("bob")
        self.alice.expect(r"^JOINED bob lobby$")
        self.seq = 1000
        self.base = self.stats()

    def restart(self, *args):
        self.proc.stop()
        self.start(*args)

    def client(self, cid=None):
        return self.joined(UdpConn(self.port), cid)

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
            for frame in ("MSG 1 x", "plain", "TO bob 1 x", "JOIN r", "WHO", "PING 1", "BYE",
                          "MSG 1 " + "x" * 60):
                c.send(frame)
            # a stranger gets no more than it sent (PROTOCOL.md, "Reflection"): only the last
            # frame is long enough for any ERR, so its answer is the first and only one
            d = c.recv(TIMEOUT * SLOW)
            self.assertTrue(d is not None and d.startswith(b"ERR not_registered not "), d)
            self.assertIsNone(c.recv(0.05))
            c.close()
        self.assertEqual([d for d in self.barrier(self.bob, "u") if b"FROM" in d], [])
        self.healthy()

    def test_hello_flood_past_max_clients(self):
        self.restart("--max-clients", "12")
        clients = [self.client() for _ in range(40)]
        for i, c in enumerate(clients):
            c.send(hello_frame(f"flood{i}"))
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
            c.send(hello_frame("bob"))
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

    def test_idle_holders_are_dropped_and_free_their_slots(self):
        """Addresses that register and then send nothing, or only keep-alives (which keep
        them from --timeout), could hold every slot; --idle-timeout drops them."""
        idle_s = round(2 * SLOW)
        self.restart("--max-clients", "6", "--idle-timeout", str(idle_s))
        holders = {}
        for cid in ("h0", "h1", "h2", "h3"):
            holders[cid] = self.client()
            holders[cid].hello(cid, "hold")
        full = self.client()
        full.send(hello_frame("h4"))
        full.expect(r"^ERR server_full ")
        gone, n, heard = set(), 0, []  # heard: what h3 got besides its ACKs
        deadline = time.monotonic() + (idle_s + 8) * SLOW
        while gone != {"h0", "h1", "h2"} and time.monotonic() < deadline:
            n += 1
            for who in (self.alice, self.bob, holders["h3"]):  # these keep talking
                who.send(f"MSG {n} keep")
                while (d := who.recv(TIMEOUT * SLOW)) is not None and \
                        not d.startswith(f"ACK {n} ".encode()):
                    heard += [d.decode().rstrip("\n")] if who is holders["h3"] else []
            holders["h2"].send(f"PING {n}")  # keeps it from --timeout, not from idling
            holders["h1"].send(b"")  # the smallest keep-alive, no activity either
            for cid in ("h0", "h1", "h2"):
                while cid not in gone and (d := holders[cid].recv(0)) is not None:
                    gone |= {cid} if d == b"BYE idle\n" else set()
            time.sleep(0.2)
        self.assertEqual(gone, {"h0", "h1", "h2"})
        for cid in ("h0", "h1", "h2"):
            self.assert_left_idle(cid, holders["h3"], heard, idle_s)
            holders[cid].send("MSG 1 " + "x" * 60)  # forgotten: a stranger now
            holders[cid].expect(r"^ERR not_registered ")
        late = [self.client(f"late{i}") for i in range(3)]  # their slots are free again
        for c in late + [holders["h3"]]:
            c.send("BYE")
            c.expect(r"^BYE quit$")
        self.healthy()
        self.assertEqual(self.proc.stop(), 0)
        self.proc.wait_line(r"^\[INFO\] Descartados .*; removidos por inatividade: 0, por "
                            r"ociosidade: 3$")

    # --- reflection (PROTOCOL.md, "Reflection") ---

    def stranger_frames(self):
        """One datagram of every kind an address that never registered may send."""
        long_text = "x" * 80
        frames = [b"x", b"\n", b"WHO", b"BYE", b"PING", b"PING 17", b"JOIN r", b"MSG 1 hi",
                  b"plain text", b"TO bob 1 x", b"HELLO", b"HELLO carol", b"HELLO bad/id",
                  b"HELLO bob", b"HELLO carol bad/room", b"PING 0000000000000001",
                  b"MSG notanumber x", b"MSG 1 a\0b", b"MSG 1 a\nb", b"\x1b[2J",
                  b"\xc3\x28", ZMARK, ZMARK + b"\x78\x9c", b"x" * 5000,
                  zpack(b"\0" * (1 << 20)), zpack(b"MSG 1 " + long_text.encode()),
                  zpack(b"HELLO zipped"), zpack(hello_frame("zipped2").encode())]
        for f in (b"WHO", b"BYE", b"JOIN r", b"MSG 1 ", b"TO bob 1 ", b"PING ", b"", b"HELLO "):
            frames.append(f + long_text.encode() if f in (b"MSG 1 ", b"TO bob 1 ", b"PING ", b"")
                          else f + b" " + long_text.encode())
        frames += [hello_frame("carol").encode(), hello_frame("bob").encode(),
                   hello_frame("x", "bad/room").encode(), hello_frame("bad/id").encode()]
        return frames

    def test_no_reply_larger_than_its_datagram(self):
        """Each datagram from a socket of its own, so that each reply is paired with its
        request; a barrier PING from alice says when every reply has been sent."""
        got = {}
        for i, frame in enumerate(self.stranger_frames()):
            c = self.client()
            c.send(frame)
            self.barrier(self.alice, f"r{i}")  # the server has answered c by now
            replies = []
            while (d := c.recv(0)) is not None:
                replies.append(d)
            self.assertLessEqual(len(replies), 1, (frame[:60], replies))
            for d in replies:
                self.assertLessEqual(len(d), len(frame), (frame[:60], d[:80]))
            got[frame] = replies[0] if replies else None
            if replies and replies[0].startswith(b"WELCOME"):
                c.send("BYE")  # the table as it was for the next one
                c.expect(r"^BYE quit$")
        # and the bounds did not simply silence the server: these were answered
        self.assertTrue(got[hello_frame("carol").encode()].startswith(b"WELCOME carol "))
        self.assertEqual(got[b"HELLO carol"], b"ERR pad\n")
        self.assertEqual(got[b"PING 0000000000000001"], b"ERR not_registered\n")
        self.assertTrue(got[b"MSG 1 " + b"x" * 80].startswith(b"ERR not_registered not "))
        self.assertTrue(got[hello_frame("bob").encode()].startswith(b"ERR id_in_use "))
        self.assertTrue(got[b"x" * 5000].startswith(b"ERR too_long "))
        self.assertIsNone(got[b"WHO"])
        self.assertIsNone(got[b"x"])
        # the threshold, byte for byte: a HELLO earns its WELCOME once it is as long
        users = 2
        for k in range(24, 34):
            c = self.client()
            cid = f"e{k}"
            welcome = f"WELCOME {cid} {harness.HOST}:{c.local_port}\n".encode()
            c.send(hello_frame(cid)[:k])
            self.assertEqual(c.recv(), welcome if k >= len(welcome) else b"ERR pad\n", k)
            users += k >= len(welcome)
        self.assertGreater(users, 2)
        self.healthy(users=users)

    def test_spoofed_flood_reflects_a_bounded_volume(self):
        """100,000 datagrams from 250 sockets on 250 loopback addresses (127.0.2.1 ..: as many
        sources as a forger would use, none registered), each long enough for the whole ERR
        not_registered (57 bytes): without the token bucket that is 5.7 MB sent back. With
        it, at most UDP_GUARD_BURST + UDP_GUARD_RATE x the seconds the flood lasted."""
        rate, burst = 256 * 1024, 64 * 1024  # udp_server.h: UDP_GUARD_RATE, UDP_GUARD_BURST
        socks = []
        for k in range(250):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((f"127.0.2.{k + 1}", 0))
            socks.append(s)
        frame = b"MSG 1 " + b"f" * 60
        total = 100_000
        t0 = time.monotonic()
        for i in range(total):
            socks[i % len(socks)].sendto(frame, (harness.HOST, self.port))
        self.ping_until_pong(self.alice, "flood")  # every flood datagram handled by now
        seconds = time.monotonic() - t0
        got = n = 0
        for s in socks:
            while select.select([s], [], [], 0)[0]:
                d = s.recv(2048)
                self.assertEqual(d[:19], b"ERR not_registered ")
                got += len(d)
                n += 1
        bound = burst + rate * seconds
        report("udp_reflection_datagrams", total)
        report("udp_reflection_reply_bytes", got)
        report("udp_reflection_bound_bytes", int(bound))
        self.assertGreater(n, 0)
        self.assertLessEqual(got, bound)
        self.healthy()
        # the server's own account: every stranger's datagram answered or suppressed, and
        # what it sent within the same bound
        self.assertEqual(self.proc.stop(), 0)
        m = self.proc.wait_line(r"^\[INFO\] Respostas a endereços não registrados: (\d+) "
                                r"enviadas, (\d+) bytes; suprimidas: (\d+) maiores que o "
                                r"datagrama recebido, (\d+) pelo limite de taxa$")
        sent, sent_bytes, too_big, over = (int(g) for g in m.groups())
        self.assertEqual(too_big, 0)  # every flood frame had room for the whole ERR
        self.assertGreaterEqual(sent, n + 2)  # what we got, and alice's and bob's WELCOMEs
        self.assertLessEqual(sent - 2 + over, total)
        self.assertLessEqual(sent_bytes, bound + 2 * 64)
        if over:
            self.proc.wait_line(r"^\[WARN\] Limite de respostas a endereços não registrados")
        report("udp_reflection_suppressed", over)

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
                    s.sendto(hello_frame(cid).encode(), (harness.HOST, self.port))
                    while not s.recv(200).startswith(b"WELCOME"):
                        pass  # JOINED/LEFT of the other workers' clients
                    s.sendto(b"BYE", (harness.HOST, self.port))
                    while not s.recv(200).startswith(b"BYE quit"):
                        pass
                except socket.timeout:
                    errors.append("timeout")
            s.close()

        report("udp_churn_cycles", in_workers(self, cycles, max(CHURN // 2, 8)))
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
        self.proc = Proc(server_argv("udp", "--port", str(port)))
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
        self.proc = Proc(server_argv("udp", "--port", str(port)))
        self.addCleanup(self.proc.stop)
        self.proc.wait_line(r"Servidor UDP iniciado")
        a.send("PING 0000000000000001")  # the keep-alive learns the server forgot it
        a.expect(r"^ERR not_registered$")
        a.hello("alice")
        b.hello("bob")
        self.alice, self.bob = a, b
        self.alice.expect(r"^JOINED bob lobby$")
        self.base = self.stats()
        self.healthy()


if __name__ == "__main__":
    unittest.main()
