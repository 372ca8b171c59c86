"""test_report: every number in REPORT.md's generated tables agrees with results/.

Parses each `<!-- BEGIN GENERATED: name -->` block of REPORT.md, finds the CSV it names
("Source: `results/X.csv`"), and recomputes every cell from that CSV's row with the same
label, with formulas written here independently of analysis/report.py. A cell agrees when it
equals the recomputed value rounded to the decimals the cell shows. A column this test does
not know fails the test: REPORT.md may not carry numbers nobody checks.
The prose blocks `<!-- BEGIN GENERATED: reading_<section> -->` (the sentences of the report
that state numbers or comparisons) are rendered again from results/ by analysis/report.py
and must match word for word: a reading written for another run fails.
Skips (with the reason) only when results/ holds no benchmark run.
"""
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import unittest

from analysis import report, scenarios
from pylib import markers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "results")
REPORT = os.path.join(ROOT, "REPORT.md")


def num(r, k):
    v = r.get(k, "")
    return float(v) if v not in ("", None) else None


def pct(r, a, b="sent"):
    x, y = num(r, a), num(r, b)
    return None if x is None or not y else 100.0 * x / y


def div(x, y):
    return None if x is None or not y else x / y


def loss_expected(r):
    p = num(r, "injected_loss_pct")
    if r.get("proto") not in ("udp", "hybrid") or p is None:
        return None
    keep = 1.0 - p / 100.0
    return 100.0 * (1.0 - keep * keep)


def uplink_minus_iperf(r):
    up, ip = pct(r, "lost_uplink"), num(r, "iperf3_lost_pct")
    return None if up is None or ip is None else up - ip


def criterion(r):
    """1 when a saturation row passes issue 14's criterion, else 0: acknowledged at least
    99.5 % of the offered rate, ACK p50 at most 10 ms, UDP and hybrid loss at most 0.5 %."""
    off, acked, p50 = num(r, "offered_rate_msgs"), num(r, "acked_rate_msgs"), num(r, "ack_p50_us")
    if not off or acked is None or not p50:
        return 0
    ok = acked >= 0.995 * off and p50 <= 10000
    if r["proto"] in ("udp", "hybrid") and num(r, "sent"):
        ok = ok and num(r, "lost") <= 0.005 * num(r, "sent")
    return int(ok)


def loadgen_limited(r):
    """1 when the load generator sent under 95 % of what was due, or its send or receive
    lag p50 exceeded max(100 us, a quarter of the ACK p50)."""
    due, p50 = num(r, "sent_share_of_due"), num(r, "ack_p50_us")
    lag = [num(r, "lag_p50_us"), num(r, "rx_lag_p50_us")]
    if due is None or p50 is None or None in lag:
        return None
    return int(due < 0.95 or max(lag) > max(100.0, p50 / 4))


def server_bound(r):
    """1 when the server's cores were at least 90 % busy and the load generator kept up."""
    busy, lg = num(r, "server_core_busy_pct"), loadgen_limited(r)
    return None if busy is None or lg is None else int(busy >= 90 and lg == 0)


def ms(r, k):
    return div(num(r, k), 1000.0)


def offered_share(r):
    """% of the link's rate the offered messages fill, each with UDP/IP headers (28 B)."""
    per = div(num(r, "bytes_sent_wire"), num(r, "sent"))
    if per is None or num(r, "offered_rate_msgs") is None or not num(r, "link_rate_bps"):
        return None
    return num(r, "offered_rate_msgs") * (per + 28) * 8 * 100.0 / num(r, "link_rate_bps")


def chat_mbps(r):
    per = div(num(r, "bytes_sent_wire"), num(r, "sent"))
    acked = num(r, "acked_rate_msgs")
    return None if per is None or acked is None else acked * (per + 28) * 8 / 1e6


# the counts of the emulated paths' tables: header -> CSV column (linkem's, the kernels')
LINK_COUNTS = {f"link {d} {what}": f"link_{d}_{key}" for d in ("up", "down")
               for what, key in (("in", "pkts_in"), ("lost", "lost"), ("queue drops",
                                 "queue_drops"), ("max queue", "max_queue"),
                                 ("reordered", "reordered"), ("duplicated", "duplicated"))}
LINK_COUNTS.update({f"TCP {what} {d}": f"tcp_{d}_{key}" for d in ("up", "down")
                    for what, key in (("retransmits", "retrans_segs"), ("timeouts", "timeouts"),
                                      ("loss probes", "loss_probes"),
                                      ("fast retransmits", "fast_retrans"))})
LINK_COUNTS.update({f"{d} {what}": f"log_{d}_{key}" for d in ("up", "down")
                    for what, key in (("bursts", "bursts"), ("mean burst", "burst_mean"),
                                      ("longest burst", "burst_max"),
                                      ("mean burst per flow", "flow_burst_mean"))})

# header -> how to recompute it from one CSV row (strings compare exactly)
FORMULAS = {
    **{h: (lambda r, k=k: num(r, k)) for h, k in LINK_COUNTS.items()},
    "RTT (ms)": lambda r: num(r, "rtt_ms"),
    "loss (%)": lambda r: num(r, "link_loss_pct"),
    "link": lambda r: r["link"],
    "set-up p50 (ms)": lambda r: ms(r, "connect_p50_us"),
    "set-up p99 (ms)": lambda r: ms(r, "connect_p99_us"),
    "set-up p50 / RTT": lambda r: div(num(r, "connect_p50_us"), 1000.0 * num(r, "rtt_ms")),
    "ACK p50 (ms)": lambda r: ms(r, "ack_p50_us"),
    "ACK p99 (ms)": lambda r: ms(r, "ack_p99_us"),
    "ACK p99.9 (ms)": lambda r: ms(r, "ack_p999_us"),
    "ACK max (ms)": lambda r: ms(r, "ack_max_us"),
    "fan-out p50 (ms)": lambda r: ms(r, "fanout_p50_us"),
    "fan-out p99 (ms)": lambda r: ms(r, "fanout_p99_us"),
    "fan-out p99.9 (ms)": lambda r: ms(r, "fanout_p999_us"),
    "fan-out lost (%)": lambda r: pct(r, "fanout_lost", "fanout_expected"),
    "sockperf RTT p50 (ms)": lambda r: ms(r, "sockperf_rtt_p50_us"),
    "offered / link (%)": offered_share,
    "iperf3 congestion control": lambda r: r["iperf3_cc"],
    "iperf3 alone (Mbit/s)": lambda r: num(r, "iperf3_alone_mbps"),
    "iperf3 beside the chat (Mbit/s)": lambda r: num(r, "iperf3_mbps"),
    "iperf3 beside / alone (%)": lambda r: pct(r, "iperf3_mbps", "iperf3_alone_mbps"),
    "iperf3 retransmits": lambda r: num(r, "iperf3_retransmits"),
    "chat delivered (Mbit/s)": chat_mbps,
    "reordered, from the log": lambda r: num(r, "log_reordered"),
    "duplicates": lambda r: num(r, "duplicates"),
    "duplicates, from the log": lambda r: num(r, "log_duplicates"),
    "of them after the last ACK": lambda r: num(r, "log_late_duplicates"),
    "jitter (µs)": lambda r: num(r, "jitter_us"),
    "jitter from the log (µs)": lambda r: num(r, "log_jitter_us"),
    "burst asked": lambda r: num(r, "burst_asked"),
    "link up lost (%)": lambda r: pct(r, "link_up_lost", "link_up_pkts_in"),
    "link down lost (%)": lambda r: pct(r, "link_down_lost", "link_down_pkts_in"),
    # the server series; a scale run from before the series existed had one per proto
    "server": lambda r: r.get("series") or r.get("proto") or None,
    "shards": lambda r: num(r, "shards"),
    "msg/s per client": lambda r: num(r, "rate_per_client"),
    "all set up (s)": lambda r: num(r, "setup_s"),
    "passes": criterion,
    "server bound": server_bound,
    "loadgen limited": loadgen_limited,
    "loadgen bound (p99)": lambda r: num(r, "loadgen_bound"),
    "server core busy (%)": lambda r: num(r, "server_core_busy_pct"),
    "loadgen core busy (%)": lambda r: num(r, "loadgen_core_busy_pct"),
    "loadgen send lag p99 (µs)": lambda r: num(r, "lag_p99_us"),
    "sockperf under load p99 (µs)": lambda r: num(r, "sockperf_load_p99_us"),
    "sockperf one-way msg/s": lambda r: num(r, "sockperf_oneway_mps"),
    "our knee / sockperf one-way": lambda r: div(num(r, "offered_rate_msgs"),
                                                 num(r, "sockperf_oneway_mps")),
    "label": lambda r: r["label"],
    "proto": lambda r: r["proto"],
    "payload": lambda r: r["payload"],
    "clients": lambda r: num(r, "clients"),
    "connected": lambda r: num(r, "connected"),
    "failed": lambda r: num(r, "connect_failed"),
    "acked msg/s": lambda r: num(r, "acked_rate_msgs"),
    "offered msg/s": lambda r: num(r, "offered_rate_msgs"),
    "achieved msg/s": lambda r: num(r, "achieved_rate_msgs"),
    "acked / offered (%)": lambda r: pct(r, "acked_rate_msgs", "offered_rate_msgs"),
    "ACK p50 (µs)": lambda r: num(r, "ack_p50_us"),
    "ACK p99 (µs)": lambda r: num(r, "ack_p99_us"),
    "ACK p99.9 (µs)": lambda r: num(r, "ack_p999_us"),
    "ACK max (µs)": lambda r: num(r, "ack_max_us"),
    "p50 (µs)": lambda r: num(r, "ack_p50_us"),
    "p90 (µs)": lambda r: num(r, "ack_p90_us"),
    "p99 (µs)": lambda r: num(r, "ack_p99_us"),
    "p99.9 (µs)": lambda r: num(r, "ack_p999_us"),
    "p99.99 (µs)": lambda r: num(r, "ack_p9999_us"),
    "max (µs)": lambda r: num(r, "ack_max_us"),
    "server RSS (MiB)": lambda r: div(num(r, "server_rss_kib_max"), 1024.0),
    "RSS per client (KiB)": lambda r: div(num(r, "server_rss_kib_max"), num(r, "clients")),
    "server threads": lambda r: num(r, "server_threads_max"),
    "others CPU (%)": lambda r: num(r, "other_cpu_pct"),
    "server fds": lambda r: num(r, "server_fds_max"),
    "server CPU (%)": lambda r: num(r, "server_cpu_pct"),
    "server CPU per msg (µs)": lambda r: num(r, "server_cpu_us_per_msg"),
    "loadgen CPU per msg (µs)": lambda r: num(r, "cpu_us_per_msg"),
    "lost (%)": lambda r: pct(r, "lost"),
    "loadgen bound": lambda r: num(r, "loadgen_bound"),
    "injected (%)": lambda r: num(r, "injected_loss_pct"),
    "sent": lambda r: num(r, "sent"),
    "uplink lost (%)": lambda r: pct(r, "lost_uplink"),
    "downlink lost (%)": lambda r: pct(r, "lost_downlink"),
    "expected UDP loss (%)": loss_expected,
    "iperf3 lost (%)": lambda r: num(r, "iperf3_lost_pct"),
    "uplink - iperf3 (points)": uplink_minus_iperf,
    "reordered": lambda r: num(r, "reordered"),
    "nft drops": lambda r: num(r, "nft_dropped"),
    "nft uplink drops": lambda r: num(r, "nft_dropped_uplink"),
    "nft downlink drops": lambda r: num(r, "nft_dropped_downlink"),
    "lost": lambda r: num(r, "lost"),
    "lost uplink": lambda r: num(r, "lost_uplink"),
    "lost downlink": lambda r: num(r, "lost_downlink"),
    "lost unknown": lambda r: num(r, "lost_unknown"),
    "lost - nft drops": lambda r: None if r.get("proto") not in ("udp", "hybrid")
    or num(r, "lost") is None
    or num(r, "nft_dropped") is None else num(r, "lost") - num(r, "nft_dropped"),
    "room": lambda r: num(r, "room_size"),
    "expected": lambda r: num(r, "fanout_expected"),
    "received": lambda r: num(r, "fanout_received"),
    "fan-out p50 (µs)": lambda r: num(r, "fanout_p50_us"),
    "fan-out p99 (µs)": lambda r: num(r, "fanout_p99_us"),
    "last recipient p99 (µs)": lambda r: num(r, "fanout_last_p99_us"),
    "size (B)": lambda r: num(r, "size_bytes"),
    "compress": lambda r: num(r, "compress"),
    "ratio": lambda r: num(r, "compress_ratio"),
    "wire bytes per msg": lambda r: div(num(r, "bytes_sent_wire"), num(r, "sent")),
    "connect p50 (µs)": lambda r: num(r, "connect_p50_us"),
    "connect p99 (µs)": lambda r: num(r, "connect_p99_us"),
    "connect max (µs)": lambda r: num(r, "connect_max_us"),
    "frame (B)": lambda r: num(r, "sockperf_size_bytes"),
    "our ACK p50 (µs)": lambda r: num(r, "ack_p50_us"),
    "sockperf RTT p50 (µs)": lambda r: num(r, "sockperf_p50_us"),
    "ours / sockperf": lambda r: div(num(r, "ack_p50_us"), num(r, "sockperf_p50_us")),
    "our ACK p99 (µs)": lambda r: num(r, "ack_p99_us"),
    "sockperf RTT p99 (µs)": lambda r: num(r, "sockperf_p99_us"),
    "sockperf under load p50 (µs)": lambda r: num(r, "sockperf_load_p50_us"),
    "ours / sockperf under load": lambda r: div(num(r, "ack_p50_us"),
                                                num(r, "sockperf_load_p50_us")),
    "rounds": lambda r: num(r, "rounds"),
    "ours / sockperf under load, per round": lambda r: num(r, "ratio_load"),
    "ours / sockperf ping-pong at that rate, per round": lambda r: num(r, "ratio_paced"),
    "round": lambda r: num(r, "round"),
    "sockperf ping-pong at that rate p50 (µs)": lambda r: num(r, "sockperf_paced_p50_us"),
    "sockperf ping-pong at that rate p99 (µs)": lambda r: num(r, "sockperf_paced_p99_us"),
    "ours / sockperf ping-pong at that rate": lambda r: div(num(r, "ack_p50_us"),
                                                            num(r, "sockperf_paced_p50_us")),
}


def parse_table(text):
    """(header, rows) of the first markdown table in text; rows are lists of cells."""
    lines = [x.strip() for x in text.splitlines() if x.strip().startswith("|")]
    cells = [[c.strip() for c in x.strip("|").split("|")] for x in lines]
    if len(cells) < 2:
        return None, []
    return cells[0], cells[2:]


def agrees(cell, want):
    """cell (as printed) equals want rounded to the decimals cell shows."""
    if want is None:
        return cell == "n/a"
    if isinstance(want, str):
        return cell == want
    if cell == "n/a":
        return False
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    half = 0.5 * 10 ** -decimals
    # round-half-even and binary floats: allow a hair more than half a unit
    return math.isclose(float(cell), want, abs_tol=half * 1.0001 + 1e-9)


class ReportAgreesWithResults(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(RESULTS, "machine.txt")):
            self.skipTest("results/ holds no benchmark run (run `make bench`)")
        with open(REPORT, encoding="utf-8") as f:
            self.blocks = markers.read_blocks(f.read())

    def test_blocks_present(self):
        for name in ("machine", "scale", "saturation", "loss", "loss_counts", "fanout",
                     "compression", "setup", "cdf", "anchors", "anchors_saturation",
                     "anchors_rounds", "rtt",
                     "rtt_link", "bottleneck", "sharing", "jitter", "burst", "burst_latency"):
            self.assertIn(name, self.blocks, f"REPORT.md has no generated block {name!r}")
        for name in ("scale", "eventloop", "saturation", "loss", "loss_counts", "fanout",
                     "compression", "setup", "cdf", "anchors", "hybrid", "rtt_setup",
                     "rtt_latency", "bottleneck", "sharing", "jitter", "burst"):
            self.assertIn(f"reading_{name}", self.blocks,
                          f"REPORT.md has no generated reading {name!r}")

    def test_readings_match_results(self):
        want = report.render_readings(RESULTS)
        for name, body in self.blocks.items():
            if not name.startswith("reading_"):
                continue
            with self.subTest(reading=name):
                self.assertIn(name, want, f"{name}: analysis/report.py renders no such reading")
                self.assertEqual(body, want[name], f"{name}: REPORT.md's reading is not what "
                                 "results/ gives (regenerate with analysis/bench.py "
                                 "--charts-only)")

    def test_machine_facts(self):
        with open(os.path.join(RESULTS, "machine.txt")) as f:
            facts = dict(line.rstrip("\n").split(": ", 1) for line in f if ": " in line)
        header, rows = parse_table(self.blocks["machine"])
        self.assertEqual(header, ["fact", "value"])
        shown = {r[0]: r[1] for r in rows}
        self.assertEqual(set(shown), set(facts), "machine table and machine.txt differ")
        for k, v in facts.items():
            self.assertEqual(shown[k], v.strip().replace("|", "/"), k)

    def test_fixed_rate_anchors_are_their_rounds_medians(self):
        """anchors.saturation.csv's 20,000 msg/s rows hold no measurement of their own:
        each round's ratios are its ACK p50 over sockperf's two p50s, and each series' row
        the medians of its rounds (the ratios: of the rounds' own ratios), recomputed here
        from anchors.rounds.csv."""
        path = os.path.join(RESULTS, "anchors.saturation.csv")
        if not os.path.exists(path):
            self.skipTest("no anchors.saturation.csv in results/")
        with open(path, newline="") as f:
            fixed = [r for r in csv.DictReader(f) if r["rate_kind"] not in ("knee", "")]
        with open(os.path.join(RESULTS, "anchors.rounds.csv"), newline="") as f:
            rounds = list(csv.DictReader(f))
        self.assertTrue(fixed, "no fixed-rate row")
        for row in fixed:
            with self.subTest(row=row["label"]):
                mine = [r for r in rounds if r["series"] == row["series"]]
                self.assertEqual(len(mine), int(row["rounds"]))
                for r in mine:
                    self.assertAlmostEqual(num(r, "ratio_load"), div(
                        num(r, "ack_p50_us"), num(r, "sockperf_load_p50_us")), places=9)
                    self.assertAlmostEqual(num(r, "ratio_paced"), div(
                        num(r, "ack_p50_us"), num(r, "sockperf_paced_p50_us")), places=9)
                for k in ("ack_p50_us", "sockperf_load_p50_us", "sockperf_paced_p50_us",
                          "ratio_load", "ratio_paced"):
                    self.assertAlmostEqual(num(row, k), statistics.median(
                        num(r, k) for r in mine), places=9, msg=k)

    def test_tables_agree_with_csv(self):
        checked = 0
        for name, body in self.blocks.items():
            if name == "machine" or name.startswith("reading_"):
                continue
            with self.subTest(table=name):
                m = re.search(r"Source: `results/([\w.]+)`", body)
                if m is None:
                    m2 = re.search(r"No data: `([\w.]+)`", body)
                    self.assertIsNotNone(m2, f"{name}: neither a source nor 'No data'")
                    self.assertFalse(os.path.exists(os.path.join(RESULTS, m2.group(1))),
                                     f"{name} says no data but results/{m2.group(1)} exists")
                    continue
                path = os.path.join(RESULTS, m.group(1))
                self.assertTrue(os.path.exists(path), f"{name}: {path} is missing")
                with open(path, newline="") as f:
                    by_label = {r["label"]: r for r in csv.DictReader(f)}
                header, rows = parse_table(body)
                self.assertEqual(header[0], "label", f"{name}: first column must be label")
                unknown = [h for h in header if h not in FORMULAS]
                self.assertEqual(unknown, [], f"{name}: columns this test cannot check")
                self.assertEqual(sorted(r[0] for r in rows), sorted(by_label),
                                 f"{name}: the table's rows are not the CSV's rows")
                for cells in rows:
                    self.assertEqual(len(cells), len(header), f"{name}: ragged row {cells}")
                    row = by_label[cells[0]]
                    for h, cell in zip(header, cells):
                        want = FORMULAS[h](row)
                        self.assertTrue(agrees(cell, want),
                                        f"{name} / {cells[0]} / {h}: REPORT.md says {cell}, "
                                        f"results/ gives {want}")
                        checked += 1
        self.assertGreater(checked, 0, "no number checked")


class ScenarioLayout(unittest.TestCase):
    """One module per scenario (analysis/scenarios/): whatever a module declares has its
    place in REPORT.md and in analysis/charts/, and nothing there is left unclaimed."""

    def setUp(self):
        self.mods = scenarios.load()
        with open(REPORT, encoding="utf-8") as f:
            self.text = f.read()

    def test_every_block_a_scenario_renders_has_markers(self):
        names = ["machine"] + [t[0] for m in self.mods for t in m.TABLES] + \
            [f"reading_{r[0]}" for m in self.mods for r in m.READINGS]
        self.assertGreater(len(names), 15)
        have = markers.read_blocks(self.text)
        self.assertEqual([x for x in names if x not in have], [],
                         "a scenario renders blocks REPORT.md has no markers for")

    def test_every_chart_is_claimed_and_shown(self):
        claimed = sorted(c for m in self.mods for c in m.CHARTS)
        scripts = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "analysis", "charts"))
                         if f.endswith(".gp") and f != "style.gp")
        self.assertEqual(claimed, scripts, "analysis/charts/*.gp and the scenarios' CHARTS differ")
        self.assertEqual([c for c in claimed if f"(results/{c}.png)" not in self.text], [],
                         "a chart REPORT.md does not show")

    def test_list_names_every_scenario_with_points(self):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "analysis", "bench.py"),
                            "--list", "--quick", "--no-netns"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = re.findall(r"(?m)^\[\d+/\d+\] (\w+): ", r.stdout)
        # ORDER, the RUN_LAST ones (scale: its teardown would disturb the rest) after the rest
        mods = sorted(self.mods, key=lambda m: getattr(m, "RUN_LAST", False))
        want = [m.NAME for m in mods for _ in m.points(True)]
        self.assertEqual(listed, want, "--list is not every point in the order they run")
        self.assertEqual(listed[-1], "scale")
        self.assertRegex(r.stdout, r"estimated time: \d+ s")


class CellAgreement(unittest.TestCase):
    """The comparison itself can fail: guards against a test that passes everything."""

    def test_rounding(self):
        self.assertTrue(agrees("12.3", 12.34))
        self.assertFalse(agrees("12.3", 12.36))
        self.assertTrue(agrees("100", 99.6))
        self.assertFalse(agrees("100", 98.9))
        self.assertTrue(agrees("n/a", None))
        self.assertFalse(agrees("0", None))
        self.assertFalse(agrees("tcp", "udp"))


if __name__ == "__main__":
    unittest.main()
