"""test_client_stop: Ctrl-C (SIGINT) ends a client whatever the network does (issue 15).

Two places where a client used to hang on SIGINT: (a) blocked writing to a server that
stopped reading (the server is SIGSTOPped once the client is registered, and the client's
stdin is fed until its socket buffers are full), and (b) connecting to an address that
drops packets: inside a private network namespace (unshare -n, created by the test; the
host's network is never touched) an nftables rule drops every packet to 127.0.0.2, so a
SYN is never answered. Both for tcp_client and for udp_client --hybrid's control
connection. Each case waits for the blocked state as an event (/proc/net/tcp: data queued
on the client's socket, or a socket in SYN-SENT), sends SIGINT and waits for exit 0 with a
generous timeout; the time it took is printed as a "robustness: ..." figure, not asserted
(no timing thresholds in make test). --connect-timeout is tested in the same namespace.
"""
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

import harness
from harness import TIMEOUT, Proc, start_server, wait_until
from pylib.netns import can_netns
from test_hybrid import start_hybrid

CLIENT_BIN = os.environ.get("CHATBENCH_CLIENT_BIN", harness.BIN)
SLOW = 4.0 if os.environ.get("CHATBENCH_SLOW") else 1.0
WAIT = 30.0 * SLOW  # for the blocked state and for the exit; the clients take well under 1 s
DROPPED = "127.0.0.2"  # inside the test's namespace, every packet to it is dropped


def report(what, value):
    print(f"robustness: {what}={value}", file=sys.stderr, flush=True)


def client_argv(kind, *args):
    return [os.path.join(CLIENT_BIN, f"{kind}_client"), *args]


def tcp_sockets(pid):
    """The TCP sockets of process pid: dicts with remote port, state and queued bytes."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    socks = []
    with open(f"/proc/{pid}/net/tcp") as f:  # the process's own network namespace
        next(f)
        for line in f:
            x = line.split()
            if x[9] in inodes:
                tx, rx = (int(v, 16) for v in x[4].split(":"))
                socks.append({"rport": int(x[2].split(":")[1], 16), "state": int(x[3], 16),
                              "tx_queue": tx})
    return socks


class SigintTest(unittest.TestCase):
    def stop_and_time(self, proc, what):
        """SIGINT, then the exit: 0, and how long it took (printed, not asserted)."""
        start = time.monotonic()
        proc.p.send_signal(signal.SIGINT)
        try:
            rc = proc.p.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.fail(f"{what}: still running {WAIT:.0f} s after SIGINT; its output: "
                      f"{proc.lines[-10:]}")
        took = time.monotonic() - start
        report(f"client_sigint_{what}_ms", f"{took * 1000:.0f}")
        self.assertEqual(rc, 0, proc.lines[-10:])

    # --- (a) a server that stopped reading ---

    def welcoming_listener(self):
        """A plain TCP listener with a small receive buffer that will answer one HELLO and
        never read again. Returns (listening socket, port)."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(ls.close)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accept()
        ls.bind((harness.HOST, 0))
        ls.listen(1)
        ls.settimeout(WAIT)
        return ls, ls.getsockname()[1]

    def welcome_then_never_read(self, ls):
        conn, _ = ls.accept()
        self.addCleanup(conn.close)
        conn.settimeout(WAIT)
        hello = b""
        while not hello.endswith(b"\n"):
            hello += conn.recv(1)
        self.assertEqual(hello, b"HELLO teimoso\n")
        conn.sendall(b"WELCOME teimoso 127.0.0.1:1\n")

    def blocked_writing(self, kind, line, server="real"):
        """A registered client whose peer stopped reading (a SIGSTOPped server, or a plain
        listener that never reads), its stdin fed with line until the client's TCP socket
        (tcp_client's, or --hybrid's control connection) is full."""
        if server == "listener":
            ls, cport = self.welcoming_listener()
            args = ("--port", str(cport))
        elif kind == "tcp":
            srv, cport = start_server("tcp", test=self)
            args = ("--port", str(cport))
        else:
            srv, _, cport = start_hybrid(self)
            args = ("--hybrid", "--control-port", str(cport))
        proc = Proc(client_argv(kind, "--id", "teimoso", *args), stdin=subprocess.PIPE)
        self.addCleanup(proc.stop)
        if server == "listener":
            self.welcome_then_never_read(ls)
        proc.wait_line(r"^Conectado ao servidor!$", timeout=WAIT)
        if server != "listener":
            srv.p.send_signal(signal.SIGSTOP)
            self.addCleanup(lambda: srv.alive() and srv.p.send_signal(signal.SIGCONT))
        stdin = proc.p.stdin.fileno()
        fcntl.fcntl(stdin, fcntl.F_SETFL, fcntl.fcntl(stdin, fcntl.F_GETFL) | os.O_NONBLOCK)
        chunk = (line + "\n").encode() * max(1, 65536 // (len(line) + 1))
        pending = [chunk]  # what is left of the chunk being written: lines stay whole
        seen = []

        def blocked():
            """stdin full (the client stopped reading it) and the bytes queued on its socket
            the same at five looks in a row: the stopped server's window is closed and the
            client sends nothing more, so it sits in its write."""
            try:
                while True:
                    pending[0] = pending[0][os.write(stdin, pending[0]):] or chunk
            except BlockingIOError:
                pass
            seen.append(sum(s["tx_queue"] for s in tcp_sockets(proc.p.pid)
                            if s["rport"] == cport))
            return len(seen) >= 5 and seen[-1] > 0 and len(set(seen[-5:])) == 1

        wait_until(blocked, WAIT, "the client blocked writing to the stopped server")
        return proc

    def test_tcp_client_blocked_writing_to_a_stopped_server(self):
        proc = self.blocked_writing("tcp", "x" * 4000)
        self.stop_and_time(proc, "tcp_blocked_write")

    def test_tcp_client_blocked_writing_to_a_listener_that_never_reads(self):
        # a 4 KiB receive buffer never opens its window again: the client cannot finish its
        # line, nor send a BYE, whatever the kernel does with the stopped server's buffers
        proc = self.blocked_writing("tcp", "x" * 4000, server="listener")
        self.stop_and_time(proc, "tcp_blocked_write_listener")

    def test_hybrid_client_blocked_writing_to_a_stopped_control_connection(self):
        # chat goes over UDP; the control connection carries /join (and /who): 39-byte lines
        proc = self.blocked_writing("udp", "/join " + "s" * 32)
        self.stop_and_time(proc, "hybrid_blocked_write")

    # --- (b) an address that drops packets ---

    def in_dropping_netns(self, kind, *args):
        """Starts the client inside a new network namespace where packets to DROPPED vanish."""
        ok, why = can_netns(nft=True)
        if not ok:
            self.skipTest(why)
        rules = ("add table inet chatbench\n"
                 "add chain inet chatbench input { type filter hook input priority 0; }\n"
                 f"add rule inet chatbench input ip daddr {DROPPED} drop\n")
        script = ('ip link set lo up && printf "%s" "$0" | nft -f - && exec "$@"')
        argv = ["unshare", "-n", "sh", "-c", script, rules,
                *client_argv(kind, "--host", DROPPED, "--id", "paciente", *args)]
        proc = Proc(argv, stdin=subprocess.PIPE)  # stdin stays open: no EOF exit
        self.addCleanup(proc.stop)
        return proc

    def wait_connecting(self, proc, port):
        wait_until(lambda: any(s["rport"] == port and s["state"] == 2  # TCP_SYN_SENT
                               for s in tcp_sockets(proc.p.pid)),
                   WAIT, "the client's SYN to the dropping address")

    def test_tcp_client_connecting_to_an_address_that_drops_packets(self):
        proc = self.in_dropping_netns("tcp", "--port", "5000", "--connect-timeout", "3600")
        self.wait_connecting(proc, 5000)
        self.stop_and_time(proc, "tcp_connecting")

    def test_hybrid_client_connecting_to_an_address_that_drops_packets(self):
        proc = self.in_dropping_netns("udp", "--hybrid", "--control-port", "5002",
                                      "--connect-timeout", "3600")
        self.wait_connecting(proc, 5002)
        self.stop_and_time(proc, "hybrid_connecting")

    def test_connect_timeout_gives_up_and_retries(self):
        for kind, args in (("tcp", ("--port", "5000")),
                           ("udp", ("--hybrid", "--control-port", "5002"))):
            with self.subTest(kind=kind):
                proc = self.in_dropping_netns(kind, *args, "--connect-timeout", "0.3",
                                              "--max-retries", "2")
                # each attempt times out (ETIMEDOUT), is retried after the backoff, then
                # --max-retries gives up: the default of 10 s would take 30 s here
                proc.wait_line(r"^\* servidor indisponível \(Connection timed out\), nova "
                               r"tentativa em \d+\.\d s\.\.\.$", timeout=WAIT)
                self.assertEqual(proc.p.wait(WAIT), 1)
                proc.wait_line(r"cannot reach 127\.0\.0\.2:\d+ \(Connection timed out\); "
                               r"giving up", timeout=TIMEOUT)


if __name__ == "__main__":
    unittest.main()
