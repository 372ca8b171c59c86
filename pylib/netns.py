"""netns: a private network namespace for the benchmark, make theory and the tests that need
one. Inside it only its own loopback carries traffic, and nftables rules, devices and sysctls
set there never touch the host's network: they vanish with the namespace.

The usual shape: an entry point calls reexec_in_netns(__file__, sys.argv[1:]) when
can_netns() and not in_private_netns(), and once inside, setup_netns().
"""
import os
import shutil
import subprocess
import sys

ENV = "CHATBENCH_NETNS"  # set to "1" in the environment of a re-executed script

# Roomy per-namespace limits (these sysctls are per network namespace, not the host's).
KNOBS = {
    "net/core/somaxconn": "65535",          # 10,000 connects at once
    "net/ipv4/tcp_max_syn_backlog": "65535",
    "net/ipv4/ip_local_port_range": "1024 65535",
    "net/ipv4/tcp_tw_reuse": "1",           # TIME_WAIT of one scenario must not starve the next
    "net/ipv4/ip_nonlocal_bind": "1",       # servers bind linkem's outer address before it exists
}


def can_netns(nft=True):
    """(ok, reason): whether this process may create a network namespace (and, with nft,
    use nftables in it)."""
    if os.geteuid() != 0:
        return False, "not root"
    for tool in ("unshare", "ip") + (("nft",) if nft else ()):
        if not shutil.which(tool):
            return False, f"{tool} not installed"
    # A container may forbid namespaces (no CAP_SYS_ADMIN) or lack nf_tables: try it.
    probe = ["nft", "add", "table", "inet", "chatbench_probe"] if nft else ["true"]
    r = subprocess.run(["unshare", "-n", *probe], capture_output=True, text=True)
    if r.returncode != 0:
        return False, (f"cannot create a network namespace{' with nftables' if nft else ''} "
                       "here: " + " ".join(r.stderr.split())[:120])
    return True, ""


def in_private_netns():
    """Whether this process is a script re-executed by reexec_in_netns()."""
    return os.environ.get(ENV) == "1"


def reexec_in_netns(script, argv):
    """Replaces this process with `unshare -n -- python3 script argv...` (does not return)."""
    env = dict(os.environ, **{ENV: "1"})
    os.execvpe("unshare", ["unshare", "-n", "--", sys.executable, os.path.abspath(script),
                           *argv], env)


def setup_netns(knobs=None):
    """Inside the fresh namespace: lo up, then the sysctls of knobs (default KNOBS). Returns
    {knob: value set, or why it is unchanged}."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    done = {}
    for k, v in (KNOBS if knobs is None else knobs).items():
        try:
            with open(f"/proc/sys/{k}", "w") as f:
                f.write(v)
            done[k] = v
        except OSError as e:
            done[k] = f"unchanged ({e.strerror})"
    return done
