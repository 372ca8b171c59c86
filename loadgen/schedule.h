/* schedule: the open-loop send schedule of one simulated client, and the load generator's
 * deterministic random numbers. Pure: no clock, no I/O, thread-safe per struct.
 *
 * Message n of a client is intended for t0 + phase + n * period (uniform phase in
 * [0, period)), or, with Poisson arrivals, at the partial sums of exponential gaps of mean
 * period starting from t0. Latency is measured from these intended times, so a stalled
 * sender cannot hide its own stall (coordinated omission, as wrk2 corrects it). */
#ifndef CHATBENCH_LG_SCHEDULE_H
#define CHATBENCH_LG_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

/* splitmix64 (common/rng.h): small, fast, and good enough to seed and to draw phases and
 * payloads */
struct lg_rng {
    uint64_t s;
};

void lg_rng_seed(struct lg_rng *r, uint64_t seed);
uint64_t lg_rng_next(struct lg_rng *r);
/* Uniform double in [0, 1). */
double lg_rng_unit(struct lg_rng *r);
/* Exponentially distributed double of the given mean (> 0). */
double lg_rng_exp(struct lg_rng *r, double mean);

struct lg_sched {
    uint64_t next_ns;  /* intended time of the next message */
    uint64_t n;        /* messages scheduled so far */
    double period_ns;  /* 1e9 / rate */
    uint64_t start_ns; /* t0 + phase (periodic) */
    bool poisson;
    double carry_ns; /* Poisson: exact sum of gaps, so rounding never accumulates */
    struct lg_rng rng;
};

/* Prepares a schedule starting at t0_ns for rate messages per second (> 0). seed makes the
 * phase (or the Poisson gaps) reproducible. */
void lg_sched_init(struct lg_sched *s, uint64_t t0_ns, double rate, bool poisson, uint64_t seed);

/* The intended time of the next message; lg_sched_advance moves past it. */
static inline uint64_t lg_sched_peek(const struct lg_sched *s)
{
    return s->next_ns;
}
void lg_sched_advance(struct lg_sched *s);

#endif
