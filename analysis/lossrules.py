"""lossrules: packet loss injected by nftables (numgen random: every packet drawn on its own),
one rule per direction, each with a counter, so the kernel's exact drop counts can be set
beside what the load generator counted. Only ever used inside our private network namespace
(pylib.netns): clear_loss() does nothing outside one.
"""
import json
import subprocess

from analysis.benchkit import BenchError
from pylib import netns

NFT_TABLE = "chatbench"


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
    if not netns.in_private_netns():
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
