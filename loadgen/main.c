/* loadgen: open-loop load generator for chatbench's TCP and UDP chat servers.
 *
 * main() reads like the run: options, limits, the shard's clients spread over worker threads
 * by room, set-up, t0 (--start-at), intervals, join, merge of the threads, report; or, as
 * `loadgen merge`, the merge of several shards' results (merge.c). The pieces: config.h
 * (options), shard.h (which slice of the run), worker.h (a thread and its event loop),
 * client.h (the chat protocol of one client), transport.h (tcp, udp, hybrid), measure.h (what
 * a client's messages measure), stats.h, report.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "merge.h"
#include "net.h"
#include "report.h"
#include "worker.h"

static _Noreturn void die(const char *what, int err)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(err));
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&lg_stop, 1); /* lock-free, so async-signal-safe */
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}

static long raise_limits(const struct lg_config *cfg)
{
    long nofile = 0;
    int rc = net_raise_nofile(&nofile);
    if (rc < 0)
        die("cannot raise the open-file limit (RLIMIT_NOFILE)", -rc);
    /* one socket per client, plus the event bases' own descriptors and stdio */
    long need = (long)cfg->shard_clients + 8L * cfg->threads + 32;
    if (nofile < need) {
        struct rlimit rl = {.rlim_cur = (rlim_t)need, .rlim_max = (rlim_t)need};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) { /* raising the hard limit needs root */
            fprintf(stderr,
                    "loadgen: %" PRIu32 " clients need %ld open files; the limit is %ld and "
                    "cannot be raised (%s): use fewer clients, more shards, or raise the hard "
                    "limit (ulimit -Hn, or run as root)\n",
                    cfg->shard_clients, need, nofile, strerror(errno));
            exit(1);
        }
        nofile = need;
    }
    return nofile;
}

/* Unix time of a CLOCK_MONOTONIC instant, and back (a few microseconds of uncertainty: the
 * two clocks are read one after the other). */
static double unix_of(uint64_t mono_ns)
{
    struct timespec rt;
    if (clock_gettime(CLOCK_REALTIME, &rt) < 0)
        die("clock_gettime", errno);
    uint64_t now = clock_now_ns();
    return (double)rt.tv_sec + (double)rt.tv_nsec / 1e9 + ((double)mono_ns - (double)now) / 1e9;
}

static uint64_t mono_of(double unix_s)
{
    double d = unix_s - unix_of(clock_now_ns());
    uint64_t now = clock_now_ns();
    return d > 0 ? now + (uint64_t)(d * 1e9) : now - (uint64_t)(-d * 1e9);
}

static double cpu_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* One run of this process: its workers and what the main thread gathers. */
struct run {
    struct lg_config *cfg;
    uint32_t nth;
    struct lg_client *clients;
    uint32_t *idx; /* clients by worker: worker t owns idx[start[t] .. start[t+1]) */
    uint32_t *start;
    struct lg_worker *workers;
    bool tty;
    uint64_t t0, stop_ns;
    struct lg_row *series;
    size_t nseries, capseries;
    FILE *hlog;
    int hlog_rc;
};

/* The shard's clients, whole rooms round-robin over the threads. */
static void spread(struct run *r)
{
    uint32_t nth = r->nth, n = r->cfg->shard_clients, k = r->cfg->room_size;
    r->clients = calloc(n, sizeof(*r->clients));
    r->idx = calloc(n, sizeof(*r->idx));
    r->start = calloc(nth + 1, sizeof(*r->start));
    uint32_t *count = calloc(nth, sizeof(*count));
    r->workers = calloc(nth, sizeof(*r->workers));
    if (r->clients == NULL || r->idx == NULL || count == NULL || r->start == NULL ||
        r->workers == NULL)
        die("out of memory", ENOMEM);
    for (uint32_t i = 0; i < n; i++)
        count[(i / k) % nth]++;
    for (uint32_t t = 0; t < nth; t++)
        r->start[t + 1] = r->start[t] + count[t];
    memset(count, 0, nth * sizeof(*count));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = (i / k) % nth;
        r->idx[r->start[t] + count[t]++] = i;
    }
    free(count);
    for (uint32_t t = 0; t < nth; t++) {
        int rc = lg_worker_init(&r->workers[t], t, r->cfg, r->clients, r->idx + r->start[t],
                                r->start[t + 1] - r->start[t]);
        if (rc < 0)
            die("cannot set up a worker", -rc);
    }
}

/* Workers block the signals, main handles them. --cpus: main (and what it starts) runs on
 * the set; each worker then pins itself to one CPU of it. */
static void start_threads(struct run *r)
{
    if (r->cfg->pin && sched_setaffinity(0, sizeof(r->cfg->cpus), &r->cfg->cpus) < 0)
        die("sched_setaffinity (--cpus)", errno);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (uint32_t t = 0; t < r->nth; t++) {
        int rc = pthread_create(&r->workers[t].thread, NULL, lg_worker_main, &r->workers[t]);
        if (rc != 0)
            die("cannot start a worker thread", rc);
    }
    struct sigaction sact = {.sa_handler = on_signal};
    sigemptyset(&sact.sa_mask);
    if (sigaction(SIGINT, &sact, NULL) < 0 || sigaction(SIGTERM, &sact, NULL) < 0)
        die("sigaction", errno);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Set-up: until every client is in its room or has failed; returns how long it took.
 * Thousands of clients take a while (each HELLO and JOIN is announced to the lobby), so the
 * wait goes on as long as set-ups keep completing: it ends LG_CONNECT_TIMEOUT_NS after the
 * last one (after the ramp), or at LG_SETUP_MAX_NS in all. */
static double wait_setup(struct run *r)
{
    const struct lg_config *cfg = r->cfg;
    uint64_t setup_start = clock_now_ns(), ramp_ns = (uint64_t)(cfg->ramp_s * 1e9);
    uint64_t last_change = setup_start, last_total = 0;
    for (;;) {
        uint64_t ready = 0, failed = 0, now = clock_now_ns();
        for (uint32_t t = 0; t < r->nth; t++) {
            ready += atomic_load(&r->workers[t].n_ready);
            failed += atomic_load(&r->workers[t].n_failed);
        }
        if (ready + failed != last_total) {
            last_total = ready + failed;
            last_change = now;
        }
        if (r->tty)
            fprintf(stderr, "\rconnecting: %" PRIu64 " ready, %" PRIu64 " failed of %" PRIu32 "   ",
                    ready, failed, cfg->shard_clients);
        uint64_t quiet_since =
            last_change > setup_start + ramp_ns ? last_change : setup_start + ramp_ns;
        if (ready + failed >= cfg->shard_clients ||
            now > quiet_since + LG_CONNECT_TIMEOUT_NS + 2 * LG_TICK_NS ||
            now > setup_start + ramp_ns + LG_SETUP_MAX_NS || atomic_load(&lg_stop))
            break;
        sleep_ns(5000000);
    }
    if (r->tty)
        fputc('\n', stderr);
    return (double)(clock_now_ns() - setup_start) / 1e9;
}

/* t0, the start of the warm-up: --start-at, or as soon as every worker can see it. */
static uint64_t choose_t0(const struct run *r)
{
    uint64_t t0 = clock_now_ns() + 2 * LG_TICK_NS;
    if (r->cfg->start_at <= 0)
        return t0;
    uint64_t at = mono_of(r->cfg->start_at);
    if (at >= t0) {
        if (r->tty)
            fprintf(stderr, "waiting for --start-at (%.1f s)\n", (double)(at - t0) / 1e9);
        return at;
    }
    fprintf(stderr,
            "loadgen: warning: the set-up ended %.3f s after --start-at: starting now, so this "
            "shard's window does not line up with the others' (t0_unix says by how much)\n",
            (double)(t0 - at) / 1e9);
    return t0;
}

/* The time-series row of one interval. */
static void series_row(struct run *r, double t_s, uint64_t connected, const struct lg_ival *v)
{
    if (r->nseries == r->capseries) {
        r->capseries = r->capseries ? r->capseries * 2 : 64;
        struct lg_row *s = realloc(r->series, r->capseries * sizeof(*s));
        if (s == NULL)
            die("out of memory", ENOMEM);
        r->series = s;
    }
    const struct lg_config *cfg = r->cfg;
    struct lg_row *row = &r->series[r->nseries++];
    lg_row_init(row);
    lg_row_str(row, "label", cfg->label);
    lg_row_dbl(row, "t_s", t_s);
    lg_row_u64(row, "connected", connected);
    lg_row_u64(row, "sent", v->sent);
    lg_row_u64(row, "acked", v->acked);
    lg_row_u64(row, "lost", v->lost);
    lg_row_dbl(row, "ack_p50_us", hist_percentile(&v->ack, 50) / 1e3);
    lg_row_dbl(row, "ack_p99_us", hist_percentile(&v->ack, 99) / 1e3);
    lg_row_dbl(row, "fanout_p99_us", hist_percentile(&v->fanout, 99) / 1e3);
    lg_row_u64(row, "fanout_received", v->fanout.total);
    char shard[16];
    lg_row_str(row, "shard", lg_shard_name(&cfg->shard, shard, sizeof(shard)));
}

/* Intervals: every --interval, the workers' figures into the time series and the .hlog,
 * until every worker has finished. */
static void run_intervals(struct run *r)
{
    uint64_t ival_ns = (uint64_t)(r->cfg->interval_s * 1e9), next = r->t0 + ival_ns;
    struct lg_ival iv;
    if (lg_ival_init(&iv) < 0)
        die("out of memory", ENOMEM);
    bool all_done = false;
    double prev_t_s = 0;
    while (!all_done) {
        uint64_t now = clock_now_ns();
        if (r->stop_ns == 0 && atomic_load(&lg_stop))
            r->stop_ns = now;
        all_done = true;
        for (uint32_t t = 0; t < r->nth; t++)
            all_done = all_done && atomic_load(&r->workers[t].done);
        if (!all_done && now < next) {
            sleep_ns(next - now < 20000000 ? next - now : 20000000);
            continue;
        }
        lg_ival_reset(&iv);
        uint64_t connected = 0;
        for (uint32_t t = 0; t < r->nth; t++) {
            lg_worker_collect(&r->workers[t], &iv);
            connected +=
                atomic_load(&r->workers[t].n_ready) - atomic_load(&r->workers[t].n_dropped);
        }
        if (all_done && lg_ival_empty(&iv))
            break; /* nothing happened since the last full interval */
        double t_s = (double)((all_done ? now : next) - r->t0) / 1e9;
        series_row(r, t_s, connected, &iv);
        if (r->hlog != NULL && r->hlog_rc == 0)
            r->hlog_rc = lg_report_hlog_interval(r->hlog, &iv, prev_t_s, t_s);
        if (r->tty) {
            double secs = t_s - prev_t_s > 0 ? t_s - prev_t_s : (double)ival_ns / 1e9;
            fprintf(stderr,
                    "\r[%6.1f s] connected %" PRIu64 "  sent/s %.0f  acked/s %.0f  ack p99 %.2f ms"
                    "  lost %" PRIu64 "      ",
                    t_s, connected, iv.sent / secs, iv.acked / secs,
                    hist_percentile(&iv.ack, 99) / 1e6, iv.lost);
        }
        prev_t_s = t_s;
        next += ival_ns;
    }
    if (r->tty)
        fputc('\n', stderr);
    lg_ival_destroy(&iv);
}

/* Says on stderr what makes the run a failure; returns 1 then, else 0. */
static int verdict(const struct lg_result *res)
{
    const struct lg_config *cfg = res->cfg;
    const struct lg_stats *s = &res->st;
    int status = 0;
    if (s->connected == 0) {
        fprintf(stderr,
                "loadgen: ERROR: no client connected to %s:%u (is the %s server running?)\n",
                cfg->host, cfg->port, cfg->transport->upper);
        status = 1;
    } else if (s->connect_failed > 0) {
        fprintf(stderr,
                "loadgen: warning: %" PRIu64 " of %" PRIu32 " clients failed to connect%s\n",
                s->connect_failed, cfg->shard_clients,
                s->server_full ? " (the server said server_full: raise its --max-clients)" : "");
    }
    uint64_t fan_lost =
        s->fanout_expected > s->fanout_received ? s->fanout_expected - s->fanout_received : 0;
    if (!cfg->transport->datagrams && (s->lost > 0 || s->tcp_disorder > 0 || fan_lost > 0)) {
        fprintf(stderr,
                "loadgen: ERROR: TCP must lose and reorder nothing, yet %" PRIu64
                " messages were never acknowledged, %" PRIu64 " FROMs never arrived and %" PRIu64
                " frames arrived out of order or twice\n",
                s->lost, fan_lost, s->tcp_disorder);
        status = 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "merge") == 0)
        return lg_merge_main(argc - 1, argv + 1);
    struct lg_config cfg;
    lg_options(argc, argv, &cfg);
    struct lg_result res = {.cfg = &cfg};
    res.nofile = raise_limits(&cfg);
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die("signal", errno);
    if (cfg.room_size > 1 && !lg_fanout_tracking(&cfg))
        fprintf(stderr,
                "loadgen: warning: %" PRIu32 " clients in rooms of %" PRIu32
                " need more than %llu MiB to track each FROM stream: fan-out duplicates and "
                "reordering are not counted (fanout_tracking = 0)\n",
                cfg.shard_clients, cfg.room_size, LG_FROM_STREAMS_MAX >> 20);

    struct run r = {.cfg = &cfg, .nth = cfg.threads, .tty = isatty(STDERR_FILENO) && !cfg.quiet};
    spread(&r);
    start_threads(&r);
    res.setup_s = wait_setup(&r);
    struct rusage ru0, ru1;
    if (getrusage(RUSAGE_SELF, &ru0) < 0)
        die("getrusage", errno);
    r.t0 = choose_t0(&r);
    atomic_store(&lg_t0_ns, r.t0);
    res.t0_unix = unix_of(r.t0);
    if (cfg.out_dir != NULL)
        r.hlog_rc = lg_report_hlog_open(&cfg, res.t0_unix, &r.hlog);
    run_intervals(&r);
    if (r.hlog != NULL && fclose(r.hlog) != 0 && r.hlog_rc == 0)
        r.hlog_rc = -errno;
    for (uint32_t t = 0; t < r.nth; t++) {
        int rc = pthread_join(r.workers[t].thread, NULL);
        if (rc != 0)
            die("pthread_join", rc);
    }
    if (getrusage(RUSAGE_SELF, &ru1) < 0)
        die("getrusage", errno);
    res.cpu_user_s = cpu_s(&ru1.ru_utime) - cpu_s(&ru0.ru_utime);
    res.cpu_sys_s = cpu_s(&ru1.ru_stime) - cpu_s(&ru0.ru_stime);
    res.interrupted = atomic_load(&lg_stop) > 0;
    uint64_t warm_end = r.t0 + (uint64_t)(cfg.warmup_s * 1e9);
    uint64_t t_end = warm_end + (uint64_t)(cfg.duration_s * 1e9);
    if (r.stop_ns != 0 && r.stop_ns < t_end)
        t_end = r.stop_ns;
    res.measured_s = t_end > warm_end ? (double)(t_end - warm_end) / 1e9 : 0;

    /* --- merge the threads and report --- */
    if (lg_stats_init(&res.st) < 0)
        die("out of memory", ENOMEM);
    for (uint32_t t = 0; t < r.nth; t++)
        if (lg_stats_add(&res.st, &r.workers[t].st) < 0)
            die("merging statistics", EINVAL);
    struct lg_row row;
    lg_row_init(&row);
    lg_report_row(&res, &row);
    if (cfg.json) {
        if (lg_row_write_json(&row, stdout) < 0)
            die("writing the JSON summary", EIO);
    } else if (!cfg.quiet) {
        lg_report_text(&res, stdout);
    }
    fflush(stdout);
    int status = 0;
    if (cfg.out_dir != NULL && lg_report_files(&res, &row, r.series, r.nseries) < 0)
        status = 1;
    if (r.hlog_rc < 0) {
        fprintf(stderr, "loadgen: cannot write the interval log in %s: %s\n", cfg.out_dir,
                strerror(-r.hlog_rc));
        status = 1;
    }
    status |= verdict(&res);

    for (size_t i = 0; i < r.nseries; i++)
        lg_row_destroy(&r.series[i]);
    free(r.series);
    lg_row_destroy(&row);
    lg_stats_destroy(&res.st);
    for (uint32_t t = 0; t < r.nth; t++)
        lg_worker_destroy(&r.workers[t]);
    free(r.workers);
    free(r.start);
    free(r.idx);
    free(r.clients);
    lg_config_destroy(&cfg);
    return status;
}
