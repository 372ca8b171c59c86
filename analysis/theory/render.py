"""render: the text files of results/theory/ and THEORY.md's generated blocks, both made from
the data the experiments return (no text is read back to be parsed).

make theory saves each experiment's data as results/theory/data/<experiment>.json (save())
and writes its text files from it; THEORY.md's blocks are rendered from the same data
(render_blocks(), update_doc()), so `theory.py --update-doc` and
tests/integration/test_theory.py can redo both from the committed data without root.
"""
import json
import os

from analysis import benchkit as bk
from analysis import report as R
from analysis.scenarios import rtt, scale
from analysis.theory.common import read_file
from pylib import markers

DOC = os.path.join(bk.ROOT, "THEORY.md")
DATA = "data"  # results/theory/data/<experiment>.json


def _per_client(a, b, n, nd):
    return f"{(b - a) / n:>9.{nd}f}"


# --- the text files ---


def environment_txt(d):
    return "\n".join(["# The machine and the TCP settings the captures ran with (private "
                      "namespace)."] + [f"{k}: {v}" for k, v in d["facts"]])


def show_payload(text):
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def packet_table(rows):
    """The per-packet table of a capture (pcap.decode() rows)."""
    def blank(v):
        return "" if v is None else v

    lines = [f"{'#':>2} {'t_ms':>8}  {'from':<6} {'proto':<5} {'flags':<11} {'seq':>5} "
             f"{'ack':>5} {'win':>6} {'ip_hdr':>6} {'l4_hdr':>6} {'payload':>7}  text / options"]
    for i, r in enumerate(rows, 1):
        extra = show_payload(r["text"]) if r["payload_len"] else " ".join(r["opts"])
        lines.append(
            f"{i:>2} {r['t_ms']:>8.3f}  {r['side']:<6} {r['proto']:<5} {r['flags'] or '-':<11} "
            f"{blank(r['seq']):>5} {blank(r['ack']):>5} {blank(r['win']):>6} "
            f"{r['ip_hdr']:>6} {r['l4_hdr']:>6} {r['payload_len']:>7}  {extra}")
    return "\n".join(lines)


def tcp_session_txt(d):
    s = d["tcp"]
    return ("# tcp_client -> tcp_server on 127.0.0.1, inside a private network namespace.\n"
            f"# Server port {s['port']} (--port 0). Client input through a pipe: "
            f"{s['lines']!r}; at EOF\n"
            "# it waits for the ACK, sends BYE and exits: the FIN exchange closes the capture.\n"
            "# Regenerate: make theory (analysis/theory/sessions.py).\n\n"
            "## tcpdump -r tcp.pcap -n -S -v -ttttt  (times: since the first packet)\n\n"
            f"{s['dump']}\n\n"
            "## the same packets, decoded by analysis/theory/pcap.py (seq/ack relative to "
            "each side's ISN)\n\n"
            f"{packet_table(s['packets'])}\n\n## client output\n\n{s['client_output']}")


def udp_session_txt(d):
    s = d["udp"]
    return ("# udp_client -> udp_server on 127.0.0.1, inside a private network namespace.\n"
            f"# Server port {s['port']} (--port 0). Client input through a pipe: "
            f"{s['lines']!r};\n"
            "# at EOF it waits for the ACK, sends BYE and exits. Every frame is one datagram.\n"
            "# Regenerate: make theory (analysis/theory/sessions.py).\n\n"
            "## tcpdump -r udp.pcap -n -v -ttttt\n\n"
            f"{s['dump']}\n\n## the same datagrams, decoded by analysis/theory/pcap.py\n\n"
            f"{packet_table(s['packets'])}\n\n## client output\n\n{s['client_output']}")


def _overhead(t):
    """(header bytes, their share of the IP bytes in %) of a session's totals."""
    hdr = t["wire"] - t["payload"]
    return hdr, 100.0 * hdr / t["wire"]


def headers_txt(d):
    h = d["headers"]
    out = ["# Header sizes read from results/theory/tcp_session.txt and udp_session.txt",
           "# (the pcaps' IPv4 IHL and TCP data offset). Loopback's link header: "
           f"{d['link_header']} bytes",
           "# (Linux shows lo as Ethernet with zero addresses; it never leaves the host).", ""]
    for ex in h["examples"]:
        r = ex["packet"]
        if r is None:
            out.append(f"{ex['name']}: not in the capture")
            continue
        out.append(f"{ex['name']}: ip_hdr={r['ip_hdr']} l4_hdr={r['l4_hdr']} "
                   f"headers={r['ip_hdr'] + r['l4_hdr']} payload={r['payload_len']} "
                   f"ip_total={r['ip_total']} options=[{' '.join(r['opts'])}]")
    out.append("")
    for proto, what in (("tcp", "packets"), ("udp", "datagrams")):
        t = h[proto]
        hdr, pct = _overhead(t)
        out.append(f"{proto.upper()} session: {t['packets']} {what}, {t['payload']} payload "
                   f"bytes, {t['wire']} IP bytes ({hdr} of headers, {pct:.1f} %)")
    out.append(f"TCP packets before the first payload byte: {h['tcp']['before_payload']} "
               "(SYN, SYN-ACK, ACK)")
    out.append(f"UDP packets before the first payload byte: {h['udp']['before_payload']}")
    return "\n".join(out)


def _loss_cells(r):
    """The summary cells of one loss run, formatted once for the text file and the block."""
    return {"cwnd_min": f"{r['cwnd_min']:.0f}", "cwnd_med": f"{r['cwnd_med']:.0f}",
            "cwnd_max": f"{r['cwnd_max']:.0f}",
            "ssthresh_min": "-" if r["ssthresh_min"] is None else f"{r['ssthresh_min']:.0f}",
            "rto_max_ms": f"{r['rto_max_ms']:.0f}"}


def loss_txt(d):
    summary = ["# One loadgen TCP client (500 MSG/s of 1000 bytes, 1 connection) against",
               "# tcp_server, inside a private network namespace; nftables drops the given share",
               "# of the port's segments in each direction (SYNs pass; lossrules.set_loss).",
               "# ss -tin sampled every 0.1 s on loadgen's socket (it sends the MSG data).",
               "# rto, rtt in ms; cwnd, ssthresh in segments; retrans = now/total.",
               f"# Congestion control set per run in the namespace (the host's default: "
               f"{d['default_cc']}).",
               "# Regenerate: make theory (analysis/theory/loss.py).", "",
               f"{'cc':>5} {'loss_pct':>8} {'samples':>7} {'nft_dropped':>11} {'cwnd_min':>8} "
               f"{'cwnd_med':>8} {'cwnd_max':>8} {'ssthresh_min':>12} {'rto_max_ms':>10} "
               f"{'rtt_med_ms':>10} {'retrans_total':>13} {'ack_p50_us':>10} "
               f"{'ack_p99_us':>10} {'ack_max_us':>10} {'lost':>4}"]
    counters, raw = [], []
    for r in d["runs"]:
        c = _loss_cells(r)
        dropped = "?" if r["nft_dropped"] is None else r["nft_dropped"]
        summary.append(
            f"{r['cc']:>5} {r['loss_pct']:>8} {r['samples']:>7} {dropped:>11} "
            f"{c['cwnd_min']:>8} {c['cwnd_med']:>8} {c['cwnd_max']:>8} "
            f"{c['ssthresh_min']:>12} {c['rto_max_ms']:>10} {r['rtt_med_ms']:>10.3f} "
            f"{r['retrans_total']:>13} {r['ack_p50_us']:>10.0f} {r['ack_p99_us']:>10.0f} "
            f"{r['ack_max_us']:>10.0f} {r['lost']:>4}")
        counters.append(f"{r['cc']:>5} {r['loss_pct']:>3} %: " +
                        " ".join(f"{k}={v}" for k, v in r["nstat"].items()))
        raw.append(f"## {r['cc']}, {r['loss_pct']} % loss: ss -tin samples (t_s, then the "
                   "fields THEORY.md uses)\n")
        raw += [f"t={t:5.2f}s  {info}" for t, info in r["ss"]]
        raw.append("")
    return "\n".join(summary) + "\n\n## kernel counters during each run (nstat deltas, " + \
        "both ends of the connection)\n\n" + "\n".join(counters) + "\n\n" + "\n".join(raw)


def _cut(d):
    return "never (not cut off)" if d["cut_ms"] is None else f"{d['cut_ms']:.1f} ms"


def flow_txt(d):
    out = [f"# tcp_server --max-queue {d['max_queue']}. 'reader' registers with a 4 KiB "
           "receive buffer",
           "# (SO_RCVBUF before connect) and then never reads; 'talker', in the same room,",
           "# sends MSG frames of 3,000 bytes in bursts of 20. Sampled after each burst with",
           "# ss -tinm on the server's socket towards reader: Send-Q (bytes not yet",
           "# acknowledged by reader), snd_wnd (the window reader advertises; ss omits it",
           "# when it is 0), skmem w and tb (send-buffer bytes queued, and its limit).",
           "# Regenerate: make theory (analysis/theory/flow.py).", "",
           f"{'t_ms':>8} {'msgs_sent':>9} {'recv_q':>6} {'send_q':>7} {'snd_wnd':>7} "
           f"{'skmem_w':>8} {'skmem_tb':>8}"]
    for s in d["samples"]:
        out.append(f"{s['t_ms']:>8.1f} {s['msgs_sent']:>9} {s['recv_q']:>6} {s['send_q']:>7} "
                   f"{s['snd_wnd']:>7} {s['skmem_w']:>8} {s['skmem_tb']:>8}")
    out += ["", f"connection to reader gone after: {_cut(d)}",
            f"bytes reader could still read afterwards: {d['bytes_after']}",
            "server log (reader's lines):"]
    out += [f"  {x}" for x in d["log"]]
    return "\n".join(out)


STATUS_ROWS = ("VmRSS", "RssAnon", "VmSize", "VmPTE", "Threads", "fds")


def memory_txt(d):
    n = d["clients"]
    out = [f"# tcp_server and udp_server (default options, -q) with 0, {n} and {2 * n} idle",
           "# clients, each registered (HELLO answered with WELCOME) in the lobby, every",
           "# JOINED drained. Inside a private network namespace.",
           "# 'first': per client for the first clients, 0 -> n (includes what the first",
           "# fan-outs touch once: malloc arenas, queue pages). 'marginal': per client for the",
           "# next ones, n -> 2n: the steady cost of one more client.",
           "# /proc/PID/status in kB. ss -m skmem summed over the server's sockets, in bytes:",
           "# r, t, f, w, o, bl are memory held now; rb and tb are buffer limits, not memory.",
           "# sockstat inuse counts this namespace's sockets: both ends of each connection.",
           "# Regenerate: make theory (analysis/theory/memory.py).", ""]
    for kind in ("tcp", "udp"):
        snaps = d["servers"][kind]
        out.append(f"## {kind}_server")
        out.append(f"{'':>22} {'0':>10} {n:>10} {2 * n:>10}   {'first':>9} {'marginal':>9}")
        for k in STATUS_ROWS:
            a, b, c = (s["status"].get(k, 0) for s in snaps)
            unit = "" if k in ("Threads", "fds") else " kB"
            out.append(f"{k + unit:>22} {a:>10} {b:>10} {c:>10}   "
                       f"{_per_client(a, b, n, 2)} {_per_client(b, c, n, 2)}")
        ns0, ns1, ns2 = (s["sockets"] for s in snaps)
        out.append(f"{'server sockets (ss)':>22} {ns0:>10} {ns1:>10} {ns2:>10}")
        for k in sorted(set().union(*(s["skmem"] for s in snaps))):
            a, b, c = (s["skmem"].get(k, 0) for s in snaps)
            out.append(f"{'skmem ' + k + ' bytes':>22} {a:>10} {b:>10} {c:>10}   "
                       f"{_per_client(a, b, n, 1)} {_per_client(b, c, n, 1)}")
        key = "TCP" if kind == "tcp" else "UDP"
        for k in (f"{key}.inuse", "sockets.used"):
            a, b, c = (s["sockstat"].get(k, 0) for s in snaps)
            out.append(f"{'sockstat ' + k:>22} {a:>10} {b:>10} {c:>10}")
        out.append("")
    out.append("## slab object sizes of this kernel (bytes, /proc/slabinfo objsize)")
    out += [f"{k:>18}: {v}" for k, v in sorted(d["slabs"].items())]
    return "\n".join(out)


def path_txt(d):
    out = [f"# tcp_client and udp_client through bin/linkem --delay {d['delay_ms']} (a round trip "
           f"of {2 * d['delay_ms']} ms), the server",
           "# outside on linkem's address, the client inside; tcpdump on linkem's device inside:",
           "# the client's view. Client input through a pipe; at EOF it waits for the ACK, sends",
           "# BYE and exits. Regenerate: make theory (analysis/theory/path.py).", ""]
    for kind in ("tcp", "udp"):
        s = d[kind]
        out += [f"## {kind}_client -> {kind}_server port {s['port']}, lines {s['lines']!r}", "",
                "### tcpdump -r (inside linkem's namespace) -n -S -v -ttttt", "", s["dump"], "",
                "### the same packets, decoded by analysis/theory/pcap.py", "",
                packet_table(s["packets"]), "", "### client output", "", s["client_output"], ""]
    return "\n".join(out)


# experiment (data file) -> [(text file, renderer)]; the experiments run in this order
TEXTS = {
    "environment": [("environment.txt", environment_txt)],
    "sessions": [("tcp_session.txt", tcp_session_txt), ("udp_session.txt", udp_session_txt),
                 ("headers.txt", headers_txt)],
    "loss": [("loss_ss.txt", loss_txt)],
    "flow": [("flow_control.txt", flow_txt)],
    "memory": [("memory.txt", memory_txt)],
    "path": [("path_session.txt", path_txt)],
}


# --- THEORY.md's generated blocks ---


def block_capture(d):
    return "```\n" + packet_table(d["tcp"]["packets"]).rstrip() + "\n```\n"


def block_udp_capture(d):
    return "```\n" + packet_table(d["udp"]["packets"]).rstrip() + "\n```\n"


def block_headers(d):
    h = d["headers"]
    out = ["| packet | IP | TCP or UDP | headers | options |", "| --- | --- | --- | --- | --- |"]
    for ex in h["examples"]:
        r = ex["packet"]
        if r is not None:
            out.append(f"| {ex['name']} | {r['ip_hdr']} | {r['l4_hdr']} | "
                       f"{r['ip_hdr'] + r['l4_hdr']} | {' '.join(r['opts']) or '-'} |")
    for proto in ("tcp", "udp"):
        t = h[proto]
        hdr, pct = _overhead(t)
        out += ["", f"{proto.upper()} session: {t['packets']} packets, {t['payload']} bytes of "
                f"chat in {t['wire']} IP bytes, {hdr} of them headers ({pct:.1f} %)."]
    return "\n".join(out) + "\n"


def block_loss(d):
    out = ["| cc | loss | cwnd median (min-max) | ssthresh min | rto max (ms) | "
           "retransmitted: all / fast / after timeout | ACK p50 / p99 / max (ms) | lost |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in d["runs"]:
        c, n = _loss_cells(r), r["nstat"]
        ms = [r[k] / 1000 for k in ("ack_p50_us", "ack_p99_us", "ack_max_us")]
        ack = " / ".join("%.2f" % v if v < 10 else "%.0f" % v for v in ms)
        out.append(f"| {'Reno' if r['cc'] == 'reno' else r['cc'].upper()} | {r['loss_pct']} % | "
                   f"{c['cwnd_med']} ({c['cwnd_min']}-{c['cwnd_max']}) | {c['ssthresh_min']} | "
                   f"{c['rto_max_ms']} | {n.get('TcpRetransSegs', '?')} / "
                   f"{n.get('TcpExtTCPFastRetrans', '?')} / {n.get('TcpExtTCPTimeouts', '?')} | "
                   f"{ack} | {r['lost']} |")
    return "\n".join(out) + "\n"


def block_memory(d):
    n = d["clients"]
    out = [f"| per client | tcp_server: first {n:,} | tcp_server: next {n:,} | "
           f"udp_server: first {n:,} | udp_server: next {n:,} |",
           "| --- | --- | --- | --- | --- |"]
    for key, label in (("VmRSS", "resident memory (VmRSS, kB)"),
                       ("VmSize", "address space (VmSize, kB)"),
                       ("Threads", "threads"), ("fds", "descriptors")):
        cells = []
        for kind in ("tcp", "udp"):
            a, b, c = (s["status"].get(key, 0) for s in d["servers"][kind])
            cells += [_per_client(a, b, n, 2).strip(), _per_client(b, c, n, 2).strip()]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    slabs = d["slabs"]
    sock = sum(slabs.get(k, 0) for k in ("TCP", "sock_inode_cache", "filp", "dentry"))
    out.append("")
    out.append(f"Kernel objects of one TCP socket on this kernel: tcp_sock {slabs.get('TCP')} + "
               f"socket inode {slabs.get('sock_inode_cache')} + file {slabs.get('filp')} + "
               f"dentry {slabs.get('dentry')} = {sock} bytes; of one thread: task_struct "
               f"{slabs.get('task_struct')} bytes and a 16 KiB kernel stack (x86-64).")
    return "\n".join(out) + "\n"


def block_flow(d):
    out = ["| t (ms) | frames sent by talker | Send-Q (bytes) | window reader offers (bytes) | "
           "send buffer: queued / limit (bytes) |", "| --- | --- | --- | --- | --- |"]
    for s in d["samples"]:
        out.append(f"| {s['t_ms']:.1f} | {s['msgs_sent']} | {s['send_q']} | {s['snd_wnd']} | "
                   f"{s['skmem_w']} / {s['skmem_tb']} |")
    out += ["", f"Connection to reader closed by the server after: {_cut(d)}. Server log:", ""]
    out += [f"    {x.strip()}" for x in d["log"]]
    return "\n".join(out) + "\n"


# The exchanges of a chat session: (name, who sends it, how its packet starts: TCP flags or
# the frame's first word)
EXCHANGES = (("SYN", "client", "flags", "SYN"), ("SYN-ACK", "server", "flags", "SYN,ACK"),
             ("HELLO", "client", "text", "HELLO"), ("WELCOME", "server", "text", "WELCOME"),
             ("first MSG", "client", "text", "MSG"), ("its ACK", "server", "text", "ACK"))


def exchanges(packets):
    """[(name, t_ms)] of the session's first packet of each of EXCHANGES (those it has), in
    the capture's time (the first packet at 0)."""
    out = []
    for name, side, field, want in EXCHANGES:
        for r in packets:
            hit = r["flags"] == want if field == "flags" else \
                r["payload_len"] and r["text"].split(" ", 1)[0] == want
            if r["side"] == side and hit:
                out.append((name, r["t_ms"]))
                break
    return out


def block_path(d):
    rtt = 2 * d["delay_ms"]
    out = [f"| packet (client's view, {rtt} ms round trip) | TCP: at (ms) | in round trips | "
           "UDP: at (ms) | in round trips |", "| --- | ---: | ---: | ---: | ---: |"]
    got = {kind: dict(exchanges(d[kind]["packets"])) for kind in ("tcp", "udp")}
    for name, *_ in EXCHANGES:
        cells = []
        for kind in ("tcp", "udp"):
            t = got[kind].get(name)
            cells += ["-", "-"] if t is None else [f"{t:.1f}", f"{t / rtt:.2f}"]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def block_path_tcp(d):
    return "```\n" + packet_table(d["tcp"]["packets"]).rstrip() + "\n```\n"


def block_path_udp(d):
    return "```\n" + packet_table(d["udp"]["packets"]).rstrip() + "\n```\n"


# block -> (experiment whose data it shows, renderer)
BLOCKS = (("theory-capture", "sessions", block_capture),
          ("theory-udp-capture", "sessions", block_udp_capture),
          ("theory-headers", "sessions", block_headers), ("theory-flow", "flow", block_flow),
          ("theory-loss", "loss", block_loss), ("theory-memory", "memory", block_memory),
          ("theory-path", "path", block_path), ("theory-path-tcp", "path", block_path_tcp),
          ("theory-path-udp", "path", block_path_udp))


# --- data files ---


def load(resdir, name):
    with open(os.path.join(resdir, DATA, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def texts(name, data):
    """{text file: content} of one experiment's data."""
    out = {}
    for fname, fn in TEXTS[name]:
        text = fn(data)
        out[fname] = text if text.endswith("\n") else text + "\n"
    return out


def save(outdir, name, data):
    """Writes the experiment's data (data/<name>.json) and its text files; returns the
    paths written."""
    os.makedirs(os.path.join(outdir, DATA), exist_ok=True)
    path = os.path.join(outdir, DATA, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    written = [path]
    for fname, text in texts(name, data).items():
        written.append(os.path.join(outdir, fname))
        with open(written[-1], "w", encoding="utf-8") as f:
            f.write(text)
    return written


def render_texts(resdir):
    """{text file: content} of every experiment, from resdir's data."""
    out = {}
    for name in TEXTS:
        out.update(texts(name, load(resdir, name)))
    return out


def render_blocks(resdir):
    data = {name: load(resdir, name) for name in {exp for _, exp, _ in BLOCKS}}
    return {block: fn(data[exp]) for block, exp, fn in BLOCKS}


def update_doc(resdir, doc=DOC):
    """Rewrites THEORY.md's generated blocks from resdir's data. Returns the names replaced."""
    return markers.update_file(doc, render_blocks(resdir))


# --- THEORY.md's blocks made from a make bench run (results/, not results/theory/) ---


def bench_blocks(resdir):
    """{block: markdown} of THEORY.md's blocks that show make bench figures, from resdir
    (results/): section 2.3's table of what a round trip costs each protocol."""
    return {"theory-rtt": rtt.theory_table(resdir)}  # the scenario that measures it renders it


def update_doc_bench(resdir, doc=DOC):
    """Rewrites THEORY.md's make bench blocks from resdir; returns the names replaced."""
    return markers.update_file(doc, bench_blocks(resdir))


# --- the make bench figures THEORY.md's section 2 quotes ---

# What THEORY.md says, in 3.1 and 3.5, while the committed run has no tcp-epoll rows.
EVENT_LOOP_PENDING = ("The run committed with this document predates the `tcp-epoll` series "
                      "of the benchmark")


def event_loop_quotes(resdir):
    """{"3.1": sentence, "3.5": sentence}: the figures THEORY.md's sections 3.1 and 3.5 quote
    about a thread per client against an event loop, at the largest size both TCP models ran
    in resdir's scale.csv (REPORT.md section 1.1); None when it has no tcp-epoll rows.
    tests/integration/test_theory.py checks that THEORY.md holds them word for word."""
    ser = scale.by_series({r.get("label"): r for r in
                           bk.read_csv(os.path.join(resdir, "scale.csv"))})
    both = sorted(set(ser.get("tcp", {})) & set(ser.get("tcp-epoll", {})))
    if not both:
        return None
    k, f, n = both[-1], R.num, R.n
    t, e = ser["tcp"][k], ser["tcp-epoll"][k]

    def kib(r):
        return n(R.ratio(f(r, "server_rss_kib_max"), f(r, "clients")), 1)

    udp = ser.get("udp", {})
    u = udp[max(udp)] if udp else None
    return {
        "3.1": (f"In the `make bench` run committed with this document, at {n(k)} clients "
                f"`tcp_server` held {n(f(t, 'server_threads_max'))} threads and spent "
                f"{n(f(t, 'server_cpu_us_per_msg'), 1)} µs of CPU per message; with "
                f"`--io epoll` it held {n(f(e, 'server_threads_max'))} threads and spent "
                f"{n(f(e, 'server_cpu_us_per_msg'), 1)} µs (REPORT.md section 1.1)."),
        "3.5": (f"Measured in the same run (REPORT.md section 1.1, `results/scale.csv`): at "
                f"{n(k)} clients the event loop held {n(f(e, 'server_threads_max'))} threads "
                f"and {kib(e)} KiB of RSS per client, the thread-per-client server "
                f"{n(f(t, 'server_threads_max'))} threads and {kib(t)} KiB per client"
                + (f"; `udp_server` held {kib(u)} KiB per client at {n(f(u, 'clients'))} "
                   "clients." if u else ".")),
    }



def bench_figures(resdir):
    """The make bench figures THEORY.md's section 2 quotes, read from resdir's CSVs, as text:
    after a new benchmark run, compare them with the prose and update it."""
    def rows(name):
        return bk.read_csv(os.path.join(resdir, f"{name}.csv"))

    def ms(v):
        return f"{float(v) / 1000:.2f} ms" if v not in ("", None) else "-"

    out = [read_file(os.path.join(resdir, "machine.txt")).splitlines()[0], "", "loss (2.1):"]
    for r in rows("loss"):
        out.append(f"  {r['proto']} {r['injected_loss_pct']:>2} %: sent {r['sent']} lost "
                   f"{r['lost']} (uplink {r['lost_uplink']}, downlink {r['lost_downlink']}) "
                   f"ACK p50 {ms(r['ack_p50_us'])} p99 {ms(r['ack_p99_us'])} max "
                   f"{ms(r['ack_max_us'])} loadgen_bound {r['loadgen_bound']}")
    out.append("scale (2.2, 2.4):")
    for r in rows("scale"):
        n = int(r["clients"])
        rss = int(r["server_rss_kib_max"] or 0)
        out.append(f"  {R.series_of(r)} {n:>6} clients: threads {r['server_threads_max']} RSS "
                   f"{rss / 1024:.1f} MiB ({rss / n:.1f} KiB per client) CPU per msg "
                   f"{r['server_cpu_us_per_msg']} us loadgen_bound {r['loadgen_bound']}")
    quotes = event_loop_quotes(resdir)
    out.append("threads or an event loop (3.1, 3.5), the sentences to quote:")
    out += [f"  {k}: {v}" for k, v in quotes.items()] if quotes else [f"  {EVENT_LOOP_PENDING}"]
    out.append("equal load (2.3, 2.4):")
    for r in rows("cdf"):
        out.append(f"  {r['proto']}: ACK p50 {ms(r['ack_p50_us'])} p99 {ms(r['ack_p99_us'])} "
                   f"p99.9 {ms(r['ack_p999_us'])} CPU per msg {r['server_cpu_us_per_msg']} us")
    out.append("anchors (2.3):")
    for r in rows("anchors"):
        out.append(f"  {r['proto']}: sockperf ping-pong p50 {r.get('sockperf_p50_us', '-')} us")
    return "\n".join(out)
