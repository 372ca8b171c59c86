"""Integration tests of bin/udp_server over real loopback UDP sockets (see PROTOCOL.md)."""
import os
import re
import signal
import socket
import subprocess
import time
import unittest
import zlib

import harness
from harness import HOST, TIMEOUT, UdpConn, hello_frame, start_server

DICT_H = os.path.join(harness.ROOT, "common", "zframe_dict.h")
ZMARK = b"\xff"
# From an address that has not registered, long enough for the whole ERR not_registered
# (57 bytes with its LF): a UDP server answers a stranger with no more than it sent.
STRANGER = "MSG 1 " + "s" * 60


def load_dictionary():
    """The chatbench-v1 dictionary: the string literals between the BEGIN/END markers."""
    with open(DICT_H) as f:
        text = f.read()
    body = text.split("/* BEGIN dictionary */", 1)[1].split("/* END dictionary */", 1)[0]
    return "".join(re.findall(r'"([^"\\]*)"', body)).encode("ascii")


DICT = load_dictionary()


def zpack(frame, zdict=DICT, level=9):
    if isinstance(frame, str):
        frame = frame.encode()
    c = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                         zdict=zdict) if zdict else zlib.compressobj(level)
    return ZMARK + c.compress(frame) + c.flush()


def zunpack(dgram):
    assert dgram[:1] == ZMARK, f"not compressed: {dgram[:40]!r}"
    d = zlib.decompressobj(zdict=DICT)
    out = d.decompress(dgram[1:])
    assert d.eof, "truncated zlib stream from the server"
    return out


class Client(UdpConn):
    """UdpConn that knows both forms: it records the form of every datagram it receives."""

    def __init__(self, port, zip_=False):
        super().__init__(port)
        self.zip = zip_
        self.forms = []  # True for each compressed datagram received

    def send(self, frame):
        if isinstance(frame, str):
            frame = frame.encode()
        super().send(zpack(frame) if self.zip else frame)

    def recv(self, timeout=TIMEOUT):
        d = super().recv(timeout)
        if d is None:
            return None
        z = d[:1] == ZMARK
        self.forms.append(z)
        return zunpack(d) if z else d

    def hello(self, cid, room=None):
        """Plain: the padded HELLO. Compressed: padding that does not compress (random
        hex), so that the compressed HELLO is still as large as its compressed WELCOME."""
        if not self.zip:
            return super().hello(cid, room)
        self.send(f"HELLO {cid}" + (f" {room}" if room else "") + " #" + os.urandom(40).hex())
        return self.expect(rf"^WELCOME {re.escape(cid)} ")

    def next(self, timeout=TIMEOUT):
        """The next datagram as text (LF stripped); fails on timeout."""
        d = self.recv(timeout)
        if d is None:
            raise AssertionError("no datagram")
        return d.decode("utf-8", "replace").rstrip("\n")


class UdpServerTest(unittest.TestCase):
    def server(self, *args):
        self.proc, self.port = start_server("udp", *args, test=self)
        return self.proc

    def client(self, cid=None, zip_=False):
        c = Client(self.port, zip_)
        self.addCleanup(c.close)
        if cid is not None:
            c.hello(cid)
        return c

    # --- start-up and logs ---

    def test_startup_lines(self):
        p = self.server()
        self.assertEqual(p.lines[0], f"[INFO] Servidor UDP iniciado na porta {self.port}")
        p.wait_line(r"^\[INFO\] Aguardando mensagens\.\.\.$")
        self.assertNotEqual(self.port, 0)

    # --- chat ---

    def test_room_chat_and_logs(self):
        p = self.server()
        a = self.client()
        a.send(hello_frame("alice"))
        self.assertEqual(a.next(), f"WELCOME alice {HOST}:{a.local_port}")
        p.wait_line(rf"^\[REGISTER\] Novo cliente alice registrado de 127\.0\.0\.1:{a.local_port}$")
        b = self.client("bob")
        a.expect(r"^JOINED bob lobby$")
        c = self.client("carol")
        a.expect(r"^JOINED carol lobby$")
        b.expect(r"^JOINED carol lobby$")

        a.send("MSG 1 hello room")
        self.assertEqual(a.next(), "ACK 1 1")
        self.assertEqual(b.next(), "FROM alice 1 hello room")
        self.assertEqual(c.next(), "FROM alice 1 hello room")
        a.send("just typing works too\n")
        self.assertEqual(a.next(), "ACK - 2")
        self.assertEqual(b.next(), "FROM alice - just typing works too")
        self.assertEqual(c.next(), "FROM alice - just typing works too")
        c.send("MSG 7 \r\n")  # empty text, CR LF stripped
        self.assertEqual(c.next(), "ACK 7 1")
        self.assertEqual(a.next(), "FROM carol 7 ")
        self.assertEqual(b.next(), "FROM carol 7 ")
        p.wait_line(r'^\[MESSAGE\] alice : "hello room"$')
        p.wait_line(r'^\[MESSAGE\] alice : "just typing works too"$')

    def test_private_messages(self):
        self.server()
        a, b, c = self.client("a1"), self.client("b1"), self.client("c1")
        self.assertEqual(a.next(), "JOINED b1 lobby")
        self.assertEqual(a.next(), "JOINED c1 lobby")
        self.assertEqual(b.next(), "JOINED c1 lobby")
        a.send("TO b1 5 psst")
        self.assertEqual(a.next(), "ACK 5 1")
        b.expect(r"^PRIV a1 5 psst$")
        a.send("TO nobody 6 hello?")
        a.expect(r"^ERR unknown_user ")
        # c got no PRIV: its first chat datagram is the FROM that follows
        a.send("MSG 8 public")
        self.assertEqual(a.next(), "ACK 8 3")
        m = c.expect(r"^(PRIV|FROM) ")
        self.assertEqual(m.group(1), "FROM")

    def test_duplicate_id_refused_holder_undisturbed(self):
        self.server()
        a = self.client("dup")
        b = self.client()
        b.send(hello_frame("dup"))
        b.expect(r"^ERR id_in_use ")
        b.send(STRANGER)  # b stayed unregistered
        b.expect(r"^ERR not_registered ")
        a.send("MSG 1 still here")
        self.assertEqual(a.next(), "ACK 1 1")
        a.send("WHO")
        self.assertEqual(a.next(), f"USER dup {HOST}:{a.local_port} lobby")
        self.assertEqual(a.next(), "USERS 1")

    def test_rehello_same_and_other_id(self):
        self.server()
        a = self.client("same")
        a.send("HELLO same")
        self.assertEqual(a.next(), f"WELCOME same {HOST}:{a.local_port}")
        a.send("HELLO other")
        a.expect(r"^ERR already_registered ")
        a.send("WHO")
        self.assertEqual(a.next(), f"USER same {HOST}:{a.local_port} lobby")
        self.assertEqual(a.next(), "USERS 1")

    def test_who_shows_socket_addresses(self):
        self.server()
        cs = [self.client(f"u{i}") for i in range(4)]
        cs[3].send("JOIN side")
        cs[3].expect(r"^JOINED u3 side$")
        cs[0].send("WHO")
        rows = set()
        while True:
            line = cs[0].next()
            if line.startswith("USERS "):
                self.assertEqual(line, "USERS 4")
                break
            if line.startswith("USER "):
                rows.add(line)
        want = {f"USER u{i} {HOST}:{c.local_port} {'side' if i == 3 else 'lobby'}"
                for i, c in enumerate(cs)}
        self.assertEqual(rows, want)

    def test_who_is_rate_limited_per_client(self):
        self.server()
        a, b = self.client("wa"), self.client("wb")
        a.expect(r"^JOINED wb lobby$")
        a.send("WHO")
        a.expect(r"^USERS 2$")
        a.send("WHO")  # again within the second: refused, nothing amplified
        self.assertRegex(a.next(), r"^ERR rate_limited ")
        b.send("WHO")  # the limit is per client
        b.expect(r"^USERS 2$")
        a.send("MSG 1 still served")
        self.assertEqual(a.next(), "ACK 1 1")
        time.sleep(1.05)
        a.send("WHO")
        a.expect(r"^USERS 2$")

    def test_join_moves_between_rooms(self):
        p = self.server()
        a, b, c = self.client("ja"), self.client("jb"), self.client("jc")
        self.assertEqual(a.next(), "JOINED jb lobby")
        self.assertEqual(a.next(), "JOINED jc lobby")
        self.assertEqual(b.next(), "JOINED jc lobby")
        a.send("JOIN r1")
        self.assertEqual(a.next(), "JOINED ja r1")
        self.assertEqual(b.next(), "LEFT ja lobby moved")
        self.assertEqual(c.next(), "LEFT ja lobby moved")
        c.send("JOIN r1")
        self.assertEqual(c.next(), "JOINED jc r1")
        self.assertEqual(a.next(), "JOINED jc r1")
        self.assertEqual(b.next(), "LEFT jc lobby moved")
        a.send("MSG 3 in r1")
        self.assertEqual(a.next(), "ACK 3 1")
        self.assertEqual(c.next(), "FROM ja 3 in r1")
        b.send("MSG 4 lobby only")  # b is alone in lobby now: nobody else hears it
        self.assertEqual(b.next(), "ACK 4 1")
        a.send("JOIN r1")  # the same room again: JOINED to itself only
        self.assertEqual(a.next(), "JOINED ja r1")
        a.send("JOIN bad/room")
        a.expect(r"^ERR bad_room ")
        a.send("MSG 5 x")
        self.assertEqual(a.next(), "ACK 5 2")
        self.assertEqual(c.next(), "FROM ja 5 x")  # no FROM jb 4, no JOINED ja r1
        p.wait_line(r"^\[INFO\] Cliente ja entrou na sala r1$")

    def test_hello_straight_into_a_room(self):
        self.server()
        lobby = self.client("hl")
        a = self.client()
        a.send(hello_frame("ha", "r9"))
        self.assertEqual(a.next(), f"WELCOME ha {HOST}:{a.local_port}")
        b = self.client()
        b.send(hello_frame("hb", "r9"))
        b.expect(r"^WELCOME hb ")
        self.assertEqual(a.next(), "JOINED hb r9")
        a.send("MSG 1 only r9")
        self.assertEqual(a.next(), "ACK 1 1")
        self.assertEqual(b.next(), "FROM ha 1 only r9")
        lobby.send("MSG 2 lobby")  # the lobby heard neither HELLO, and is alone
        self.assertEqual(lobby.next(), "ACK 2 1")
        a.send("WHO")
        a.expect(r"^USER ha \S+ r9$")
        c = self.client()
        c.send(hello_frame("hc", "bad/room"))
        c.expect(r"^ERR bad_room ")
        c.send("HELLO hc bad/room")  # 17 bytes: only the short form fits
        self.assertEqual(c.next(), "ERR bad_room")

    def test_bye(self):
        p = self.server()
        a, b = self.client("leaver"), self.client("stayer")
        a.expect(r"^JOINED stayer lobby$")
        a.send("BYE")
        self.assertEqual(a.next(), "BYE quit")
        self.assertEqual(b.next(), "LEFT leaver lobby quit")
        p.wait_line(r"^\[DISCONNECT\] Cliente leaver desconectado$")
        a.send(STRANGER)
        a.expect(r"^ERR not_registered ")
        a.hello("leaver")  # the id is free again

    # --- keep-alive ---

    def test_timeout_removes_silent_client(self):
        p = self.server("--timeout", "1")
        silent, pinger = self.client("silent"), self.client("pinger")
        silent.expect(r"^JOINED pinger lobby$")
        deadline = time.monotonic() + 4 * TIMEOUT
        got_left = False
        n = 0
        while time.monotonic() < deadline and not got_left:
            pinger.send(f"PING {n}")
            while True:
                d = pinger.recv(0.3)
                if d is None:
                    break
                if d == b"LEFT silent lobby timeout\n":
                    got_left = True
            n += 1
        self.assertTrue(got_left, "no LEFT silent lobby timeout")
        p.wait_line(r"^\[TIMEOUT\] Cliente silent removido por inatividade$")
        # the removed client is told, then treated as unknown, and can come back
        silent.expect(r"^BYE timeout$")
        silent.send(STRANGER)
        silent.expect(r"^ERR not_registered ")
        silent.send("PING 0000000000000001")  # udp_client's keep-alive: 21 bytes
        self.assertEqual(silent.next(), "ERR not_registered")
        silent.hello("silent")

    def test_pinging_client_is_kept(self):
        p = self.server("--timeout", "1")
        a = self.client("keeper")
        end = time.monotonic() + 3.5  # three and a half timeouts
        i = 0
        while time.monotonic() < end:
            a.send(f"PING {i}")
            a.expect(rf"^PONG {i}$")
            time.sleep(0.25)
            i += 1
        a.send("MSG 1 still registered")
        self.assertEqual(a.next(), "ACK 1 1")
        self.assertEqual(p.count(r"\[TIMEOUT\]"), 0)

    # --- refusals ---

    def test_unregistered_address(self):
        p = self.server()
        a = self.client()
        full = b"ERR not_registered not registered, send HELLO <id> first\n"
        short = b"ERR not_registered\n"
        for frame in ("WHO", "MSG 1 hi", "hello there", "PING 3", "JOIN x", "TO x 1 y", "BYE",
                      "PING 0000000000000003", STRANGER, "TO x 1 " + "y" * 60):
            a.send(frame)
            # the whole ERR when the datagram was as large, the short form when that fits,
            # else nothing (PROTOCOL.md, "Reflection")
            want = next((r for r in (full, short) if len(r) <= len(frame)), None)
            self.assertEqual(a.recv(0.5 if want is None else TIMEOUT), want, frame)
        a.hello("late")
        p.wait_line(r"^\[REGISTER\] Novo cliente late ")
        self.assertEqual(p.count(r"\[REGISTER\]"), 1)  # the refused frames registered nobody

    def test_too_long_and_max_datagram(self):
        self.server("--max-frame", "64")
        a = self.client("longer")
        frame = "MSG 1 " + "x" * 58  # exactly 64 bytes
        a.send(frame + "\r\n")
        self.assertEqual(a.next(), "ACK 1 1")
        a.send(frame + "y")
        a.expect(r"^ERR too_long ")
        a.send(b"z" * 65507)  # the largest IPv4 UDP payload
        a.expect(r"^ERR too_long ")
        a.send("PING ok")
        self.assertEqual(a.next(), "PONG ok")

    def test_64k_datagram_default_limit(self):
        self.server()
        a = self.client("big")
        a.send(b"MSG 1 " + b"q" * 65501)
        a.expect(r"^ERR too_long ")
        a.send("PING fine")
        self.assertEqual(a.next(), "PONG fine")

    def test_nul_and_bad_frames(self):
        self.server()
        a = self.client("nul")
        a.send(b"MSG 1 a\x00b")
        a.expect(r"^ERR bad_frame ")
        a.send("MSG notanumber x")
        a.expect(r"^ERR bad_frame ")
        a.send("HELLO bad/id")
        a.expect(r"^ERR bad_id ")
        a.send("PING alive")
        self.assertEqual(a.next(), "PONG alive")

    def test_garbage_and_invalid_utf8(self):
        p = self.server()
        a, b = self.client("ga"), self.client("gb")
        a.expect(r"^JOINED gb lobby$")
        raw = b"MSG 9 \xc3\x28 bad \x80 utf8 \x1b[31m"
        a.send(raw)
        self.assertEqual(a.next(), "ACK 9 1")
        d = b.recv()
        self.assertEqual(d, b"FROM ga 9 \xc3\x28 bad \x80 utf8 \x1b[31m\n")  # relayed as it came
        p.wait_line(r'^\[MESSAGE\] ga : "\\xc3\( bad \\x80 utf8 \\x1b\[31m"$')
        import random
        rnd = random.Random(7)
        for _ in range(200):
            junk = bytes(rnd.randrange(1, 255) for _ in range(rnd.randrange(1, 300)))
            a.send(junk)  # never 0xFF first, never NUL: chat or a refusal, never a crash
        a.send("PING after junk")
        a.expect(r"^PONG after junk$", timeout=2 * TIMEOUT)
        self.assertTrue(p.alive())

    def test_empty_datagram_is_silent(self):
        self.server()
        a = self.client("empty")
        a.send(b"")
        a.send(b"\n")
        a.send("PING 1")
        self.assertEqual(a.next(), "PONG 1")  # nothing came before it
        u = self.client()
        u.send(b"")
        u.send(STRANGER)
        u.expect(r"^ERR not_registered ")

    # --- compression ---

    def test_compressed_and_plain_in_one_room(self):
        self.server()
        z = self.client(zip_=True)
        m = z.hello("zed")
        self.assertEqual(m.string, f"WELCOME zed {HOST}:{z.local_port}")
        self.assertEqual(z.forms, [True])
        pl = self.client("plain")
        self.assertEqual(z.next(), "JOINED plain lobby")
        z.send("MSG 1 " + "compressed hello " * 10)
        self.assertEqual(z.next(), "ACK 1 1")
        self.assertEqual(pl.next(), "FROM zed 1 " + "compressed hello " * 10)
        pl.send("MSG 2 plain hello")
        self.assertEqual(pl.next(), "ACK 2 1")
        self.assertEqual(z.next(), "FROM plain 2 plain hello")
        self.assertTrue(all(z.forms), z.forms)
        self.assertFalse(any(pl.forms), pl.forms)
        # a stream without the dictionary is accepted too, and answered compressed
        z.s.sendto(zpack("PING nodict", zdict=None), z.addr)
        self.assertEqual(z.next(), "PONG nodict")
        self.assertTrue(z.forms[-1])
        # switching to plain switches the replies
        z.zip = False
        z.send("PING plain-now")
        self.assertEqual(z.next(), "PONG plain-now")
        self.assertFalse(z.forms[-1])
        pl.send("MSG 3 to a plain zed")
        self.assertEqual(pl.next(), "ACK 3 2")
        self.assertEqual(z.next(), "FROM plain 3 to a plain zed")
        self.assertFalse(z.forms[-1])

    def test_bad_zlib(self):
        p = self.server()
        a = self.client("zz", zip_=True)
        self.assertTrue(a.forms[-1])
        bomb = ZMARK + zlib.compress(b"\0" * (1 << 20), 9)
        self.assertLess(len(bomb), 2000)
        good = zpack("MSG 1 " + "fine " * 40)
        other = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                 zdict=b"another dictionary entirely")
        wrong_dict = ZMARK + other.compress(b"MSG 1 hi") + other.flush()
        corrupt = bytearray(good)
        corrupt[len(corrupt) // 2] ^= 0x55
        cases = {"bomb": bomb, "truncated": good[:-5], "corrupt": bytes(corrupt),
                 "marker only": ZMARK, "wrong dictionary": wrong_dict,
                 "trailing bytes": good + b"xx"}
        for name, d in cases.items():
            with self.subTest(name):
                a.s.sendto(d, a.addr)
                raw = UdpConn.recv(a)
                self.assertIsNotNone(raw)
                self.assertTrue(raw.startswith(b"ERR bad_zlib "), raw[:80])  # always plain
        a.send("PING survived")
        self.assertEqual(a.next(), "PONG survived")
        self.assertTrue(p.alive())

    # --- options ---

    def test_quiet_drops_message_lines_only(self):
        p = self.server("-q")
        a = self.client("quiet")
        a.send("MSG 1 not logged")
        self.assertEqual(a.next(), "ACK 1 1")
        a.send("BYE")
        self.assertEqual(a.next(), "BYE quit")
        p.wait_line(r"^\[DISCONNECT\] Cliente quiet desconectado$")
        self.assertEqual(p.count(r"\[MESSAGE\]"), 0)
        self.assertEqual(p.count(r"^\[REGISTER\] Novo cliente quiet "), 1)

    def test_max_clients(self):
        p = self.server("--max-clients", "2")
        a, _ = self.client("m1"), self.client("m2")
        c = self.client()
        c.send(hello_frame("m3"))
        c.expect(r"^ERR server_full ")
        c.send(STRANGER)
        c.expect(r"^ERR not_registered ")  # stayed unregistered
        p.wait_line(r"^\[WARN\] ")
        a.send("BYE")
        a.expect(r"^BYE quit$")
        c.hello("m3")

    def test_sigterm_says_bye_and_exits_0(self):
        p = self.server()
        a, b = self.client("s1"), self.client("s2", zip_=False)
        z = self.client(zip_=True)
        z.hello("s3")
        self.assertEqual(p.stop(signal.SIGTERM), 0)
        a.expect(r"^BYE shutdown$")
        b.expect(r"^BYE shutdown$")
        z.expect(r"^BYE shutdown$")
        self.assertTrue(z.forms[-1])
        self.assertIn("[INFO] Servidor encerrado", p.lines)
        self.assertTrue(any("BYE shutdown enviado a 3 clientes" in l for l in p.lines), p.lines)

    def test_sigint_exits_0(self):
        p = self.server()
        self.client("i1")
        self.assertEqual(p.stop(signal.SIGINT), 0)

    def run_bin(self, *args):
        return subprocess.run([os.path.join(harness.BIN, "udp_server"), *args],
                              capture_output=True, text=True, timeout=TIMEOUT)

    def test_cpus_pins_every_thread(self):
        cpu = max(os.sched_getaffinity(0))
        p = self.server("--cpus", str(cpu))
        a = self.client("pinned")
        a.send("MSG 1 pinned")
        self.assertEqual(a.next(), "ACK 1 1")
        cpus = harness.thread_cpus(p.p.pid)
        self.assertGreaterEqual(len(cpus), 5)  # main, receiver, sender, keep-alive, log
        self.assertEqual(set(cpus.values()), {str(cpu)})

    def test_help_version_and_bad_options(self):
        r = self.run_bin("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-frame", r.stdout)
        self.assertIn("--idle-timeout S", r.stdout)
        self.assertIn("--cpus LIST", r.stdout)
        r = self.run_bin("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^udp_server \d+\.\d+")
        for bad in (["--port", "x"], ["--port", "70000"], ["--timeout", "0"],
                    ["--max-frame", "63"], ["--max-frame", "65508"], ["--max-clients", "-1"],
                    ["--nope"], ["--port"], ["extra"], ["--idle-timeout", "x"],
                    ["--idle-timeout", "86401"], ["--idle-timeout", "-1"], ["--cpus", "x"],
                    ["--cpus", str(os.cpu_count() + 64)]):
            with self.subTest(bad=bad):
                r = self.run_bin(*bad)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("udp_server:", r.stderr)

    def test_bind_failure_exits_1(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind((HOST, 0))
        r = self.run_bin("--port", str(s.getsockname()[1]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot bind", r.stderr)


if __name__ == "__main__":
    unittest.main()
