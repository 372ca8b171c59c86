"""test_clients: bin/tcp_client and bin/udp_client against the real servers.

The clients are driven through pipes (line mode), except one test that types into a
pseudo-terminal to check that readline keeps the partial input intact when a message arrives.
"""
import fcntl
import os
import re
import select
import signal
import subprocess
import termios
import time
import unittest

import harness
from harness import TIMEOUT, Proc, start_server, wait_until

# CHATBENCH_CLIENT_BIN runs these tests with other builds of the clients (e.g. ASan ones)
CLIENT_BIN = os.environ.get("CHATBENCH_CLIENT_BIN", harness.BIN)
TCP_CLIENT = os.path.join(CLIENT_BIN, "tcp_client")
UDP_CLIENT = os.path.join(CLIENT_BIN, "udp_client")


def client_bin(kind):
    return TCP_CLIENT if kind == "tcp" else UDP_CLIENT


class Client:
    """A client process in line mode: lines written to its stdin, its output collected."""

    def __init__(self, test, kind, port, cid, *extra):
        argv = [client_bin(kind), "--port", str(port), "--id", cid, *extra]
        self.kind, self.id = kind, cid
        self.proc = Proc(argv, stdin=subprocess.PIPE)
        test.addCleanup(self.proc.stop)

    def say(self, line):
        self.proc.p.stdin.write(line.encode() + b"\n")
        self.proc.p.stdin.flush()

    def expect(self, pattern, timeout=TIMEOUT, start=0):
        return self.proc.wait_line(pattern, timeout=timeout, start=start)

    def count(self, pattern):
        return self.proc.count(pattern)

    def connected(self, times=1, timeout=TIMEOUT):
        try:
            wait_until(lambda: self.count(r"^Conectado ao servidor!$") >= times, timeout)
        except AssertionError:
            raise AssertionError(f"{self.id} not connected {times} time(s); its output: "
                                 f"{self.proc.lines[-10:]}") from None

    def close_stdin(self):
        self.proc.p.stdin.close()

    def wait_exit(self, timeout=TIMEOUT):
        return self.proc.p.wait(timeout)


def restart_server(kind, port, *args, test, io=None):
    """Starts <kind>_server again on a given port (the old one must be gone)."""
    proc = Proc(harness.server_argv(kind, "--port", str(port), *args, io=io))
    test.addCleanup(proc.stop)
    word = "TCP" if kind == "tcp" else "UDP"
    proc.wait_line(rf"\[INFO\] Servidor {word} iniciado na porta {port}\b", timeout=10)
    return proc


class ClientChat:
    """Mixin: the same chat scenarios for both transports (self.kind)."""

    def assertGivesUp(self, argv):
        # stdin stays open: at EOF a client with nothing to send would just exit 0
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        try:
            p.wait(20)  # a few lines of output: the pipes cannot fill up
            err = p.stderr.read()
        finally:
            p.stdin.close()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"giving up", err)

    IO = None  # tcp_server --io (None: its default)

    def server(self, *args):
        return start_server(self.kind, *args, test=self, io=self.IO)

    def clients(self, port, *ids, extra=()):
        cs = [Client(self, self.kind, port, cid, *extra) for cid in ids]
        for c in cs:
            c.connected()
        return cs

    def test_example_session(self):
        _, port = self.server()
        a, b = self.clients(port, "123456789", "987654321")
        self.assertEqual(a.proc.lines[0], "Cliente: 123456789")
        a.say("ola, tudo bem?")
        a.expect(r'^123456789 : "ACK"$')
        b.expect(r'^123456789 : "ola, tudo bem\?"$')
        b.say("tudo otimo")
        a.expect(r'^987654321 : "tudo otimo"$')
        b.expect(r'^987654321 : "ACK"$')
        self.assertEqual(a.count(r'"tudo otimo"'), 1)
        self.assertEqual(a.count(r'"ola, tudo bem'), 0, "own message echoed back")

    def test_private_message(self):
        _, port = self.server()
        a, b, c = self.clients(port, "ana", "bia", "caio")
        a.say("/msg bia segredo aqui")
        b.expect(r'^\[privado\] ana : "segredo aqui"$')
        a.expect(r'^ana : "ACK"$')
        c.say("public")  # caio's own line proves his output is flowing
        a.expect(r'^caio : "public"$')
        self.assertEqual(c.count("segredo"), 0)
        a.say("/msg ninguem oi")
        a.expect(r"^\* erro: unknown_user")

    def test_who_lists_everyone(self):
        _, port = self.server()
        a, b = self.clients(port, "alice", "bob")
        a.say("/who")
        a.expect(r"^\* 2 usuário\(s\) conectado\(s\)$")
        rows = [l for l in a.proc.lines if re.match(r"^  (alice|bob) +127\.0\.0\.1:\d+ +lobby", l)]
        self.assertEqual(sorted(r.split()[0] for r in rows), ["alice", "bob"], a.proc.lines)

    def test_join_moves_rooms(self):
        _, port = self.server()
        a, b, c = self.clients(port, "alice", "bob", "carol")
        a.say("/join sala2")
        a.expect(r"^\* você entrou na sala sala2$")
        b.expect(r"^\* alice saiu da sala lobby \(moved\)$")
        b.say("so no lobby")
        b.expect(r'^bob : "ACK"$')
        c.expect(r'^bob : "so no lobby"$')
        c.say("/join sala2")
        a.expect(r"^\* carol entrou na sala sala2$")
        c.say("na sala2")
        a.expect(r'^carol : "na sala2"$')
        self.assertEqual(a.count("so no lobby"), 0)
        self.assertEqual(b.count("na sala2\""), 0)

    def test_control_characters_are_escaped(self):
        _, port = self.server()
        (a,) = self.clients(port, "alice")
        raw = harness.TcpConn(port) if self.kind == "tcp" else harness.UdpConn(port)
        self.addCleanup(raw.close)
        raw.hello("raw")
        a.expect(r"^\* raw entrou na sala lobby$")
        raw.send(b"MSG 1 a\x1b[31mred\x07 \"q\" \\ end")
        m = a.expect(r"^raw : ")
        line = m.string
        self.assertNotIn("\x1b", line)
        self.assertNotIn("\x07", line)
        self.assertEqual(line, r'raw : "a\x1b[31mred\x07 \"q\" \\ end"')

    def test_pipe_mode_exits_after_acks(self):
        _, port = self.server()
        (b,) = self.clients(port, "bob")
        a = Client(self, self.kind, port, "alice")
        a.connected()
        for i in range(20):
            a.say(f"linha {i}")
        a.close_stdin()
        self.assertEqual(a.wait_exit(10), 0)
        self.assertEqual(a.count(r'^alice : "ACK"$'), 20)
        b.expect(r'^alice : "linha 19"$')
        b.expect(r"^\* alice saiu da sala lobby \(quit\)$")

    def test_quit_command(self):
        _, port = self.server()
        a, b = self.clients(port, "alice", "bob")
        a.say("/quit")
        self.assertEqual(a.wait_exit(10), 0)
        b.expect(r"^\* alice saiu da sala lobby \(quit\)$")

    def test_three_clients_at_once(self):
        _, port = self.server()
        ids = ["c1", "c2", "c3"]
        cs = self.clients(port, *ids)
        for c in cs:  # everyone sends at once, before anyone reads
            for k in range(5):
                c.say(f"{c.id} msg {k}")
        for c in cs:
            for other in ids:
                if other != c.id:
                    c.expect(rf'^{other} : "{other} msg 4"$')
            wait_until(lambda: c.count(rf'^{c.id} : "ACK"$') == 5, what=f"{c.id} ACKs")
            for other in ids:
                if other != c.id:
                    self.assertEqual(c.count(rf'^{other} : "{other} msg \d"$'), 5)

    def test_sigint_exits_cleanly(self):
        _, port = self.server()
        a, b = self.clients(port, "alice", "bob")
        a.proc.p.send_signal(signal.SIGINT)
        self.assertEqual(a.wait_exit(10), 0)
        b.expect(r"^\* alice saiu da sala lobby \(quit\)$")


class TcpClientTest(ClientChat, unittest.TestCase):
    kind = "tcp"
    IO = "threads"  # TcpClientEpollTest: the same against tcp_server --io epoll

    def test_reconnects_after_server_restart(self):
        # SIGTERM: the server says BYE shutdown and closes; SIGKILL: the kernel resets
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with self.subTest(signal=sig.name):
                self.reconnect_after(sig)

    def reconnect_after(self, sig):
        srv, port = self.server()
        a, b = self.clients(port, "alice", "bob")
        a.say("/join sala2")
        a.expect(r"^\* você entrou na sala sala2$")
        b.say("/join sala2")
        a.expect(r"^\* bob entrou na sala sala2$")
        self.assertIn(srv.stop(sig), (0, -sig))
        a.expect(r"^\* conexão perdida, reconectando em \d+\.\d s\.\.\.$")
        if sig == signal.SIGTERM:
            a.expect(r"^\* o servidor encerrou a sessão \(shutdown\)$")
        restart_server("tcp", port, test=self, io=self.IO)
        a.connected(2, timeout=15)
        b.connected(2, timeout=15)
        wait_until(lambda: a.count(r"^\* você entrou na sala sala2$") == 2
                   and b.count(r"^\* você entrou na sala sala2$") == 2, 10, "rejoin sala2")
        a.say("depois do reinicio")
        b.expect(r'^alice : "depois do reinicio"$')
        a.expect(r'^alice : "ACK"$')

    def test_waits_for_a_server_that_is_not_there_yet(self):
        srv, port = self.server()
        srv.stop()
        a = Client(self, "tcp", port, "early")
        a.expect(r"^\* servidor indisponível .*, nova tentativa em \d+\.\d s\.\.\.$")
        a.say("enfileirada")  # line mode holds it until the connection is up
        restart_server("tcp", port, test=self, io=self.IO)
        a.connected(timeout=15)
        a.expect(r'^early : "ACK"$')

    def test_max_retries_gives_up(self):
        srv, port = self.server()
        srv.stop()
        self.assertGivesUp([TCP_CLIENT, "--port", str(port), "--id", "x", "--max-retries", "2"])

    def test_id_in_use_keeps_retrying(self):
        _, port = self.server()
        (a,) = self.clients(port, "dup")
        b = Client(self, "tcp", port, "dup")
        b.expect(r"^\* o id dup já está em uso no servidor; tentando de novo\.\.\.$")
        a.say("/quit")
        self.assertEqual(a.wait_exit(10), 0)
        b.connected(timeout=15)
        self.assertEqual(b.count("já está em uso"), 1)


class TcpClientEpollTest(TcpClientTest):
    IO = "epoll"


class UdpClientTest(ClientChat, unittest.TestCase):
    kind = "udp"

    def test_reregisters_after_server_restart(self):
        srv, port = self.server()
        # 3 silent ping intervals (3 s) is far longer than a restart: the first PING to the new
        # server gets ERR not_registered, which is the path under test
        a, b = self.clients(port, "alice", "bob", extra=("--ping-interval", "1"))
        a.say("/join sala2")
        a.expect(r"^\* você entrou na sala sala2$")
        b.say("/join sala2")
        a.expect(r"^\* bob entrou na sala sala2$")
        self.assertEqual(srv.stop(signal.SIGKILL), -signal.SIGKILL)
        restart_server("udp", port, test=self)
        a.connected(2, timeout=15)
        b.connected(2, timeout=15)
        for c in (a, b):
            self.assertEqual(c.count(r"^\* o servidor esqueceu este cliente; registrando de "
                                     r"novo\.\.\.$"), 1, c.proc.lines)
        wait_until(lambda: a.count(r"^\* você entrou na sala sala2$") == 2
                   and b.count(r"^\* você entrou na sala sala2$") == 2, 10, "rejoin sala2")
        a.say("depois do reinicio")
        b.expect(r'^alice : "depois do reinicio"$')
        a.expect(r'^alice : "ACK"$')

    def test_reregisters_after_server_timeout(self):
        # The server forgets silent clients after 1 s; this client pings only every 2 s. The
        # server says BYE timeout (and a later PING would get ERR not_registered): HELLO again.
        srv, port = self.server("--timeout", "1")
        a = Client(self, "udp", port, "sleepy", "--ping-interval", "2")
        a.connected()
        srv.wait_line(r"^\[TIMEOUT\] Cliente sleepy removido por inatividade$", timeout=10)
        a.connected(2, timeout=10)
        a.say("acordei")
        a.expect(r'^sleepy : "ACK"$')
        srv.wait_line(r'^\[MESSAGE\] sleepy : "acordei"$')

    def test_silent_server_means_register_again(self):
        srv, port = self.server()
        a = Client(self, "udp", port, "patient", "--ping-interval", "0.2")
        a.connected()
        srv.p.send_signal(signal.SIGSTOP)  # alive but mute: no PONG, no ICMP error either
        self.addCleanup(lambda: srv.p.poll() is None and srv.p.send_signal(signal.SIGCONT))
        try:
            a.expect(r"^\* sem resposta do servidor; registrando de novo\.\.\.$", timeout=10)
        finally:
            srv.p.send_signal(signal.SIGCONT)
        a.connected(2, timeout=15)  # same address, same id: WELCOME again
        a.say("voltei")
        a.expect(r'^patient : "ACK"$')

    def test_pings_keep_registration(self):
        srv, port = self.server("--timeout", "2")
        a = Client(self, "udp", port, "awake", "--ping-interval", "0.3")
        a.connected()
        time.sleep(3.5)  # longer than the server's timeout: only PINGs keep us in
        a.say("ainda aqui")
        a.expect(r'^awake : "ACK"$')
        self.assertEqual(srv.count(r"\[TIMEOUT\]"), 0)
        self.assertEqual(a.count(r"^Conectado ao servidor!$"), 1)

    def test_compressed_client_talks_with_plain_one(self):
        srv, port = self.server()
        (z,) = self.clients(port, "zip", extra=("--compress",))
        (p,) = self.clients(port, "plain")
        z.say("comprimido " * 20)
        p.expect(r'^zip : "(comprimido ){20}"$')
        z.expect(r'^zip : "ACK"$')
        p.say("texto puro")
        z.expect(r'^plain : "texto puro"$')
        z.say("/who")
        z.expect(r"^\* 2 usuário\(s\) conectado\(s\)$")

    def test_max_retries_gives_up(self):
        srv, port = self.server()
        srv.stop()
        self.assertGivesUp([UDP_CLIENT, "--port", str(port), "--id", "x", "--max-retries", "2"])


class MixedLoadTest(unittest.TestCase):
    def test_three_tcp_and_three_udp_clients_talk_at_once(self):
        _, tport = start_server("tcp", test=self)
        _, uport = start_server("udp", test=self)
        tcs = [Client(self, "tcp", tport, f"t{i}") for i in range(3)]
        ucs = [Client(self, "udp", uport, f"u{i}") for i in range(3)]
        for c in tcs + ucs:
            c.connected()
        for k in range(10):
            for c in tcs + ucs:
                c.say(f"{c.id} diz {k}")
        for group in (tcs, ucs):
            for c in group:
                for o in group:
                    if o is not c:
                        c.expect(rf'^{o.id} : "{o.id} diz 9"$', timeout=10)
                wait_until(lambda: c.count(rf'^{c.id} : "ACK"$') == 10, 10, f"{c.id} ACKs")
        for c in tcs + ucs:
            c.close_stdin()
        for c in tcs + ucs:
            self.assertEqual(c.wait_exit(10), 0)


class CommandLineTest(unittest.TestCase):
    def run_client(self, kind, *args, stdin=subprocess.DEVNULL):
        return subprocess.run([client_bin(kind), *args], stdin=stdin, capture_output=True,
                              timeout=10)

    def test_help_and_version(self):
        for kind in ("tcp", "udp"):
            p = self.run_client(kind, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn(b"Usage:", p.stdout)
            self.assertIn(b"--max-retries", p.stdout)
            self.assertIn(b"--connect-timeout", p.stdout)
            self.assertEqual(b"--ping-interval" in p.stdout, kind == "udp")
            p = self.run_client(kind, "--version")
            self.assertEqual(p.returncode, 0)
            self.assertRegex(p.stdout.decode(), rf"^{kind}_client \S+\n$")

    def test_bad_options_exit_2(self):
        for kind in ("tcp", "udp"):
            for args in (["--bogus"], ["--port", "0"], ["--port", "x"], ["--id", "bad id!"],
                         ["--port"], ["--max-retries", "-1"], ["extra"],
                         ["--connect-timeout", "0"], ["--connect-timeout", "x"]):
                p = self.run_client(kind, "--id", "ok", *args)
                self.assertEqual(p.returncode, 2, (kind, args, p.stderr))
                self.assertIn(b"--help", p.stderr)
        p = self.run_client("tcp", "--ping-interval", "1", "--id", "x")
        self.assertEqual(p.returncode, 2)
        p = self.run_client("udp", "--connect-timeout", "1", "--id", "x")  # UDP never connects
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--connect-timeout needs --hybrid", p.stderr)
        for kind in ("tcp", "udp"):  # a good value is taken (then --help exits 0)
            self.assertEqual(self.run_client(kind, "--connect-timeout", "0.5", "--help")
                             .returncode, 0)

    def test_missing_id_without_terminal(self):
        for kind in ("tcp", "udp"):
            p = self.run_client(kind, "--port", "1")
            self.assertEqual(p.returncode, 2)
            self.assertIn(b"--id is required when stdin is not a terminal", p.stderr)


class ReadlineTest(unittest.TestCase):
    """A real pseudo-terminal: the partial input survives an incoming message."""

    def read_until(self, fd, needle, timeout=TIMEOUT, start=0):
        """Reads the terminal until needle appears at or after offset start of self.out."""
        deadline = time.monotonic() + timeout
        while needle not in self.out[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} on the terminal; got {self.out[-400:]!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {needle!r}: {self.out!r}")
                self.out += chunk

    @staticmethod
    def spawn_on_pty(argv, slave):
        """Starts argv with the pty slave as its controlling terminal (so ^C is SIGINT)."""
        env = dict(os.environ, TERM="xterm", INPUTRC="/dev/null")
        return subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                start_new_session=True,
                                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))

    def test_partial_input_is_redrawn(self):
        _, port = start_server("tcp", test=self)
        (bob,) = [Client(self, "tcp", port, "bob")]
        bob.connected()
        master, slave = os.openpty()
        p = self.spawn_on_pty([TCP_CLIENT, "--port", str(port), "--id", "tina"], slave)
        os.close(slave)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), os.close(master)))
        self.out = b""
        self.read_until(master, b"Conectado ao servidor!")
        self.read_until(master, b"> ")
        os.write(master, b"meio digit")
        self.read_until(master, b"meio digit")
        mark = len(self.out)
        bob.say("chegou agora")
        self.read_until(master, b'bob : "chegou agora"', start=mark)
        shown = self.out.index(b'bob : "chegou agora"', mark)
        # the prompt and the partial line, redrawn below the message
        self.read_until(master, b"> meio digit", start=shown)
        os.write(master, b"ado\r")
        bob.expect(r'^tina : "meio digitado"$')
        self.read_until(master, b'tina : "ACK"')
        os.write(master, b"/quit\r")
        self.assertEqual(p.wait(10), 0)

    def test_id_prompt_and_ctrl_c_restore_the_terminal(self):
        _, port = start_server("tcp", test=self)
        master, slave = os.openpty()
        before = termios.tcgetattr(slave)
        p = self.spawn_on_pty([TCP_CLIENT, "--port", str(port)], slave)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), os.close(master),
                                 os.close(slave)))
        self.out = b""
        self.read_until(master, b"Id: ")
        os.write(master, b"bad id\r")
        self.read_until(master, b"an id is 1 to 32")
        os.write(master, b"tty1\r")
        self.read_until(master, b"Cliente: tty1")
        self.read_until(master, b"Conectado ao servidor!")
        os.write(master, b"half typed")
        self.read_until(master, b"half typed")
        self.assertNotEqual(termios.tcgetattr(slave)[3], before[3], "readline owns the tty")
        os.write(master, b"\x03")  # Ctrl-C: the terminal sends SIGINT
        self.assertEqual(p.wait(10), 0)
        self.assertEqual(termios.tcgetattr(slave), before)


if __name__ == "__main__":
    unittest.main()
