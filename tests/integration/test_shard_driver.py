"""test_shard_driver: analysis/shards.py, the driver of sharded runs, against real servers.

It runs the shards with mpirun and as local processes, merges them, and hands back the merged
row; a benchmark point with shards goes through it (points.run); its command line refuses
what it owns; the srun and Kubernetes commands it prints are run here once per shard, with
the variables those launchers would set, and merged.
"""
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from analysis import points, shards
from pylib.ports import free_port

LOADGEN = os.path.join(harness.BIN, "loadgen")
MERGE_COUNTERS = ("sent", "acked", "lost", "connected", "keepalives", "bytes_sent_wire_total")
TIMEOUT = 120

try:
    import yaml
except ImportError:  # scripts/deps.sh test installs python3-yaml
    yaml = None


def lg_args(proto, port, label, clients=40, *more):
    return ["--proto", proto, "--port", str(port), "--clients", str(clients), "--rate", "10",
            "--duration", "1.5", "--warmup", "0.5", "--label", label, "--quiet", *more]


class Scratch(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="chatbench-test-shards-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def check_sums(self, res, n, clients):
        """The merged row is the shards' sum, every client in, one window."""
        self.assertEqual(len(res.shard_rows), n)
        self.assertEqual(sorted(r["shard"] for r in res.shard_rows), [str(i) for i in range(n)])
        m = res.row
        for c in MERGE_COUNTERS:
            self.assertEqual(int(m[c]), sum(int(r[c]) for r in res.shard_rows), c)
        self.assertEqual((m["shard"], int(m["shards"])), ("all", n))
        self.assertEqual(int(m["connected"]), clients)
        self.assertGreater(int(m["sent"]), 0)
        self.assertEqual(res.late, [])  # every shard began its warm-up at --start-at
        for r in res.shard_rows:  # (to the microseconds of the clock conversions)
            self.assertAlmostEqual(float(r["t0_unix"]), res.start_at, delta=0.001)
        self.assertAlmostEqual(res.window[1] - res.window[0], float(m["duration_s"]), 3)
        # the window is where the run was: after the launch, before its end
        self.assertTrue(res.t0 < res.window[0] < res.window[1] < res.t1, res)


class DriverRuns(Scratch):
    @unittest.skipUnless(shutil.which("mpirun"), "needs Open MPI's mpirun (scripts/deps.sh test)")
    def test_mpirun_then_merge(self):
        _, port = harness.start_server("udp", "-q", test=self)
        res = shards.run(3, lg_args("udp", port, "drv1", 30, "--source",
                                    "127.0.0.2-127.0.0.3"),
                         self.tmp, "mpirun", lead=4, loadgen=LOADGEN, timeout=TIMEOUT)
        self.check_sums(res, 3, 30)
        self.assertEqual({r["shard_source"] for r in res.shard_rows},
                         {"OMPI_COMM_WORLD_RANK/SIZE"})
        self.assertEqual((res.row["shard_launcher"], res.row["loadgen_rc"]), ("mpirun", 0))
        self.assertEqual(int(res.row["acked"]) + int(res.row["lost"]), int(res.row["sent"]))
        self.assertTrue(os.path.exists(os.path.join(res.merged_dir, "drv1.hlog")))

    def test_local_processes_then_merge(self):
        _, port = harness.start_server("tcp", "-q", test=self)
        res = shards.run(2, lg_args("tcp", port, "drv2", 20, "--room-size", "2"), self.tmp,
                         "local", lead=3, loadgen=LOADGEN, timeout=TIMEOUT)
        self.check_sums(res, 2, 20)
        self.assertEqual({r["shard_source"] for r in res.shard_rows}, {"--shard"})
        self.assertEqual(int(res.row["lost"]), 0)  # TCP
        self.assertEqual(res.row["acked"], res.row["sent"])
        self.assertEqual(res.row["fanout_received"], res.row["sent"])  # rooms of 2, whole

    def test_a_lead_too_short_is_said(self):
        # no lead cannot cover the launch: the shards start late, and the result says so
        _, port = harness.start_server("udp", "-q", test=self)
        res = shards.run(2, lg_args("udp", port, "drv3", 10), self.tmp, "local", lead=0,
                         loadgen=LOADGEN, timeout=TIMEOUT)
        self.assertEqual(sorted(res.late), ["0", "1"])
        self.assertEqual(res.row["shards_late"], 2)

    def test_a_failed_run_still_merges_and_says_so(self):
        # nobody listens: every shard fails its set-up and exits 1; the merged row says so
        res = shards.run(2, lg_args("tcp", free_port(), "drv4", 4), self.tmp, "local", lead=2,
                         loadgen=LOADGEN, timeout=TIMEOUT)
        self.assertEqual((res.row["connected"], res.row["connect_failed"]), ("0", "4"))
        self.assertEqual(res.row["loadgen_rc"], 1)

    def test_a_launch_that_cannot_start_is_an_error(self):
        with self.assertRaisesRegex(shards.ShardError, "no-such-loadgen"):
            shards.run(2, lg_args("tcp", free_port(), "drv5", 4), self.tmp, "local", lead=2,
                       loadgen=os.path.join(self.tmp, "no-such-loadgen"), timeout=TIMEOUT)

    def test_a_sharded_benchmark_point(self):
        logs = os.path.join(self.tmp, "logs")
        os.makedirs(logs)
        pt = points.point("probe", "probe-sharded", "udp", "probe", 40, 1.5, True, rate=10,
                          shards=2)
        row, samples, lat, _ = points.run(pt, self.tmp, logs, 0.25)
        self.assertEqual((row["label"], row["shards"], row["connected"]),
                         ("probe-sharded", "2", "40"))
        self.assertEqual(row["shard_launcher"], "mpirun" if shutil.which("mpirun") else "local")
        self.assertGreater(int(row["sent"]), 0)
        self.assertEqual(row["server_rc"], 0)
        self.assertTrue(samples)
        # The server's CPU window is the merged measured window trimmed by 0.25 s at each
        # end (1.0 s), between the first and the last sample inside it. The samples come
        # every 0.25 s and the window's edges fall on that grid, so a few ms either way decide
        # whether an edge sample is in: the span is 0.5 to 1.0 s (a TSan run read 0.5), and
        # a late sample on a busy machine may shorten it a little more.
        self.assertLessEqual(float(row["server_window_s"]), 1.0 + 0.01)
        self.assertGreaterEqual(float(row["server_window_s"]), 1.0 - 2 * 0.25 - 0.1)
        self.assertTrue(lat and {x["shard"] for x in lat} == {"all"}, "merged latency rows")


class CommandLine(Scratch):
    def cli(self, *args, timeout=TIMEOUT):
        env = dict(os.environ, CHATBENCH_BIN=harness.BIN)
        return subprocess.run([sys.executable, "-m", "analysis.shards", *args],
                              capture_output=True, text=True, timeout=timeout, cwd=harness.ROOT,
                              env=env)

    def test_local_run_json_and_chart(self):
        _, port = harness.start_server("udp", "-q", test=self)
        png = os.path.join(self.tmp, "c.png")
        args = ["--shards", "2", "--launcher", "local", "--lead", "3", "--out", self.tmp,
                "--json"] + (["--chart", png] if shutil.which("gnuplot") else [])
        p = self.cli(*args, "--", *lg_args("udp", port, "cli1", 10))
        self.assertEqual(p.returncode, 0, p.stderr)
        row = json.loads(p.stdout)
        self.assertEqual((row["label"], row["shards"], row["connected"]), ("cli1", "2", "10"))
        if shutil.which("gnuplot"):
            self.assertGreater(os.path.getsize(png), 1000)

    def test_what_the_driver_owns_is_refused(self):
        for extra, says in ((["--out", "x"], "leave --out to the driver"),
                            (["--shard", "0/2"], "leave --shard"),
                            (["--start-at", "1"], "leave --start-at")):
            with self.subTest(extra=extra):
                p = self.cli("--shards", "2", "--out", self.tmp, "--",
                             *lg_args("udp", 9, "x"), *extra)
                self.assertEqual(p.returncode, 1)
                self.assertIn(says, p.stderr)
        p = self.cli("--shards", "2", "--out", self.tmp, "--", "--clients", "4")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--label", p.stderr)
        for bad in (["--shards", "0", "--out", self.tmp, "--", "--label", "x"],
                    ["--shards", "2", "--out", self.tmp], ["--launcher", "ssh"]):
            self.assertEqual(self.cli(*bad).returncode, 2, bad)
        for ok, says in ((["--help"], "--launcher"), (["--version"], "chatbench")):
            p = self.cli(*ok)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(says, p.stdout)

    def test_lead_covers_launch_ramp_and_set_up(self):
        self.assertEqual(shards.lead_s(["--clients", 6000, "--ramp", 2]), 3 + 2 + 1)
        self.assertEqual(shards.lead_s(["--clients", 100000]), 3 + 17)


class PrintedCommands(Scratch):
    """What srun and a Kubernetes Indexed Job would run, run here once per shard with the
    variables the launcher sets, then the merge the driver printed."""

    def run_shards(self, n, line, env_of):
        ps = [subprocess.Popen(["sh", "-c", line], env=dict(os.environ, **env_of(i)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(n)]
        for p in ps:
            _, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, err)

    def test_srun_lines(self):
        _, port = harness.start_server("udp", "-q", test=self)
        text = shards.srun_text(3, lg_args("udp", port, "srun1", 30), self.tmp, 4,
                                loadgen=LOADGEN)
        export, srun, merge = text.strip().split("\n")
        self.assertRegex(export, r"^export T=\$\(\( \$\(date \+%s\) \+ 4 \)\)")
        words = shlex.split(srun)
        self.assertEqual(words[:4], ["srun", "--ntasks", "3", "--kill-on-bad-exit=1"])
        self.assertEqual(words[4:6], ["sh", "-c"])
        t = f"{time.time() + 3:.3f}"
        self.run_shards(3, words[6], lambda i: {"T": t, "SLURM_PROCID": str(i),
                                                "SLURM_NTASKS": "3"})
        m = subprocess.run(merge, shell=True, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(m.returncode, 0, m.stderr)
        merged = read_rows(os.path.join(self.tmp, "merged", "summary.csv"))[-1]
        self.assertEqual((merged["connected"], merged["shards"]), ("30", "3"))
        self.assertEqual(sorted(os.listdir(self.tmp)),
                         ["merged", "shard-0", "shard-1", "shard-2"])

    @unittest.skipUnless(yaml is not None, "needs PyYAML (python3-yaml)")
    def test_kubernetes_manifest(self):
        _, port = harness.start_server("udp", "-q", test=self)
        text = shards.kubectl_text(2, lg_args("udp", port, "k1", 20), self.tmp, 120)
        self.assertIn("# k1: 2 loadgen shards as a Kubernetes Indexed Job", text)
        job = yaml.safe_load(text)
        spec = job["spec"]
        self.assertEqual((spec["completionMode"], spec["completions"], spec["parallelism"]),
                         ("Indexed", 2, 2))
        c = spec["template"]["spec"]["containers"][0]
        self.assertEqual(c["command"][:2], ["sh", "-c"])
        line = c["command"][2]
        self.assertIn("--shards 2", line)
        # the pod's environment: its index, START_AT from the manifest's sed, the image's
        # PATH (loadgen on it)
        t = f"{time.time() + 3:.3f}"
        path = harness.BIN + os.pathsep + os.environ.get("PATH", "")
        self.run_shards(2, line, lambda i: {"JOB_COMPLETION_INDEX": str(i), "START_AT": t,
                                            "PATH": path})
        m = subprocess.run([LOADGEN, "merge", *(os.path.join(self.tmp, f"shard-{i}")
                                                for i in range(2)),
                            "--out", os.path.join(self.tmp, "merged")],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(m.returncode, 0, m.stderr)
        merged = read_rows(os.path.join(self.tmp, "merged", "summary.csv"))[-1]
        self.assertEqual((merged["connected"], merged["shards"], merged["shard_source"]),
                         ("20", "2", "merge"))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    unittest.main()
