/* stats: per-thread statistics of the load generator and their merge (see stats.h). */
#include "stats.h"

#include <string.h>

#include "seqstats.h"

static int hinit(struct hist *h)
{
    return hist_init(h, LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS);
}

#define LG_HISTS(s)                                                                                \
    {                                                                                              \
        &(s)->ack, &(s)->ack_raw, &(s)->fanout, &(s)->fanout_last, &(s)->connect, &(s)->lag,       \
            &(s)->rx_lag                                                                           \
    }
#define LG_NHISTS 7

int lg_stats_init(struct lg_stats *s)
{
    memset(s, 0, sizeof(*s));
    struct hist *hs[] = LG_HISTS(s);
    for (int i = 0; i < LG_NHISTS; i++) {
        int rc = hinit(hs[i]);
        if (rc < 0) {
            lg_stats_destroy(s);
            return rc;
        }
    }
    return 0;
}

void lg_stats_destroy(struct lg_stats *s)
{
    struct hist *hs[] = LG_HISTS(s);
    for (int i = 0; i < LG_NHISTS; i++)
        if (hs[i]->counts != NULL)
            hist_destroy(hs[i]);
}

int lg_stats_add(struct lg_stats *d, const struct lg_stats *s)
{
    struct hist *dh[] = LG_HISTS(d);
    const struct hist *sh[] = LG_HISTS(s);
    for (int i = 0; i < LG_NHISTS; i++) {
        int rc = hist_add(dh[i], sh[i]);
        if (rc < 0)
            return rc;
    }
#define ADD(f) d->f += s->f
    ADD(sent);
    ADD(acked);
    ADD(lost);
    ADD(late);
    ADD(duplicates);
    ADD(reordered);
    ADD(too_old);
    ADD(fanout_expected);
    ADD(fanout_received);
    ADD(fanout_dup);
    ADD(fanout_reordered);
    ADD(fanout_lost);
    ADD(fanout_last_incomplete);
    ADD(connected);
    ADD(connect_failed);
    ADD(errors);
    ADD(tcp_disorder);
    ADD(disconnects);
    ADD(err_frames);
    ADD(send_errors);
    ADD(reregistered);
    ADD(server_full);
    ADD(behind);
    ADD(bytes_sent_wire);
    ADD(bytes_recv_wire);
    ADD(bytes_sent_plain);
    ADD(bytes_recv_plain);
    ADD(bytes_sent_wire_total);
    ADD(bytes_recv_wire_total);
    ADD(bytes_sent_plain_total);
    ADD(bytes_recv_plain_total);
    ADD(sent_all);
    ADD(uplink_est);
    ADD(tail);
    ADD(jitter_sum_ns);
    ADD(jitter_n);
#undef ADD
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
           (uint64_t)cfg->clients * (cfg->room_size - 1) * sizeof(struct seqstats) <=
               LG_FROM_STREAMS_MAX;
}

int lg_ival_init(struct lg_ival *v)
{
    memset(v, 0, sizeof(*v));
    int rc = hinit(&v->ack);
    if (rc == 0 && (rc = hinit(&v->fanout)) < 0)
        hist_destroy(&v->ack);
    return rc;
}

void lg_ival_destroy(struct lg_ival *v)
{
    if (v->ack.counts != NULL)
        hist_destroy(&v->ack);
    if (v->fanout.counts != NULL)
        hist_destroy(&v->fanout);
}

void lg_ival_reset(struct lg_ival *v)
{
    hist_reset(&v->ack);
    hist_reset(&v->fanout);
    v->sent = v->acked = v->lost = 0;
}

void lg_ival_add(struct lg_ival *d, const struct lg_ival *s)
{
    (void)hist_add(&d->ack, &s->ack); /* same parameters by construction */
    (void)hist_add(&d->fanout, &s->fanout);
    d->sent += s->sent;
    d->acked += s->acked;
    d->lost += s->lost;
}
