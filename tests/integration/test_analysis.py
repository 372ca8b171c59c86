"""test_analysis: the benchmark's machinery run for real, small: one point of analysis/points.py
(a real server and load generator, with the hooks a scenario module can give it), and the
pylib helpers analysis/ and these tests share (ports, marker blocks).
"""
import contextlib
import os
import shutil
import socket
import tempfile
import unittest

from analysis import benchkit, points
from pylib import markers, procfs
from pylib.ports import HOST, free_port, wait_port


class PointRun(unittest.TestCase):
    def setUp(self):
        self.raw = tempfile.mkdtemp(prefix="chatbench-test-point-")
        self.logs = os.path.join(self.raw, "logs")
        os.makedirs(self.logs)
        self.addCleanup(shutil.rmtree, self.raw, True)

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
