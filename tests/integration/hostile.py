"""hostile: what the hostile suites share (test_hostile_tcp.py, test_hostile_udp.py).

Real sockets, real binaries. Every hostile case ends the same way: two bystanders,
registered before the attack, still chat (a MSG reaches the other and is ACKed), and the
server's threads and file descriptors are back to what they were before the attack
(harness.proc_stats). Cases that could grow memory also bound the growth of its RSS.
test_tcp_server.py and test_udp_server.py test the protocol; the hostile suites go further:
floods, races, resets, resource exhaustion, churn.

CHATBENCH_CHURN sets the connect/disconnect cycles (default 10,000; sanitizer and valgrind
runs use fewer). Figures (cycles, cases) are printed as "robustness: ..." lines for
analysis/robustness.sh.
"""
import os
import socket
import struct
import sys
import threading
import time

from harness import TIMEOUT, TcpConn, proc_stats

CHURN = int(os.environ.get("CHATBENCH_CHURN", "10000"))
# under ThreadSanitizer or valgrind everything is slower: give waits more time
SLOW = 4.0 if os.environ.get("CHATBENCH_SLOW") else 1.0
# a sanitizer build (make test-asan/test-tsan); they hold freed memory in quarantine: RSS
# says nothing about leaks there, LeakSanitizer does
SAN = bool(os.environ.get("CHATBENCH_SAN"))
CHECK_RSS = not SAN
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


class HostileCase:
    """Mixin of both suites' test classes: their server's figures and their clients."""

    def stats(self):
        return proc_stats(self.proc.p.pid)

    def assert_left_idle(self, cid, witness, heard, idle_s):
        """cid was dropped as idle: the room heard why (in heard, or next from witness, a
        member of room hold) and the log said it, in the seed's style."""
        if f"LEFT {cid} hold idle" not in heard:
            witness.expect(rf"^LEFT {cid} hold idle$")
        self.proc.wait_line(rf"^\[TIMEOUT\] Cliente {cid} removido por ociosidade "
                            rf"\({idle_s} s sem atividade\)$")

    def joined(self, c, cid):
        """c, closed when the test ends, and registered as cid unless cid is None."""
        self.addCleanup(c.close)
        if cid is not None:
            c.hello(cid)
        return c


def in_workers(test, cycles, total, workers=8):
    """Runs cycles(k, count, errors) in workers threads at once, total // workers cycles each;
    fails test if any appended to errors; returns how many cycles ran."""
    errors, ts = [], []
    for k in range(workers):
        t = threading.Thread(target=cycles, args=(k, total // workers, errors), daemon=True)
        t.start()
        ts.append(t)
    for t in ts:
        t.join()
    test.assertEqual(errors, [])
    return total // workers * workers
