#!/usr/bin/env python3
"""mpi_hosts: mpirun over loadgen with each rank on its own "host": a network namespace with
its own address, joined by a bridge to the server's (test_shards.py runs it).

Everything happens inside a private network namespace (the script re-executes itself under
`unshare -n`): a bridge 10.213.0.1/24 there, where the server listens; one namespace per host
(a sleeping `unshare -n -u` process keeps it, its own hostname h1, h2, ...), each with a veth
on the bridge and the address 10.213.0.1I; Open MPI's rsh agent, instead of ssh, enters the
host's namespace (nsenter) to start its orted. No address, device or route is ever added
outside the namespaces made here.

Usage: mpi_hosts.py --hosts N --server tcp|udp --log FILE -- LOADGEN_ARGS...
LOADGEN_ARGS may say {server} and {port}. Prints one JSON line: mpirun's exit status, its
output and the hosts' addresses; the server's log goes to FILE.
"""
import argparse
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Import roots, set once, here: the repository (pylib) and this folder (harness).
sys.path[0:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]
import harness  # noqa: E402
from pylib import netns, procs  # noqa: E402

NET = "10.213.0"
SERVER = f"{NET}.1"
MPIRUN_TIMEOUT = 120


def ip(*args, pid=None):
    pre = ["nsenter", "-t", str(pid), "-n", "-u", "--"] if pid else []
    subprocess.run([*pre, "ip", *args], check=True, capture_output=True, text=True)


def make_host(i):
    """Host i: a namespace kept by a sleeper, a veth on the bridge, address NET.1i."""
    sleeper = procs.spawn(["unshare", "-n", "-u", "sleep", "3600"])
    own = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{sleeper.pid}/ns/net") == own:  # unshare not done yet
        if time.monotonic() > deadline:
            raise RuntimeError("the host namespace did not appear")
        time.sleep(0.01)
    addr = f"{NET}.1{i}"
    ip("link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", str(sleeper.pid))
    ip("link", "set", f"v{i}", "master", "br0", "up")
    subprocess.run(["nsenter", "-t", str(sleeper.pid), "-n", "-u", "--", "hostname", f"h{i}"],
                   check=True)
    ip("link", "set", "lo", "up", pid=sleeper.pid)
    ip("addr", "add", f"{addr}/24", "dev", "eth0", pid=sleeper.pid)
    ip("link", "set", "eth0", "up", pid=sleeper.pid)
    return addr, sleeper


def agent(path, hosts):
    """The rsh agent: `agent [options] HOST COMMAND...` runs COMMAND in HOST's namespace."""
    cases = "".join(f"{a}) pid={p.pid} ;;\n" for a, p in hosts)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "while [ \"${1#-}\" != \"$1\" ]; do shift; done\n"
                f"case \"$1\" in\n{cases}*) echo \"no host $1\" >&2; exit 1 ;;\nesac\n"
                "shift\n"
                "exec nsenter -t \"$pid\" -n -u -- sh -c \"$*\"\n")
    os.chmod(path, stat.S_IRWXU)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--server", choices=("tcp", "udp"), default="tcp")
    ap.add_argument("--log", required=True)
    ap.add_argument("loadgen", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if not netns.in_private_netns():
        netns.reexec_in_netns(__file__, sys.argv[1:])  # does not return
    netns.setup_netns({})
    ip("link", "add", "br0", "type", "bridge")
    ip("addr", "add", f"{SERVER}/24", "dev", "br0")
    ip("link", "set", "br0", "up")
    hosts = [make_host(i) for i in range(1, args.hosts + 1)]
    work = tempfile.mkdtemp(prefix="mpi_hosts.")
    agent(os.path.join(work, "agent.sh"), hosts)
    server = harness.Proc([os.path.join(harness.BIN, f"{args.server}_server"), "--host",
                           SERVER, "--port", "0"])
    word = "TCP" if args.server == "tcp" else "UDP"
    port = server.wait_line(rf"Servidor {word} iniciado na porta (\d+)").group(1)
    lg = [a.format(server=SERVER, port=port) for a in args.loadgen if a != "--"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(args.hosts),
           "--host", ",".join(a for a, _ in hosts),
           "--mca", "plm_rsh_agent", os.path.join(work, "agent.sh"),
           "--mca", "plm_rsh_no_tree_spawn", "1",  # every orted started from here
           "--mca", "oob_tcp_if_include", f"{NET}.0/24", "--mca", "btl", "self,tcp",
           os.path.join(harness.BIN, "loadgen"), *lg]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=MPIRUN_TIMEOUT, env=env)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = -1, str(e.stdout or ""), f"mpirun timed out: {e.stderr or ''}"
    server.stop()
    with open(args.log, "w") as f:
        f.write("\n".join(server.lines) + "\n")
    for _, sleeper in hosts:
        procs.stop(sleeper)
    print(json.dumps({"rc": rc, "stdout": out, "stderr": err,
                      "hosts": [a for a, _ in hosts], "server": SERVER,
                      "cmd": " ".join(cmd)}))


if __name__ == "__main__":
    main()
