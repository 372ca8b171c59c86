/* bucket: a token bucket over the caller's clock (see bucket.h). */
#include "bucket.h"

#define NANO 1000000000u

void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
    b->rate = rate;
    b->burst = burst;
    b->nanos = burst * NANO;
    b->last_ns = now_ns;
}

/* Adds what the time since last_ns earned, up to burst. */
static void refill(struct bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns)
        return; /* the clock of another thread may lag by a little: nothing earned */
    uint64_t full = b->burst * NANO;
    uint64_t dt = now_ns - b->last_ns;
    b->last_ns = now_ns;
    /* past the time that fills an empty bucket, it is full: no overflow of dt x rate */
    if (dt >= full / b->rate + 1) {
        b->nanos = full;
        return;
    }
    uint64_t add = dt * b->rate;
    b->nanos = full - b->nanos < add ? full : b->nanos + add;
}

bool bucket_has(struct bucket *b, uint64_t n, uint64_t now_ns)
{
    refill(b, now_ns);
    return n <= b->burst && n * NANO <= b->nanos;
}

bool bucket_take(struct bucket *b, uint64_t n, uint64_t now_ns)
{
    if (!bucket_has(b, n, now_ns))
        return false;
    b->nanos -= n * NANO;
    return true;
}
