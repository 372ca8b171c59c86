"""hybrid: udp_server --hybrid (TCP control, UDP chat) set beside plain UDP and TCP (REPORT.md
section 8), from the scale and loss scenarios' hybrid rows: no points, no table of its own.

ORDER puts it after anchors, as before this layout: its reading follows the anchors' in
tables.md (REPORT.md places it in section 8 by its markers).
"""
from analysis import report as R

ORDER = 90
CHARTS = ()
TABLES = []


def points(quick):
    return []


def reading_hybrid(outdir):
    scale, loss = R.by_label(outdir, "scale.csv"), R.by_label(outdir, "loss.csv")
    n, f, ratio = R.n, R.num, R.ratio
    hs = R.sizes(scale, "hybrid")
    if not hs and not R.sizes(loss, "hybrid"):
        return "No data: no hybrid point in this run.\n"
    out = []
    if hs:
        top = hs[-1]
        h, t, u = (scale.get(f"scale-{p}-{top}") for p in ("hybrid", "tcp", "udp"))
        out.append(f"At {n(top)} clients `udp_server --hybrid` holds "
                   f"{n(f(h, 'server_threads_max'))} threads and "
                   f"{n(f(h, 'server_fds_max'))} descriptors and "
                   f"{n(ratio(f(h, 'server_rss_kib_max'), 1024.0), 1)} MiB of RSS"
                   + (f", against {n(f(u, 'server_threads_max'))} threads, "
                      f"{n(f(u, 'server_fds_max'))} descriptors and "
                      f"{n(ratio(f(u, 'server_rss_kib_max'), 1024.0), 1)} MiB for plain UDP "
                      f"and {n(f(t, 'server_threads_max'))} threads for `tcp_server`"
                      if t and u else "") + ".")
        cp = [(k, scale.get(f"scale-hybrid-{k}"), scale.get(f"scale-udp-{k}"),
               scale.get(f"scale-tcp-{k}")) for k in hs]
        out.append("Set-up p50 (hybrid / UDP / TCP): " + "; ".join(
            f"{n(k)} clients {n(f(h, 'connect_p50_us'))} / "
            f"{n(f(u, 'connect_p50_us')) if u else 'n/a'} / "
            f"{n(f(t, 'connect_p50_us')) if t else 'n/a'} µs" for k, h, u, t in cp) + ".")
        hb = [ratio(f(h, "bytes_sent_wire"), f(h, "sent")) for _, h, _, _ in cp]
        ub = [ratio(f(u, "bytes_sent_wire"), f(u, "sent")) if u else None
              for _, _, u, _ in cp]
        diffs = [a - b for a, b in zip(hb, ub) if a is not None and b is not None]
        if diffs:
            out.append(f"Each hybrid `MSG` datagram carries {R.rng(diffs, 1)} bytes more on "
                       "the uplink than plain UDP's at the same points (the token and its "
                       "space).")
        a, b = f(h, "ack_p50_us"), f(u, "ack_p50_us") if u else None
        out.append(f"Chat latency at {n(top)} clients: ACK p50 {n(a)} µs (hybrid) against "
                   f"{n(b)} µs (UDP).")
    lp = sorted((r for r in loss.values() if r.get("proto") == "hybrid"
                 and (f(r, "injected_loss_pct") or 0) > 0),
                key=lambda r: f(r, "injected_loss_pct"))
    if lp:
        out.append("Under injected loss the hybrid lost " + ", ".join(
            f"{n(R.lost_pct(r), 2)} % at {n(f(r, 'injected_loss_pct'))} %" for r in lp) +
            " per direction, where plain UDP lost " + ", ".join(
            f"{n(R.lost_pct(loss[r['label'].replace('hybrid', 'udp')]), 2)} %"
            if r["label"].replace("hybrid", "udp") in loss else "n/a" for r in lp) +
            ": the chat datagrams are as exposed as plain UDP's.")
    return " ".join(out) + "\n"


READINGS = [("hybrid", reading_hybrid)]
