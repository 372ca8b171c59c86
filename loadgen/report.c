/* report: summary row, text summary and output files of a run (see report.h). */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "hlog.h"
#include "transport.h"

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* Percentiles are reported as the highest value of their bucket, clamped to the recorded
 * [min, max]: a figure never claims a value no sample had. */
static uint64_t pv(const struct hist *h, double p)
{
    uint64_t v = hist_percentile(h, p), lo = hist_min(h), hi = hist_max(h);
    return v < lo ? lo : v > hi ? hi : v;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

static uint64_t lost_unknown(const struct lg_stats *s)
{
    struct lg_loss_split x = lg_stats_loss_split(s);
    return x.unknown;
}

static uint64_t lost_uplink(const struct lg_stats *s)
{
    struct lg_loss_split x = lg_stats_loss_split(s);
    return x.uplink;
}

static double achieved(const struct lg_result *r)
{
    return r->measured_s > 0 ? (double)r->st.sent / r->measured_s : 0;
}

/* Share of the messages due in the measured window that were sent (1 when none were due). */
static double due_share(const struct lg_stats *s)
{
    return s->sent + s->behind > 0 ? (double)s->sent / (double)(s->sent + s->behind) : 1.0;
}

uint64_t lg_report_lag_limit(const struct lg_stats *s)
{
    uint64_t share = (uint64_t)(LG_LAG_BOUND_SHARE * (double)pv(&s->h[LG_ACK], 99));
    return share > LG_LAG_BOUND_MIN_NS ? share : LG_LAG_BOUND_MIN_NS;
}

/* The larger of the send lag p99 and the receive lag p99: either side of the load
 * generator's own delay. */
static uint64_t own_lag99(const struct lg_stats *s)
{
    uint64_t a = pv(&s->h[LG_LAG], 99), b = pv(&s->h[LG_RX_LAG], 99);
    return a > b ? a : b;
}

int lg_report_bound(const struct lg_result *r)
{
    return own_lag99(&r->st) > lg_report_lag_limit(&r->st) || due_share(&r->st) < LG_RATE_BOUND;
}

static void pct_cols(struct lg_row *row, const char *kind, const struct hist *h, bool all)
{
    static const struct {
        const char *name;
        double p;
    } ps[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}};
    char name[LG_COL_NAME];
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        if (!all && i != 0 && i != 2)
            continue;
        snprintf(name, sizeof(name), "%s_%s_us", kind, ps[i].name);
        lg_row_dbl(row, name, us(pv(h, ps[i].p)));
    }
    snprintf(name, sizeof(name), "%s_max_us", kind);
    lg_row_dbl(row, name, us(hist_max(h)));
    if (all) {
        snprintf(name, sizeof(name), "%s_mean_us", kind);
        lg_row_dbl(row, name, hist_mean(h) / 1000.0);
    }
}

void lg_report_row(const struct lg_result *r, struct lg_row *row)
{
    const struct lg_config *c = r->cfg;
    const struct lg_stats *s = &r->st;
    uint64_t up = lost_uplink(s);
    lg_row_str(row, "label", c->label);
    lg_row_str(row, "proto", c->transport->name);
    lg_row_u64(row, "clients", c->clients);
    lg_row_u64(row, "threads", c->threads);
    lg_row_dbl(row, "duration_s", c->duration_s);
    lg_row_dbl(row, "warmup_s", c->warmup_s);
    lg_row_dbl(row, "rate_per_client", c->rate);
    lg_row_dbl(row, "offered_rate_msgs", c->rate * (double)s->connected); /* clients that ran */
    lg_row_u64(row, "size_bytes", c->size);
    lg_row_str(row, "payload", lg_payload_name(c->payload));
    lg_row_u64(row, "room_size", c->room_size);
    lg_row_u64(row, "compress", c->compress);
    lg_row_u64(row, "timeout_ms", c->timeout_ms);
    lg_row_u64(row, "seed", c->seed);
    lg_row_u64(row, "connected", s->connected);
    lg_row_u64(row, "connect_failed", s->connect_failed);
    lg_row_dbl(row, "connect_p50_us", us(pv(&s->h[LG_CONNECT], 50)));
    lg_row_dbl(row, "connect_p99_us", us(pv(&s->h[LG_CONNECT], 99)));
    lg_row_dbl(row, "connect_max_us", us(hist_max(&s->h[LG_CONNECT])));
    lg_row_u64(row, "sent", s->sent);
    lg_row_u64(row, "acked", s->acked);
    lg_row_u64(row, "lost", s->lost);
    lg_row_u64(row, "lost_uplink", up);
    lg_row_u64(row, "lost_downlink", s->lost - up - lost_unknown(s));
    lg_row_u64(row, "reordered", s->reordered);
    lg_row_u64(row, "duplicates", s->duplicates);
    lg_row_dbl(row, "achieved_rate_msgs", achieved(r));
    lg_row_dbl(row, "acked_rate_msgs", (r->measured_s > 0 ? (double)s->acked / r->measured_s : 0));
    pct_cols(row, "ack", &s->h[LG_ACK], true);
    pct_cols(row, "ack_raw", &s->h[LG_ACK_RAW], false);
    lg_row_u64(row, "fanout_expected", s->fanout_expected);
    lg_row_u64(row, "fanout_received", s->fanout_received);
    pct_cols(row, "fanout", &s->h[LG_FANOUT], false);
    lg_row_dbl(row, "fanout_last_p50_us", us(pv(&s->h[LG_FANOUT_LAST], 50)));
    lg_row_dbl(row, "fanout_last_p99_us", us(pv(&s->h[LG_FANOUT_LAST], 99)));
    lg_row_dbl(row, "jitter_us", s->jitter_n ? s->jitter_sum_ns / (double)s->jitter_n / 1e3 : 0);
    lg_row_u64(row, "bytes_sent_wire", s->bytes_sent_wire);
    lg_row_u64(row, "bytes_recv_wire", s->bytes_recv_wire);
    lg_row_u64(row, "bytes_sent_plain", s->bytes_sent_plain);
    lg_row_u64(row, "bytes_recv_plain", s->bytes_recv_plain);
    lg_row_dbl(row, "compress_ratio",
               ratio((double)s->bytes_sent_wire, (double)s->bytes_sent_plain));
    lg_row_u64(row, "errors", s->errors);
    lg_row_dbl(row, "cpu_user_s", r->cpu_user_s);
    lg_row_dbl(row, "cpu_sys_s", r->cpu_sys_s);
    lg_row_dbl(row, "cpu_us_per_msg",
               ratio((r->cpu_user_s + r->cpu_sys_s) * 1e6, (double)s->sent_all));
    lg_row_dbl(row, "lag_p50_us", us(pv(&s->h[LG_LAG], 50)));
    lg_row_dbl(row, "lag_p99_us", us(pv(&s->h[LG_LAG], 99)));
    lg_row_dbl(row, "lag_max_us", us(hist_max(&s->h[LG_LAG])));
    lg_row_dbl(row, "rx_lag_p50_us", us(pv(&s->h[LG_RX_LAG], 50)));
    lg_row_dbl(row, "rx_lag_p99_us", us(pv(&s->h[LG_RX_LAG], 99)));
    lg_row_dbl(row, "rx_lag_max_us", us(hist_max(&s->h[LG_RX_LAG])));
    lg_row_u64(row, "loadgen_bound", (uint64_t)lg_report_bound(r));
    /* beyond the agreed columns */
    lg_row_u64(row, "lost_unknown", lost_unknown(s));
    lg_row_u64(row, "behind", s->behind);
    lg_row_dbl(row, "sent_share_of_due", due_share(s));
    lg_row_u64(row, "disconnects", s->disconnects);
    lg_row_u64(row, "err_frames", s->err_frames);
    lg_row_u64(row, "send_errors", s->send_errors);
    lg_row_u64(row, "reregistered", s->reregistered);
    lg_row_u64(row, "server_full", s->server_full);
    lg_row_u64(row, "late", s->late);
    lg_row_u64(row, "too_old", s->too_old);
    lg_row_u64(row, "fanout_lost",
               s->fanout_expected > s->fanout_received ? s->fanout_expected - s->fanout_received
                                                       : 0);
    lg_row_u64(row, "fanout_duplicates", s->fanout_dup);
    lg_row_u64(row, "fanout_reordered", s->fanout_reordered);
    lg_row_u64(row, "fanout_last_incomplete", s->fanout_last_incomplete);
    lg_row_u64(row, "fanout_tracking", lg_fanout_tracking(c));
    lg_row_dbl(row, "fanout_last_max_us", us(hist_max(&s->h[LG_FANOUT_LAST])));
    lg_row_dbl(row, "recv_compress_ratio",
               ratio((double)s->bytes_recv_wire, (double)s->bytes_recv_plain));
    lg_row_u64(row, "sent_all", s->sent_all);
    lg_row_u64(row, "keepalives", s->keepalives);
    lg_row_u64(row, "bytes_sent_wire_total", s->bytes_sent_wire_total);
    lg_row_u64(row, "bytes_recv_wire_total", s->bytes_recv_wire_total);
    lg_row_u64(row, "bytes_sent_plain_total", s->bytes_sent_plain_total);
    lg_row_u64(row, "bytes_recv_plain_total", s->bytes_recv_plain_total);
    lg_row_u64(row, "tcp_disorder", s->tcp_disorder);
    lg_row_u64(row, "poisson", c->poisson);
    lg_row_dbl(row, "ramp_s", c->ramp_s);
    lg_row_str(row, "host", c->host);
    lg_row_u64(row, "port", c->port);
    lg_row_u64(row, "nofile_limit", (uint64_t)r->nofile);
    lg_row_u64(row, "interrupted", r->interrupted);
    lg_row_dbl(row, "measured_s", r->measured_s);
    lg_row_str(row, "version", CHATBENCH_VERSION);
    char shard[16];
    lg_row_str(row, "shard", lg_shard_name(&c->shard, shard, sizeof(shard)));
    lg_row_u64(row, "shards", c->shard.count);
    lg_row_str(row, "shard_source", c->shard.source);
    lg_row_u64(row, "shard_clients", c->shard_clients);
    lg_row_dbl(row, "start_at", c->start_at);
    lg_row_dbl(row, "t0_unix", r->t0_unix);
    lg_row_dbl(row, "interval_s", c->interval_s);
    lg_row_u64(row, "source_addrs", c->nsources);
    lg_row_str(row, "loadgen_cpus", c->cpus_text);
    lg_row_u64(row, "busy_poll", c->busy_poll);
    lg_row_dbl(row, "ping_interval_s", c->ping_interval_s);
    lg_row_dbl(row, "setup_s", r->setup_s);
    /* what a merge of shards needs beyond the figures above */
    lg_row_u64(row, "loss_uplink_est", s->uplink_est);
    lg_row_u64(row, "loss_tail", s->tail);
    lg_row_dbl(row, "jitter_sum_ns", s->jitter_sum_ns);
    lg_row_u64(row, "jitter_samples", s->jitter_n);
}

/* "123 us", "1.23 ms", "2.10 s" */
static const char *dur(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 10000)
        snprintf(buf, cap, "%.1f us", ns / 1e3);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.0f us", ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2f ms", ns / 1e6);
    else
        snprintf(buf, cap, "%.2f s", ns / 1e9);
    return buf;
}

static const char *bytes(uint64_t b, char *buf, size_t cap)
{
    if (b < 10000)
        snprintf(buf, cap, "%" PRIu64 " B", b);
    else if (b < 10000000)
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
    return buf;
}

static void lat_line(FILE *f, const char *name, const struct hist *h)
{
    char b[7][24];
    if (h->total == 0) {
        fprintf(f, "  %-13s %9s\n", name, "-");
        return;
    }
    fprintf(f, "  %-13s %9s %9s %9s %9s %9s %9s %9s %10" PRIu64 "\n", name,
            dur(pv(h, 50), b[0], 24), dur(pv(h, 90), b[1], 24), dur(pv(h, 99), b[2], 24),
            dur(pv(h, 99.9), b[3], 24), dur(pv(h, 99.99), b[4], 24), dur(hist_max(h), b[5], 24),
            dur((uint64_t)hist_mean(h), b[6], 24), h->total);
}

static double pct(uint64_t a, uint64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0;
}

void lg_report_text(const struct lg_result *r, FILE *f)
{
    const struct lg_config *c = r->cfg;
    const struct lg_stats *s = &r->st;
    char b1[24], b2[24], b3[24];
    uint64_t up = lost_uplink(s);
    fprintf(f, "chatbench loadgen %s: %s to %s:%u, %" PRIu32 " clients on %" PRIu32 " threads\n",
            CHATBENCH_VERSION, c->transport->upper, c->host, c->port, c->shard_clients, c->threads);
    if (lg_shard_is_part(&c->shard))
        fprintf(f,
                "  shard:    %" PRIu32 " of %" PRIu32 " (0-based, from %s): these %" PRIu32
                " of the run's %" PRIu32 " clients, whole rooms\n",
                c->shard.index, c->shard.count, c->shard.source, c->shard_clients, c->clients);
    else if (strcmp(c->shard.source, LG_SHARD_MERGED) == 0)
        fprintf(f,
                "  merged:   %" PRIu32 " shards added up (histograms bucket by bucket, counters "
                "summed, rates over the %.3f s their measured windows span)\n",
                c->shard.count, r->measured_s);
    fprintf(f,
            "  settings: rate %g msg/s per client (%g msg/s offered by the %" PRIu64
            " connected, %s), %" PRIu32 " B %s payload, room size %" PRIu32 ", compress %s\n",
            c->rate, c->rate * (double)s->connected, s->connected,
            c->poisson ? "Poisson" : "periodic", c->size, lg_payload_name(c->payload), c->room_size,
            c->compress ? "on" : "off");
    fprintf(f,
            "            %g s measured after %g s warm-up, ramp %g s, timeout %" PRIu32
            " ms, seed %" PRIu64 ", label %s\n",
            c->duration_s, c->warmup_s, c->ramp_s, c->timeout_ms, c->seed, c->label);
    fprintf(f,
            "connections: %" PRIu64 " connected, %" PRIu64 " failed, %" PRIu64
            " dropped later; set-up p50 %s, p99 %s, max %s, all of them in %.2f s\n",
            s->connected, s->connect_failed, s->disconnects, dur(pv(&s->h[LG_CONNECT], 50), b1, 24),
            dur(pv(&s->h[LG_CONNECT], 99), b2, 24), dur(hist_max(&s->h[LG_CONNECT]), b3, 24),
            r->setup_s);
    fprintf(f,
            "messages:    %" PRIu64 " sent (%.1f/s), %" PRIu64 " acked (%.1f/s), %" PRIu64
            " lost (%.3f %%: %" PRIu64 " uplink, %" PRIu64 " downlink, %" PRIu64
            " at the end, direction unknown), %" PRIu64 " late ACKs\n",
            s->sent, achieved(r), s->acked,
            (r->measured_s > 0 ? (double)s->acked / r->measured_s : 0), s->lost,
            pct(s->lost, s->sent), up, s->lost - up - lost_unknown(s), lost_unknown(s), s->late);
    fprintf(f,
            "order:       %" PRIu64 " reordered, %" PRIu64 " duplicates, jitter %s (RFC 3550 "
            "running estimate of each client's ACKs, mean over the measured arrivals)\n",
            s->reordered, s->duplicates,
            dur(s->jitter_n ? (uint64_t)(s->jitter_sum_ns / (double)s->jitter_n) : 0, b1, 24));
    if (c->room_size > 1) {
        fprintf(f,
                "fan-out:     %" PRIu64 " FROMs expected, %" PRIu64
                " received (%.3f %% lost), %" PRIu64 " duplicates, %" PRIu64 " reordered\n",
                s->fanout_expected, s->fanout_received,
                pct(s->fanout_expected > s->fanout_received
                        ? s->fanout_expected - s->fanout_received
                        : 0,
                    s->fanout_expected),
                s->fanout_dup, s->fanout_reordered);
        if (!lg_fanout_tracking(c))
            fprintf(f,
                    "             (duplicates and reordering NOT tracked: the per-stream "
                    "accounting would exceed %llu MiB)\n",
                    LG_FROM_STREAMS_MAX >> 20);
        fprintf(f,
                "             fan-out last covers the %" PRIu64
                " messages every member got; %" PRIu64
                " did not reach every member and are left out (biased low under loss)\n",
                s->h[LG_FANOUT_LAST].total, s->fanout_last_incomplete);
    }
    fprintf(f, "latency        %9s %9s %9s %9s %9s %9s %9s %10s\n", "p50", "p90", "p99", "p99.9",
            "p99.99", "max", "mean", "samples");
    lat_line(f, "ack", &s->h[LG_ACK]);
    lat_line(f, "ack (raw)", &s->h[LG_ACK_RAW]);
    if (c->room_size > 1) {
        lat_line(f, "fan-out", &s->h[LG_FANOUT]);
        lat_line(f, "fan-out last", &s->h[LG_FANOUT_LAST]);
    }
    lat_line(f, "send lag", &s->h[LG_LAG]);
    if (c->transport->datagrams)
        lat_line(f, "recv lag", &s->h[LG_RX_LAG]);
    fprintf(f, "  (ack: from the intended send time, corrected for coordinated omission; raw: from "
               "the actual send; ack ~= raw + send lag)\n");
    if (c->transport->datagrams)
        fprintf(f,
                "  (recv lag: kernel receive time to the loadgen's read, SO_TIMESTAMPNS; part of "
                "ack and raw)\n");
    double crv = ratio((double)s->bytes_sent_wire, (double)s->bytes_sent_plain);
    fprintf(f, "bytes:       measured MSG/ACK/FROM frames: sent %s on the wire for %s of frames",
            bytes(s->bytes_sent_wire, b1, 24), bytes(s->bytes_sent_plain, b2, 24));
    if (c->compress)
        fprintf(f, " (ratio %.3f: compression made them %s)", crv, crv > 1 ? "LARGER" : "smaller");
    fprintf(f, "; received %s (%s of frames)\n", bytes(s->bytes_recv_wire, b1, 24),
            bytes(s->bytes_recv_plain, b2, 24));
    fprintf(f,
            "             whole run (set-up, warm-up, keep-alives): sent %s, received %s on "
            "the wire\n",
            bytes(s->bytes_sent_wire_total, b1, 24), bytes(s->bytes_recv_wire_total, b2, 24));
    if (c->transport->connectionless)
        fprintf(f,
                "keep-alives: %" PRIu64 " PINGs in the whole run (one after %g s without "
                "sending, --ping-interval)\n",
                s->keepalives, c->ping_interval_s);
    double cpu_msg = ratio((r->cpu_user_s + r->cpu_sys_s) * 1e6, (double)s->sent_all);
    fprintf(f,
            "loadgen cpu: %.2f s user, %.2f s sys, %.1f us per message sent\n"
            "errors:      %" PRIu64 " (%" PRIu64 " ERR frames, %" PRIu64 " clients dropped "
            "while running, %" PRIu64 " local send failures)\n",
            r->cpu_user_s, r->cpu_sys_s, cpu_msg == cpu_msg ? cpu_msg : 0.0, s->errors,
            s->err_frames, s->disconnects, s->send_errors);
    uint64_t lag99 = own_lag99(s), limit = lg_report_lag_limit(s);
    if (s->connected == 0)
        fprintf(f, "self-check:  nothing measured: no client connected\n");
    else if (lg_report_bound(r))
        fprintf(
            f,
            "self-check:  LOADGEN-BOUND: the load generator, not the server, was the "
            "bottleneck (send/recv lag p99 %s, limit %s = max(%s, %.0f %% of the ack p99); sent "
            "%.1f %% of the messages due, limit %.0f %%). Read ack (raw) for the server's "
            "share, or use more threads, fewer clients or a lower rate.\n",
            dur(lag99, b1, 24), dur(limit, b2, 24), dur(LG_LAG_BOUND_MIN_NS, b3, 24),
            LG_LAG_BOUND_SHARE * 100, 100.0 * due_share(s), LG_RATE_BOUND * 100);
    else
        fprintf(f,
                "self-check:  OK: the load generator kept up (send/recv lag p99 %s <= %s = max(%s, "
                "%.0f %% of the ack p99); sent %.1f %% of the messages due)\n",
                dur(lag99, b1, 24), dur(limit, b2, 24), dur(LG_LAG_BOUND_MIN_NS, b3, 24),
                LG_LAG_BOUND_SHARE * 100, 100.0 * due_share(s));
    if (r->interrupted)
        fprintf(f, "note:        interrupted: the figures cover the run up to the signal\n");
}

/* mkdir -p: creates dir and any missing parents. */
static int mkdir_p(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int write_latency(const struct lg_result *r, const struct lg_row *summary, const char *path)
{
    /* linear tenths, then HdrHistogram-style halvings towards 100, then 100 */
    double ps[64];
    size_t np = 0;
    for (int i = 0; i <= 9; i++)
        ps[np++] = i * 10.0;
    for (int k = 2; k <= 20; k++)
        ps[np++] = 100.0 - 100.0 / (double)(1u << k);
    ps[np++] = 99.0;
    ps[np++] = 99.9;
    ps[np++] = 99.99;
    ps[np++] = 99.999;
    ps[np++] = 100.0;
    /* sort (insertion) and drop duplicates, so the spectrum is monotone for a CDF plot */
    for (size_t i = 1; i < np; i++)
        for (size_t j = i; j > 0 && ps[j] < ps[j - 1]; j--) {
            double t = ps[j];
            ps[j] = ps[j - 1];
            ps[j - 1] = t;
        }
    struct lg_row row;
    lg_row_init(&row);
    int rc = 0;
    for (int k = 0; k < LG_KINDS && rc == 0; k++) {
        const struct hist *h = &r->st.h[k];
        if (h->total == 0)
            continue;
        for (size_t i = 0; i < np && rc == 0; i++) {
            if (i > 0 && ps[i] == ps[i - 1])
                continue;
            lg_row_clear(&row);
            lg_row_str(&row, "label", r->cfg->label);
            lg_row_str(&row, "kind", lg_kind_names[k]);
            lg_row_dbl(&row, "percentile", ps[i]);
            lg_row_dbl(&row, "value_us", us(pv(h, ps[i])));
            lg_row_u64(&row, "count", h->total);
            lg_row_str(&row, "shard", lg_row_get(summary, "shard"));
            rc = lg_csv_append(path, &row);
        }
    }
    lg_row_destroy(&row);
    return rc;
}

const char *lg_report_stem(const struct lg_config *cfg, char *buf, size_t cap)
{
    if (lg_shard_is_part(&cfg->shard))
        snprintf(buf, cap, "%s.shard%" PRIu32, cfg->label, cfg->shard.index);
    else
        snprintf(buf, cap, "%s", cfg->label);
    return buf;
}

int lg_report_hlog_open(const struct lg_config *cfg, double start_unix, FILE **out)
{
    char path[4200], comment[200], stem[LG_STEM];
    *out = NULL;
    int rc = mkdir_p(cfg->out_dir);
    snprintf(path, sizeof(path), "%s/%s.hlog", cfg->out_dir,
             lg_report_stem(cfg, stem, sizeof(stem)));
    if (rc == 0 && (*out = fopen(path, "w")) == NULL)
        rc = -errno;
    if (rc == 0) {
        snprintf(comment, sizeof(comment),
                 "[chatbench loadgen %s, label %s: values in nanoseconds, Interval_Max in "
                 "milliseconds, measured samples only (the warm-up is left out)]",
                 CHATBENCH_VERSION, cfg->label);
        rc = hlog_write_head(*out, comment, start_unix);
    }
    if (rc < 0) {
        fprintf(stderr, "loadgen: cannot write %s: %s\n", path, strerror(-rc));
        if (*out != NULL)
            (void)fclose(*out); /* already failing */
        *out = NULL;
    }
    return rc;
}

int lg_report_hlog_interval(FILE *f, const struct lg_ival *v, double start_s, double end_s)
{
    for (int k = 0; k < LG_KINDS; k++) {
        if (v->meas[k].total == 0)
            continue;
        int rc =
            hlog_write_interval(f, lg_kind_names[k], start_s, end_s - start_s, &v->meas[k], 1e6);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int write_hists(const struct lg_result *r)
{
    char path[4200], stem[LG_STEM];
    lg_report_stem(r->cfg, stem, sizeof(stem));
    for (int k = 0; k < LG_KINDS; k++) {
        snprintf(path, sizeof(path), "%s/%s.%s.hist", r->cfg->out_dir, stem, lg_kind_names[k]);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            return -errno;
        int rc = hist_save(&r->st.h[k], f);
        if (fclose(f) != 0 && rc == 0)
            rc = -errno;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int lg_report_files(const struct lg_result *r, const struct lg_row *row,
                    const struct lg_row *series, size_t nseries)
{
    const char *dir = r->cfg->out_dir;
    char path[4200];
    int rc = mkdir_p(dir);
    const char *what = dir;
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/summary.csv", dir);
        what = "summary.csv";
        rc = lg_csv_append(path, row);
    }
    for (size_t i = 0; i < nseries && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/timeseries.csv", dir);
        what = "timeseries.csv";
        rc = lg_csv_append(path, &series[i]);
    }
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/latency.csv", dir);
        what = "latency.csv";
        rc = write_latency(r, row, path);
    }
    if (rc == 0) {
        what = "histograms";
        rc = write_hists(r);
    }
    if (rc < 0)
        fprintf(stderr, "loadgen: cannot write %s in %s: %s%s\n", what, dir, strerror(-rc),
                rc == -EPROTO ? " (the file has other columns: use another --out)" : "");
    return rc;
}
