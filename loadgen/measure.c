/* measure: one client's schedule, in-flight ring, ACK and FROM accounting, expiry and
 * end-of-run accounting (see measure.h). */
#include "measure.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lg_meas_init(struct lg_meas *m, uint32_t ring_slots, uint32_t streams)
{
    memset(m, 0, sizeof(*m));
    m->first_measured = UINT64_MAX;
    m->ring = calloc(ring_slots, sizeof(*m->ring));
    if (m->ring == NULL)
        return -ENOMEM;
    m->mask = ring_slots - 1;
    seqstats_init(&m->ack_ss);
    if (streams > 0) {
        m->from_ss = malloc(streams * sizeof(*m->from_ss));
        if (m->from_ss == NULL) {
            lg_meas_destroy(m);
            return -ENOMEM;
        }
        for (uint32_t j = 0; j < streams; j++)
            seqstats_init(&m->from_ss[j]);
    }
    return 0;
}

void lg_meas_destroy(struct lg_meas *m)
{
    free(m->ring);
    free(m->from_ss);
    m->ring = NULL;
    m->from_ss = NULL;
}

uint32_t lg_meas_ring_slots(double rate, uint32_t timeout_ms)
{
    double want = rate * timeout_ms / 1000.0 * 2 + 8;
    uint32_t ring = 8;
    while (ring < want && ring < (1u << 16))
        ring *= 2;
    return ring;
}

void lg_meas_start(struct lg_meas *m, uint64_t t0_ns, double rate, bool poisson, uint64_t seed,
                   uint32_t fan)
{
    lg_sched_init(&m->sched, t0_ns, rate, poisson, seed);
    m->scheduled = true;
    m->fan = fan;
}

static bool measured(const struct lg_meas *m, uint64_t seq)
{
    return seq >= m->first_measured;
}

/* --- sending --- */

static int grow_ring(struct lg_meas *m)
{
    uint32_t n = (m->mask + 1) * 2;
    struct lg_slot *r = calloc(n, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= m->mask; i++)
        if (m->ring[i].used)
            r[m->ring[i].seq & (n - 1)] = m->ring[i];
    free(m->ring);
    m->ring = r;
    m->mask = n - 1;
    return 0;
}

int lg_meas_next(struct lg_meter *mt, struct lg_meas *m, struct lg_msg *msg)
{
    msg->seq = m->next_seq;
    msg->intended_ns = lg_sched_peek(&m->sched);
    lg_sched_advance(&m->sched);
    msg->measured = msg->intended_ns >= mt->warm_end;
    if (msg->measured && m->first_measured == UINT64_MAX)
        m->first_measured = msg->seq;
    while (m->ring[msg->seq & m->mask].used) {
        if (grow_ring(m) < 0) {
            mt->st->errors++;
            return -ENOMEM;
        }
    }
    struct lg_slot *s = &m->ring[msg->seq & m->mask];
    s->seq = msg->seq;
    s->intended_ns = msg->intended_ns;
    s->sent_ns = 0; /* lg_meas_sent: from just before the send */
    s->last_from_ns = 0;
    s->fan_left = m->fan;
    s->acked = 0;
    s->used = 1;
    m->next_seq++;
    m->sent_all++;
    mt->iv->sent++;
    return 0;
}

void lg_meas_sent(struct lg_meter *mt, struct lg_meas *m, const struct lg_msg *msg, uint64_t tx_ns,
                  uint64_t wire, uint64_t plain)
{
    struct lg_slot *s = &m->ring[msg->seq & m->mask];
    /* the send time is taken after formatting and compressing, just before send(): raw
     * latency is the network and the server; the lag holds the load generator's own delay */
    s->sent_ns = tx_ns;
    if (!msg->measured)
        return;
    struct lg_stats *st = mt->st;
    st->sent++;
    st->fanout_expected += s->fan_left;
    lg_meter_record(mt, LG_LAG, tx_ns > msg->intended_ns ? tx_ns - msg->intended_ns : 0);
    st->bytes_sent_wire += wire; /* TCP: queued bytes count as sent */
    st->bytes_sent_plain += plain;
}

/* --- receiving --- */

/* Counts an arrival out of order over a reliable transport as its error, and a measured
 * copy in *dups. Returns whether the arrival was a copy (nothing more to count). */
static bool duplicate(struct lg_meter *mt, enum seq_kind k, bool meas, uint64_t *dups)
{
    if (k != SEQ_IN_ORDER && !mt->datagrams)
        mt->st->tcp_disorder++;
    if (k != SEQ_DUPLICATE)
        return false;
    if (meas)
        (*dups)++;
    return true;
}

bool lg_meas_ack(struct lg_meter *mt, struct lg_meas *m, uint64_t seq, uint64_t n, uint64_t now)
{
    struct lg_stats *st = mt->st;
    struct lg_slot *s = &m->ring[seq & m->mask];
    bool found = s->used && s->seq == seq;
    /* an unknown send time must not disturb the jitter: pretend the transit did not change */
    uint64_t send_ns =
        found ? s->sent_ns
              : (m->ack_ss.have_transit ? now - (uint64_t)m->ack_ss.last_transit_ns : now);
    enum seq_kind k = seqstats_arrive(&m->ack_ss, seq, send_ns, now);
    bool meas = measured(m, seq);
    if (duplicate(mt, k, meas, &st->duplicates))
        return meas;
    if (!m->have_hi || seq > m->hi_seq) {
        m->have_hi = true;
        m->hi_seq = seq;
        m->hi_n = n;
    }
    if (!meas && (!m->have_base || seq > m->base_seq)) {
        m->have_base = true;
        m->base_seq = seq;
        m->base_n = n;
    }
    if (meas) { /* the running estimate as this arrival left it */
        st->jitter_sum_ns += m->ack_ss.jitter_ns;
        st->jitter_n++;
    }
    if (meas && (k == SEQ_REORDERED || k == SEQ_TOO_OLD))
        st->reordered++;
    if (meas && k == SEQ_TOO_OLD)
        st->too_old++;
    bool expired = mt->datagrams && found && now - s->sent_ns > mt->timeout_ns;
    if (!found || s->acked || expired) {
        if (meas)
            st->late++; /* after its timeout: counted as lost (now, or by the next sweep) */
        return meas;
    }
    s->acked = 1;
    mt->acks++;
    mt->iv->acked++;
    hist_record(&mt->iv->ack, now - s->intended_ns);
    if (meas) {
        st->acked++;
        lg_meter_record(mt, LG_ACK, now - s->intended_ns);
        lg_meter_record(mt, LG_ACK_RAW, now - s->sent_ns);
    }
    return meas;
}

bool lg_meas_from(struct lg_meter *mt, struct lg_meas *rcv, uint32_t pos, struct lg_meas *snd,
                  uint64_t seq, uint64_t t_ns, uint64_t now)
{
    struct lg_stats *st = mt->st;
    bool meas = measured(snd, seq);
    if (rcv->from_ss != NULL) {
        enum seq_kind k = seqstats_arrive(&rcv->from_ss[pos], seq, t_ns, now);
        if (duplicate(mt, k, meas, &st->fanout_dup))
            return meas;
        if (meas && (k == SEQ_REORDERED || k == SEQ_TOO_OLD))
            st->fanout_reordered++;
    }
    uint64_t lat = now > t_ns ? now - t_ns : 0;
    hist_record(&mt->iv->fanout, lat);
    if (meas) {
        st->fanout_received++;
        lg_meter_record(mt, LG_FANOUT, lat);
    }
    struct lg_slot *s = &snd->ring[seq & snd->mask];
    if (s->used && s->seq == seq && s->fan_left > 0) {
        s->fan_left--;
        if (now > s->last_from_ns)
            s->last_from_ns = now;
        if (s->fan_left == 0 && meas)
            lg_meter_record(mt, LG_FANOUT_LAST, s->last_from_ns - s->intended_ns);
    }
    return meas;
}

/* --- expiry and the end of the run --- */

static void sweep(struct lg_meter *mt, struct lg_meas *m, uint64_t now, bool final)
{
    while (m->base < m->next_seq) {
        struct lg_slot *s = &m->ring[m->base & m->mask];
        if (s->used && s->seq == m->base) {
            bool done = s->acked && s->fan_left == 0;
            bool expired =
                final || (mt->datagrams && now > s->sent_ns && now - s->sent_ns > mt->timeout_ns);
            if (!done && !expired)
                break;
            if (!s->acked) {
                mt->iv->lost++;
                if (measured(m, s->seq))
                    mt->st->lost++;
            }
            if (s->fan_left > 0 && measured(m, s->seq))
                mt->st->fanout_last_incomplete++; /* censored: no fan-out last sample */
            s->used = 0;
        }
        m->base++;
    }
}

uint64_t lg_meas_sweep(struct lg_meter *mt, struct lg_meas *m, uint64_t now)
{
    sweep(mt, m, now, false);
    return m->next_seq - m->base;
}

/* The client's part of the loss split (struct lg_loss_split in stats.h): uplink_est, the
 * seqs between its baseline ACK and its highest ACK that the server never counted, and tail,
 * the measured seqs after its highest ACK. */
static void account_split(struct lg_stats *s, const struct lg_meas *m)
{
    uint64_t fm = m->first_measured < m->sent_all ? m->first_measured : m->sent_all;
    uint64_t upto = m->have_hi ? m->hi_seq + 1 : 0; /* seqs 0..hi_seq */
    if (upto > m->sent_all)
        upto = m->sent_all;
    s->sent_all += m->sent_all;
    if (upto <= fm) { /* no ACK of a measured seq: every measured loss is of unknown direction */
        s->tail += m->sent_all - fm;
        return;
    }
    s->tail += m->sent_all - upto;
    uint64_t lo = m->have_base ? m->base_seq + 1 : 0, n_lo = m->have_base ? m->base_n : 0;
    /* the server's count restarts when it forgets us (re-registration): then hi_n < n_lo and
     * nothing can be said; uplink copies can make the count exceed the seqs: never negative */
    if (lo < upto && m->hi_n >= n_lo && upto - lo > m->hi_n - n_lo)
        s->uplink_est += (upto - lo) - (m->hi_n - n_lo);
}

void lg_meas_finish(struct lg_meter *mt, struct lg_meas *m, bool live)
{
    sweep(mt, m, 0, true);
    /* what the schedule still owed when the run ended: sends the loadgen fell behind on */
    while (live && m->scheduled && lg_sched_peek(&m->sched) < mt->t_end) {
        if (lg_sched_peek(&m->sched) >= mt->warm_end)
            mt->st->behind++;
        lg_sched_advance(&m->sched);
    }
    account_split(mt->st, m);
}
