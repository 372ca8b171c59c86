"""loss: what TCP does under loss, seen from the kernel (THEORY.md section 2.1).

One loadgen TCP client (500 MSG/s of 1000 bytes) against tcp_server while nftables drops a
share of the port's segments each way (analysis/lossrules.py), for each congestion control
of CCS at each level of LOSS_LEVELS. ss -tin is sampled every 0.1 s on loadgen's socket (it
sends the MSG data); nstat gives the kernel's retransmission counters around each run.
"""
import os
import re
import statistics
import subprocess
import time

from analysis import benchkit as bk
from analysis import lossrules
from analysis.theory.common import read_file, sh, thin
from pylib import procs
from pylib.ports import HOST

LOSS_LEVELS = (0, 2, 10)  # % of the chat port's segments dropped, each direction
CCS = ("reno", "bbr")  # RFC 5681 loss-based (allowed in a namespace), then model-based
CC_KNOB = "/proc/sys/net/ipv4/tcp_congestion_control"  # per network namespace

SS_KEYS = ("rto", "rtt", "cwnd", "ssthresh", "retrans", "unacked", "lost", "bytes_retrans",
           "data_segs_out", "snd_wnd", "rcv_space", "mss", "pmtu")
NSTAT_KEYS = ("TcpRetransSegs", "TcpExtTCPFastRetrans", "TcpExtTCPTimeouts",
              "TcpExtTCPLossProbes", "TcpExtTCPSackRecovery", "TcpExtTCPSlowStartRetrans",
              "TcpExtTCPSACKReorder", "TcpExtTCPLostRetransmit", "TcpExtTCPSpuriousRTOs")
# The ss -tin fields THEORY.md talks about, kept in the samples in ss's own order and spelling.
SS_SHOW = re.compile(r"^(cubic|bbr|reno|wscale|rto|backoff|rtt|mss|cwnd|ssthresh|bytes_sent|"
                     r"bytes_retrans|bytes_acked|data_segs_out|retrans|lost|unacked|sacked|"
                     r"app_limited|snd_wnd|rcv_space|delivered)(:|$)")


def ss_conn(port):
    """ss -tin for the loadgen side of the connection to port (it sends the MSG data).
    Returns (raw info line, dict) or (None, None)."""
    txt = sh(["ss", "-tinH", "state", "established", f"( dport = :{port} )"])
    lines = [x for x in txt.splitlines() if x.strip()]
    info = " ".join(x.strip() for x in lines[1:2]) if len(lines) >= 2 else ""
    if not info:
        return None, None
    d = {}
    for key in SS_KEYS:
        m = re.search(rf"(?<![\w_]){key}:([\d./]+)", info)
        if m:
            d[key] = m.group(1)
    return info, d


def nstat_now():
    txt = sh(["nstat", "-az", *NSTAT_KEYS])
    vals = {}
    for line in txt.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in NSTAT_KEYS:
            vals[parts[0]] = int(parts[1])
    return vals


def loss_run(pct, tmp, seconds):
    """One loadgen run at pct % loss: (ss samples [(t, raw, dict)], nstat deltas, loadgen's
    summary row, packets the rules dropped)."""
    srv = bk.Server("tcp", tmp, f"loss-{pct}")
    try:
        lossrules.set_loss(srv.port, pct, "tcp")
        before = nstat_now()
        outdir = os.path.join(tmp, f"loss-{pct}")
        os.makedirs(outdir, exist_ok=True)
        argv = [os.path.join(bk.BIN, "loadgen"), "--proto", "tcp", "--host", HOST,
                "--port", str(srv.port), "--clients", "1", "--threads", "1", "--rate", "500",
                "--size", "1000", "--duration", str(seconds), "--warmup", "0.5",
                "--out", outdir, "--label", f"theory-loss-{pct}", "--quiet"]
        lg = procs.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        samples, t0 = [], time.monotonic()
        while lg.poll() is None and time.monotonic() - t0 < seconds + 30:
            raw, d = ss_conn(srv.port)
            if d:
                samples.append((time.monotonic() - t0, raw, d))
            time.sleep(0.1)
        out = lg.communicate(timeout=30)[0].decode("utf-8", "replace")
        procs.stop(lg)
        after = nstat_now()
        drops = lossrules.loss_counters() if pct > 0 else {}
        dropped = None if drops is None else sum(drops.values())  # None: rules unreadable
        lossrules.clear_loss()
        summary = os.path.join(outdir, "summary.csv")
        rows = bk.read_csv(summary) if os.path.exists(summary) else []
        if not rows:
            raise bk.BenchError(f"loadgen wrote no summary at {pct} % loss: {out[-400:]}")
        return samples, {k: after.get(k, 0) - before.get(k, 0) for k in NSTAT_KEYS}, \
            rows[-1], dropped
    finally:
        srv.stop()


def num(v):
    return float(v.split("/")[0])


def summarize(cc, pct, samples, delta, row, dropped):
    """One run as data: the ss series summed up (cwnd, ssthresh, rto, rtt, retransmissions),
    the nstat deltas, loadgen's ACK latency and loss, and about a dozen ss samples."""
    ds = [d for _, _, d in samples]
    cw = [num(d["cwnd"]) for d in ds if "cwnd" in d]
    sst = [num(d["ssthresh"]) for d in ds if "ssthresh" in d]
    rto = [num(d["rto"]) for d in ds if "rto" in d]
    rtt = [num(d["rtt"]) for d in ds if "rtt" in d]
    rtx = [int(d["retrans"].split("/")[1]) for d in ds if "retrans" in d]
    return {"cc": cc, "loss_pct": pct, "samples": len(ds), "nft_dropped": dropped,
            "cwnd_min": min(cw, default=0), "cwnd_med": statistics.median(cw) if cw else 0,
            "cwnd_max": max(cw, default=0), "ssthresh_min": min(sst) if sst else None,
            "rto_max_ms": max(rto, default=0),
            "rtt_med_ms": statistics.median(rtt) if rtt else 0,
            "retrans_total": max(rtx, default=0),
            "ack_p50_us": float(row["ack_p50_us"]), "ack_p99_us": float(row["ack_p99_us"]),
            "ack_max_us": float(row["ack_max_us"]), "lost": int(row["lost"]),
            "nstat": delta,
            "ss": [[round(t, 3), " ".join(tok for tok in raw.split() if SS_SHOW.match(tok))]
                   for t, raw, _ in thin(samples)]}


def set_cc(name):
    with open(CC_KNOB, "w") as f:
        f.write(name)


def capture(tmp, seconds):
    """Each congestion control at each loss level; the namespace's own default is restored
    afterwards. Returns {default_cc, runs: [summarize()...]}."""
    default_cc = read_file(CC_KNOB)
    runs = []
    try:
        for cc in CCS:
            set_cc(cc)
            for pct in LOSS_LEVELS:
                runs.append(summarize(cc, pct, *loss_run(pct, tmp, seconds)))
    finally:
        set_cc(default_cc)
    return {"default_cc": default_cc, "runs": runs}
