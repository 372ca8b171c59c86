/* impair_core: the pure decision core of bin/udp_impair and bin/linkem (the seeded PRNG, the
 * per-datagram decision, option values and a timer heap). No I/O, no clock: callers pass
 * times. Everything here is deterministic, which is what lets a test replay a run.
 *
 * Thread-safety: no shared state; each struct belongs to its caller. */
#ifndef CHATBENCH_IMPAIR_CORE_H
#define CHATBENCH_IMPAIR_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum impair_dir { IMPAIR_UP = 0, IMPAIR_DOWN = 1, IMPAIR__DIRS };

/* "0.3" or "30%" -> 0.3. Returns 0, or -EINVAL outside 0..1 (0..100%) or for garbage. */
int impair_parse_prob(const char *s, double *out);

/* Milliseconds (fractions allowed) in 0..max_ms -> nanoseconds. Returns 0 or -EINVAL. */
int impair_parse_ms(const char *s, double max_ms, uint64_t *ns);

/* --- PRNG: xoshiro256** seeded through splitmix64 --- */
struct impair_rng {
    uint64_t s[4];
};

void impair_rng_seed(struct impair_rng *r, uint64_t seed);
uint64_t impair_rng_next(struct impair_rng *r);
/* Uniform in [0, 1). */
double impair_rng_unit(struct impair_rng *r);
/* Uniform in [0, max] (jitter in ns; the modulo bias is below 2^-40 for any delay we take).
 * Always consumes one number, also for max 0. */
uint64_t impair_rng_upto(struct impair_rng *r, uint64_t max);

/* --- the decision: exactly one action per impaired datagram --- */
struct impair_probs {
    double drop, dup, reorder;
    uint64_t jitter_ns; /* extra delay drawn uniformly in [0, jitter_ns] */
};

enum impair_action { IA_FORWARD = 0, IA_DROP, IA_DUP, IA_HOLD };

/* Draws exactly four numbers from r whatever the outcome (so that the stream of decisions
 * depends only on the seed and the order of datagrams), and decides in a fixed order: drop,
 * else duplicate, else hold for reordering, else forward. *jitter_ns gets the extra delay. */
enum impair_action impair_decide(const struct impair_probs *p, struct impair_rng *r,
                                 uint64_t *jitter_ns);

/* --- timer heap: earliest `at` first, FIFO among equal `at` --- */
struct impair_timer {
    uint64_t at;    /* CLOCK_MONOTONIC ns */
    uint64_t order; /* insertion counter: ties keep their order */
    void *ptr;
    uint64_t gen; /* the caller's generation check for entries that may go stale */
};

struct impair_heap {
    struct impair_timer *v;
    size_t n, cap;
    uint64_t next_order;
};

void impair_heap_init(struct impair_heap *h);
void impair_heap_destroy(struct impair_heap *h);
/* Returns 0 or -ENOMEM. */
int impair_heap_push(struct impair_heap *h, uint64_t at, void *ptr, uint64_t gen);
/* The earliest entry without removing it; false when empty. */
bool impair_heap_peek(const struct impair_heap *h, struct impair_timer *out);
/* Removes the earliest entry into *out; false when empty. */
bool impair_heap_pop(struct impair_heap *h, struct impair_timer *out);

#endif
