/* seqstats: per-stream accounting of sequence numbers as they arrive (loss, reordering,
 * duplicates, RFC 3550 jitter). Pure: no I/O, no clock; callers pass times.
 *
 * One struct per (sender, receiver) stream. Sequence numbers start at 0 and grow by 1 per
 * frame sent. Definitions (documented in README and checked by tests/unit/test_seqstats.c):
 *  - reordered: an arrival whose seq is lower than the highest seen so far (iperf3's
 *    definition), and that is not a duplicate.
 *  - duplicate: a seq that already arrived; a window of the last SEQ_WINDOW seqs below the
 *    highest tells duplicates from late arrivals. Older than the window: counted as late
 *    (reordered) and flagged in `too_old`.
 *  - lost: frames sent minus distinct frames that arrived (final, at the end of a run; a
 *    frame may also be declared lost earlier by the caller's timeout).
 *  - jitter: RFC 3550 6.4.1 interarrival jitter, J += (|D| - J)/16, in nanoseconds. */
#ifndef CHATBENCH_SEQSTATS_H
#define CHATBENCH_SEQSTATS_H

#include <stdbool.h>
#include <stdint.h>

#define SEQ_WINDOW 1024 /* bits of history below the highest seq */

struct seqstats {
    uint64_t received;   /* every arrival, duplicates included */
    uint64_t distinct;   /* first arrivals */
    uint64_t reordered;  /* arrivals below the highest seen (not duplicates) */
    uint64_t duplicates; /* second and later arrivals of one seq */
    uint64_t too_old;    /* arrivals below the window: cannot tell late from duplicate */
    bool any;
    uint64_t highest;                 /* highest seq seen */
    uint64_t window[SEQ_WINDOW / 64]; /* bit i: seq (highest - i) has arrived */
    /* jitter */
    bool have_transit;
    int64_t last_transit_ns;
    double jitter_ns;
};

void seqstats_init(struct seqstats *s);

/* Kind of an arrival, returned by seqstats_arrive. */
enum seq_kind { SEQ_IN_ORDER, SEQ_REORDERED, SEQ_DUPLICATE, SEQ_TOO_OLD };

/* Accounts one arrival of seq, sent at send_ns and received at recv_ns (same clock). */
enum seq_kind seqstats_arrive(struct seqstats *s, uint64_t seq, uint64_t send_ns, uint64_t recv_ns);

/* Frames lost given how many were sent (sent - distinct, never negative). */
uint64_t seqstats_lost(const struct seqstats *s, uint64_t sent);

/* Adds counters of src into dst (jitter: the mean is the caller's business). */
void seqstats_merge_counts(struct seqstats *dst, const struct seqstats *src);

#endif
