"""benchkit: the process plumbing of the benchmark driver (analysis/bench.py).

Private network namespace, nftables loss rules, servers on free ports, /proc sampling of
the server, the load generator, the sockperf and iperf3 anchors, machine facts. Python 3
standard library only. Every process started here is registered and killed by cleanup(),
which bench.py calls on every exit path (normal end, error, Ctrl-C).
"""
import csv
import ctypes
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("CHATBENCH_BIN") or os.path.join(ROOT, "bin")  # another build to measure
PROGRAMS = ("tcp_server", "udp_server", "loadgen")
HOST = "127.0.0.1"
NOFILE = 65536  # per process; 10,000 clients need 10,000 sockets on each side
NFT_TABLE = "chatbench"

_live = []  # every Popen we started and have not reaped yet


class BenchError(Exception):
    """A scenario point failed; the message says what to look at."""


# --- processes ---


try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None
PR_SET_PDEATHSIG = 1


def _child_limits():
    """preexec_fn: die with the driver even if it is SIGKILLed (nothing left running), and
    raise the open-file limit (root may raise the hard limit too)."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if os.geteuid() == 0 else hard
    want = max(want, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        pass  # best effort: the child raises what it can itself (net_raise_nofile)


def spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw):
    """Starts argv in its own process group (so Ctrl-C reaches us first and we stop it)."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                         preexec_fn=_child_limits, start_new_session=True, **kw)
    _live.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10.0):
    """Sends sig, waits up to timeout, then SIGKILLs. Returns the exit code."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _live:
        _live.remove(p)
    return p.returncode


def cleanup():
    """Kills every process still running that we started (each by its own pid)."""
    for p in list(_live):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _live.remove(p)


def run(argv, timeout, **kw):
    """Runs argv to completion (killed after timeout s); returns CompletedProcess-like."""
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        _live.remove(p)
        raise BenchError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f} s")
    _live.remove(p)
    return subprocess.CompletedProcess(argv, p.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def free_port(kind=socket.SOCK_STREAM):
    """A port free right now on 127.0.0.1 (for tools without --port 0; tiny race accepted)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, kind, timeout=10.0):
    """Waits until a socket is bound to port: a TCP listener or a UDP socket. Reads
    /proc/net/{tcp,udp} instead of connecting, which would disturb one-shot servers."""
    deadline = time.monotonic() + timeout
    table = "/proc/net/tcp" if kind == "tcp" else "/proc/net/udp"
    while time.monotonic() < deadline:
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[1].split(":")[1] == f"{port:04X}" and (kind != "tcp" or cols[3] == "0A"):
                    return
        time.sleep(0.05)
    raise BenchError(f"nothing listening on {HOST}:{port} ({kind}) after {timeout:.0f} s")


def snapshot_bins(dest):
    """Copies the programs under test into dest and measures those copies from then on:
    one build for the whole run, immune to a `make` rebuilding bin/ meanwhile. Returns the
    names that are missing or not executable."""
    global BIN
    os.makedirs(dest, exist_ok=True)
    missing = []
    for name in PROGRAMS:
        src = os.path.join(BIN, name)
        if not os.access(src, os.X_OK):
            missing.append(name)
            continue
        shutil.copy2(src, os.path.join(dest, name))
    if not missing:
        BIN = dest
    return missing


# --- private network namespace and loss rules ---


def can_netns():
    """(ok, reason): whether this process may create a network namespace with nftables."""
    if os.geteuid() != 0:
        return False, "not root"
    for tool in ("unshare", "nft", "ip"):
        if not shutil.which(tool):
            return False, f"{tool} not installed"
    # A container may forbid namespaces (no CAP_SYS_ADMIN) or lack nf_tables: try both.
    r = subprocess.run(["unshare", "-n", "nft", "add", "table", "inet", "chatbench_probe"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return False, "cannot create a network namespace with nftables here: " + \
            " ".join(r.stderr.split())[:120]
    return True, ""


def in_private_netns():
    return os.environ.get("CHATBENCH_NETNS") == "1"


def setup_netns():
    """Inside the fresh namespace: lo up, roomy per-namespace limits. The host's own
    network and sysctls are untouched: these knobs are per network namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    knobs = {
        "net/core/somaxconn": "65535",          # 10,000 connects at once
        "net/ipv4/tcp_max_syn_backlog": "65535",
        "net/ipv4/ip_local_port_range": "1024 65535",
        "net/ipv4/tcp_tw_reuse": "1",           # TIME_WAIT of one scenario must not starve the next
    }
    done = {}
    for k, v in knobs.items():
        try:
            with open(f"/proc/sys/{k}", "w") as f:
                f.write(v)
            done[k] = v
        except OSError as e:
            done[k] = f"unchanged ({e.strerror})"
    return done


def _nft(script):
    r = subprocess.run(["nft", "-f", "-"], input=script.encode(), capture_output=True)
    if r.returncode != 0:
        raise BenchError(f"nft failed: {r.stderr.decode().strip()}\n{script}")


def set_loss(port, pct, proto, target="chat"):
    """Drops pct % of the packets to and from port (one rule per direction, numgen random:
    each packet is drawn independently). Only called inside our private namespace.

    target "chat": UDP drops only chat datagrams (MSG up; ACK and FROM down) so that HELLO,
    JOIN and PING pass as with udp_impair --match; TCP drops any segment but SYNs (so that
    connection set-up time does not depend on the loss draw), data and ACKs alike.
    target "all": every datagram longer than 64 bytes (iperf3's data; its 4-byte connect
    datagram passes so the test always starts)."""
    clear_loss()
    if pct <= 0:
        return
    n = int(round(pct))
    drop = f"numgen random mod 100 < {n} counter drop"
    rules = []
    up, down = f'{drop} comment "uplink"', f'{drop} comment "downlink"'
    if proto in ("udp", "hybrid") and target == "chat":
        msg, ack, frm = "0x4d534720", "0x41434b20", "0x46524f4d"  # "MSG ", "ACK ", "FROM"
        # A hybrid datagram starts with the 16-hex session token and a space: its "MSG "
        # sits 17 bytes further (bit 64 + 136 = 200 from the UDP header's start). Answers
        # carry no token. The hybrid's TCP control port is left alone.
        at = 200 if proto == "hybrid" else 64
        rules.append(f"udp dport {port} @th,{at},32 {msg} {up}")
        rules.append(f"udp sport {port} @th,64,32 {ack} {down}")
        rules.append(f"udp sport {port} @th,64,32 {frm} {down}")
    elif proto == "udp":
        rules.append(f"udp dport {port} udp length > 72 {up}")
        rules.append(f"udp sport {port} udp length > 72 {down}")
    else:
        rules.append(f"tcp dport {port} tcp flags & syn == 0 {up}")
        rules.append(f"tcp sport {port} tcp flags & syn == 0 {down}")
    body = "\n".join(f"        {r}" for r in rules)
    _nft(f"table inet {NFT_TABLE} {{\n    chain input {{\n"
         f"        type filter hook input priority 0; policy accept;\n{body}\n    }}\n}}\n")


def clear_loss():
    if not in_private_netns():
        return
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)


def loss_counters():
    """Packets dropped by our rules so far: {"uplink": n, "downlink": n} (to the server,
    from the server), or None when no rules are installed."""
    r = subprocess.run(["nft", "-j", "list", "table", "inet", NFT_TABLE], capture_output=True)
    if r.returncode != 0:
        return None
    out = {"uplink": 0, "downlink": 0}
    for item in json.loads(r.stdout).get("nftables", []):
        rule = item.get("rule", {})
        for expr in rule.get("expr", []):
            if "counter" in expr and rule.get("comment") in out:
                out[rule["comment"]] += expr["counter"]["packets"]
    return out


# --- servers and sampling ---


class Server:
    """bin/<kind>_server on a free port; stdout goes to a log file (never a full pipe)."""

    def __init__(self, kind, logdir, label, extra=()):
        """kind: tcp, udp or hybrid (udp_server --hybrid). self.port is the port the load
        generator is given (hybrid: the TCP control port); self.data_port the port chat
        travels on (hybrid: the UDP port, where the loss rules go)."""
        self.kind = kind
        prog = "udp" if kind == "hybrid" else kind
        self.log = os.path.join(logdir, f"{label}.{kind}_server.log")
        argv = [os.path.join(BIN, f"{prog}_server"), "--host", HOST, "--port", "0", "-q",
                *(["--hybrid", "--control-port", "0"] if kind == "hybrid" else []), *extra]
        self.f = open(self.log, "wb")
        self.p = spawn(argv, stdout=self.f, stderr=subprocess.STDOUT)
        word = "TCP" if kind == "tcp" else "UDP"
        rx = re.compile(rf"\[INFO\] Servidor {word} iniciado na porta (\d+)".encode())
        rxc = re.compile("Modo híbrido: controle TCP na porta (\\d+)".encode())
        deadline = time.monotonic() + 10
        while True:
            with open(self.log, "rb") as f:
                head = f.read(4096)
            m = rx.search(head)
            mc = rxc.search(head) if kind == "hybrid" else m
            if m and mc:
                self.data_port = int(m.group(1))
                self.port = int(mc.group(1))
                break
            if self.p.poll() is not None or time.monotonic() > deadline:
                tail = open(self.log, "rb").read()[-500:].decode("utf-8", "replace")
                self.stop()
                raise BenchError(f"{kind}_server did not start ({argv}): {tail}")
            time.sleep(0.02)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        rc = stop(self.p, signal.SIGTERM, 15)
        self.f.close()
        return rc


class Sampler:
    """Samples one process from /proc every interval seconds (user and system CPU, RSS,
    threads, open fds) on a thread; rows() gives them with t_s from start()."""

    FIELDS = ["label", "t_s", "cpu_user_s", "cpu_sys_s", "rss_kib", "threads", "fds"]

    def __init__(self, pid, label, interval):
        self.pid, self.label, self.interval = pid, label, interval
        self.tick = os.sysconf("SC_CLK_TCK")
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self._t.start()
        return self

    def sample(self, record=True):
        """One sample now (a dict, or None once the process is gone); record=False keeps
        it out of the series (for a reading between the fixed-interval ones)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            utime, stime = int(fields[11]) / self.tick, int(fields[12]) / self.tick
            rss = threads = 0
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except (OSError, ValueError, IndexError):
            return None  # the process is gone
        row = {"label": self.label, "t_s": round(time.monotonic() - self.t0, 3),
               "cpu_user_s": utime, "cpu_sys_s": stime, "rss_kib": rss,
               "threads": threads, "fds": fds}
        if record:
            self.samples.append(row)
        return row

    def _loop(self):
        # A fixed grid: the next sample is due at t0 + k * interval, however long one took.
        k = 0
        while not self._stop.is_set():
            if self.sample() is None:
                return
            k += 1
            self._stop.wait(max(0.0, self.t0 + k * self.interval - time.monotonic()))

    def finish(self):
        self._stop.set()
        self._t.join(5)
        self.sample()  # the final state, just before the server is stopped
        return self.samples


def host_busy_s():
    """CPU seconds all cores have spent in processes since boot (/proc/stat user + nice +
    system; irq and softirq time, where loopback packets are handled, is left out because
    no process's own figures include it either)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return (vals[0] + vals[1] + vals[2]) / os.sysconf("SC_CLK_TCK")


def summarize_samples(samples, t_from, t_to):
    """Aggregates for one run: peak RSS/threads/fds over the run and CPU over [t_from, t_to]
    (seconds from the sampler's start; the steady window of the load generator)."""
    out = {"server_rss_kib_max": 0, "server_threads_max": 0, "server_fds_max": 0,
           "server_cpu_s": "", "server_cpu_pct": "", "server_window_s": ""}
    if not samples:
        return out
    out["server_rss_kib_max"] = max(s["rss_kib"] for s in samples)
    out["server_threads_max"] = max(s["threads"] for s in samples)
    out["server_fds_max"] = max(s["fds"] for s in samples)
    win = [s for s in samples if t_from <= s["t_s"] <= t_to]
    if len(win) >= 2:
        a, b = win[0], win[-1]
        cpu = (b["cpu_user_s"] + b["cpu_sys_s"]) - (a["cpu_user_s"] + a["cpu_sys_s"])
        dt = b["t_s"] - a["t_s"]
        out["server_cpu_s"] = round(cpu, 3)
        out["server_window_s"] = round(dt, 3)
        out["server_cpu_pct"] = round(100.0 * cpu / dt, 2) if dt > 0 else ""
    return out


# --- load generator ---


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_loadgen(port, proto, label, outdir, args, timeout):
    """Runs bin/loadgen once with --out outdir; returns (summary row, started, ended) with
    monotonic start/end times. Raises BenchError when it wrote no summary row."""
    argv = [os.path.join(BIN, "loadgen"), "--proto", proto, "--host", HOST, "--port",
            str(port), "--label", label, "--out", outdir, "--quiet", *map(str, args)]
    t0 = time.monotonic()
    r = run(argv, timeout)
    t1 = time.monotonic()
    summary = os.path.join(outdir, "summary.csv")
    rows = [x for x in read_csv(summary) if x.get("label") == label] \
        if os.path.exists(summary) else []
    if not rows:
        raise BenchError(f"loadgen wrote no summary for {label} (exit {r.returncode}): "
                         f"{(r.stderr or r.stdout).strip()[-800:]}")
    row = rows[-1]
    row["loadgen_rc"] = r.returncode
    if r.returncode != 0:
        row["loadgen_stderr"] = " ".join(r.stderr.split())[-300:]
    return row, t0, t1


# --- anchors ---


def sockperf_rtt(proto, size, seconds, mps=None):
    """sockperf over loopback: full round trip (--full-rtt) percentiles in us. Without mps,
    ping-pong (one message in flight, as fast as it goes: the floor); with mps, under-load
    at that many messages per second, each one answered (--reply-every 1)."""
    port = free_port(socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    tcp = ["--tcp"] if proto == "tcp" else []
    srv = spawn(["sockperf", "server", "-i", HOST, "-p", str(port), *tcp])
    try:
        wait_port(port, proto)
        mode = ["ping-pong"] if mps is None else ["under-load", "--mps", str(int(mps)),
                                                  "--reply-every", "1"]
        r = run(["sockperf", *mode, "-i", HOST, "-p", str(port), "-m", str(size),
                 "-t", str(seconds), "--full-rtt", *tcp], seconds + 30)
    finally:
        stop(srv, signal.SIGINT, 5)
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    res = {}
    for key, rx in (("p50_us", r"percentile 50\.000 =\s*([\d.]+)"),
                    ("p99_us", r"percentile 99\.000 =\s*([\d.]+)"),
                    ("p999_us", r"percentile 99\.900 =\s*([\d.]+)"),
                    ("max_us", r"<MAX> observation =\s*([\d.]+)"),
                    ("mean_us", r"avg-(?:latency|rtt)=([\d.]+)"),
                    ("observations", r"Total (\d+) observations")):
        m = re.search(rx, text)
        if not m:
            raise BenchError(f"sockperf output has no {key}:\n{text[-800:]}")
        res[key] = float(m.group(1))
    return res


def iperf3_udp(size, rate_pps, seconds, before=None):
    """iperf3 -u at size-byte datagrams and rate_pps packets/s; returns sent, lost, loss %.
    before(port), when given, runs once the server listens (to install loss rules)."""
    port = free_port()
    srv = spawn(["iperf3", "-s", "-B", HOST, "-p", str(port)])
    try:
        wait_port(port, "tcp")
        if before:
            before(port)
        bps = int(rate_pps * size * 8)
        r = run(["iperf3", "-c", HOST, "-p", str(port), "-u", "-l", str(size), "-b", str(bps),
                 "-t", str(seconds), "--json"], seconds + 30)
    finally:
        stop(srv, signal.SIGTERM, 5)
    try:
        d = json.loads(r.stdout)
        s = d["end"]["sum"]
        return {"port": port, "packets": s["packets"], "lost": s["lost_packets"],
                "lost_pct": s["lost_percent"], "jitter_us": s["jitter_ms"] * 1000.0,
                "out_of_order": s.get("out_of_order", 0)}
    except (ValueError, KeyError) as e:
        raise BenchError(f"iperf3 output unreadable ({e}): {r.stdout[-500:]} {r.stderr[-300:]}")


# --- machine facts ---


def _first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=10)
        text = (r.stdout or r.stderr).decode("utf-8", "replace")
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        return lines[0] if lines else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def version():
    """chatbench's version, from the Makefile (one source of truth)."""
    try:
        with open(os.path.join(ROOT, "Makefile")) as f:
            m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def _child_nofile():
    """The open-file limit our children really get (raising it may be refused here)."""
    try:
        r = subprocess.run(["sh", "-c", "ulimit -n"], preexec_fn=_child_limits,
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
        ("tcp_server", _first_line([os.path.join(BIN, "tcp_server"), "--version"])),
        ("udp_server", _first_line([os.path.join(BIN, "udp_server"), "--version"])),
        ("loadgen", _first_line([os.path.join(BIN, "loadgen"), "--version"])),
        ("netns", netns_note),
        ("rlimit_nofile", _child_nofile()),
        ("pid_max", open("/proc/sys/kernel/pid_max").read().strip()),
    ]
    for k, v in knobs.items():
        facts.append((k.replace("/", "."), v))
    return facts
