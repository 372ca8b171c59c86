"""machine: what the run ran on (results/machine.txt, REPORT.md's machine table): the machine,
the tools' versions, the namespace and its knobs; and chatbench's own version."""
import os
import platform
import re
import subprocess
import time

from analysis import benchkit, pinning
from pylib import procs


def _first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=10)
        text = (r.stdout or r.stderr).decode("utf-8", "replace")
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        return lines[0] if lines else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def version():
    """chatbench's version, from the Makefile (one source of truth)."""
    try:
        with open(os.path.join(benchkit.ROOT, "Makefile")) as f:
            m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def _child_nofile():
    """The open-file limit our children really get (raising it may be refused here)."""
    try:
        r = subprocess.run(["sh", "-c", "ulimit -n"], preexec_fn=procs.child_setup,
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine_facts(netns_note, knobs):
    """Ordered (key, value) pairs describing this machine and the tools' versions."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    osname = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    binary = benchkit.BIN  # read now: snapshot_bins() may have moved it
    facts = [
        ("date_utc", time.strftime("%Y-%m-%d %H:%M", time.gmtime())),
        ("nproc", str(os.cpu_count())),
        ("cpu", model),
        ("memory", mem),
        ("os", osname),
        ("kernel", platform.release()),
        ("python", platform.python_version()),
        ("cc", _first_line(["cc", "--version"])),
        ("libevent", _first_line(["pkg-config", "--modversion", "libevent"])),
        ("zlib", _first_line(["pkg-config", "--modversion", "zlib"])),
        ("gnuplot", _first_line(["gnuplot", "--version"])),
        ("sockperf", _first_line(["sockperf", "--version"])),
        ("iperf3", _first_line(["iperf3", "--version"])),
        ("nft", _first_line(["nft", "--version"])),
        ("tcp_server", _first_line([os.path.join(binary, "tcp_server"), "--version"])),
        ("udp_server", _first_line([os.path.join(binary, "udp_server"), "--version"])),
        ("loadgen", _first_line([os.path.join(binary, "loadgen"), "--version"])),
        ("linkem", _first_line([os.path.join(binary, "linkem"), "--version"])),
        ("tcp_congestion_control", _read("/proc/sys/net/ipv4/tcp_congestion_control")),
        ("netns", netns_note),
        ("pinning", pinning.describe()),
        ("rlimit_nofile", _child_nofile()),
        ("pid_max", _read("/proc/sys/kernel/pid_max")),
    ]
    for k, v in knobs.items():
        facts.append((k.replace("/", "."), v))
    return facts
