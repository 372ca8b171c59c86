/* stats: per-thread statistics of the load generator and their merge (see stats.h). */
#include "stats.h"

#include <stddef.h>
#include <string.h>

#include "seqstats.h"

const char *const lg_kind_names[LG_KINDS] = {"ack",     "ack_raw", "fanout", "fanout_last",
                                             "connect", "lag",     "rx_lag"};

static int hinit(struct hist *h)
{
    return hist_init(h, LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS);
}

/* Prepares n histograms (all destroyed again on failure). */
static int hinit_n(struct hist *h, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = hinit(&h[i]);
        if (rc < 0) {
            while (i-- > 0)
                hist_destroy(&h[i]);
            return rc;
        }
    }
    return 0;
}

static void hdestroy_n(struct hist *h, int n)
{
    for (int i = 0; i < n; i++)
        hist_destroy(&h[i]);
}

static int hadd_n(struct hist *d, const struct hist *s, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = hist_add(&d[i], &s[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

#define C(col, field)                                                                              \
    {                                                                                              \
        col, offsetof(struct lg_stats, field)                                                      \
    }
const struct lg_counter_def lg_counter_defs[LG_COUNTERS] = {
    C("sent", sent),
    C("acked", acked),
    C("lost", lost),
    C("late", late),
    C("duplicates", duplicates),
    C("reordered", reordered),
    C("too_old", too_old),
    C("fanout_expected", fanout_expected),
    C("fanout_received", fanout_received),
    C("fanout_duplicates", fanout_dup),
    C("fanout_reordered", fanout_reordered),
    C("fanout_last_incomplete", fanout_last_incomplete),
    C("connected", connected),
    C("connect_failed", connect_failed),
    C("errors", errors),
    C("tcp_disorder", tcp_disorder),
    C("disconnects", disconnects),
    C("err_frames", err_frames),
    C("send_errors", send_errors),
    C("reregistered", reregistered),
    C("server_full", server_full),
    C("behind", behind),
    C("bytes_sent_wire", bytes_sent_wire),
    C("bytes_recv_wire", bytes_recv_wire),
    C("bytes_sent_plain", bytes_sent_plain),
    C("bytes_recv_plain", bytes_recv_plain),
    C("bytes_sent_wire_total", bytes_sent_wire_total),
    C("bytes_recv_wire_total", bytes_recv_wire_total),
    C("bytes_sent_plain_total", bytes_sent_plain_total),
    C("bytes_recv_plain_total", bytes_recv_plain_total),
    C("sent_all", sent_all),
    C("keepalives", keepalives),
    C("loss_uplink_est", uplink_est),
    C("loss_tail", tail),
    C("jitter_samples", jitter_n),
};
#undef C

uint64_t *lg_counter(struct lg_stats *s, size_t i)
{
    return (uint64_t *)((char *)s + lg_counter_defs[i].offset);
}

const uint64_t *lg_counter_c(const struct lg_stats *s, size_t i)
{
    return (const uint64_t *)((const char *)s + lg_counter_defs[i].offset);
}

int lg_stats_init(struct lg_stats *s)
{
    memset(s, 0, sizeof(*s));
    return hinit_n(s->h, LG_KINDS);
}

void lg_stats_destroy(struct lg_stats *s)
{
    hdestroy_n(s->h, LG_KINDS);
}

int lg_stats_add(struct lg_stats *d, const struct lg_stats *s)
{
    int rc = hadd_n(d->h, s->h, LG_KINDS);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < LG_COUNTERS; i++)
        *lg_counter(d, i) += *lg_counter_c(s, i);
    d->jitter_sum_ns += s->jitter_sum_ns;
    return 0;
}

struct lg_loss_split lg_stats_loss_split(const struct lg_stats *s)
{
    struct lg_loss_split x;
    x.unknown = s->tail < s->lost ? s->tail : s->lost;
    uint64_t rest = s->lost - x.unknown;
    x.uplink = s->uplink_est < rest ? s->uplink_est : rest;
    x.downlink = rest - x.uplink;
    return x;
}

bool lg_fanout_tracking(const struct lg_config *cfg)
{
    return cfg->room_size > 1 &&
           (uint64_t)cfg->shard_clients * (cfg->room_size - 1) * sizeof(struct seqstats) <=
               LG_FROM_STREAMS_MAX;
}

int lg_ival_init(struct lg_ival *v)
{
    memset(v, 0, sizeof(*v));
    int rc = hinit(&v->ack);
    if (rc < 0)
        return rc;
    if ((rc = hinit(&v->fanout)) < 0) {
        hist_destroy(&v->ack);
        return rc;
    }
    if ((rc = hinit_n(v->meas, LG_KINDS)) < 0) {
        hist_destroy(&v->ack);
        hist_destroy(&v->fanout);
    }
    return rc;
}

void lg_ival_destroy(struct lg_ival *v)
{
    hist_destroy(&v->ack);
    hist_destroy(&v->fanout);
    hdestroy_n(v->meas, LG_KINDS);
}

void lg_ival_reset(struct lg_ival *v)
{
    hist_reset(&v->ack);
    hist_reset(&v->fanout);
    for (int i = 0; i < LG_KINDS; i++)
        hist_reset(&v->meas[i]);
    v->sent = v->acked = v->lost = 0;
}

void lg_ival_add(struct lg_ival *d, const struct lg_ival *s)
{
    /* same parameters by construction: nothing to fail */
    (void)hist_add(&d->ack, &s->ack);
    (void)hist_add(&d->fanout, &s->fanout);
    (void)hadd_n(d->meas, s->meas, LG_KINDS);
    d->sent += s->sent;
    d->acked += s->acked;
    d->lost += s->lost;
}

bool lg_ival_empty(const struct lg_ival *v)
{
    uint64_t n = v->sent + v->acked + v->lost + v->fanout.total;
    for (int i = 0; i < LG_KINDS; i++)
        n += v->meas[i].total;
    return n == 0;
}
