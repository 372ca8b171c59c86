/* schedule: open-loop send times and deterministic random numbers (see schedule.h). */
#include "schedule.h"

#include "rng.h"

#include <math.h>

void lg_rng_seed(struct lg_rng *r, uint64_t seed)
{
    r->s = seed;
    (void)lg_rng_next(r); /* mix, so seeds 0, 1, 2 do not start alike */
}

uint64_t lg_rng_next(struct lg_rng *r)
{
    return rng_splitmix64(&r->s);
}

double lg_rng_unit(struct lg_rng *r)
{
    return rng_unit(lg_rng_next(r));
}

double lg_rng_exp(struct lg_rng *r, double mean)
{
    /* 1 - u is in (0, 1], so the log is finite */
    return -log(1.0 - lg_rng_unit(r)) * mean;
}

void lg_sched_init(struct lg_sched *s, uint64_t t0_ns, double rate, bool poisson, uint64_t seed)
{
    lg_rng_seed(&s->rng, seed);
    s->period_ns = 1e9 / rate;
    s->poisson = poisson;
    s->n = 0;
    s->carry_ns = 0;
    if (poisson) {
        s->start_ns = t0_ns;
        s->carry_ns = lg_rng_exp(&s->rng, s->period_ns);
        s->next_ns = t0_ns + (uint64_t)s->carry_ns;
    } else {
        s->start_ns = t0_ns + (uint64_t)(lg_rng_unit(&s->rng) * s->period_ns);
        s->next_ns = s->start_ns;
    }
}

void lg_sched_advance(struct lg_sched *s)
{
    s->n++;
    if (s->poisson) {
        s->carry_ns += lg_rng_exp(&s->rng, s->period_ns);
        s->next_ns = s->start_ns + (uint64_t)s->carry_ns;
    } else {
        /* computed from n, not summed, so a long run does not drift */
        s->next_ns = s->start_ns + (uint64_t)((double)s->n * s->period_ns);
    }
}
