"""test_shards: one run as N loadgen processes (shards) against a real server.

Which shard a process is comes from --shard I/N or from the launcher's environment; the
shards' clients are disjoint, together are the run's, and rooms stay whole. The server's own
log says which client ids connected.
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
import test_hlog
from pylib import netns
from pylib.ports import free_port

LOADGEN = os.path.join(harness.BIN, "loadgen")
RUN_TIMEOUT = 90


def run(*args, env=None, timeout=RUN_TIMEOUT):
    e = dict(os.environ)
    for k in list(e):  # a test run under a launcher must not leak its own shard into ours
        if k.startswith(("OMPI_", "PMI_", "SLURM_")) or k == "JOB_COMPLETION_INDEX":
            del e[k]
    e.update(env or {})
    return subprocess.run([LOADGEN, *args], capture_output=True, text=True, timeout=timeout,
                          env=e)


def start_shards(argv_of, n):
    """Starts n loadgens at once (argv_of(i)); returns their (rc, json, stderr)."""
    procs = []
    for i in range(n):
        procs.append(subprocess.Popen([LOADGEN, *argv_of(i)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        o, err = p.communicate(timeout=RUN_TIMEOUT)
        out.append((p.returncode, json.loads(o) if o.strip() else None, err))
    return out


class ShardSource(unittest.TestCase):
    """Where the shard comes from; no server needed (the run fails, the summary says)."""

    def summary(self, *args, env=None):
        p = run("--port", str(free_port()), "--clients", "8", "--duration", "0.2",
                "--warmup", "0", "--json", *args, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)  # nobody listens
        return json.loads(p.stdout)

    def test_unsharded(self):
        s = self.summary()
        self.assertEqual((s["shard"], s["shards"], s["shard_source"]), ("0", 1, "none"))
        self.assertEqual(s["shard_clients"], 8)

    def test_from_each_launcher(self):
        cases = [
            ({}, ["--shard", "1/4"], "1", 4, "--shard", 2),
            ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"}, [], "2", 3,
             "OMPI_COMM_WORLD_RANK/SIZE", 2),
            ({"PMI_RANK": "0", "PMI_SIZE": "2"}, [], "0", 2, "PMI_RANK/SIZE", 4),
            ({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, [], "1", 2, "SLURM_PROCID/NTASKS", 4),
            ({"JOB_COMPLETION_INDEX": "3"}, ["--shards", "4"], "3", 4, "JOB_COMPLETION_INDEX", 2),
        ]
        for env, args, shard, shards, source, clients in cases:
            with self.subTest(source=source):
                s = self.summary(*args, env=env)
                self.assertEqual((s["shard"], s["shards"], s["shard_source"]),
                                 (shard, shards, source))
                self.assertEqual(s["shard_clients"], clients)  # 8 rooms of 1, round-robin
                self.assertEqual(s["clients"], 8)  # the run's

    def test_refused(self):
        cases = [
            ({"OMPI_COMM_WORLD_RANK": "1"}, [], "OMPI_COMM_WORLD_SIZE is not"),
            ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "SLURM_PROCID": "0",
              "SLURM_NTASKS": "1"}, [], "--launcher ompi or --launcher slurm"),
            ({"PMI_RANK": "1", "PMI_SIZE": "2"}, ["--shard", "0/2"], "drop --shard"),
            ({"JOB_COMPLETION_INDEX": "1"}, [], "give --shards N"),
            ({}, ["--shard", "2/2"], "--shard '2/2'"),
            ({}, ["--shard", "3/9", "--clients", "4", "--room-size", "2"], "has no clients"),
        ]
        for env, args, says in cases:
            with self.subTest(says=says):
                p = run("--port", str(free_port()), *args, env=env)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(says, p.stderr)
                self.assertEqual(p.stdout, "")
        # --launcher picks one when they disagree
        s = self.summary("--launcher", "slurm", env=cases[1][0])
        self.assertEqual((s["shard"], s["shards"]), ("0", 1))


class ShardsShareAServer(unittest.TestCase):
    def test_three_shards_split_the_run(self):
        # 10 clients in rooms of 3 (rooms 0..3, the last of 1 client) over 3 shards
        server, port = harness.start_server("tcp", test=self)  # logs every [CONNECT]
        res = start_shards(lambda i: ["--proto", "tcp", "--port", str(port), "--clients", "10",
                                      "--room-size", "3", "--rate", "20", "--duration", "1",
                                      "--warmup", "0.2", "--shard", f"{i}/3", "--json"], 3)
        ids = {}
        for i, (rc, s, err) in enumerate(res):
            self.assertEqual(rc, 0, err)
            self.assertEqual(s["connected"], s["shard_clients"])
            self.assertEqual(s["acked"], s["sent"])
            self.assertGreater(s["sent"], 0)
        self.assertEqual([s["shard_clients"] for _, s, _ in res], [4, 3, 3])
        for line in server.lines:
            m = re.match(r"\[CONNECT\] Cliente (L[0-9a-f]{8})-(\d+) ", line)
            if m:
                ids.setdefault(m.group(1), set()).add(int(m.group(2)))
        self.assertEqual(len(ids), 3)  # one id prefix per process
        self.assertEqual(sorted(k for v in ids.values() for k in v), list(range(10)))
        for clients in ids.values():  # each process holds whole rooms, round-robin
            self.assertEqual(len({(k // 3) % 3 for k in clients}), 1, clients)
        for _, s, _ in res[1:]:  # one full room each: every MSG fans out to the other two
            self.assertEqual(s["fanout_expected"], 2 * s["sent"])
            self.assertEqual(s["fanout_received"], s["fanout_expected"])
        # shard 0: room 0 fans out, room 3 (client 9 alone) does not
        s0 = res[0][1]
        self.assertEqual(s0["fanout_received"], s0["fanout_expected"])
        self.assertTrue(0 < s0["fanout_expected"] < 2 * s0["sent"], s0)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def hist_counts(path):
    """{index: count} and the stats line (clamped, min, max, sum) of a hist_save file."""
    counts, stats = {}, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[0].isdigit():
                counts[int(w[0])] = int(w[1])
            elif w and w[0] == "stats":
                stats = w[1:]
    return counts, stats


# counters a merge must sum exactly (the loss split and rates are recomputed instead)
COUNTERS = ["sent", "acked", "lost", "late", "duplicates", "reordered", "fanout_expected",
            "fanout_received", "fanout_duplicates", "connected", "connect_failed", "errors",
            "behind", "bytes_sent_wire", "bytes_recv_wire", "bytes_sent_wire_total",
            "bytes_recv_wire_total", "sent_all", "loss_uplink_est", "loss_tail",
            "jitter_samples", "fanout_last_incomplete", "keepalives"]
KINDS = ["ack", "ack_raw", "fanout", "fanout_last", "connect", "lag", "rx_lag"]


class MergeShards(unittest.TestCase):
    def check_merged(self, shard_dir, merged_dir, label, n):
        """The merged row's counters are the shards' sums; its .hist files hold every shard's
        counts, bucket by bucket, with the extreme min and max; the merged .hlog adds up to
        them. Returns (merged row, shard rows)."""
        rows = [r for r in read_rows(os.path.join(shard_dir, "summary.csv"))
                if r["label"] == label]
        self.assertEqual(sorted(r["shard"] for r in rows), [str(i) for i in range(n)])
        m = read_rows(os.path.join(merged_dir, "summary.csv"))[-1]
        self.assertEqual((m["shard"], m["shards"], m["shard_source"]), ("all", str(n), "merge"))
        for c in COUNTERS:
            self.assertEqual(int(m[c]), sum(int(r[c]) for r in rows), c)
        self.assertEqual(int(m["threads"]), sum(int(r["threads"]) for r in rows))
        self.assertEqual(int(m["shard_clients"]), int(m["clients"]))
        # the shards set up side by side: the run's set-up took as long as the slowest's
        self.assertEqual(float(m["setup_s"]), max(float(r["setup_s"]) for r in rows))
        for kind in KINDS:
            merged, mstats = hist_counts(os.path.join(merged_dir, f"{label}.{kind}.hist"))
            want, lo, hi = {}, [], []
            for i in range(n):
                c, st = hist_counts(os.path.join(shard_dir, f"{label}.shard{i}.{kind}.hist"))
                for k, v in c.items():
                    want[k] = want.get(k, 0) + v
                if c:
                    lo.append(int(st[1]))
                    hi.append(int(st[2]))
            self.assertEqual(merged, want, kind)
            if want:
                self.assertEqual((int(mstats[1]), int(mstats[2])), (min(lo), max(hi)), kind)
        # the merged interval log: every kind's intervals add up to its .hist
        with open(os.path.join(merged_dir, f"{label}.hlog")) as f:
            tags = [l.split(",")[0][4:] for l in f if l.startswith("Tag=")]
        for kind in KINDS:
            self.assertEqual(kind in tags, bool(hist_counts(
                os.path.join(merged_dir, f"{label}.{kind}.hist"))[0]), kind)
        return m, rows

    def test_merge_adds_the_shards(self):
        _, port = harness.start_server("udp", "-q", test=self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        out, merged = os.path.join(tmp.name, "shards"), os.path.join(tmp.name, "merged")
        start = time.time() + 3
        res = start_shards(lambda i: ["--proto", "udp", "--port", str(port), "--clients", "12",
                                      "--room-size", "2", "--rate", "40", "--duration", "2",
                                      "--warmup", "0.5", "--interval", "0.5", "--shard",
                                      f"{i}/3", "--start-at", f"{start:.3f}", "--label", "m",
                                      "--out", out, "--json"], 3)
        for rc, s, err in res:
            self.assertEqual(rc, 0, err)
            # each shard's warm-up began at --start-at, within scheduling noise
            self.assertGreaterEqual(s["t0_unix"], start - 0.001)
            self.assertLess(s["t0_unix"], start + 0.5)
            self.assertEqual(s["start_at"], round(start, 3))
        p = subprocess.run([LOADGEN, "merge", out, "--out", merged, "--json"],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("line up", p.stderr)  # one window: --start-at worked
        m, rows = self.check_merged(out, merged, "m", 3)
        self.assertEqual(json.loads(p.stdout)["sent"], int(m["sent"]))
        self.assertEqual(int(m["connected"]), 12)
        self.assertGreater(int(m["sent"]), 0)
        # rates over the common window: one window of --duration
        self.assertAlmostEqual(float(m["measured_s"]), 2.0, delta=0.2)
        self.assertAlmostEqual(float(m["achieved_rate_msgs"]),
                               int(m["sent"]) / float(m["measured_s"]), delta=0.01)
        self.assertEqual(int(m["acked"]) + int(m["lost"]), int(m["sent"]))
        if test_hlog.java_available():  # HdrHistogram reads the merged log: same totals
            decoded = test_hlog.java_check(os.path.join(merged, "m.hlog"), tmp.name)
            for kind in KINDS:
                total = sum(hist_counts(os.path.join(merged, f"m.{kind}.hist"))[0].values())
                self.assertEqual(decoded.get(kind, (0,))[0], total, kind)

    def shard_without_server(self, out, shard, *args):
        p = run("--port", str(free_port()), "--clients", "4", "--duration", "0.2",
                "--warmup", "0", "--shard", shard, "--label", "x", "--out", out, "--quiet", *args)
        self.assertEqual(p.returncode, 1, p.stderr)  # no server: still a row and files

    def test_merge_refuses_what_is_not_one_run(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        a, b, c = (os.path.join(tmp.name, d) for d in "abc")
        self.shard_without_server(a, "0/2", "--rate", "10")
        self.shard_without_server(b, "1/2", "--rate", "20")
        self.shard_without_server(c, "0/2", "--rate", "10")
        d = os.path.join(tmp.name, "d")
        port = read_rows(os.path.join(a, "summary.csv"))[0]["port"]  # a only by its ping
        self.shard_without_server(d, "1/2", "--rate", "10", "--ping-interval", "9", "--port",
                                  port)
        cases = [([a, b], "shard 1 has rate_per_client 20, shard 0 has 10"),
                 ([a, d], "shard 1 has ping_interval_s 9, shard 0 has 5"),
                 ([a], "1 of its 2 shards"),
                 ([a, c], "shard 0 appears twice"),
                 ([os.path.join(tmp.name, "none")], "No such file")]
        for dirs, says in cases:
            with self.subTest(says=says):
                p = subprocess.run([LOADGEN, "merge", *dirs, "--out",
                                    os.path.join(tmp.name, "m")], capture_output=True,
                                   text=True, timeout=RUN_TIMEOUT)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(says, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(tmp.name, "m", "summary.csv")))
        for args in ([], [a], ["--out", a], [a, "--out", a, "--bogus"]):
            p = subprocess.run([LOADGEN, "merge", *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, (args, p.stderr))


class SourcesAndCpus(unittest.TestCase):
    def test_source_addresses_share_the_clients(self):
        for kind in ("tcp", "udp"):
            with self.subTest(kind=kind):
                server, port = harness.start_server(kind, test=self)
                p = run("--proto", kind, "--port", str(port), "--clients", "6", "--rate", "5",
                        "--duration", "0.5", "--warmup", "0", "--source",
                        "127.0.0.2,127.0.0.3-127.0.0.4", "--json")
                self.assertEqual(p.returncode, 0, p.stderr)
                s = json.loads(p.stdout)
                self.assertEqual(s["source_addrs"], 3)
                self.assertEqual(s["connected"], 6)
                word = r"conectado de" if kind == "tcp" else r"registrado de"
                froms = [m.group(1) for m in
                         (re.search(word + r" (127\.0\.0\.\d+):\d+", l) for l in server.lines)
                         if m]
                self.assertEqual(sorted(froms), ["127.0.0.2"] * 2 + ["127.0.0.3"] * 2 +
                                 ["127.0.0.4"] * 2)
        for bad in ("8.8.8.8", "127.0.0.9-127.0.0.2", "localhost", "127.0.0.1,"):
            p = run("--source", bad)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertIn("--source", p.stderr)

    def test_cpus_pin_the_workers(self):
        ncpu = len(os.sched_getaffinity(0))
        cpus_arg = "0-1" if ncpu >= 2 else "0"
        _, port = harness.start_server("udp", "-q", test=self)
        p = subprocess.Popen([LOADGEN, "--proto", "udp", "--port", str(port), "--clients", "4",
                              "--threads", "2", "--rate", "5", "--duration", "3", "--warmup",
                              "0", "--cpus", cpus_arg, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        # the workers by their thread names (a sanitizer may add threads of its own)
        allowed = {}
        deadline = time.monotonic() + 20
        while len(allowed) < 3 and time.monotonic() < deadline:  # main and two workers
            time.sleep(0.1)
            for task in glob.glob(f"/proc/{p.pid}/task/*"):
                try:
                    with open(os.path.join(task, "comm")) as f:
                        name = f.read().strip()
                    with open(os.path.join(task, "status")) as f:
                        cpus = [l.split(":", 1)[1].strip() for l in f
                                if l.startswith("Cpus_allowed_list:")][0]
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if name.startswith("lg-worker-") or task.endswith(f"/{p.pid}"):
                    allowed["main" if task.endswith(f"/{p.pid}") else name] = cpus
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(json.loads(out)["loadgen_cpus"], cpus_arg)
        if ncpu >= 2:  # main on the set, one worker on each CPU
            self.assertEqual(allowed, {"main": "0-1", "lg-worker-0": "0", "lg-worker-1": "1"})
        else:
            self.assertEqual(allowed, {"main": "0", "lg-worker-0": "0", "lg-worker-1": "0"})
        for bad in ("9999", "1-0", "a"):
            q = run("--cpus", bad)
            self.assertEqual(q.returncode, 2, q.stderr)
            self.assertIn("--cpus", q.stderr)

    def test_busy_poll_spins_on_its_own_cpu(self):
        # --busy-poll: the worker never sleeps, so its CPU time is about its run time (a
        # sleeping worker at 200 msg/s uses about 1 %); every message is still answered
        for kind in ("tcp", "udp"):
            with self.subTest(kind=kind):
                _, port = harness.start_server(kind, "-q", test=self)
                p = run("--proto", kind, "--port", str(port), "--clients", "4", "--rate", "50",
                        "--duration", "1", "--warmup", "0", "--threads", "1", "--cpus", "0",
                        "--busy-poll", "--json")
                self.assertEqual(p.returncode, 0, p.stderr)
                s = json.loads(p.stdout)
                self.assertEqual((s["busy_poll"], s["loadgen_cpus"]), (1, "0"))
                self.assertEqual(s["acked"], s["sent"])
                self.assertGreater(s["sent"], 100)
                self.assertGreater(s["cpu_user_s"] + s["cpu_sys_s"], 0.3 * s["measured_s"])
        # a spinning worker needs a CPU of its own
        for args in ((), ("--cpus", "0", "--threads", "2")):
            q = run("--busy-poll", "--clients", "4", *args)
            self.assertEqual(q.returncode, 2, q.stderr)
            self.assertIn("--busy-poll needs --cpus", q.stderr)

    def test_late_start_at_says_so(self):
        # --start-at already past when the set-up ends: the run starts at once, and says it
        _, port = harness.start_server("tcp", "-q", test=self)
        p = run("--proto", "tcp", "--port", str(port), "--clients", "2", "--duration", "0.3",
                "--warmup", "0", "--start-at", f"{time.time() - 5:.3f}", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("does not line up", p.stderr)
        s = json.loads(p.stdout)
        self.assertGreater(s["t0_unix"], s["start_at"] + 4)
        for bad in ("12", "now", f"{time.time() + 2 * 86400:.0f}"):
            q = run("--start-at", bad)
            self.assertEqual(q.returncode, 2, q.stderr)
            self.assertIn("--start-at", q.stderr)


MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


@unittest.skipUnless(shutil.which("mpirun"), "needs Open MPI's mpirun (scripts/deps.sh test)")
class MpiRun(unittest.TestCase):
    """Shards started by a launcher that exists: Open MPI's mpirun, as root in a container
    (--allow-run-as-root and its two environment variables), three ranks, then the merge."""

    LG = ["--proto", "tcp", "--clients", "12", "--room-size", "2", "--rate", "20",
          "--duration", "2", "--warmup", "0.5", "--label", "mpi", "--quiet"]

    def merge_and_check(self, out, tmp):
        merged = os.path.join(tmp, "merged")
        p = subprocess.run([LOADGEN, "merge", out, "--out", merged, "--quiet"],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("line up", p.stderr)
        m, rows = MergeShards.check_merged(self, out, merged, "mpi", 3)
        for r in rows:
            self.assertEqual(r["shard_source"], "OMPI_COMM_WORLD_RANK/SIZE")
            self.assertEqual(r["shards"], "3")
        # TCP loses nothing, in every shard and so in the sum
        self.assertEqual(int(m["connected"]), 12)
        self.assertGreater(int(m["sent"]), 0)
        self.assertEqual(int(m["lost"]), 0)
        self.assertEqual(int(m["acked"]), int(m["sent"]))
        self.assertEqual(int(m["fanout_received"]), int(m["fanout_expected"]))
        self.assertEqual(int(m["fanout_expected"]), int(m["sent"]))  # rooms of 2
        return rows

    def test_mpirun_three_ranks(self):
        _, port = harness.start_server("tcp", "-q", test=self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        out = os.path.join(tmp.name, "out")
        p = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "3",
                            "--mca", "btl", "self,tcp", LOADGEN, *self.LG, "--port", str(port),
                            "--start-at", f"{time.time() + 4:.3f}", "--out", out],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT,
                           env=dict(os.environ, **MPI_ENV))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.merge_and_check(out, tmp.name)

    @unittest.skipUnless(netns.can_netns(nft=False)[0] and shutil.which("nsenter"),
                         "needs root and network namespaces")
    def test_mpirun_ranks_as_hosts(self):
        # each rank in its own namespace and address, as on three machines
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        out, log = os.path.join(tmp.name, "out"), os.path.join(tmp.name, "server.log")
        p = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                         "mpi_hosts.py"),
                            "--hosts", "3", "--server", "tcp", "--log", log, "--", *self.LG,
                            "--host", "{server}", "--port", "{port}", "--start-at",
                            f"{time.time() + 5:.3f}", "--out", out],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT * 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual(r["rc"], 0, r["stdout"] + r["stderr"])
        rows = self.merge_and_check(out, tmp.name)
        self.assertEqual({x["host"] for x in rows}, {r["server"]})
        # the server saw each host's address bring exactly one shard's clients
        by_addr = {}
        with open(log) as f:
            for line in f:
                m = re.match(r"\[CONNECT\] Cliente L[0-9a-f]{8}-(\d+) conectado de ([\d.]+):",
                             line)
                if m:
                    by_addr.setdefault(m.group(2), set()).add(int(m.group(1)))
        self.assertEqual(sorted(by_addr), sorted(r["hosts"]))
        shards = {frozenset(k for k in range(12) if (k // 2) % 3 == i) for i in range(3)}
        self.assertEqual({frozenset(v) for v in by_addr.values()}, shards)


if __name__ == "__main__":
    unittest.main()
