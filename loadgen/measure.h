/* measure: one simulated client's message stream and what it measures: when each MSG is due
 * (its open-loop schedule), what is in flight (a ring of slots indexed by seq), what the ACKs
 * and the room's FROMs say (latency, loss, duplicates, reordering, jitter), expiry after
 * --timeout, and the client's end-of-run accounting (its loss split and the sends it fell
 * behind on).
 *
 * Pure bookkeeping: no I/O and no clock (callers pass times), no lock: a client and the
 * struct lg_meter it records into belong to one worker thread. Every function records into
 * the meter and returns what the caller needs to know (a seq, whether an arrival belonged
 * to a measured message). */
#ifndef CHATBENCH_LG_MEASURE_H
#define CHATBENCH_LG_MEASURE_H

#include <stdbool.h>
#include <stdint.h>

#include "schedule.h"
#include "seqstats.h"
#include "stats.h"

/* Where one worker's measurements go, and the rules of its run. */
struct lg_meter {
    struct lg_stats *st; /* measured messages (intended at or after warm_end) */
    struct lg_ival *iv;  /* every message, this interval; the worker swaps it */
    uint64_t warm_end;   /* first intended time that is measured */
    uint64_t t_end;      /* end of the sending window: what is due before it and unsent is
                          * behind */
    uint64_t timeout_ns; /* datagrams: a message not ACKed within it is lost */
    bool datagrams;      /* frames may be lost or arrive out of order (else: disorder is a
                          * transport error, tcp_disorder, and nothing expires) */
    uint64_t acks;       /* first ACKs of our messages, warm-up included: drain progress */
};

/* Records v into kind k of the run and of the current interval. */
static inline void lg_meter_record(struct lg_meter *mt, enum lg_kind k, uint64_t v)
{
    hist_record(&mt->st->h[k], v);
    hist_record(&mt->iv->meas[k], v);
}

/* One in-flight message (slot seq & mask of the ring). */
struct lg_slot {
    uint64_t seq;
    uint64_t intended_ns;
    uint64_t sent_ns;
    uint64_t last_from_ns; /* latest FROM arrival so far */
    uint32_t fan_left;     /* FROMs still expected */
    uint8_t used, acked;
};

struct lg_meas {
    struct lg_sched sched;
    bool scheduled;          /* sched runs: the client was in its room at t0 */
    uint32_t fan;            /* FROMs each MSG expects: the room's members at t0, less one */
    uint64_t next_seq;       /* seq of the next MSG */
    uint64_t sent_all;       /* MSGs of the run, warm-up included */
    uint64_t first_measured; /* first seq past the warm-up; UINT64_MAX until known */
    /* in-flight ring */
    struct lg_slot *ring;
    uint32_t mask;
    uint64_t base; /* oldest seq still in the ring */
    /* the ACK of the highest seq and its n (frames the server had counted from us): every
     * seq up to hi_seq that the server never counted was lost on the way up */
    bool have_hi;
    uint64_t hi_seq, hi_n;
    /* the same for the highest ACKed seq below first_measured (a warm-up message): the
     * baseline that restricts the split to the measured window */
    bool have_base;
    uint64_t base_seq, base_n;
    struct seqstats ack_ss;
    struct seqstats *from_ss; /* one per room member (by position), or NULL */
};

/* Prepares m with a ring of ring_slots (a power of two, grown on demand) and, when streams
 * > 0, that many FROM streams. Returns 0 or -ENOMEM; pair with lg_meas_destroy. */
int lg_meas_init(struct lg_meas *m, uint32_t ring_slots, uint32_t streams);
void lg_meas_destroy(struct lg_meas *m);

/* The ring size for a client sending rate msg/s under a timeout: twice what a timeout
 * holds, at most 65536 slots to start with. */
uint32_t lg_meas_ring_slots(double rate, uint32_t timeout_ms);

/* Starts the schedule at t0 (seeded), each MSG expecting fan FROMs. */
void lg_meas_start(struct lg_meas *m, uint64_t t0_ns, double rate, bool poisson, uint64_t seed,
                   uint32_t fan);

/* The intended time of the next MSG. */
static inline uint64_t lg_meas_due(const struct lg_meas *m)
{
    return lg_sched_peek(&m->sched);
}

/* The next MSG of the schedule, taken into the ring. */
struct lg_msg {
    uint64_t seq, intended_ns;
    bool measured;
};

/* Moves the schedule on and takes a slot for its MSG into *msg. Returns 0, or -ENOMEM when
 * the ring could not grow: that MSG is skipped (the schedule has moved on all the same). */
int lg_meas_next(struct lg_meter *mt, struct lg_meas *m, struct lg_msg *msg);

/* The MSG went out at tx_ns (before the send system call), wire and plain bytes (its frame
 * on the wire and before compression): its send lag, and the measured counts. */
void lg_meas_sent(struct lg_meter *mt, struct lg_meas *m, const struct lg_msg *msg, uint64_t tx_ns,
                  uint64_t wire, uint64_t plain);

/* An ACK of seq with the server's count n, received at now. Returns whether it belongs to a
 * measured message (its bytes then count as measured). */
bool lg_meas_ack(struct lg_meter *mt, struct lg_meas *m, uint64_t seq, uint64_t n, uint64_t now);

/* A FROM of the sender's seq (stamped t_ns by the sender) reached rcv, the room member at
 * position pos, at now. Returns whether it belongs to a measured message. */
bool lg_meas_from(struct lg_meter *mt, struct lg_meas *rcv, uint32_t pos, struct lg_meas *snd,
                  uint64_t seq, uint64_t t_ns, uint64_t now);

/* Resolves the ring's oldest messages: done (ACKed and every FROM in), or, over datagrams,
 * past the timeout at now (lost when never ACKed). Returns the messages still in flight. */
uint64_t lg_meas_sweep(struct lg_meter *mt, struct lg_meas *m, uint64_t now);

/* End of the run: everything still in flight is resolved (lost when never ACKed), the sends
 * the schedule still owed inside the window are counted as behind when the client is still
 * live (in its room), and the client's share of the loss split is added. Call once per
 * client. */
void lg_meas_finish(struct lg_meter *mt, struct lg_meas *m, bool live);

#endif
