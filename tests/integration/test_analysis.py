"""test_analysis: the benchmark's machinery run for real, small: one point of analysis/points.py
(a real server and load generator, with the hooks a scenario module can give it), a pinned
point and sockperf on the same cores, the saturation sweep's decisions on synthetic rows, and
the pylib helpers analysis/ and these tests share (ports, marker blocks, /proc).
"""
import contextlib
import os
import shutil
import socket
import statistics
import struct
import tempfile
import unittest

from analysis import benchkit, pinning, points, sweep, witnesses
from analysis.scenarios import anchors, saturation
from pylib import markers, procfs
from pylib.ports import HOST, free_port, wait_port

PINS = pinning.split()


class PointTest(unittest.TestCase):
    """A scratch folder for a point's raw outputs (raw) and its server logs (logs)."""

    def setUp(self):
        self.raw = tempfile.mkdtemp(prefix="chatbench-test-point-")
        self.logs = os.path.join(self.raw, "logs")
        os.makedirs(self.logs)
        self.addCleanup(shutil.rmtree, self.raw, True)


class PointRun(PointTest):

    def test_a_point_fills_its_row_in_order(self):
        cpu = str(sorted(os.sched_getaffinity(0))[-1])
        pt = points.point("probe", "probe-tcp", "tcp", "probe", 2, 1, True, rate=20,
                          cols={"injected_probe": 7}, server_args=["--max-queue", "65536"],
                          server_wrap=["taskset", "-c", cpu], host="127.0.0.2",
                          server_host="127.0.0.2")

        @contextlib.contextmanager
        def around(p, srv):
            cols = {}
            yield cols
            # read while the server still runs: the wrapper's pinning is the server's own
            cols["server_cpus"] = procfs.status(srv.pid, ("Cpus_allowed_list",)).get(
                "Cpus_allowed_list")
            with open("/proc/net/tcp") as f:  # listening (0A) on 127.0.0.2:port
                cols["server_addr"] = any(x.split()[1] == f"0200007F:{srv.port:04X}" and
                                          x.split()[3] == "0A" for x in list(f)[1:])

        row, samples, lat, ts = points.run(pt, self.raw, self.logs, 0.25, around)
        self.assertEqual((row["label"], row["scenario"], row["proto"]),
                         ("probe-tcp", "probe", "tcp"))
        self.assertGreater(int(row["sent"]), 0)
        self.assertEqual(row["acked"], row["sent"], "TCP over loopback acknowledges everything")
        self.assertEqual(row["server_rc"], 0, "the server exits 0 on SIGTERM")
        self.assertEqual(row["injected_probe"], 7)
        self.assertEqual(str(row["server_cpus"]), cpu, "server_wrap did not wrap the server")
        self.assertTrue(row["server_addr"], "the server did not bind server_host")
        self.assertEqual(row["host"], "127.0.0.2", "the load generator did not target host")
        keys = list(row)
        self.assertLess(keys.index("other_cpu_pct"), keys.index("injected_probe"))
        self.assertLess(keys.index("injected_probe"), keys.index("loadgen_total_cpu_s"))
        self.assertLess(keys.index("loadgen_total_cpu_s"), keys.index("server_cpus"))
        self.assertLess(keys.index("server_cpus"), keys.index("server_rss_kib_max"))
        self.assertGreaterEqual(row["server_threads_max"], 1)
        self.assertTrue(samples and all(s["label"] == "probe-tcp" for s in samples))
        self.assertTrue(lat, "no latency.csv rows")
        with open(os.path.join(self.logs, "probe-tcp.tcp_server.log"), "rb") as f:
            self.assertIn(b"Servidor TCP iniciado", f.read())

    def test_loadgen_runs_under_its_wrapper(self):
        pt = points.point("probe", "probe-wrap", "udp", "probe", 1, 1, True, rate=5,
                          loadgen_wrap=["false"])
        with self.assertRaisesRegex(benchkit.BenchError, "loadgen wrote no summary"):
            points.run(pt, self.raw, self.logs, 0.25)


@unittest.skipUnless(PINS, "needs two cores to pin the server and the load generator apart")
class PinnedPoint(PointTest):
    """A point pinned by analysis/pinning.py, run for real with its around_loadgen hook."""

    def pinned(self, label, proto="udp"):
        return pinning.pin(points.point("probe", label, proto, "probe", 2, 1, True, rate=20),
                           *PINS)

    def test_a_pinned_point_reports_its_cores(self):
        pt = self.pinned("probe-pinned")
        self.assertEqual(pt.args[pt.args.index("--threads") + 1],
                         len(procfs.parse_cpu_list(PINS[1])), "one loadgen thread per core")
        row, *_ = points.run(pt, self.raw, self.logs, 0.25, pinning.around_loadgen)
        self.assertEqual((row["server_cpus"], row["loadgen_cpus"]), PINS)
        self.assertEqual(row["acked"], row["sent"])
        for side in ("server", "loadgen"):
            busy, softirq = row[f"{side}_core_busy_pct"], row[f"{side}_core_softirq_pct"]
            self.assertIsInstance(busy, float, f"{side}: no core figures")
            self.assertTrue(0.0 <= softirq <= busy <= 100.0, (side, busy, softirq))
        self.assertEqual(row["cpu_latency_qos_us"], "" if pinning.idle_poll_unavailable() else 0)

    def test_idle_poll_holds_the_request_while_open(self):
        if pinning.idle_poll_unavailable():
            self.skipTest(pinning.idle_poll_unavailable())
        def target():  # the device reads back the kernel's CPU latency target in force (µs)
            with open(pinning.PM_QOS, "rb") as f:
                return struct.unpack("i", f.read(4))[0]
        before = target()
        if before == 0:
            self.skipTest("another process holds the CPU latency target at 0 already")
        with pinning.idle_poll() as held:
            self.assertEqual(held, 0)
            self.assertEqual(target(), 0, "the QoS request is not in force")
        self.assertEqual(target(), before, "the QoS request outlived the with block")

    def test_a_server_on_other_cores_fails_the_point(self):
        pt = self.pinned("probe-misplaced", "tcp")
        pt.cols["server_cpus"] = PINS[1]  # the wrapper still pins it to PINS[0]
        with self.assertRaisesRegex(benchkit.BenchError, "the server runs on cores"):
            points.run(pt, self.raw, self.logs, 0.25, pinning.around_loadgen)

    @unittest.skipUnless(shutil.which("sockperf"), "no sockperf (scripts/deps.sh bench)")
    def test_sockperf_on_the_same_cores(self):
        wraps = (["taskset", "-c", PINS[0]], ["taskset", "-c", PINS[1]])
        udp = witnesses.sockperf_oneway("udp", 122, 1, wraps)
        self.assertGreater(udp["sent_mps"], 0)
        self.assertLessEqual(udp["recv_mps"], udp["sent_mps"], "UDP received more than sent")
        tcp = witnesses.sockperf_oneway("tcp", 123, 1, wraps)
        self.assertEqual(tcp["recv_mps"], tcp["sent_mps"], "TCP lost or made up messages")
        ul = witnesses.sockperf_rtt("udp", 122, 1, 500, wraps)
        self.assertGreater(ul["p99_us"], 0)
        self.assertGreaterEqual(ul["p99_us"], ul["p50_us"])
        self.assertLessEqual(ul["recv_mps"], ul["sent_mps"])
        # paced ping-pong: one message at a time, at the rate asked
        pp = witnesses.sockperf_rtt("udp", 122, 1, 500, wraps, paced=True)
        self.assertGreaterEqual(pp["p99_us"], pp["p50_us"])
        self.assertEqual(pp["recv_mps"], pp["sent_mps"], "a ping-pong lost an answer")
        self.assertGreater(pp["sent_mps"], 0)
        # paced, not as fast as it goes (unpaced, a loopback ping-pong runs tens of thousands)
        self.assertLess(pp["sent_mps"], 5000)

    @unittest.skipUnless(shutil.which("sockperf"), "no sockperf (scripts/deps.sh bench)")
    def test_sockperf_runs_once_per_setting(self):
        class Ctx:
            quick, failed = False, []

            def fail(self, what):
                self.failed.append(what)

        sp = anchors.Sockperf(Ctx(), seconds=1)
        self.assertEqual(sp.wraps, (["taskset", "-c", PINS[0]], ["taskset", "-c", PINS[1]]))
        first = sp("one-way", "udp", 122)
        self.assertGreaterEqual(first["other_cpu_pct"], 0.0)
        self.assertIs(sp("one-way", "udp", 122), first, "the same setting ran twice")
        self.assertIsNone(sp("one-way", "udp", 70000), "an impossible frame gave a result")
        self.assertEqual(len(Ctx.failed), 1, Ctx.failed)


class SaturationAnchors(unittest.TestCase):
    def test_rows_at_the_fixed_rate_and_the_knee(self):
        calls = []

        def sp(mode, proto, size, mps=None):
            calls.append((mode, proto, size, mps))
            if mode == "one-way":
                return {"sent_mps": 300000.0, "recv_mps": 200000.0, "other_cpu_pct": 0.0}
            return {"p50_us": 20.0, "p99_us": 90.0, "sent_mps": mps, "recv_mps": mps,
                    "other_cpu_pct": 0.0}

        sat = [row(r, r <= 40000, bytes_sent_wire=122000) for r in (5000, 20000, 40000, 80000)]
        sat += [row(r, r <= 10000, "tcp", bytes_sent_wire=123000) for r in (10000, 20000)]

        def rnd(series, k, ours, ul, pp):
            return {"label": f"anchor-round-{series}-20000-{k}", "series": series,
                    "proto": "udp", "round": k, "offered_rate_msgs": 20000, "ack_p50_us": ours,
                    "ack_p99_us": 10 * ours, "sockperf_load_p50_us": ul,
                    "sockperf_paced_p50_us": pp, "sockperf_size_bytes": 122,
                    "ratio_load": ours / ul, "ratio_paced": ours / pp, "other_cpu_pct": 3 * k}
        rounds = [rnd("udp", 1, 30, 20, 12), rnd("udp", 2, 90, 50, 15), rnd("udp", 3, 40, 30, 11)]
        out = {r["label"]: r for r in anchors.saturation_anchors(sat, sp, rounds)}
        self.assertEqual(sorted(out), ["anchor-sat-tcp-knee", "anchor-sat-udp-20000",
                                       "anchor-sat-udp-knee"])
        knee = out["anchor-sat-udp-knee"]
        self.assertEqual((knee["offered_rate_msgs"], knee["sockperf_load_mps"]), ("40000", 40000))
        self.assertEqual((knee["sockperf_oneway_mps"], knee["sockperf_size_bytes"]),
                         (200000.0, 122))
        # the fixed rate: each figure the median of its rounds, and each ratio the median of
        # the rounds' own ratios (the columns' medians would give 40 / 12 = 3.33 for the
        # paced one, our round 3 over sockperf's round 1)
        fixed = out["anchor-sat-udp-20000"]
        self.assertEqual((fixed["rounds"], fixed["ack_p50_us"], fixed["sockperf_load_p50_us"],
                          fixed["sockperf_paced_p50_us"], fixed["ack_p99_us"]),
                         (3, 40, 30, 12, 400))
        self.assertEqual((fixed["offered_rate_msgs"], fixed["sockperf_size_bytes"]), (20000, 122))
        self.assertAlmostEqual(fixed["ratio_load"], 1.5)  # of 1.5, 1.8 and 1.33
        self.assertAlmostEqual(fixed["ratio_paced"], 40 / 11)  # of 2.5, 6.0 and 3.64, not 40/12
        self.assertEqual((fixed["rounds_load"], fixed["rounds_paced"]), (3, 3))
        self.assertEqual(fixed["other_cpu_pct"], 9, "not the worst round's others CPU")
        self.assertNotIn("sockperf_oneway_mps", fixed)
        self.assertEqual(out["anchor-sat-tcp-knee"]["sockperf_size_bytes"], 123)
        self.assertIn(("under-load", "tcp", 123, 10000.0), calls)
        self.assertNotIn(("under-load", "udp", 122, 20000.0), calls, "the rounds ran it already")
        # no knee (nothing failed): the fixed rate only
        only = anchors.saturation_anchors([row(20000), row(40000)], sp, rounds)
        self.assertEqual([r["label"] for r in only], ["anchor-sat-udp-20000"])
        self.assertEqual(anchors.saturation_anchors([row(20000), row(40000)], sp), [])

    def test_rounds_pair_each_point_with_its_own_sockperf_runs(self):
        """run_rounds: ROUNDS points per series, each followed by its own sockperf runs (never
        one shared by two rounds); a sockperf run that failed leaves its round out of that
        ratio, and the row says how many rounds each ratio has."""
        calls, kept = [], []

        class Ctx:
            quick = False

            def point(self, pt, into=None):
                k = pt.cols["round"]
                row = {"label": pt.label, "series": pt.cols["series"], "proto": pt.proto,
                       "round": k, "ack_p50_us": 10.0 * k, "sent": 100,
                       "bytes_sent_wire": 12200, "offered_rate_msgs": 20000}
                kept.append((into, pt.scenario, pt.duration, row))
                return row

        def sp(mode, proto, size, mps=None, again=None):
            calls.append((mode, again))
            if mode == "under-load" and again == "udp round 2":
                return None  # failed
            return {"p50_us": 5.0, "p99_us": 9.0, "sent_mps": mps, "recv_mps": mps,
                    "other_cpu_pct": 0.0}
        sp.seconds = 3  # as anchors.Sockperf: our point runs as long as sockperf's

        rs = anchors.run_rounds(Ctx(), "udp", [], sp)
        self.assertEqual([r["round"] for r in rs], list(range(1, anchors.ROUNDS + 1)))
        self.assertTrue(all(into == "anchors.rounds" and scn == "anchors"
                            for into, scn, _, _ in kept), "rounds mixed with a scenario's rows")
        self.assertEqual({d for _, _, d, _ in kept}, {3}, "our point not as long as sockperf's")
        self.assertEqual(len(set(calls)), len(calls), "a sockperf run served two rounds")
        self.assertNotIn("ratio_load", rs[1])
        fixed = anchors.fixed_rate_row("udp", rs)
        self.assertEqual((fixed["rounds"], fixed["rounds_load"], fixed["rounds_paced"]),
                         (anchors.ROUNDS, anchors.ROUNDS - 1, anchors.ROUNDS))
        self.assertAlmostEqual(fixed["ratio_load"], statistics.median(
            [10.0 * k / 5.0 for k in range(1, anchors.ROUNDS + 1) if k != 2]))


class Pinning(unittest.TestCase):
    def test_cpu_lists(self):
        self.assertEqual(pinning.cpu_list({3, 0, 1, 2, 6}), "0-3,6")
        self.assertEqual(procfs.parse_cpu_list("0-3,6"), {0, 1, 2, 3, 6})
        self.assertEqual(procfs.parse_cpu_list(" 5"), {5})
        with self.assertRaises(ValueError):
            procfs.parse_cpu_list("3-1")
        self.assertEqual(pinning.split({0, 1}), ("0", "1"))
        self.assertEqual(pinning.split({0, 1, 2, 3, 5}), ("0-1", "2-3,5"))
        self.assertIsNone(pinning.split({4}))

    def test_pin_by_taskset_or_by_option(self):
        def pt():
            return points.point("probe", "p", "tcp", "probe", 2, 1, True, rate=5,
                                server_args=["--max-queue", "9"])
        saved = dict(pinning.PIN_OPTION)
        self.addCleanup(pinning.PIN_OPTION.update, saved)
        pinning.PIN_OPTION.update(server=None, loadgen=None)
        a = pinning.pin(pt(), "0", "1-2")
        self.assertEqual((a.server_wrap, a.loadgen_wrap),
                         (["taskset", "-c", "0"], ["taskset", "-c", "1-2"]))
        self.assertEqual(a.args[a.args.index("--threads") + 1], 2)
        self.assertEqual(a.server_args, ["--max-queue", "9"])
        self.assertEqual((a.cols["server_cpus"], a.cols["loadgen_cpus"]), ("0", "1-2"))
        pinning.PIN_OPTION.update(server="--cpus", loadgen="--cpus")
        b = pinning.pin(pt(), "0", "1")
        self.assertEqual((b.server_wrap, b.loadgen_wrap), ([], []))
        self.assertEqual(b.server_args, ["--max-queue", "9", "--cpus", "0"])
        # busy-polling, with one interval: loadgen's main thread shares the worker's core
        self.assertEqual(b.args[-5:], ["--cpus", "1", "--busy-poll", "--interval",
                                       pinning.BUSY_POLL_INTERVAL_S])
        self.assertNotIn("--busy-poll", a.args)  # it needs loadgen's own --cpus

    def test_core_ticks_and_shares(self):
        a = procfs.core_ticks()
        self.assertTrue(os.sched_getaffinity(0) <= set(a), "a core of ours is missing")
        b = procfs.core_ticks()
        for c, (busy, softirq, total) in a.items():
            self.assertTrue(0 <= softirq <= busy <= total)
            self.assertTrue(all(y >= x for x, y in zip(a[c], b[c])), "counters went back")
        cs = pinning.CoreSampler()
        cs.samples = [(0.0, {0: (0, 0, 0), 1: (0, 0, 0)}),
                      (1.0, {0: (50, 10, 100), 1: (100, 0, 100)}),
                      (2.0, {0: (150, 30, 200), 1: (100, 0, 200)})]
        self.assertEqual(cs.share({0}, 0.0, 2.0), (75.0, 15.0))
        self.assertEqual(cs.share({0}, 0.5, 2.0), (100.0, 20.0))
        self.assertEqual(cs.share({1}, 1.0, 2.0), (0.0, 0.0))
        self.assertEqual(cs.share({0, 1}, 0.0, 2.0), (62.5, 7.5))
        self.assertIsNone(cs.share({0}, 0.5, 1.5), "one sample is no window")


def row(rate, ok=True, series="udp", **more):
    """A synthetic saturation row at rate: all acknowledged fast (ok) or a queue (not ok)."""
    r = {"label": f"sat-{series}-{rate}", "series": series,
         "proto": "tcp" if series.startswith("tcp") else series,
         "sweep_rate_msgs": str(rate), "offered_rate_msgs": str(rate),
         "acked_rate_msgs": str(rate if ok else rate * 0.9), "ack_p50_us": "80",
         "sent": "1000", "lost": "0", "loadgen_bound": "0", "sent_share_of_due": "1",
         "lag_p50_us": "2", "rx_lag_p50_us": "8"}
    r.update({k: str(v) for k, v in more.items()})
    return r


class Criterion(unittest.TestCase):
    def test_each_limit(self):
        self.assertEqual(sweep.failures(row(1000)), [])
        self.assertEqual(sweep.failures(row(1000, acked_rate_msgs=995)), [])
        self.assertRegex(" ".join(sweep.failures(row(1000, acked_rate_msgs=994))), "acked 99.4")
        self.assertEqual(sweep.failures(row(1000, ack_p50_us=10000)), [])
        self.assertRegex(" ".join(sweep.failures(row(1000, ack_p50_us=10001))), "p50 10.0 ms")
        self.assertEqual(sweep.failures(row(1000, lost=5)), [])
        self.assertRegex(" ".join(sweep.failures(row(1000, lost=6))), "lost 0.60 %")
        self.assertEqual(sweep.failures(row(1000, True, "hybrid", lost=6))[0][:4], "lost")
        self.assertFalse(sweep.passes(row(1000, ack_p50_us="")), "a row without a p50 passed")
        self.assertFalse(sweep.passes(row(1000, acked_rate_msgs="")))

    def test_server_bound(self):
        self.assertEqual(sweep.server_bound(row(1, server_core_busy_pct=90.0)), 1)
        self.assertEqual(sweep.server_bound(row(1, server_core_busy_pct=89.9)), 0)
        self.assertEqual(sweep.server_bound(row(1, server_core_busy_pct=99,
                                                sent_share_of_due=0.9)), 0)
        self.assertIsNone(sweep.server_bound(row(1)), "no core figures, no verdict")

    def test_loadgen_limited_on_the_criterion_figures(self):
        # the rate: under 95 % of what was due
        self.assertEqual(sweep.loadgen_limited(row(1, sent_share_of_due=0.95)), 0)
        self.assertEqual(sweep.loadgen_limited(row(1, sent_share_of_due=0.949)), 1)
        # the p50: a lag p50 over max(100 us, 25 % of the ACK p50), send or receive
        self.assertEqual(sweep.loadgen_limited(row(1, lag_p50_us=100)), 0)
        self.assertEqual(sweep.loadgen_limited(row(1, rx_lag_p50_us=101)), 1)
        self.assertEqual(sweep.loadgen_limited(row(1, ack_p50_us=8000, lag_p50_us=2000)), 0)
        self.assertEqual(sweep.loadgen_limited(row(1, ack_p50_us=8000, lag_p50_us=2001)), 1)
        # its p99 self-check is not the criterion's business: bound by it, limited not
        self.assertEqual(sweep.loadgen_limited(row(1, loadgen_bound=1)), 0)
        self.assertEqual(sweep.server_bound(row(1, server_core_busy_pct=99,
                                                loadgen_bound=1)), 1)
        self.assertIsNone(sweep.loadgen_limited(row(1, lag_p50_us="")))


class Sweep(unittest.TestCase):
    def sweep(self, passes, plan=sweep.Plan()):
        """The rates a series runs when passes(rate) says which pass, in order."""
        done = {}
        while (r := sweep.next_rate(done, plan)) is not None:
            self.assertNotIn(r, done, "a rate run twice")
            done[r] = passes(r)
        self.assertLessEqual(len(done), plan.max_points)
        return list(done), done

    def test_doubles_bisects_then_goes_past(self):
        order, done = self.sweep(lambda r: r <= 137000)
        self.assertEqual(order[:6], [5000, 10000, 20000, 40000, 80000, 160000])
        self.assertIn(saturation.FIXED_RATE, order, "the anchors' fixed rate was not run")
        knee, first = sweep.knee(done)
        self.assertTrue(knee <= 137000 < first, (knee, first))
        self.assertLessEqual((first - knee) / knee, sweep.Plan().resolution)
        self.assertGreaterEqual(sum(1 for r in done if r > knee), 3, "too few rates past it")

    def test_a_failing_start_goes_down(self):
        order, done = self.sweep(lambda r: r <= 3000)
        self.assertEqual(order[:2], [5000, 2500])
        self.assertEqual(sweep.knee(done), (3000, 3200))
        order, done = self.sweep(lambda r: False)
        self.assertEqual(order, [5000, 2500, 1250, 625], "below the floor")
        self.assertEqual(sweep.knee(done), (None, 625))
        order, _ = self.sweep(lambda r: r <= 3000, saturation.FULL)
        self.assertEqual(order[-1], saturation.FIXED_RATE, "the anchors' rate, run at the end")
        self.assertEqual(order.count(saturation.FIXED_RATE), 1)

    def test_no_failure_stops_at_the_cap(self):
        order, done = self.sweep(lambda r: True)
        self.assertEqual(order[-1], sweep.Plan().cap)
        self.assertEqual(sweep.knee(done), (sweep.Plan().cap, None))

    def test_a_pass_above_a_failure_does_not_move_the_knee(self):
        self.assertEqual(sweep.knee({10: True, 20: False, 30: True, 40: False}), (10, 20))

    def test_quick_runs_two_rates(self):
        order, done = self.sweep(lambda r: r < 100000, saturation.QUICK)
        self.assertEqual(order, [saturation.FIXED_RATE, 160000])
        self.assertEqual(self.sweep(lambda r: False, saturation.QUICK)[0],
                         [saturation.FIXED_RATE, 2500])

    def test_knees_marked_on_rows(self):
        rows = [row(40000, False), row(5000), row(20000, series="tcp"), row(10000),
                row(40000, False, "tcp"), row(20000, False), row(80000)]
        knees = saturation.mark_knees(rows)
        self.assertEqual([r["label"] for r in rows],
                         ["sat-tcp-20000", "sat-tcp-40000", "sat-udp-5000", "sat-udp-10000",
                          "sat-udp-20000", "sat-udp-40000", "sat-udp-80000"])
        self.assertEqual(knees, {"tcp": (20000, 40000), "udp": (10000, 20000)})
        self.assertEqual([r["label"] for r in rows if r["knee"] == 1],
                         ["sat-tcp-20000", "sat-udp-10000"])
        self.assertEqual(saturation.mark_knees([row(5000)]), {"udp": (5000, None)})


class Ports(unittest.TestCase):
    def test_wait_port_sees_a_listener_and_a_datagram_socket(self):
        for kind, st in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
            with socket.socket(socket.AF_INET, st) as s:
                s.bind((HOST, free_port(kind)))
                if kind == "tcp":
                    s.listen()
                wait_port(s.getsockname()[1], kind, timeout=5)

    def test_wait_port_times_out_on_an_unbound_port(self):
        with self.assertRaises(TimeoutError):
            wait_port(free_port("udp"), "udp", timeout=0.3)

    def test_a_bound_but_not_listening_tcp_socket_is_not_ready(self):
        with socket.socket() as s:
            s.bind((HOST, 0))
            with self.assertRaises(TimeoutError):
                wait_port(s.getsockname()[1], "tcp", timeout=0.3)


class Markers(unittest.TestCase):
    DOC = ("intro\n" + markers.block("a", "old a\n") + "middle\n" +
           markers.block("b", "old b\n") + "end\n")

    def test_replace_touches_only_the_named_bodies(self):
        text, done = markers.replace(self.DOC, {"a": "new a\n", "missing": "x\n"})
        self.assertEqual(done, ["a"])
        self.assertEqual(markers.read_blocks(text), {"a": "new a\n", "b": "old b\n"})
        self.assertEqual(text.replace("new a", "old a"), self.DOC)

    def test_update_file_writes_in_place(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "doc.md")
            with open(path, "w") as f:
                f.write(self.DOC)
            self.assertEqual(markers.update_file(path, {"b": "new b\n"}), ["b"])
            with open(path) as f:
                self.assertEqual(markers.read_blocks(f.read())["b"], "new b\n")
            self.assertEqual(os.listdir(d), ["doc.md"], "the temporary file was left behind")


if __name__ == "__main__":
    unittest.main()
