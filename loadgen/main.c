/* loadgen: open-loop load generator for chatbench's TCP and UDP chat servers.
 *
 * main() reads like the run: options, limits, clients spread over worker threads by room,
 * set-up, t0, intervals, join, merge, report. The pieces: config.h (options), worker.h (a
 * thread and its event loop), client.h (the chat protocol of one client), transport.h (tcp,
 * udp, hybrid), measure.h (what a client's messages measure), stats.h, report.h. */
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
                    "cannot be raised (%s): use fewer clients or raise the hard limit "
                    "(ulimit -Hn, or run as root)\n",
                    cfg->shard_clients, need, nofile, strerror(errno));
            exit(1);
        }
        nofile = need;
    }
    return nofile;
}

/* The Unix time of a CLOCK_MONOTONIC instant (a few microseconds of uncertainty: the two
 * clocks are read one after the other). */
static double unix_of(uint64_t mono_ns)
{
    struct timespec rt;
    if (clock_gettime(CLOCK_REALTIME, &rt) < 0)
        die("clock_gettime", errno);
    uint64_t now = clock_now_ns();
    double wall = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
    return wall + ((double)mono_ns - (double)now) / 1e9;
}

static double cpu_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* The time-series row of one interval. */
static void series_row(struct lg_row *row, const struct lg_config *cfg, double t_s,
                       uint64_t connected, const struct lg_ival *v)
{
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
    snprintf(shard, sizeof(shard), "%" PRIu32, cfg->shard.index);
    lg_row_str(row, "shard", shard);
}

int main(int argc, char **argv)
{
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

    /* --- the shard's clients, by room, rooms round-robin over the threads --- */
    uint32_t nth = cfg.threads, n = cfg.shard_clients, k = cfg.room_size;
    struct lg_client *clients = calloc(n, sizeof(*clients));
    uint32_t *idx = calloc(n, sizeof(*idx));
    uint32_t *count = calloc(nth, sizeof(*count)), *start = calloc(nth + 1, sizeof(*start));
    struct lg_worker *workers = calloc(nth, sizeof(*workers));
    if (clients == NULL || idx == NULL || count == NULL || start == NULL || workers == NULL)
        die("out of memory", ENOMEM);
    for (uint32_t i = 0; i < n; i++)
        count[(i / k) % nth]++;
    for (uint32_t t = 0; t < nth; t++)
        start[t + 1] = start[t] + count[t];
    memset(count, 0, nth * sizeof(*count));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = (i / k) % nth;
        idx[start[t] + count[t]++] = i;
    }
    for (uint32_t t = 0; t < nth; t++) {
        int rc = lg_worker_init(&workers[t], t, &cfg, clients, idx + start[t], count[t]);
        if (rc < 0)
            die("cannot set up a worker", -rc);
    }

    /* --- threads: workers block the signals, main handles them --- */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (uint32_t t = 0; t < nth; t++) {
        int rc = pthread_create(&workers[t].thread, NULL, lg_worker_main, &workers[t]);
        if (rc != 0)
            die("cannot start a worker thread", rc);
    }
    struct sigaction sact = {.sa_handler = on_signal};
    sigemptyset(&sact.sa_mask);
    if (sigaction(SIGINT, &sact, NULL) < 0 || sigaction(SIGTERM, &sact, NULL) < 0)
        die("sigaction", errno);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    bool tty = isatty(STDERR_FILENO) && !cfg.quiet;
    /* --- set-up: until every client is in its room or has failed. Thousands of clients
     * take a while (each HELLO and JOIN is announced to the lobby), so the wait goes on as
     * long as set-ups keep completing: it ends LG_CONNECT_TIMEOUT_NS after the last one
     * (after the ramp), or at LG_SETUP_MAX_NS in all. --- */
    uint64_t setup_start = clock_now_ns(), ramp_ns = (uint64_t)(cfg.ramp_s * 1e9);
    uint64_t last_change = setup_start, last_total = 0;
    for (;;) {
        uint64_t ready = 0, failed = 0, now = clock_now_ns();
        for (uint32_t t = 0; t < nth; t++) {
            ready += atomic_load(&workers[t].n_ready);
            failed += atomic_load(&workers[t].n_failed);
        }
        if (ready + failed != last_total) {
            last_total = ready + failed;
            last_change = now;
        }
        if (tty)
            fprintf(stderr, "\rconnecting: %" PRIu64 " ready, %" PRIu64 " failed of %" PRIu32 "   ",
                    ready, failed, n);
        uint64_t quiet_since =
            last_change > setup_start + ramp_ns ? last_change : setup_start + ramp_ns;
        if (ready + failed >= n || now > quiet_since + LG_CONNECT_TIMEOUT_NS + 2 * LG_TICK_NS ||
            now > setup_start + ramp_ns + LG_SETUP_MAX_NS || atomic_load(&lg_stop))
            break;
        sleep_ns(5000000);
    }
    if (tty)
        fputc('\n', stderr);
    struct rusage ru0, ru1;
    if (getrusage(RUSAGE_SELF, &ru0) < 0)
        die("getrusage", errno);
    uint64_t t0 = clock_now_ns() + 2 * LG_TICK_NS; /* every worker sees it before it is due */
    atomic_store(&lg_t0_ns, t0);
    FILE *hlog = NULL;
    int hlog_rc = 0;
    if (cfg.out_dir != NULL)
        hlog_rc = lg_report_hlog_open(&cfg, unix_of(t0), &hlog);

    /* --- intervals --- */
    uint64_t ival_ns = (uint64_t)(cfg.interval_s * 1e9), next = t0 + ival_ns;
    struct lg_row *series = NULL;
    size_t nseries = 0, capseries = 0;
    struct lg_ival iv;
    if (lg_ival_init(&iv) < 0)
        die("out of memory", ENOMEM);
    bool all_done = false;
    uint64_t stop_ns = 0;
    double prev_t_s = 0;
    while (!all_done) {
        uint64_t now = clock_now_ns();
        if (stop_ns == 0 && atomic_load(&lg_stop))
            stop_ns = now;
        all_done = true;
        for (uint32_t t = 0; t < nth; t++)
            all_done = all_done && atomic_load(&workers[t].done);
        if (!all_done && now < next) {
            sleep_ns(next - now < 20000000 ? next - now : 20000000);
            continue;
        }
        lg_ival_reset(&iv);
        for (uint32_t t = 0; t < nth; t++)
            lg_worker_collect(&workers[t], &iv);
        uint64_t connected = 0;
        for (uint32_t t = 0; t < nth; t++)
            connected += atomic_load(&workers[t].n_ready) - atomic_load(&workers[t].n_dropped);
        if (all_done && lg_ival_empty(&iv))
            break; /* nothing happened since the last full interval */
        double t_s = (double)((all_done ? now : next) - t0) / 1e9;
        if (nseries == capseries) {
            capseries = capseries ? capseries * 2 : 64;
            struct lg_row *s = realloc(series, capseries * sizeof(*s));
            if (s == NULL)
                die("out of memory", ENOMEM);
            series = s;
        }
        series_row(&series[nseries++], &cfg, t_s, connected, &iv);
        if (hlog != NULL && hlog_rc == 0)
            hlog_rc = lg_report_hlog_interval(hlog, &iv, prev_t_s, t_s);
        if (tty) {
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
    if (tty)
        fputc('\n', stderr);
    if (hlog != NULL && fclose(hlog) != 0 && hlog_rc == 0)
        hlog_rc = -errno;
    for (uint32_t t = 0; t < nth; t++) {
        int rc = pthread_join(workers[t].thread, NULL);
        if (rc != 0)
            die("pthread_join", rc);
    }
    if (getrusage(RUSAGE_SELF, &ru1) < 0)
        die("getrusage", errno);
    res.cpu_user_s = cpu_s(&ru1.ru_utime) - cpu_s(&ru0.ru_utime);
    res.cpu_sys_s = cpu_s(&ru1.ru_stime) - cpu_s(&ru0.ru_stime);
    res.interrupted = atomic_load(&lg_stop) > 0;
    uint64_t warm_end = t0 + (uint64_t)(cfg.warmup_s * 1e9);
    uint64_t t_end = warm_end + (uint64_t)(cfg.duration_s * 1e9);
    if (stop_ns != 0 && stop_ns < t_end)
        t_end = stop_ns;
    res.measured_s = t_end > warm_end ? (double)(t_end - warm_end) / 1e9 : 0;

    /* --- merge and report --- */
    if (lg_stats_init(&res.st) < 0)
        die("out of memory", ENOMEM);
    for (uint32_t t = 0; t < nth; t++)
        if (lg_stats_add(&res.st, &workers[t].st) < 0)
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
    if (cfg.out_dir != NULL && lg_report_files(&res, &row, series, nseries) < 0)
        status = 1;
    if (hlog_rc < 0) {
        fprintf(stderr, "loadgen: cannot write the interval log in %s: %s\n", cfg.out_dir,
                strerror(-hlog_rc));
        status = 1;
    }
    if (res.st.connected == 0) {
        fprintf(stderr,
                "loadgen: ERROR: no client connected to %s:%u (is the %s server running?)\n",
                cfg.host, cfg.port, cfg.transport->upper);
        status = 1;
    } else if (res.st.connect_failed > 0) {
        fprintf(
            stderr, "loadgen: warning: %" PRIu64 " of %" PRIu32 " clients failed to connect%s\n",
            res.st.connect_failed, n,
            res.st.server_full ? " (the server said server_full: raise its --max-clients)" : "");
    }
    uint64_t fan_lost = res.st.fanout_expected > res.st.fanout_received
                            ? res.st.fanout_expected - res.st.fanout_received
                            : 0;
    if (!cfg.transport->datagrams && (res.st.lost > 0 || res.st.tcp_disorder > 0 || fan_lost > 0)) {
        fprintf(stderr,
                "loadgen: ERROR: TCP must lose and reorder nothing, yet %" PRIu64
                " messages were never acknowledged, %" PRIu64 " FROMs never arrived and %" PRIu64
                " frames arrived out of order or twice\n",
                res.st.lost, fan_lost, res.st.tcp_disorder);
        status = 1;
    }

    for (size_t i = 0; i < nseries; i++)
        lg_row_destroy(&series[i]);
    free(series);
    lg_row_destroy(&row);
    lg_ival_destroy(&iv);
    lg_stats_destroy(&res.st);
    for (uint32_t t = 0; t < nth; t++)
        lg_worker_destroy(&workers[t]);
    free(workers);
    free(start);
    free(count);
    free(idx);
    free(clients);
    return status;
}
