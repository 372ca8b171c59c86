/* rng: splitmix64, the one generator step every seeded random stream of the project is built
 * from (the load generator's phases and payloads, the impairment tools' seeding). Small, fast,
 * passes BigCrush as a seeder; not for anything secret (tokens come from getrandom). */
#ifndef CHATBENCH_RNG_H
#define CHATBENCH_RNG_H

#include <stdint.h>

/* Advances *state and returns the next 64 random bits. */
static inline uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) from 64 random bits (the top 53). */
static inline double rng_unit(uint64_t bits)
{
    return (double)(bits >> 11) * 0x1.0p-53;
}

#endif
