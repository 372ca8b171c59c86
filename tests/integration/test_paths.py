"""test_paths: the benchmark's emulated paths (analysis/linkpath.py and the scenarios of
REPORT.md sections 9 to 12). The readers of linkem's per-packet log and of the kernels'
counters, on synthetic input whose answers are worked out by hand; then real points through
bin/linkem, each in a network namespace of its own (the test re-executes this file under
`unshare -n`, as test_linkem does): the server on linkem's outer address, the load generator
inside, and the row's columns checked against what the link and the load generator count.
Needs root and /dev/net/tun for the real points (skipped, with the reason, otherwise).
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":
    # re-executed by harness.in_netns: an entry point, so it sets the import roots
    sys.path[0:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]
import harness  # noqa: E402  (in_netns, netns_main)
from analysis import benchkit, linkpath, points  # noqa: E402
from analysis.scenarios import bottleneck, jitter, rtt, sharing  # noqa: E402
from pylib import netns  # noqa: E402

SCENARIO_TIMEOUT = 120


def why_skip():
    if os.geteuid() != 0:
        return "emulated paths need root (a network namespace and TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if not shutil.which("iperf3"):
        return "iperf3 is not installed (scripts/deps.sh bench installs it)"
    ok, why = netns.can_netns(nft=False)
    return None if ok else why


SKIP = why_skip()


def log_row(t, d, n, ev, data="-", proto="udp", src="10.77.0.2:4000", dst="10.77.0.1:5001"):
    return (t, d, n, proto, 64, src, dst, ev, data)


def frame(text):
    return text.encode().hex()[:32]  # the log keeps the first 16 payload bytes


class LogReaders(unittest.TestCase):
    def test_runs(self):
        self.assertEqual(linkpath.runs([True, True, False, True, False, False, True]),
                         [2, 1, 1])
        self.assertEqual(linkpath.runs([False, False]), [])

    def test_loss_runs_by_arrival_number_per_direction(self):
        rows = []
        for n, lost in enumerate([0, 1, 1, 1, 0, 1, 0, 0, 1, 1]):
            rows.append(log_row(n / 100, "up", n, "in"))
            rows.append(log_row(n / 100, "up", n, "drop-loss" if lost else "out"))
        rows.append(log_row(1.0, "down", 0, "in"))
        rows.append(log_row(1.0, "down", 0, "drop-loss"))
        self.assertEqual(linkpath.loss_runs(rows, "up"), [3, 1, 2])
        self.assertEqual(linkpath.loss_runs(rows, "down"), [1])

    def test_a_link_burst_spread_over_flows(self):
        """A burst of 4 packets of the link, whose packets alternate between two flows, is
        a run of 2 in each flow."""
        rows = []
        fate = [0, 0, 1, 1, 1, 1, 0, 0]
        for n, lost in enumerate(fate):
            src = f"10.77.0.2:{4000 + n % 2}"
            rows.append(log_row(n / 100, "up", n, "in", src=src))
            if lost:
                rows.append(log_row(n / 100, "up", n, "drop-loss", src=src))
        self.assertEqual(linkpath.loss_runs(rows, "up"), [4])
        self.assertEqual(sorted(linkpath.flow_loss_runs(rows, "up")), [2, 2])

    def test_ack_streams_replay_the_load_generators_counts(self):
        """One client: MSGs 0-3 enter the link at 0, 10, 20, 30 ms; their ACKs leave it in
        the order 0, 2, 1, 2 (a copy), 3 at 50, 62, 65, 70, 80 ms. The load generator
        counts ACK 1 as reordered (below 2) and the second ACK 2 as a duplicate; transits
        50, 42, 55, 50 ms in arrival order 0, 2, 1, 3 give |D| = 8, 13, 5 ms and
        J = 8/16, then J + (13 - J)/16, then J + (5 - J)/16 (ms), averaged with the first
        arrival's 0."""
        rows = [log_row(t / 1000, "up", i, "in", frame(f"MSG {i} 123 abc"))
                for i, t in enumerate((0, 10, 20, 30))]
        for k, (t, seq) in enumerate(((50, 0), (62, 2), (65, 1), (70, 2), (80, 3))):
            rows.append(log_row(t / 1000, "down", k, "out", frame(f"ACK {seq} {k + 1}\n"),
                                src="10.77.0.1:5001", dst="10.77.0.2:4000"))
        got = linkpath.ack_streams(rows)
        j1 = 8 / 16
        j2 = j1 + (13 - j1) / 16
        j3 = j2 + (5 - j2) / 16
        self.assertEqual((got["acks"], got["reordered"], got["duplicates"]), (4, 1, 1))
        self.assertEqual(got["late_duplicates"], 0)  # the copy came before ACK 3
        self.assertAlmostEqual(got["jitter_us"], (0 + j1 + j2 + j3) / 4 * 1000, places=2)

    def test_a_copy_after_the_last_first_arrival_is_late(self):
        rows = [log_row(0, "up", 0, "in", frame("MSG 0 1 x"))]
        for k, t in enumerate((40, 45)):
            rows.append(log_row(t / 1000, "down", k, "out", frame("ACK 0 1\n"),
                                src="10.77.0.1:5001", dst="10.77.0.2:4000"))
        got = linkpath.ack_streams(rows)
        self.assertEqual((got["duplicates"], got["late_duplicates"]), (1, 1))

    def test_kernel_counters_from_snmp_and_netstat(self):
        text = ("Tcp: RtoAlgorithm RetransSegs InErrs\nTcp: 1 17 0\n"
                "TcpExt: TCPTimeouts TCPLossProbes TCPFastRetrans\nTcpExt: 3 5 9\n")
        self.assertEqual(linkpath.kernel_counters(text),
                         {"retrans_segs": 17, "timeouts": 3, "loss_probes": 5,
                          "fast_retrans": 9})
        self.assertEqual(linkpath.kernel_counters("Tcp: A\nTcp: 1\n")["timeouts"], "")

    def test_books_balance(self):
        cols = {f"link_{d}_{k}": 0 for d in linkpath.DIRS for k in linkpath.COUNTERS}
        cols.update({"link_up_pkts_in": 10, "link_up_pkts_out": 8, "link_up_lost": 1,
                     "link_up_queue_drops": 1, "link_down_pkts_in": 5,
                     "link_down_duplicated": 1, "link_down_pkts_out": 6})
        self.assertEqual(linkpath.books_balance(cols), "")
        cols["link_down_pkts_out"] = 5
        self.assertEqual(linkpath.books_balance(cols), "down")


class PointsOverAPath(unittest.TestCase):
    def test_through_makes_a_point_over_the_path(self):
        pt = linkpath.through(points.point("t", "t-udp", "udp", "t", 2, 1, True, rate=5),
                              ["--delay", "5", "--seed", "3"])
        self.assertEqual(pt.loadgen_wrap, ["linkem", "--quiet", "--delay", "5", "--seed", "3",
                                           "--"])
        self.assertEqual((pt.host, pt.server_host), (linkpath.OUTER, linkpath.OUTER))
        self.assertEqual(linkpath.link_args(pt), ["--delay", "5", "--seed", "3"])
        self.assertEqual(pt.cols["link"], "--delay 5 --seed 3")
        self.assertTrue(pt.needs_netns)

    def test_every_scenario_point_runs_over_a_path(self):
        for mod in (rtt, bottleneck, sharing, jitter):
            for quick in (True, False):
                for pt in mod.points(quick):
                    self.assertEqual(pt.loadgen_wrap[0], "linkem", pt.label)
                    self.assertEqual(pt.host, linkpath.OUTER, pt.label)

    def test_setup_round_trips_match_the_code(self):
        """tcp: connect, then HELLO/WELCOME; udp: HELLO/WELCOME; hybrid: connect,
        HELLO/WELCOME, PING/PONG: the round trips REPORT.md section 9 expects."""
        self.assertEqual(rtt.SETUP_RTTS, {"tcp": 2, "udp": 1, "hybrid": 3})

    def test_theory_table_says_when_there_is_no_run(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertTrue(rtt.theory_table(d).startswith("No data:"))

    def test_theory_table_in_round_trips(self):
        """THEORY.md's table from rtt.csv rows: set-up and ACK p50 over the RTT, loss as
        lost / sent; a round trip without a row says n/a."""
        rows = []
        for proto, k in rtt.SETUP_RTTS.items():
            for loss in rtt.LOSSES:
                rows.append({"label": rtt.label(proto, 50, loss), "proto": proto,
                             "rtt_ms": 50, "link_loss_pct": loss, "clients": 20,
                             "rate_per_client": 10, "room_size": 5,
                             "connect_p50_us": k * 51000, "ack_p50_us": 50500,
                             "fanout_p50_us": 50000, "sent": 1000,
                             "lost": 20 if loss and proto != "tcp" else 0,
                             "ack_p99_us": 300000 if proto == "tcp" else 52000,
                             "ack_max_us": 600000})
        with tempfile.TemporaryDirectory() as d:
            benchkit.write_csv(os.path.join(d, "rtt.csv"), rows)
            text = rtt.theory_table(d)
        self.assertIn("| set-up p50 (round trips) | n/a / 2.04 / n/a | n/a / 1.02 / n/a | "
                      "n/a / 3.06 / n/a |", text)
        self.assertIn("| 1 % loss each way: messages lost (%) | n/a / 0.00 / n/a | "
                      "n/a / 2.00 / n/a |", text)
        self.assertIn("| 1 % loss each way: ACK p99 (ms) | n/a / 300.0 / n/a |", text)


@unittest.skipIf(SKIP, SKIP)
class RealPaths(unittest.TestCase):
    def test_a_tcp_point_through_a_lossy_path(self):
        """A TCP point over --delay 5 --loss 5: the server listens on linkem's outer
        address, nothing is lost, linkem dropped packets both ways and its books balance,
        and the kernels resent segments."""
        r = harness.in_netns(self, __file__, "point", {}, SCENARIO_TIMEOUT)
        row = r["row"]
        self.assertTrue(r["bound_outer"], "the server did not listen on linkem's address")
        self.assertEqual(row["host"], linkpath.OUTER)
        self.assertEqual(int(row["connected"]), 4)
        self.assertEqual(int(row["lost"]), 0)
        self.assertGreater(int(row["sent"]), 0)
        self.assertEqual(linkpath.books_balance(row), "")
        self.assertGreater(row["link_up_lost"], 0)
        self.assertGreater(row["link_down_lost"], 0)
        self.assertGreater(row["tcp_up_retrans_segs"] + row["tcp_down_retrans_segs"], 0)
        self.assertIn(row["tcp_cc"], ("bbr", "cubic", "reno"))
        # each direction's arrivals: every ACK the server sent went down, every MSG up
        self.assertGreaterEqual(row["link_up_pkts_in"], int(row["sent"]))

    def test_reordering_and_copies_replayed_from_the_log(self):
        """UDP over --jitter 3 --reorder --dup 2, one load generator thread, no warm-up: its
        reordered count equals the one replayed from linkem's log, and its duplicates are
        the log's less at most the copies delivered after the last message was answered."""
        row = harness.in_netns(self, __file__, "replay", {}, SCENARIO_TIMEOUT)["row"]
        self.assertEqual(int(row["lost"]), 0)
        self.assertGreater(row["log_reordered"], 0)
        self.assertEqual(int(row["reordered"]), row["log_reordered"])
        dups = int(row["duplicates"])
        self.assertGreater(row["log_duplicates"], 0)
        self.assertLessEqual(dups, row["log_duplicates"])
        self.assertGreaterEqual(dups, row["log_duplicates"] - row["log_late_duplicates"])
        self.assertGreater(float(row["jitter_us"]), 0)
        self.assertGreater(row["log_jitter_us"], 0)

    def test_iperf3_beside_the_chat_on_a_bottleneck(self):
        """sharing's hook: iperf3 runs inside beside the load generator through a
        10 Mbit/s link, and its rate lands in the row. Both measure the same window (the
        chat's warm-up is iperf3's omitted second, quick or not), so what they carried adds
        up to the link's rate at most. UDP offering 150 % of the link leaves the TCP flow
        little or nothing (the bench measured 0.15 Mbit/s with CUBIC, runs of this test 0.0
        to 0.34), so the flow's rate is asserted to be there and under half the link."""
        row = harness.in_netns(self, __file__, "share", {}, SCENARIO_TIMEOUT)["row"]
        self.assertIsInstance(row["iperf3_mbps"], (int, float), "iperf3 reported no rate")
        self.assertGreaterEqual(row["iperf3_mbps"], 0)
        frame = int(row["bytes_sent_wire"]) / int(row["sent"]) + bottleneck.IP_UDP
        chat_mbps = float(row["acked_rate_msgs"]) * frame * 8 / 1e6
        link_mbps = bottleneck.RATE_BPS / 1e6
        # a window's edges may differ by a few of the link's 20 ms round trips: 5 %
        self.assertLessEqual(chat_mbps + row["iperf3_mbps"], link_mbps * 1.05)
        self.assertLess(row["iperf3_mbps"], link_mbps / 2)  # UDP took most of the link
        self.assertGreater(row["link_up_queue_drops"], 0)  # 150 % of the link: it overflowed


@unittest.skipIf(os.geteuid() != 0, "hiding /dev/net/tun needs root (a mount namespace)")
class NoTun(unittest.TestCase):
    def test_without_tun_the_points_are_skipped_and_say_why(self):
        """/dev/net/tun hidden by a tmpfs in a mount namespace of the test's own: every
        point over a path is unavailable (the runner skips it), and says what is missing."""
        code = ("import sys; sys.path[0] = sys.argv[1]; "
                "from analysis.scenarios import rtt, burst; "
                "print(set(p.unavailable for m in (rtt, burst) for p in m.points(True)))")
        r = subprocess.run(["unshare", "-m", "--", "sh", "-c",
                            'mount -t tmpfs tmpfs /dev/net && exec "$0" -c "$1" "$2"',
                            sys.executable, code, harness.ROOT], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no /dev/net/tun on this machine", r.stdout)
        self.assertNotIn("None", r.stdout)


# --- the scenarios: run by `unshare -n -- python3 test_paths.py NAME PARAMS` ---


def run_point(pt, around):
    raw = tempfile.mkdtemp(prefix="chatbench-test-path-")
    logs = os.path.join(raw, "logs")
    os.makedirs(logs)
    try:
        row, _, _, _ = points.run(pt, raw, logs, 0.25, around)
        return row
    finally:
        shutil.rmtree(raw, ignore_errors=True)


def sc_point(_):
    pt = linkpath.through(points.point("probe", "probe-tcp", "tcp", "probe", 4, 1, True,
                                       rate=50), ["--delay", "5", "--loss", "5", "--seed", "3"])
    bound = {}

    @contextlib.contextmanager
    def around(p, srv):
        with open("/proc/net/tcp") as f:  # listening (0A) on 10.77.0.1, little-endian hex
            bound["outer"] = any(x.split()[1] == f"01004D0A:{srv.port:04X}" and
                                 x.split()[3] == "0A" for x in list(f)[1:])
        with linkpath.around_loadgen(p, srv) as cols:
            yield cols

    return {"row": run_point(pt, around), "bound_outer": bound["outer"]}


def sc_replay(_):
    pt = points.point("probe", "probe-udp", "udp", "probe", 4, 1, True, rate=300, warmup=0)
    pt.args[pt.args.index("--threads") + 1] = 1
    linkpath.through(pt, ["--delay", "5", "--jitter", "3", "--reorder", "--dup", "2",
                          "--seed", "4"])
    return {"row": run_point(pt, jitter.around_loadgen)}


def sc_share(_):
    pt, = sharing.points(True)  # UDP at 150 % of the link beside iperf3 with CUBIC
    return {"row": run_point(pt, sharing.around_loadgen)}


if __name__ == "__main__":
    harness.netns_main(globals(), __file__)
