"""test_k8s: deploy/k8s/loadgen-indexed-job.yaml, the Kubernetes Indexed Job README shows.

Parsed with PyYAML: an Indexed Job of the Dockerfile's image whose pods run loadgen with
--shards equal to its completions, the shard from JOB_COMPLETION_INDEX, one --start-at and a
directory per shard on the mounted volume. Then its command itself runs here, once per index
as Kubernetes would (same shell line; only the server address, the sizes and the volume
path changed), against a real udp_server, and loadgen merge adds the shards up.
"""
import csv
import os
import re
import shlex
import subprocess
import tempfile
import time
import unittest

import harness

try:
    import yaml
except ImportError:  # scripts/deps.sh test installs python3-yaml
    yaml = None

MANIFEST = os.path.join(harness.ROOT, "deploy", "k8s", "loadgen-indexed-job.yaml")
RUN_TIMEOUT = 90


def opt(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


@unittest.skipUnless(yaml is not None, "needs PyYAML (python3-yaml)")
class IndexedJob(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(MANIFEST, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        assert len(docs) == 1, "one Job in the manifest"
        cls.job = docs[0]
        cls.pod = cls.job["spec"]["template"]["spec"]
        cls.container = cls.pod["containers"][0]
        sh = cls.container["command"]
        assert sh[:2] == ["sh", "-c"], sh
        cls.line = sh[2]
        words = shlex.split(cls.line)  # the shell's words, $VARS not yet expanded
        assert words[:2] == ["exec", "loadgen"], words
        cls.argv = words[2:]

    def test_an_indexed_job_of_our_image(self):
        self.assertEqual((self.job["apiVersion"], self.job["kind"]), ("batch/v1", "Job"))
        spec = self.job["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        self.assertEqual(spec["parallelism"], spec["completions"])  # all shards at once
        with open(os.path.join(harness.ROOT, "Makefile")) as f:
            version = re.search(r"^VERSION := (\S+)", f.read(), re.M).group(1)
        with open(os.path.join(harness.ROOT, "Dockerfile")) as f:
            self.assertIn(f"docker build -t chatbench:{version} .", f.read())
        self.assertEqual(self.container["image"], f"chatbench:{version}")
        self.assertEqual(self.pod["restartPolicy"], "Never")

    def test_the_shard_contract(self):
        self.assertEqual(int(opt(self.argv, "--shards")), self.job["spec"]["completions"])
        self.assertNotIn("--shard", self.argv)  # the index comes from Kubernetes
        self.assertEqual(opt(self.argv, "--start-at"), "$START_AT")
        env = {e["name"]: e["value"] for e in self.container["env"]}
        self.assertEqual(env["START_AT"], "@START_AT@")  # filled in by the README's sed
        out = opt(self.argv, "--out")
        self.assertIn("$JOB_COMPLETION_INDEX", out)  # a directory per shard
        mount = self.container["volumeMounts"][0]["mountPath"]
        self.assertTrue(out.startswith(mount + "/"), (out, mount))
        # every pod needs as many descriptors as its share of the clients
        clients = int(opt(self.argv, "--clients")) // self.job["spec"]["completions"]
        self.assertLess(clients, 20000)

    def test_its_command_runs_and_merges(self):
        _, port = harness.start_server("udp", "-q", test=self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        mount = self.container["volumeMounts"][0]["mountPath"]
        line = self.line  # the pod's shell line, with these values changed and nothing else
        for name, value in (("--host", harness.HOST), ("--port", str(port)), ("--clients", "40"),
                            ("--duration", "1"), ("--warmup", "0.3"), ("--ramp", "0")):
            line, k = re.subn(rf"{name} \S+", f"{name} {value}", line)
            self.assertEqual(k, 1, name)
        self.assertEqual(line.count(f'"{mount}/'), 1)
        line = line.replace(f'"{mount}/', f'"{tmp.name}/')
        argv = shlex.split(line)
        n = self.job["spec"]["completions"]
        start = f"{time.time() + 3:.3f}"
        env = dict(os.environ, PATH=harness.BIN + ":" + os.environ["PATH"], START_AT=start)
        procs = [subprocess.Popen(["sh", "-c", line], env=dict(env, JOB_COMPLETION_INDEX=str(i)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(n)]
        for p in procs:
            out, err = p.communicate(timeout=RUN_TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
        base = os.path.dirname(opt(argv, "--out"))  # .../shard-$JOB_COMPLETION_INDEX
        dirs = sorted(os.path.join(base, d) for d in os.listdir(base))
        self.assertEqual(len(dirs), n)
        merged = os.path.join(tmp.name, "merged")
        p = subprocess.run([os.path.join(harness.BIN, "loadgen"), "merge", *dirs, "--out",
                            merged, "--quiet"], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(merged, "summary.csv"), newline="") as f:
            m = list(csv.DictReader(f))[-1]
        self.assertEqual((m["shards"], m["connected"]), (str(n), "40"))
        self.assertEqual(m["label"], opt(self.argv, "--label"))
        for d in dirs:
            with open(os.path.join(d, "summary.csv"), newline="") as f:
                self.assertEqual(list(csv.DictReader(f))[-1]["shard_source"],
                                 "JOB_COMPLETION_INDEX")


if __name__ == "__main__":
    unittest.main()
