/* bucket: a token bucket (rate tokens a second, at most burst saved up), the classic shaper
 * of RFC 2697's committed rate. udp_server meters its replies to unregistered addresses
 * with one, in bytes (PROTOCOL.md, "Reflection").
 *
 * Time is the caller's (CLOCK_MONOTONIC nanoseconds), so the arithmetic is exact and
 * testable: tokens are kept in nano-token units, nothing is lost to rounding however often
 * it is asked. Not thread-safe: one owner (udp_server's receiver thread). */
#ifndef CHATBENCH_BUCKET_H
#define CHATBENCH_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
    uint64_t rate;    /* tokens added a second; immutable */
    uint64_t burst;   /* most tokens held; immutable */
    uint64_t nanos;   /* tokens held x 1e9 */
    uint64_t last_ns; /* when nanos was last brought up to date */
};

/* A full bucket at now_ns. rate and burst: 1 .. 2^32 (no overflow in the arithmetic). */
void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);

/* Whether n tokens are there at now_ns (bucket_take would succeed); takes none. */
bool bucket_has(struct bucket *b, uint64_t n, uint64_t now_ns);

/* Takes n tokens if the bucket holds them at now_ns: true; else takes none: false. */
bool bucket_take(struct bucket *b, uint64_t n, uint64_t now_ns);

/* The most tokens that can be taken from a full bucket over seconds: the bound a meter
 * promises (burst + rate x seconds). */
static inline double bucket_bound(const struct bucket *b, double seconds)
{
    return (double)b->burst + (double)b->rate * seconds;
}

#endif
