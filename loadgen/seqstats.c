/* seqstats: loss, reordering, duplicates and RFC 3550 jitter of one stream (see seqstats.h). */
#include "seqstats.h"

#include <string.h>

#define SEQ_WORDS (SEQ_WINDOW / 64)

void seqstats_init(struct seqstats *s)
{
    memset(s, 0, sizeof(*s));
}

/* --- the window: bit i of the array is seq (highest - i) --- */

static bool window_test(const struct seqstats *s, uint64_t dist)
{
    return (s->window[dist / 64] >> (dist % 64)) & 1u;
}

static void window_set(struct seqstats *s, uint64_t dist)
{
    s->window[dist / 64] |= (uint64_t)1 << (dist % 64);
}

/* Moves every bit n places towards the old end, as highest grows by n. */
static void window_shift(struct seqstats *s, uint64_t n)
{
    if (n >= SEQ_WINDOW) {
        memset(s->window, 0, sizeof(s->window));
        return;
    }
    size_t words = (size_t)(n / 64);
    unsigned bits = (unsigned)(n % 64);
    for (size_t w = SEQ_WORDS; w-- > 0;) {
        uint64_t v = 0;
        if (w >= words) {
            v = s->window[w - words] << bits;
            if (bits && w >= words + 1)
                v |= s->window[w - words - 1] >> (64 - bits);
        }
        s->window[w] = v;
    }
}

/* --- arrivals --- */

/* RFC 3550 6.4.1 over first arrivals in arrival order. Duplicates are left out: a copy
 * carries the original's send time, so it would add the copy's delay, not network jitter. */
static void update_jitter(struct seqstats *s, uint64_t send_ns, uint64_t recv_ns)
{
    /* Unsigned difference read as signed: senders and receivers share one clock, but a
     * negative transit must not turn into 2^64. */
    int64_t transit = (int64_t)(recv_ns - send_ns);
    if (s->have_transit) {
        int64_t d = transit - s->last_transit_ns;
        double abs_d = d < 0 ? -(double)d : (double)d;
        s->jitter_ns += (abs_d - s->jitter_ns) / 16.0;
    }
    s->last_transit_ns = transit;
    s->have_transit = true;
}

enum seq_kind seqstats_arrive(struct seqstats *s, uint64_t seq, uint64_t send_ns, uint64_t recv_ns)
{
    enum seq_kind kind;

    s->received++;
    if (!s->any || seq > s->highest) {
        if (s->any)
            window_shift(s, seq - s->highest);
        s->any = true;
        s->highest = seq;
        window_set(s, 0);
        kind = SEQ_IN_ORDER;
    } else {
        uint64_t dist = s->highest - seq;
        if (dist >= SEQ_WINDOW) {
            /* Cannot tell late from duplicate: count it as late, as the header promises. */
            s->too_old++;
            s->reordered++;
            kind = SEQ_TOO_OLD;
        } else if (window_test(s, dist)) {
            s->duplicates++;
            return SEQ_DUPLICATE;
        } else {
            window_set(s, dist);
            s->reordered++;
            kind = SEQ_REORDERED;
        }
    }
    s->distinct++;
    update_jitter(s, send_ns, recv_ns);
    return kind;
}

uint64_t seqstats_lost(const struct seqstats *s, uint64_t sent)
{
    return sent > s->distinct ? sent - s->distinct : 0;
}

void seqstats_merge_counts(struct seqstats *dst, const struct seqstats *src)
{
    dst->received += src->received;
    dst->distinct += src->distinct;
    dst->reordered += src->reordered;
    dst->duplicates += src->duplicates;
    dst->too_old += src->too_old;
}
