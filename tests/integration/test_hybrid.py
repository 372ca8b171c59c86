"""test_hybrid: udp_server --hybrid (TCP control connection, UDP chat with a session token)
over real loopback sockets; see PROTOCOL.md, "Hybrid mode"."""
import json
import os
import re
import signal
import socket
import subprocess
import unittest

import harness
from harness import HOST, TIMEOUT, Proc, TcpConn, UdpConn, wait_until

WELCOME_RX = r"^WELCOME {id} (\d+\.\d+\.\d+\.\d+:\d+) ([0-9a-f]{{16}}) (\d+)$"


def start_hybrid(test, *args, udp_port=0, control_port=0):
    """udp_server --hybrid on free ports (or given ones); returns (proc, udp_port, ctl_port)."""
    proc = Proc([os.path.join(harness.BIN, "udp_server"), "--port", str(udp_port), "--hybrid",
                 "--control-port", str(control_port), *args])
    test.addCleanup(proc.stop)
    up = int(proc.wait_line(r"^\[INFO\] Servidor UDP iniciado na porta (\d+)$",
                            timeout=10).group(1))
    cp = int(proc.wait_line(r"^\[INFO\] Modo híbrido: controle TCP na porta (\d+)$").group(1))
    return proc, up, cp


class Session:
    """One hybrid client: a control connection and a UDP socket of its own."""

    def __init__(self, test, udp_port, ctl_port, cid, room=None):
        self.id = cid
        self.ctl = TcpConn(ctl_port)
        test.addCleanup(self.ctl.close)
        self.udp = UdpConn(udp_port)
        test.addCleanup(self.udp.close)
        self.ctl.send(f"HELLO {cid}" + (f" {room}" if room else ""))
        m = self.ctl.expect(WELCOME_RX.format(id=re.escape(cid)))
        self.seen_addr, self.token, self.port = m.group(1), m.group(2), int(m.group(3))
        test.assertEqual(self.port, udp_port)
        # bind the UDP address to the session: the first datagram with the token
        self.send("PING bind")
        self.udp.expect(r"^PONG bind$")

    def send(self, frame, token=None):
        self.udp.send(f"{self.token if token is None else token} {frame}")


class HybridServerTest(unittest.TestCase):
    def server(self, *args):
        self.proc, self.uport, self.cport = start_hybrid(self, *args)
        return self.proc

    def session(self, cid, room=None):
        return Session(self, self.uport, self.cport, cid, room)

    def refused_total(self):
        """Stops the server and returns its count of datagrams refused for their token."""
        self.assertEqual(self.proc.stop(), 0)
        m = self.proc.wait_line(r"^\[INFO\] Recusados por token ausente ou inválido: (\d+)$")
        return int(m.group(1))

    # --- registration ---

    def test_registration_gives_token_and_udp_port(self):
        p = self.server()
        a = self.session("alice")
        self.assertEqual(a.seen_addr, f"{HOST}:{a.ctl.s.getsockname()[1]}")
        p.wait_line(rf"^\[REGISTER\] Novo cliente alice registrado de {re.escape(a.seen_addr)}$")
        b = self.session("bob")
        self.assertNotEqual(a.token, b.token)
        # HELLO again with the same id: the same session; another id: refused
        a.ctl.send("HELLO alice")
        m = a.ctl.expect(WELCOME_RX.format(id="alice"))
        self.assertEqual(m.group(2), a.token)
        a.ctl.send("HELLO alicia")
        a.ctl.expect(r"^ERR already_registered ")
        # ids are unique across sessions
        c = TcpConn(self.cport)
        self.addCleanup(c.close)
        c.send("HELLO bob")
        c.expect(r"^ERR id_in_use ")
        # WHO over the control connection shows the UDP address once bound
        a.ctl.send("WHO")
        rows = [a.ctl.expect(r"^(USER|USERS) ").string for _ in range(3)]
        self.assertIn(f"USER alice {HOST}:{a.udp.local_port} lobby", rows)
        self.assertIn(f"USER bob {HOST}:{b.udp.local_port} lobby", rows)
        self.assertEqual(rows[-1], "USERS 2")

    def test_control_refuses_chat_and_requires_hello(self):
        self.server()
        c = TcpConn(self.cport)
        self.addCleanup(c.close)
        c.send("WHO")
        c.expect(r"^ERR not_registered ")
        c.send("PING 9")
        c.expect(r"^PONG 9$")
        c.send("HELLO carol")
        c.expect(WELCOME_RX.format(id="carol"))
        c.send("MSG 1 over tcp")
        c.expect(r"^ERR bad_frame .*UDP")
        c.send("x" * 5000)  # longer than --max-frame: refused, the connection stays
        c.expect(r"^ERR too_long ")
        c.send("PING still")
        c.expect(r"^PONG still$")

    # --- messaging ---

    def test_messaging_over_udp_with_token(self):
        p = self.server()
        a = self.session("alice", "sala")
        b = self.session("bob", "sala")
        a.udp.expect(r"^JOINED bob sala$")  # notices travel over UDP, like chat
        a.send("MSG 1 hello hybrid")
        a.udp.expect(r"^ACK 1 1$")
        b.udp.expect(r"^FROM alice 1 hello hybrid$")
        b.send("TO alice 2 psst")
        b.udp.expect(r"^ACK 2 1$")
        a.udp.expect(r"^PRIV bob 2 psst$")
        p.wait_line(r'^\[MESSAGE\] alice : "hello hybrid"$')
        # JOIN over the control connection: JOINED there; the old room hears LEFT over UDP
        a.ctl.send("JOIN other")
        a.ctl.expect(r"^JOINED alice other$")
        b.udp.expect(r"^LEFT alice sala moved$")
        # control verbs are refused on the data path (they belong to the session)
        a.send("JOIN sala")
        a.udp.expect(r"^ERR bad_frame ")
        a.send("BYE")
        a.udp.expect(r"^ERR bad_frame ")
        a.send("MSG 3 still here")
        a.udp.expect(r"^ACK 3 2$")  # MSG 1 and this one

    # --- spoofing ---

    def test_missing_wrong_and_stolen_tokens_are_refused_and_counted(self):
        p = self.server()
        a = self.session("alice")
        b = self.session("bob")
        a.udp.expect(r"^JOINED bob lobby$")
        spoof = UdpConn(self.uport)
        self.addCleanup(spoof.close)
        wrong = "0123456789abcdef" if a.token != "0123456789abcdef" else "fedcba9876543210"
        spoof.send("MSG 1 no token")                    # 1: missing
        spoof.send(f"{wrong} MSG 2 wrong token")        # 2: unknown token
        spoof.send(f"{a.token.upper()} MSG 3 upper")    # 3: not the token's spelling
        spoof.send(f"{a.token} MSG 4 stolen token")     # 4: alice's token, another address
        spoof.send(f"{a.token}MSG 5 no space")          # 5: not the framing
        spoof.send("HELLO mallory")                     # 6: plain UDP registration is gone
        # nothing comes back to the forged source (no reflection), nobody hears the forgeries
        self.assertIsNone(spoof.recv(0.5))
        p.wait_line(r"^\[WARN\] Token ausente ou inválido: \d+ datagramas recusados")
        # the real owner still talks, and its count of chat frames saw none of the forgeries
        a.send("MSG 6 genuine")
        a.udp.expect(r"^ACK 6 1$")
        m = b.udp.expect(r"^FROM alice (\d+) ")
        self.assertEqual(m.group(1), "6")
        self.assertEqual(self.refused_total(), 6)

    # --- end of session ---

    def test_closing_control_connection_ends_session_at_once(self):
        p = self.server("--timeout", "60")  # a UDP timeout could not explain what follows
        a = self.session("alice")
        b = self.session("bob")
        a.udp.expect(r"^JOINED bob lobby$")
        old = a.token
        a.ctl.close()
        b.udp.expect(r"^LEFT alice lobby quit$", timeout=TIMEOUT)
        p.wait_line(r"^\[DISCONNECT\] Cliente alice desconectado$")
        # the old token is dead: refused even from alice's own address
        a.send("MSG 1 ghost", token=old)
        self.assertIsNone(a.udp.recv(0.5))
        b.ctl.send("WHO")
        b.ctl.expect(r"^USERS 1$")
        # the id is free again: a new session gets a new token
        a2 = self.session("alice")
        self.assertNotEqual(a2.token, old)
        self.assertEqual(self.refused_total(), 1)

    def test_bye_on_control_connection(self):
        self.server()
        a = self.session("alice")
        b = self.session("bob")
        a.udp.expect(r"^JOINED bob lobby$")
        a.ctl.send("BYE")
        a.ctl.expect(r"^BYE quit$")
        self.assertIsNone(a.ctl.recv_line())  # then the server closes
        b.udp.expect(r"^LEFT alice lobby quit$")

    def test_reset_control_connection_is_an_error(self):
        self.server()
        a = self.session("alice")
        b = self.session("bob")
        a.udp.expect(r"^JOINED bob lobby$")
        a.ctl.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        a.ctl.close()  # linger 0: RST
        b.udp.expect(r"^LEFT alice lobby error$")

    def test_shutdown_says_bye_on_control_connections(self):
        p = self.server()
        a = self.session("alice")
        self.assertEqual(p.stop(), 0)
        a.ctl.expect(r"^BYE shutdown$")
        p.wait_line(r"^\[INFO\] BYE shutdown enviado a 1 clientes$")

    def test_control_peer_that_does_not_read_is_cut_off_alone(self):
        p = self.server()
        b = self.session("bob")
        # a control connection with a small receive buffer that asks WHO and never reads
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(slow.close)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((HOST, self.cport))
        slow.sendall(b"HELLO slowpoke\n")
        b.udp.expect(r"^JOINED slowpoke lobby$")
        slow.settimeout(30)
        try:
            slow.sendall(b"WHO\n" * 200000)  # about 12 MB of answers it will never read
        except OSError:
            pass  # the server may cut it off while we are still sending
        # meanwhile others are served: the stuck writer holds no shared lock
        b.ctl.send("WHO")
        b.ctl.expect(r"^USERS 2$")
        b.udp.expect(r"^LEFT slowpoke lobby slow$", timeout=30)
        p.wait_line(r"^\[DISCONNECT\] Cliente slowpoke desconectado$")

    def test_silent_control_connection_times_out(self):
        p = self.server("--hello-timeout", "1")
        c = TcpConn(self.cport)
        self.addCleanup(c.close)
        c.expect(r"^ERR timeout ", timeout=TIMEOUT)
        self.assertIsNone(c.recv_line())  # then closed
        # a registered one is not subject to it
        a = self.session("alice")
        b = self.session("bob")
        a.udp.expect(r"^JOINED bob lobby$")
        self.assertIsNone(a.udp.recv(1.5))  # no LEFT bob ... in 1.5 s
        b.ctl.send("PING still")
        b.ctl.expect(r"^PONG still$")

    def test_many_sessions_come_and_go(self):
        p = self.server()
        # main, receiver, sender, keep-alive, acceptor (plus a sanitizer's own, if any)
        base = harness.proc_stats(p.p.pid)["threads"]
        stay = self.session("stay")
        for i in range(30):
            s = self.session(f"c{i}")
            s.send(f"MSG {i} hi")
            s.udp.expect(rf"^ACK {i} 1$")
            s.ctl.close()
            stay.udp.expect(rf"^LEFT c{i} lobby quit$")
        stay.ctl.send("WHO")
        stay.ctl.expect(r"^USERS 1$")
        # finished control threads are joined: only stay's remains
        wait_until(lambda: harness.proc_stats(p.p.pid)["threads"] == base + 1,
                   what="threads reaped")

    def test_options(self):
        exe = os.path.join(harness.BIN, "udp_server")
        r = subprocess.run([exe, "--control-port", "7000"], capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--hybrid", r.stderr)
        r = subprocess.run([exe, "--hybrid", "--control-port", "x"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("--hybrid", r.stdout)



class HybridClient:
    """udp_client --hybrid in line mode (stdin a pipe), its output collected."""

    def __init__(self, test, ctl_port, cid, *extra):
        argv = [os.path.join(harness.BIN, "udp_client"), "--hybrid", "--control-port",
                str(ctl_port), "--id", cid, *extra]
        self.proc = Proc(argv, stdin=subprocess.PIPE)
        test.addCleanup(self.proc.stop)

    def say(self, line):
        self.proc.p.stdin.write(line.encode() + b"\n")
        self.proc.p.stdin.flush()

    def expect(self, pattern, timeout=TIMEOUT):
        return self.proc.wait_line(pattern, timeout=timeout)

    def connected(self, times=1, timeout=TIMEOUT):
        wait_until(lambda: self.proc.count(r"^Conectado ao servidor!$") >= times, timeout,
                   f"connected {times} time(s): {self.proc.lines[-10:]}")


class HybridClientTest(unittest.TestCase):
    def test_chat_who_join_and_quit(self):
        p, _, cport = start_hybrid(self)
        a = HybridClient(self, cport, "ana")
        b = HybridClient(self, cport, "bia")
        a.connected()
        b.connected()
        a.say("ola pelo udp")
        a.expect(r'^ana : "ACK"$')
        b.expect(r'^ana : "ola pelo udp"$')
        p.wait_line(r'^\[MESSAGE\] ana : "ola pelo udp"$')
        b.say("/msg ana segredo")
        a.expect(r'^\[privado\] bia : "segredo"$')
        a.say("/who")
        a.expect(r"^\* 2 usuário\(s\) conectado\(s\)$")
        a.say("/join sala2")
        a.expect(r"^\* você entrou na sala sala2$")
        b.expect(r"^\* ana saiu da sala lobby \(moved\)$")  # LEFT arrived over UDP
        a.say("/quit")
        self.assertEqual(a.proc.p.wait(TIMEOUT), 0)
        p.wait_line(r"^\[DISCONNECT\] Cliente ana desconectado$")

    def test_reconnects_with_a_new_session_after_server_restart(self):
        p, uport, cport = start_hybrid(self)
        a = HybridClient(self, cport, "ana")
        b = HybridClient(self, cport, "bia")
        a.connected()
        b.connected()
        a.say("antes")
        b.expect(r'^ana : "antes"$')
        self.assertEqual(p.stop(signal.SIGKILL), -signal.SIGKILL)
        p2, _, _ = start_hybrid(self, udp_port=uport, control_port=cport)
        a.connected(2, timeout=15)
        b.connected(2, timeout=15)
        a.expect(r"^\* conexão de controle perdida")
        p2.wait_line(r"^\[REGISTER\] Novo cliente ana ")
        a.say("depois do reinicio")
        b.expect(r'^ana : "depois do reinicio"$')
        a.expect(r'^ana : "ACK"$')

    def test_options(self):
        exe = os.path.join(harness.BIN, "udp_client")
        r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("--hybrid", r.stdout)
        self.assertIn("--control-port", r.stdout)
        for bad in (["--control-port", "5002"], ["--hybrid", "--port", "5001"],
                    ["--hybrid", "--control-port", "0"], ["--hybrid", "--compress"],
                    ["--hybrid", "--ping-interval", "1"]):
            r = subprocess.run([exe, "--id", "x", *bad], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
        r = subprocess.run([os.path.join(harness.BIN, "tcp_client"), "--hybrid"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 2)



class HybridLoadgenTest(unittest.TestCase):
    def run_loadgen(self, *args):
        exe = os.path.join(harness.BIN, "loadgen")
        p = subprocess.run([exe, "--duration", "2", "--warmup", "0", "--rate", "10", "--threads",
                            "2", "--json", *args], capture_output=True, text=True, timeout=60)
        self.assertTrue(p.stdout.strip(), f"no output; stderr:\n{p.stderr}")
        return json.loads(p.stdout), p

    def test_loadgen_hybrid_counts_add_up(self):
        srv, _, cport = start_hybrid(self, "-q")
        s, p = self.run_loadgen("--proto", "hybrid", "--port", str(cport), "--clients", "24",
                                "--room-size", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(s["proto"], "hybrid")
        self.assertEqual(s["connected"], 24)
        self.assertGreater(s["sent"], 0)
        self.assertEqual(s["acked"] + s["lost"], s["sent"])
        self.assertLessEqual(s["fanout_received"], s["fanout_expected"])
        self.assertEqual(s["fanout_expected"], 2 * s["sent"])
        # every datagram carried a token the server knew: nothing refused
        wait_until(lambda: srv.count(r"^\[DISCONNECT\] ") == 24, what="24 BYEs")
        srv.stop()
        srv.wait_line(r"^\[INFO\] Recusados por token ausente ou inválido: 0$")

    def test_loadgen_hybrid_against_a_plain_udp_server_fails_cleanly(self):
        _, uport = harness.start_server("udp", "-q", test=self)
        s, p = self.run_loadgen("--proto", "hybrid", "--port", str(uport), "--clients", "2",
                                "--duration", "1")
        self.assertEqual(p.returncode, 1)  # nothing listens on TCP there
        self.assertEqual(s["connected"], 0)

    def test_loadgen_options(self):
        exe = os.path.join(harness.BIN, "loadgen")
        p = subprocess.run([exe, "--proto", "hybrid", "--compress"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("hybrid", p.stdout)


if __name__ == "__main__":
    unittest.main()
