"""eventloop: threads or an event loop (REPORT.md section 1.1), `tcp_server --io threads`
against `tcp_server --io epoll` at every size of the scale scenario, from its rows (no
points of its own): what each model holds per client (threads, RSS), what a message costs
it (CPU) and what the clients see (ACK p50, p99).

The expectation it checks, and says whether the run met: the event loop holds a few threads
(its loops, the accepting thread, the log writer) and a few KiB per client, the threaded
server a thread and about 22 KiB per client.
"""
from analysis import report as R
from analysis.scenarios import scale

ORDER = 15
CHARTS = ("eventloop",)
TABLES = []
FEW_THREADS = 8  # "a few threads": the event loop's count stays at or below it at every size
FEW_KIB = 8.0  # "a few KiB per client"
MEASURED_FROM = 1000  # RSS per client from this size on: below it the fixed part dominates


def points(quick):
    return []


def _pair(a, b, nd=0):
    return f"{R.n(a, nd)} / {R.n(b, nd)}"


def reading_eventloop(outdir):
    ser = scale.by_series(R.need(outdir, "scale.csv"))
    thr, ep = ser.get("tcp", {}), ser.get("tcp-epoll", {})
    sizes = sorted(set(thr) & set(ep))
    if not sizes:
        return ("No data: this run has no `tcp-epoll` rows beside the `tcp` ones (the series "
                "runs when the `tcp_server` measured offers `--io epoll`).\n")
    f, n, ratio = R.num, R.n, R.ratio

    def per_client(r):
        return ratio(f(r, "server_rss_kib_max"), f(r, "clients"))

    lines = ["| clients | threads (threads / epoll) | RSS per client, KiB (threads / epoll) | "
             "CPU per msg, µs (threads / epoll) | ACK p50, µs (threads / epoll) | "
             "ACK p99, µs (threads / epoll) |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k in sizes:
        a, b = thr[k], ep[k]
        lines.append(f"| {n(k)} | {_pair(f(a, 'server_threads_max'), f(b, 'server_threads_max'))}"
                     f" | {_pair(per_client(a), per_client(b), 1)} | "
                     f"{_pair(f(a, 'server_cpu_us_per_msg'), f(b, 'server_cpu_us_per_msg'), 1)}"
                     f" | {_pair(f(a, 'ack_p50_us'), f(b, 'ack_p50_us'))} | "
                     f"{_pair(f(a, 'ack_p99_us'), f(b, 'ack_p99_us'))} |")
    out = []
    extra = sorted({int(f(thr[k], "server_threads_max") - k) for k in sizes
                    if f(thr[k], "server_threads_max") is not None})
    ethreads = [f(ep[k], "server_threads_max") for k in sizes
                if f(ep[k], "server_threads_max") is not None]
    big = [k for k in sizes if k >= MEASURED_FROM]
    tk = [per_client(thr[k]) for k in big if per_client(thr[k]) is not None]
    ek = [per_client(ep[k]) for k in big if per_client(ep[k]) is not None]
    if extra:
        out.append("`--io threads` held a thread per client: its thread count was the clients "
                   "plus " + R.rng(extra) + " at every size.")
    if ethreads:
        out.append(f"`--io epoll` held {R.rng(ethreads)} threads whatever the clients, from "
                   f"{n(sizes[0])} to {n(sizes[-1])}.")
    if tk and ek:
        out.append(f"From {n(big[0])} clients on, RSS per client was {R.rng(tk, 1)} KiB with "
                   f"threads and {R.rng(ek, 1)} KiB with the event loop.")
    if ethreads and tk and ek:
        met = max(ethreads) <= FEW_THREADS and max(ek) <= FEW_KIB
        out.append(("This is what the design predicts" if met else
                    "This is NOT what the design predicts") +
                   f" (an event loop: at most {FEW_THREADS} threads and {FEW_KIB:g} KiB per "
                   "client; a thread per client: about 22 KiB each).")
    top = sizes[-1]
    a, b = thr[top], ep[top]
    cheaper = [k for k in sizes if f(ep[k], "server_cpu_us_per_msg") is not None and
               f(thr[k], "server_cpu_us_per_msg") is not None and
               f(ep[k], "server_cpu_us_per_msg") < f(thr[k], "server_cpu_us_per_msg")]
    out.append(f"Server CPU per message was lower with the event loop at {len(cheaper)} of "
               f"{len(sizes)} sizes; at {n(top)} clients {n(f(a, 'server_cpu_us_per_msg'), 1)} "
               f"µs with threads against {n(f(b, 'server_cpu_us_per_msg'), 1)} µs, and the "
               f"ACK p50 {n(f(a, 'ack_p50_us'))} against {n(f(b, 'ack_p50_us'))} µs, the p99 "
               f"{n(f(a, 'ack_p99_us'))} against {n(f(b, 'ack_p99_us'))} µs (one run of a few "
               "seconds on a shared machine; the scale reading lists the rows that were *loadgen "
               "bound*).")
    return "\n".join(lines) + "\n\n" + " ".join(out) + "\n"


READINGS = [("eventloop", reading_eventloop)]
