"""test_hlog: loadgen's HdrHistogram interval log, read by HdrHistogram itself.

A real run (udp_server, rooms of 3, so every kind has samples) writes LABEL.hlog; the Java
HistogramLogReader of Debian's libhdrhistogram-java decodes it (HlogCheck.java, compiled
here). For every kind, the decoded totals, min, max and p50/p99/p99.9 must equal ours: the
counts of LABEL.KIND.hist and latency.csv's figures (which clamp a percentile into the exact
[min, max] the histogram kept), min and max to the bucket.
"""
import csv
import glob
import os
import shutil
import subprocess
import tempfile
import unittest

import harness

LOADGEN = os.path.join(harness.BIN, "loadgen")
JAR = "/usr/share/java/hdrhistogram.jar"
HERE = os.path.dirname(os.path.abspath(__file__))


def read_hist(path):
    """(total, min, max) of a hist_save file: the sum of its counts and its stats line."""
    total, lo, hi = 0, None, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[0].isdigit():
                total += int(w[1])
            elif w and w[0] == "stats":
                lo, hi = int(w[2]), int(w[3])
    return total, lo, hi


def java_check(hlog, workdir):
    """{tag: (count, min, min_hi, max, max_lo, p50, p99, p999, intervals)} from HlogCheck."""
    classes = os.path.join(workdir, "classes")
    os.makedirs(classes, exist_ok=True)
    subprocess.run(["javac", "-d", classes, "-cp", JAR, os.path.join(HERE, "HlogCheck.java")],
                   check=True, capture_output=True, timeout=120)
    p = subprocess.run(["java", "-cp", f"{JAR}:{classes}", "HlogCheck", hlog],
                       check=True, capture_output=True, text=True, timeout=120)
    out = {}
    for line in p.stdout.splitlines():
        w = line.split()
        if w[0] == "start":
            out["start"] = float(w[1])
        else:
            out[w[0]] = tuple(int(x) for x in w[1:])
    return out


def java_available():
    return shutil.which("javac") and shutil.which("java") and os.path.exists(JAR)


@unittest.skipUnless(java_available(), "needs javac and libhdrhistogram-java (scripts/deps.sh test)")
class HlogReadByHdrHistogram(unittest.TestCase):
    def test_decoded_equals_ours(self):
        _, port = harness.start_server("udp", "-q", test=self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        out = os.path.join(tmp.name, "out")
        p = subprocess.run([LOADGEN, "--proto", "udp", "--port", str(port), "--clients", "12",
                            "--room-size", "3", "--rate", "50", "--duration", "3", "--warmup",
                            "0.5", "--interval", "0.5", "--label", "h", "--out", out, "--quiet"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        decoded = java_check(os.path.join(out, "h.hlog"), tmp.name)
        with open(os.path.join(out, "latency.csv"), newline="") as f:
            lat = list(csv.DictReader(f))
        kinds = sorted(os.path.basename(x)[2:-5] for x in glob.glob(os.path.join(out, "h.*.hist")))
        self.assertEqual(len(kinds), 7)
        checked = 0
        for kind in kinds:
            total, lo, hi = read_hist(os.path.join(out, f"h.{kind}.hist"))
            if total == 0:
                self.assertNotIn(kind, decoded)  # no samples, no interval lines
                continue
            with self.subTest(kind=kind):
                count, jmin, jmin_hi, jmax, jmax_lo, p50, p99, p999, nival = decoded[kind]
                self.assertEqual(count, total)
                self.assertTrue(jmin <= lo <= jmin_hi, (jmin, lo, jmin_hi))
                self.assertTrue(jmax_lo <= hi <= jmax, (jmax_lo, hi, jmax))
                ours = {float(r["percentile"]): round(float(r["value_us"]) * 1000)
                        for r in lat if r["kind"] == kind}
                for pct, theirs in ((50.0, p50), (99.0, p99), (99.9, p999)):
                    self.assertEqual(ours[pct], min(max(theirs, lo), hi), (kind, pct))
                checked += 1
                print(f"\n  {kind}: count {count}, min {lo} ns in [{jmin}, {jmin_hi}], max {hi} "
                      f"ns in [{jmax_lo}, {jmax}], p50/p99/p99.9 {ours[50.0]}/{ours[99.0]}/"
                      f"{ours[99.9]} ns = decoded {p50}/{p99}/{p999} (clamped), "
                      f"{nival} intervals", end="")
        # ack, ack_raw, fanout, fanout_last, connect, lag and, over UDP, rx_lag
        self.assertEqual(checked, 7)
        with open(os.path.join(out, "summary.csv"), newline="") as f:
            s = list(csv.DictReader(f))[-1]
        self.assertEqual(decoded["ack"][0], int(s["acked"]))
        self.assertEqual(decoded["lag"][0], int(s["sent"]))
        self.assertGreater(decoded["ack"][8], 2)  # spread over the run's intervals
        self.assertGreater(decoded["start"], 1e9)  # the log's StartTime: t0 in Unix time


if __name__ == "__main__":
    unittest.main()
