"""test_impair: bin/udp_impair between real UDP sockets and, where the test is about the chat,
the real bin/udp_server. The relay's own mechanics (swap order, exact drop counts, delay) are
checked against a Python peer that records every datagram it gets, in order.
"""
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

import harness
from harness import HOST, TIMEOUT, Proc, UdpConn, start_server, wait_until

# UDP_IMPAIR=path runs the suite against another build (e.g. an ASan one)
IMPAIR = os.environ.get("UDP_IMPAIR") or os.path.join(harness.BIN, "udp_impair")
LOADGEN = os.path.join(harness.BIN, "loadgen")


def big_buffers(s):
    """Deep socket queues, so that the kernel never drops what the test means to count."""
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
            return
        except OSError:
            continue


class Relay:
    """A running bin/udp_impair; finish() stops it and returns (report dict, log lines)."""

    def __init__(self, test, server_port, *args):
        self.dir = tempfile.mkdtemp(prefix="impair-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.log_path = os.path.join(self.dir, "actions.log")
        self.report_path = os.path.join(self.dir, "report.json")
        self.proc = Proc([IMPAIR, "--server-port", str(server_port), "--log", self.log_path,
                          "--report", self.report_path, *args])
        test.addCleanup(self.proc.stop)
        m = self.proc.wait_line(r"^udp_impair listening on 127\.0\.0\.1:(\d+) -> ")
        self.port = int(m.group(1))

    def finish(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig)
        if rc != 0:
            raise AssertionError(f"udp_impair exited {rc}:\n" + "\n".join(self.proc.lines))
        with open(self.report_path) as f:
            report = json.load(f)
        with open(self.log_path) as f:
            log = [line.split() for line in f]
        return report, log


class Peer:
    """A UDP 'server' that records every datagram (bytes, source, arrival time) and can answer
    each MSG with an ACK, as udp_server would."""

    def __init__(self, test, ack=False):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        big_buffers(self.s)
        self.s.bind((HOST, 0))
        self.port = self.s.getsockname()[1]
        self.ack = ack
        self.got = []  # (data, addr, t_monotonic)
        self.n = {}
        self.cv = threading.Condition()
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        test.addCleanup(self.close)

    def _run(self):
        self.s.settimeout(0.1)
        while not self.stop:
            try:
                data, addr = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.cv:
                self.got.append((data, addr, now))
                self.cv.notify_all()
            if self.ack and data.startswith(b"MSG "):
                self.n[addr] = self.n.get(addr, 0) + 1
                seq = data.split(b" ")[1]
                self.s.sendto(b"ACK %s %d" % (seq, self.n[addr]), addr)
            elif data.startswith(b"PING"):
                self.s.sendto(b"PONG" + data[4:], addr)

    def wait_for(self, data, timeout=TIMEOUT):
        """Waits until a datagram equal to data has arrived."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not any(d == data for d, _, _ in self.got):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"peer never got {data!r}; got {len(self.got)}")
                self.cv.wait(left)

    def wait_msgs(self, n, timeout=TIMEOUT):
        """Waits until n MSG datagrams have arrived (the relay may flush delayed ones at its
        exit, after the frame the test waited for); returns their seqs in arrival order."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while sum(1 for d, _, _ in self.got if d.startswith(b"MSG ")) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break  # the caller's assertion says what is missing
                self.cv.wait(left)
        return self.msgs()

    def msgs(self):
        """Seqs of the MSG datagrams received, in arrival order."""
        with self.cv:
            return [int(d.split(b" ")[1]) for d, _, _ in self.got if d.startswith(b"MSG ")]

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()


def client(port):
    c = UdpConn(port)
    big_buffers(c.s)
    return c


def drain(conn, barrier_re, timeout=TIMEOUT):
    """Reads datagrams until one matches barrier_re; returns the ones before it (decoded)."""
    seen = []
    rx = re.compile(barrier_re)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {barrier_re!r}; saw {seen[-20:]}")
        d = conn.recv(left)
        if d is None:
            continue
        line = d.decode("utf-8", "replace").rstrip("\n")
        if rx.search(line):
            return seen
        seen.append(line)


def expected_order(log, direction, verb):
    """The emission order of seqs that the relay's action log implies: a held datagram goes
    out when its 'reordered' or 'held-flushed' line is written, after the datagram that
    released it; a duplicated one goes out twice."""
    out = []
    for _, d, v, action, seq, _client in log:
        if d != direction or v != verb:
            continue
        if action in ("forwarded", "reordered", "held-flushed", "passed"):
            out.append(int(seq))
        elif action == "duplicated":
            out += [int(seq), int(seq)]
    return out


def late_arrivals(seqs):
    """iperf3's count: arrivals below the highest seq seen so far that are not repeats."""
    hi, seen, n = -1, set(), 0
    for s in seqs:
        if s in seen:
            continue
        if s < hi:
            n += 1
        seen.add(s)
        hi = max(hi, s)
    return n


def check_sums(testcase, report):
    """Every verb's counters add up, and the kernel dropped nothing at the relay's sockets."""
    testcase.assertEqual(report["kernel_drops"], {"up": 0, "down": 0})
    for d in ("up", "down"):
        for verb, c in list(report[d]["verbs"].items()) + [("total", report[d]["total"])]:
            testcase.assertEqual(c["received"], c["forwarded"] + c["dropped"], (d, verb, c))
            testcase.assertEqual(c["held"], c["reordered"] + c["held_flushed"], (d, verb, c))
            testcase.assertLessEqual(c["duplicated"], c["forwarded"], (d, verb, c))


class ImpairOptions(unittest.TestCase):
    def run_impair(self, *args):
        return subprocess.run([IMPAIR, *args], capture_output=True, text=True, timeout=10)

    def test_bad_options_exit_2(self):
        for args in (["--drop-up", "1.5"], ["--drop-up", "abc"], ["--dup-down", "101%"],
                     ["--reorder-up", "-0.1"], ["--match", "FOO"], ["--match", ""],
                     ["--match", "MSG,"], ["--listen-port", "70000"], ["--seed", "-1"],
                     ["--delay-up", "x"], ["--jitter", "-5"], ["--reorder-scope", "room"],
                     ["--idle", "0"], ["--bogus"], ["stray"], ["--drop-up"]):
            with self.subTest(args=args):
                r = self.run_impair(*args)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("udp_impair:", r.stderr)
                if args[0].startswith("--"):  # the message names the option, not its value
                    self.assertIn(args[0], r.stderr)
                self.assertEqual(r.stdout, "")

    def test_help_and_version(self):
        r = self.run_impair("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--drop-up", "--dup-down", "--reorder-hold", "--delay-up", "--jitter",
                    "--seed", "--match", "--idle", "--duration", "--log", "--report"):
            self.assertIn(opt, r.stdout)
        r = self.run_impair("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^udp_impair \d+\.\d+")

    def test_percent_and_fraction_are_the_same(self):
        peer = Peer(self)
        reports = []
        for p in ("0.3", "30%"):
            relay = Relay(self, peer.port, "--drop-up", p, "--seed", "7")
            c = client(relay.port)
            for i in range(200):
                c.send(f"MSG {i} x")
            c.send("PING end")
            peer.wait_for(b"PING end")
            reports.append(relay.finish()[0]["up"]["verbs"]["MSG"])
            c.close()
            with peer.cv:
                peer.got.clear()
        self.assertEqual(reports[0], reports[1])
        self.assertGreater(reports[0]["dropped"], 0)

    def test_duration_ends_the_run_with_a_report(self):
        r = subprocess.run([IMPAIR, "--duration", "1", "--server-port", "9"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^udp_impair listening on ")
        self.assertRegex(r.stdout, r"(?m)^udp_impair report: ")
        self.assertRegex(r.stdout, r"(?m)^up +total +0 ")


class ImpairWithServer(unittest.TestCase):
    """The relay in front of the real bin/udp_server."""

    def setUp(self):
        self.server, self.sport = start_server("udp", test=self)

    def test_drop_up_all_msgs_but_hello_passes(self):
        relay = Relay(self, self.sport, "--drop-up", "1.0")
        c = client(relay.port)
        self.addCleanup(c.close)
        c.hello("alice")  # HELLO and WELCOME are not impaired
        for i in range(5):
            c.send(f"MSG {i} never arrives")
        c.send("PING barrier")
        before = drain(c, r"^PONG barrier$")
        self.assertFalse([l for l in before if l.startswith("ACK")], before)
        report, log = relay.finish()
        up = report["up"]["verbs"]
        self.assertEqual(up["MSG"]["received"], 5)
        self.assertEqual(up["MSG"]["dropped"], 5)
        self.assertEqual(up["HELLO"], dict(up["HELLO"], received=1, forwarded=1, dropped=0))
        self.assertEqual(report["down"]["verbs"]["WELCOME"]["forwarded"], 1)
        self.assertEqual([(a[3], a[4]) for a in log if a[2] == "MSG"],
                         [("dropped", str(i)) for i in range(5)])
        check_sums(self, report)

    def test_dup_down_every_ack_arrives_twice(self):
        relay = Relay(self, self.sport, "--dup-down", "1.0")
        c = client(relay.port)
        self.addCleanup(c.close)
        c.hello("bob")
        for i in range(10):
            c.send(f"MSG {i} twice")
        c.send("PING barrier")
        got = drain(c, r"^PONG barrier$")
        acks = [l for l in got if l.startswith("ACK ")]
        for i in range(10):
            self.assertEqual(sum(1 for a in acks if a.split()[1] == str(i)), 2, acks)
        self.assertEqual(len(acks), 20)
        report, _ = relay.finish()
        self.assertEqual(report["down"]["verbs"]["ACK"]["duplicated"], 10)
        self.assertEqual(report["down"]["verbs"]["PONG"]["duplicated"], 0)
        check_sums(self, report)

    def test_from_to_other_members_is_impaired_too(self):
        relay = Relay(self, self.sport, "--drop-down", "1.0", "--match", "FROM")
        a, b = client(relay.port), client(relay.port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.hello("ann")
        b.hello("ben")
        a.send("MSG 1 hi ben")
        a.expect(r"^ACK 1 1$")  # ACK is not in --match: it passes
        b.send("PING barrier")
        got = drain(b, r"^PONG barrier$")
        self.assertFalse([l for l in got if l.startswith("FROM")], got)
        report, _ = relay.finish()
        self.assertEqual(report["down"]["verbs"]["FROM"]["dropped"], 1)
        self.assertEqual(report["mappings"]["created"], 2)
        check_sums(self, report)


class ImpairMechanics(unittest.TestCase):
    """The relay against a recording Python peer."""

    def test_reorder_up_arrival_order_is_the_logged_swaps(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--reorder-up", "0.25", "--seed", "42",
                      "--reorder-hold", "10000")
        c = client(relay.port)
        n = 300
        for i in range(n):
            c.send(f"MSG {i} r")
        c.send("PING end")
        peer.wait_for(b"PING end")
        report, log = relay.finish()
        got = peer.msgs()
        self.assertEqual(got, expected_order(log, "up", "MSG"))
        self.assertEqual(sorted(got), list(range(n)))
        msg = report["up"]["verbs"]["MSG"]
        self.assertGreater(msg["reordered"], 0)
        self.assertEqual(late_arrivals(got), msg["reordered"])
        self.assertEqual(msg["reordered"], sum(1 for a in log if a[3] == "reordered"))
        # each swap is a held seq arriving right after its successor
        for a in log:
            if a[3] == "reordered":
                k = got.index(int(a[4]))
                self.assertGreater(got[k - 1], int(a[4]))
        check_sums(self, report)

    def test_same_seed_same_decisions(self):
        peer = Peer(self)
        runs = []
        for seed in ("5", "5", "6"):
            relay = Relay(self, peer.port, "--drop-up", "0.2", "--dup-up", "0.2",
                          "--reorder-up", "0.2", "--seed", seed, "--reorder-hold", "10000")
            c = client(relay.port)
            for i in range(200):
                c.send(f"MSG {i} s")
            c.send("PING end")
            peer.wait_for(b"PING end")
            with peer.cv:
                peer.got.clear()
            runs.append([(a[3], a[4]) for a in relay.finish()[1] if a[2] == "MSG"])
            c.close()
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0], runs[2])

    def test_held_datagram_is_flushed_when_no_next_comes(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--reorder-up", "1.0", "--reorder-hold", "20")
        c = client(relay.port)
        c.send("MSG 0 alone")
        peer.wait_for(b"MSG 0 alone")
        report, log = relay.finish()
        msg = report["up"]["verbs"]["MSG"]
        self.assertEqual((msg["held"], msg["held_flushed"], msg["reordered"]), (1, 1, 0))
        self.assertEqual([a[3] for a in log], ["held", "held-flushed"])

    def test_drop_30_percent_of_2000_exactly_as_reported(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--drop-up", "30%", "--seed", "3")
        c = client(relay.port)
        n = 2000
        for i in range(n):
            c.send(f"MSG {i} d")
            if i % 100 == 99:  # let the relay keep up; buffers are deep, this is belt and braces
                time.sleep(0.005)
        c.send("PING end")
        peer.wait_for(b"PING end")
        report, log = relay.finish()
        got = peer.msgs()
        msg = report["up"]["verbs"]["MSG"]
        self.assertEqual(msg["received"], n)
        self.assertEqual(n - len(got), msg["dropped"])
        self.assertEqual(sorted(set(range(n)) - set(got)),
                         sorted(int(a[4]) for a in log if a[3] == "dropped"))
        self.assertTrue(400 < msg["dropped"] < 800, msg)  # 30% of 2000 give or take 8 sigma
        check_sums(self, report)

    def test_delay_is_a_lower_bound(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--delay-up", "80")
        c = client(relay.port)
        sent = {}
        for i in range(10):
            sent[i] = time.monotonic()
            c.send(f"MSG {i} slow")
            time.sleep(0.01)
        c.send("PING end")
        peer.wait_for(b"PING end")
        time.sleep(0.2)
        with peer.cv:
            arrivals = {int(d.split()[1]): t for d, _, t in peer.got if d.startswith(b"MSG ")}
        self.assertEqual(sorted(arrivals), list(range(10)))
        for i, t in arrivals.items():
            self.assertGreaterEqual(t - sent[i], 0.080, i)
        report, _ = relay.finish()
        self.assertEqual(report["up"]["verbs"]["MSG"]["delayed"], 10)
        self.assertEqual(report["up"]["verbs"]["PING"]["delayed"], 0)
        self.assertEqual(peer.msgs(), list(range(10)))  # constant delay keeps the order

    def test_jitter_reorders_are_counted_separately(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--delay-up", "5", "--jitter-up", "30", "--seed", "9")
        c = client(relay.port)
        for i in range(200):
            c.send(f"MSG {i} j")
            time.sleep(0.001)
        c.send("PING end")
        peer.wait_for(b"PING end")  # not delayed: MSGs jittered up to 35 ms may follow it
        report, _ = relay.finish()
        got = peer.wait_msgs(200)
        msg = report["up"]["verbs"]["MSG"]
        self.assertEqual(sorted(got), list(range(200)))
        self.assertEqual(late_arrivals(got), msg["jitter_reordered"])
        self.assertGreater(msg["jitter_reordered"], 0)
        self.assertEqual(msg["reordered"], 0)

    def test_counts_add_up_both_ways(self):
        peer = Peer(self, ack=True)
        relay = Relay(self, peer.port, "--drop-up", "0.1", "--dup-up", "0.1",
                      "--reorder-up", "0.1", "--drop-down", "0.1", "--dup-down", "0.1",
                      "--reorder-down", "0.1", "--seed", "11", "--reorder-hold", "10000")
        c = client(relay.port)
        for i in range(500):
            c.send(f"MSG {i} both")
        c.send("PING end")
        got = drain(c, r"^PONG end$")
        report, log = relay.finish()
        check_sums(self, report)
        up, down = report["up"]["verbs"]["MSG"], report["down"]["verbs"]["ACK"]
        self.assertEqual(len(peer.msgs()), up["forwarded"] + up["duplicated"])
        # a held ACK with no successor is sent at exit, after PONG: collect it too
        while True:
            d = c.recv(0.5)
            if d is None:
                break
            got.append(d.decode())
        acks = [int(l.split()[1]) for l in got if l.startswith("ACK ")]
        self.assertEqual(len(peer.msgs()), down["received"])
        self.assertEqual(acks, expected_order(log, "down", "ACK"))
        self.assertEqual(len(acks), down["forwarded"] + down["duplicated"])
        self.assertGreater(min(up["dropped"], up["duplicated"], up["reordered"]), 0)
        self.assertGreater(min(down["dropped"], down["duplicated"], down["reordered"]), 0)
        check_sums(self, report)

    def test_compressed_datagrams_are_classified_by_the_frame_inside(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--drop-up", "1.0")
        c = client(relay.port)
        c.send(b"\xff" + zlib.compress(b"MSG 5 inside"))  # zframe accepts no-dictionary streams
        c.send(b"\xff" + zlib.compress(b"PING zipped"))
        c.send(b"\xff\x78\x9c not a zlib stream")  # cannot inflate: counts as chat (MSG)
        c.send("PING end")
        peer.wait_for(b"PING end")
        report, log = relay.finish()
        up = report["up"]["verbs"]
        self.assertEqual(up["MSG"], dict(up["MSG"], received=1, dropped=1, compressed=1))
        self.assertEqual(up["PING"], dict(up["PING"], received=2, forwarded=2, compressed=1))
        self.assertEqual(up["ZLIB"], dict(up["ZLIB"], received=1, dropped=1, compressed=0))
        self.assertEqual([a[2:5] for a in log if a[3] == "dropped"],
                         [["MSG", "dropped", "5"], ["ZLIB", "dropped", "-"]])
        self.assertEqual(len(peer.got), 2)  # the two PINGs

    def test_match_list_selects_verbs(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--drop-up", "1.0", "--match", "PING")
        c = client(relay.port)
        c.send("MSG 1 passes")
        c.send("PING dropped")
        c.send("WHO")
        peer.wait_for(b"WHO")
        self.assertEqual(peer.msgs(), [1])
        self.assertFalse([d for d, _, _ in peer.got if d.startswith(b"PING")])
        report, _ = relay.finish(signal.SIGINT)
        self.assertEqual(report["up"]["verbs"]["PING"]["dropped"], 1)

    def test_one_upstream_address_per_client_and_idle_expiry(self):
        peer = Peer(self)
        relay = Relay(self, peer.port, "--idle", "1")
        clients = [client(relay.port) for _ in range(50)]
        for i, c in enumerate(clients):
            c.send(f"PING c{i}")
        for i in range(50):
            peer.wait_for(f"PING c{i}".encode())
        with peer.cv:
            first = {d: a for d, a, _ in peer.got}
        self.assertEqual(len(set(first.values())), 50)
        for i, c in enumerate(clients):  # replies route back to the right client
            self.assertEqual(c.recv(), f"PONG c{i}".encode())
        # after --idle the mapping is forgotten: the next datagram gets a new upstream port
        old = first[b"PING c0"]
        for k in range(10):  # silence for longer than --idle, then look at the source port
            time.sleep(1.5)
            token = f"PING again{k}".encode()
            clients[0].send(token)
            peer.wait_for(token)
            with peer.cv:
                if [a for d, a, _ in peer.got if d == token][0] != old:
                    break
        else:
            self.fail("the mapping never expired")
        report, _ = relay.finish()
        # the others expire too, each after its own silence (a loaded machine spreads them)
        self.assertGreaterEqual(report["mappings"]["expired"], 1)
        self.assertGreaterEqual(report["mappings"]["created"], 51)
        self.assertGreaterEqual(report["mappings"]["peak"], 50)
        for c in clients:
            c.close()


# --- loadgen through the relay: the exact agreement ---------------------------------

def predict_loadgen(log):
    """What loadgen's summary must say, computed from the relay's action log alone.

    Per client (the log's last field): the server receives the MSGs in the relay's up
    emission order and answers each with ACK <seq> <n>, n counting arrivals (duplicates
    included); the relay's down decisions, in order, are for those ACKs, so the i-th carries
    n = i. loadgen's ACK arrivals are the down emission order, judged like seqstats: a
    repeat is a duplicate, a first arrival below the highest seq seen is reordered.
    The loss split follows loadgen/report.c: lost = sent - distinct ACKed; per client, with
    hi the highest ACKed seq and hi_n the n of its first ACK, tail = sent - (hi + 1) is
    lost_unknown, (hi + 1) - hi_n is uplink loss (capped), and downlink is the rest."""
    per = {}
    for _, d, verb, action, seq, who in log:
        c = per.setdefault(who, {"sent": 0, "arrivals": [], "n": 0, "held_n": None})
        if d == "up" and verb == "MSG" and action in ("forwarded", "dropped", "duplicated",
                                                      "held"):
            c["sent"] += 1
        if d != "down" or verb != "ACK":
            continue
        if action in ("forwarded", "dropped", "duplicated", "held"):
            c["n"] += 1  # a decision: the next ACK the server sent, whose n is this count
        if action == "forwarded":
            c["arrivals"].append((int(seq), c["n"]))
        elif action == "duplicated":
            c["arrivals"] += [(int(seq), c["n"])] * 2
        elif action == "held":
            c["held_n"] = c["n"]
        elif action in ("reordered", "held-flushed"):
            c["arrivals"].append((int(seq), c["held_n"]))
    out = dict(sent=0, lost=0, duplicates=0, reordered=0)
    uplink = tail = 0
    for c in per.values():
        seen, hi, hi_n = set(), -1, 0
        for s, n in c["arrivals"]:
            if s in seen:
                out["duplicates"] += 1
                continue
            if s < hi:
                out["reordered"] += 1
            else:
                hi, hi_n = s, n
            seen.add(s)
        out["sent"] += c["sent"]
        out["lost"] += c["sent"] - len(seen)
        upto = min(hi + 1, c["sent"])
        uplink += max(upto - hi_n, 0)
        tail += c["sent"] - upto
    out["lost_unknown"] = min(tail, out["lost"])
    out["lost_uplink"] = min(uplink, out["lost"] - out["lost_unknown"])
    out["lost_downlink"] = out["lost"] - out["lost_uplink"] - out["lost_unknown"]
    return out


@unittest.skipUnless(os.access(LOADGEN, os.X_OK), "bin/loadgen not built")
class ImpairLoadgen(unittest.TestCase):
    """loadgen --proto udp -> udp_impair -> udp_server: loadgen's loss, duplicate and reorder
    counts against the relay's report."""

    COLS = ("sent", "lost", "lost_uplink", "lost_downlink", "lost_unknown", "duplicates",
            "reordered")

    def run_loadgen(self, relay_args, lg_args=()):
        _, sport = start_server("udp", "-q", test=self)
        relay = Relay(self, sport, *relay_args)
        out = os.path.join(relay.dir, "lg")
        r = subprocess.run([LOADGEN, "--proto", "udp", "--port", str(relay.port), "--clients",
                            "4", "--rate", "40", "--duration", "2", "--warmup", "0",
                            "--timeout", "3000", "--out", out, "--quiet", *lg_args],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(out, "summary.csv")) as f:
            row = list(csv.DictReader(f))[-1]
        report, log = relay.finish()
        check_sums(self, report)
        self.assertEqual(int(row["errors"]), 0, row)
        self.assertEqual(int(row["late"]), 0, row)
        got = {k: int(row[k]) for k in self.COLS}
        up, down = report["up"]["verbs"]["MSG"], report["down"]["verbs"]["ACK"]
        self.assertEqual(got["sent"], up["received"])
        self.assertEqual(got, predict_loadgen(log))
        return got, up, down

    def test_drop(self):
        got, up, down = self.run_loadgen(["--drop-up", "0.1", "--drop-down", "0.1", "--seed",
                                          "21"])
        self.assertGreater(up["dropped"] * down["dropped"], 0)
        self.assertEqual(got["lost"], up["dropped"] + down["dropped"])
        self.assertEqual((got["duplicates"], got["reordered"]), (0, 0))

    def test_duplicate(self):
        got, up, down = self.run_loadgen(["--dup-up", "0.1", "--dup-down", "0.1", "--seed", "22"])
        self.assertGreater(up["duplicated"] * down["duplicated"], 0)
        self.assertEqual(got["duplicates"], up["duplicated"] + down["duplicated"])
        self.assertEqual((got["lost"], got["reordered"]), (0, 0))

    def test_reorder_up(self):
        got, up, _ = self.run_loadgen(["--reorder-up", "0.1", "--seed", "23"])
        self.assertGreater(up["reordered"], 0)
        self.assertEqual(got["reordered"], up["reordered"])
        self.assertEqual((got["lost"], got["duplicates"]), (0, 0))

    def test_reorder_down(self):
        got, _, down = self.run_loadgen(["--reorder-down", "0.1", "--seed", "24"])
        self.assertGreater(down["reordered"], 0)
        self.assertEqual(got["reordered"], down["reordered"])
        self.assertEqual((got["lost"], got["duplicates"]), (0, 0))

    def test_combined(self):
        args = []
        for d in ("up", "down"):
            args += [f"--drop-{d}", "0.05", f"--dup-{d}", "0.05", f"--reorder-{d}", "0.05"]
        got, up, down = self.run_loadgen(args + ["--seed", "25"])
        self.assertGreater(got["lost"] * got["duplicates"] * got["reordered"], 0)

    def test_combined_compressed_in_rooms(self):
        args = []
        for d in ("up", "down"):
            args += [f"--drop-{d}", "0.05", f"--dup-{d}", "0.05", f"--reorder-{d}", "0.05"]
        _, up, _ = self.run_loadgen(args + ["--seed", "26"], ["--compress", "--room-size", "2"])
        self.assertEqual(up["compressed"], up["received"])


if __name__ == "__main__":
    unittest.main()
