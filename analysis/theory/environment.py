"""environment: the machine and the TCP settings the captures ran with (private namespace)."""
import os
import time

from analysis import benchkit as bk
from analysis.theory.common import read_file, sh

KNOBS = ["net/ipv4/tcp_congestion_control", "net/ipv4/tcp_available_congestion_control",
         "net/ipv4/tcp_sack", "net/ipv4/tcp_timestamps", "net/ipv4/tcp_window_scaling",
         "net/ipv4/tcp_rmem", "net/ipv4/tcp_wmem",
         "net/ipv4/tcp_early_retrans", "net/ipv4/tcp_recovery", "net/ipv4/tcp_syn_retries",
         "net/core/rmem_default", "net/core/rmem_max", "net/core/wmem_default"]


def capture(note):
    """{facts: [[name, value], ...]} in the order the document lists them."""
    facts = [("netns", note), ("kernel", os.uname().release),
             ("lo mtu", read_file("/sys/class/net/lo/mtu")),
             ("tcpdump", sh(["tcpdump", "--version"]).splitlines()[0]),
             ("ss", sh(["ss", "-V"]).strip()),
             ("nft", sh(["nft", "--version"]).strip()),
             ("tcp_server", sh([os.path.join(bk.BIN, "tcp_server"), "--version"]).strip()),
             ("udp_server", sh([os.path.join(bk.BIN, "udp_server"), "--version"]).strip()),
             ("date_utc", time.strftime("%Y-%m-%d %H:%M", time.gmtime())),
             ("loadavg at start", f"{read_file('/proc/loadavg')} (the machine is shared: "
              "other processes' load shows in the latency tails)")]
    facts += [(k.replace("/", "."), read_file("/proc/sys/" + k)) for k in KNOBS]
    routes = sh(["ip", "route", "show", "table", "local"]).splitlines()
    facts.append(("rto_min", "200 ms unless a route sets rto_min (none in this namespace: "
                  f"{len([x for x in routes if 'rto_min' in x])} routes do)"))
    return {"facts": [list(f) for f in facts]}


def finish(data, seconds):
    """The load at the end of the captures, seconds after the start."""
    data["facts"].append(["loadavg at end", f"{read_file('/proc/loadavg')} "
                          f"({seconds:.0f} s later)"])
    return data
