"""test_docker: docker-compose.yml and the Dockerfile against the local build, no Docker engine.

No engine runs here, so the images are never built. What can be checked is checked:
- `docker-compose config -q` (or `docker compose config -q`) parses the file, when installed;
- every program a compose service runs exists in bin/ and accepts the exact argv it is given:
  the servers' argv on 127.0.0.1 with --port 0, each loadgen's argv for 1 s against them with
  its service host name replaced by "localhost" (resolved by getaddrinfo, as a service name is
  in a container), writing into a temporary folder instead of the mounted /results;
- each server's healthcheck, run here with its port, finds the server listening, and the
  healthcheck's port is the one the server is given;
- the runtime image's apt-get install line covers every shared library the programs load.
Compose commands are one-line JSON-style lists (the file says so), which the stdlib reads.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

COMPOSE = os.path.join(harness.ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(harness.ROOT, "Dockerfile")
RUN_TIMEOUT = 60  # seconds for one short loadgen run, set-up and drain included
# Packages of debian:bookworm-slim itself (Priority: required) that the programs load.
SLIM_BASE = {"libc6", "libtinfo6", "zlib1g"}


def read_compose():
    """{service: {"command": [...], "healthcheck": [...] or None, "volumes": [...]}}."""
    services, cur, in_services = {}, None, False
    with open(COMPOSE, encoding="utf-8") as f:
        for line in f:
            if re.match(r"^\S", line):
                in_services = line.startswith("services:")
                cur = None
                continue
            if not in_services:
                continue
            m = re.match(r"^  ([A-Za-z0-9_.-]+):\s*$", line)
            if m:
                cur = services.setdefault(m.group(1), {"command": None, "healthcheck": None,
                                                       "volumes": []})
                continue
            m = re.match(r"^\s+(command|test|volumes):\s*(\[.*\])\s*$", line)
            if m and cur is not None:
                key = {"test": "healthcheck"}.get(m.group(1), m.group(1))
                cur[key] = json.loads(m.group(2))
    return services


def opt(argv, name):
    """The value after option name in argv (None when absent)."""
    return argv[argv.index(name) + 1] if name in argv else None


def with_opt(argv, name, value):
    """argv with option name's value replaced (appended when absent)."""
    out = list(argv)
    if name in out:
        out[out.index(name) + 1] = value
    else:
        out += [name, value]
    return out


def compose_cli():
    """argv prefix of an installed compose CLI, or None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        p = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if p.returncode == 0:
            return ["docker", "compose"]
    return None


class ComposeFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.services = read_compose()

    def servers(self):
        return {n: s for n, s in self.services.items()
                if s["command"] and s["command"][0].endswith("_server")}

    def loadgens(self):
        return {n: s for n, s in self.services.items()
                if s["command"] and s["command"][0] == "loadgen"}

    def test_services_present(self):
        self.assertEqual(set(self.servers()), {"tcp_server", "udp_server"})
        self.assertEqual({opt(s["command"], "--proto") for s in self.loadgens().values()},
                         {"tcp", "udp"})
        for name, s in self.services.items():
            self.assertIsNotNone(s["command"], f"{name}: no one-line command list")

    @unittest.skipUnless(compose_cli(), "neither docker-compose nor docker compose installed")
    def test_compose_config_parses(self):
        cli = compose_cli()
        p = subprocess.run(cli + ["-f", COMPOSE, "config", "-q"], capture_output=True, text=True,
                           cwd=harness.ROOT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(cli + ["-f", COMPOSE, "config", "--services"], capture_output=True,
                           text=True, cwd=harness.ROOT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the real parser and this file's line reader see the same services
        self.assertEqual(set(p.stdout.split()), set(self.services))

    def test_programs_exist(self):
        for name, s in self.services.items():
            path = os.path.join(harness.BIN, s["command"][0])
            self.assertTrue(os.access(path, os.X_OK), f"{name}: {path} missing (make?)")

    def start(self, name):
        """Starts service name's server argv on loopback, a free port; returns (proc, port)."""
        argv = self.services[name]["command"]
        self.assertEqual(opt(argv, "--host"), "0.0.0.0", f"{name}: unreachable in a container")
        argv = with_opt(with_opt(argv, "--host", harness.HOST), "--port", "0")
        proc = harness.Proc([os.path.join(harness.BIN, argv[0]), *argv[1:]])
        self.addCleanup(proc.stop)
        word = "TCP" if argv[0] == "tcp_server" else "UDP"
        m = proc.wait_line(rf"\[INFO\] Servidor {word} iniciado na porta (\d+)")
        return proc, int(m.group(1))

    def healthcheck(self, name, port):
        """Runs service name's healthcheck with its port replaced by port; returns exit code."""
        test = self.services[name]["healthcheck"]
        self.assertIsNotNone(test, f"{name}: no healthcheck (loadgen would start too early)")
        self.assertEqual(test[0], "CMD")
        want = "%04X" % int(opt(self.services[name]["command"], "--port"))
        self.assertTrue(any(f":{want} " in a for a in test[1:]),
                        f"{name}: healthcheck does not look for port {want} (hex)")
        argv = [a.replace(f":{want} ", f":{port:04X} ") for a in test[1:]]
        return subprocess.run(argv, timeout=30).returncode

    def test_servers_argv_and_healthchecks(self):
        for name in sorted(self.servers()):
            with self.subTest(service=name):
                proc, port = self.start(name)
                self.assertEqual(self.healthcheck(name, port), 0,
                                 f"{name}: healthcheck misses a listening server")
                self.assertEqual(proc.stop(), 0, f"{name}: no clean exit on SIGTERM")
                self.assertNotEqual(self.healthcheck(name, port), 0,
                                    f"{name}: healthcheck passes with no server")

    def test_loadgen_argv_runs_against_servers(self):
        for name, s in sorted(self.loadgens().items()):
            with self.subTest(service=name):
                argv = s["command"]
                target = opt(argv, "--host")
                self.assertIn(target, self.servers(), f"{name}: --host is not a server service")
                self.assertEqual(opt(argv, "--port"),
                                 opt(self.services[target]["command"], "--port"))
                out = opt(argv, "--out")
                mounts = [v.split(":")[1] for v in s["volumes"]]
                self.assertTrue(any(out == m or out.startswith(m + "/") for m in mounts),
                                f"{name}: --out {out} is not in a mounted folder {mounts}")
                _, port = self.start(target)
                tmp = tempfile.mkdtemp(prefix="chatbench-docker-")
                self.addCleanup(shutil.rmtree, tmp, True)
                outdir = os.path.join(tmp, out.lstrip("/"))
                run = with_opt(with_opt(argv, "--host", "localhost"), "--port", str(port))
                run = with_opt(with_opt(run, "--duration", "1"), "--out", outdir)
                p = subprocess.run([os.path.join(harness.BIN, run[0]), *run[1:]],
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT)
                self.assertEqual(p.returncode, 0, f"{run}\n{p.stdout}\n{p.stderr}")
                with open(os.path.join(outdir, "summary.csv"), newline="") as f:
                    rows = list(csv.DictReader(f))
                self.assertEqual(len(rows), 1)
                self.assertEqual(rows[0]["label"], opt(argv, "--label"))

    def test_no_loadgen_shares_an_output_folder(self):
        outs = [opt(s["command"], "--out") for s in self.loadgens().values()]
        self.assertEqual(len(outs), len(set(outs)), "two runs appending to one summary.csv")


def runtime_packages():
    """Packages the Dockerfile's last stage installs with apt-get install."""
    with open(DOCKERFILE, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM\s", text)
    installs = re.findall(r"apt-get install ([^&\n]*)", stages[-1])
    return {w for line in installs for w in line.split() if not w.startswith("-")}


def package_of(lib):
    """Debian package owning shared library path lib (ldd's path may be the /lib alias)."""
    p = subprocess.run(["dpkg-query", "-S", "*/" + os.path.basename(lib)], capture_output=True,
                       text=True)
    for line in p.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        if os.path.realpath(path) == os.path.realpath(lib):
            return pkg.split(":")[0]
    return None


@unittest.skipUnless(shutil.which("ldd") and shutil.which("dpkg-query"), "needs ldd and dpkg")
class RuntimeImage(unittest.TestCase):
    def test_runtime_stage_installs_every_loaded_library(self):
        # bin/ itself: the image is built from a plain make, not from a sanitizer build
        programs = [os.path.join(harness.ROOT, "bin", n) for n in sorted(
            {s["command"][0] for s in read_compose().values()} |
            {"tcp_client", "udp_client", "udp_impair"})]
        programs = [p for p in programs if os.access(p, os.X_OK)]
        if not programs:
            self.skipTest("bin/ is not built")
        have = runtime_packages() | SLIM_BASE
        self.assertIn("libevent-2.1-7", have)
        for prog in programs:
            p = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True)
            libs = re.findall(r"(/\S+) \(0x", p.stdout)
            self.assertTrue(libs, p.stdout)
            self.assertNotIn("not found", p.stdout)
            for lib in libs:
                pkg = package_of(lib)
                self.assertIsNotNone(pkg, f"{prog}: no package owns {lib}")
                self.assertIn(pkg, have, f"{prog} loads {lib} from {pkg}, which the "
                                         f"runtime stage does not install")


if __name__ == "__main__":
    unittest.main()
