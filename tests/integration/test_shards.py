"""test_shards: one run as N loadgen processes (shards) against a real server.

Which shard a process is comes from --shard I/N or from the launcher's environment; the
shards' clients are disjoint, together are the run's, and rooms stay whole. The server's own
log says which client ids connected.
"""
import json
import os
import re
import socket
import subprocess
import tempfile
import unittest

import harness

LOADGEN = os.path.join(harness.BIN, "loadgen")
RUN_TIMEOUT = 90


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((harness.HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*args, env=None, timeout=RUN_TIMEOUT):
    e = dict(os.environ)
    for k in list(e):  # a test run under a launcher must not leak its own shard into ours
        if k.startswith(("OMPI_", "PMI_", "SLURM_")) or k == "JOB_COMPLETION_INDEX":
            del e[k]
    e.update(env or {})
    return subprocess.run([LOADGEN, *args], capture_output=True, text=True, timeout=timeout,
                          env=e)


def start_shards(argv_of, n, env_of=None):
    """Starts n loadgens at once (argv_of(i), env_of(i)); returns their (rc, json, stderr)."""
    procs = []
    for i in range(n):
        e = dict(os.environ)
        e.update(env_of(i) if env_of else {})
        procs.append(subprocess.Popen([LOADGEN, *argv_of(i)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=e))
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


if __name__ == "__main__":
    unittest.main()
