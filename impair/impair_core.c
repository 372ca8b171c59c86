/* impair_core: the PRNG, decisions and timers of bin/udp_impair and bin/linkem (pure code). */
#include "impair_core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- option values --- */

int impair_parse_prob(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v))
        return -EINVAL;
    if (*end == '%') {
        v /= 100.0;
        end++;
    }
    if (*end != '\0' || v < 0.0 || v > 1.0)
        return -EINVAL;
    *out = v;
    return 0;
}

int impair_parse_ms(const char *s, double max_ms, uint64_t *ns)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < 0.0 || v > max_ms)
        return -EINVAL;
    *ns = (uint64_t)(v * 1e6 + 0.5);
    return 0;
}

/* --- PRNG --- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void impair_rng_seed(struct impair_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t impair_rng_next(struct impair_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double impair_rng_unit(struct impair_rng *r)
{
    return (double)(impair_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t impair_rng_upto(struct impair_rng *r, uint64_t max)
{
    uint64_t u = impair_rng_next(r); /* drawn even for max 0: the stream stays aligned */
    return max ? u % (max + 1) : 0;
}

enum impair_action impair_decide(const struct impair_probs *p, struct impair_rng *r,
                                 uint64_t *jitter_ns)
{
    double u_drop = impair_rng_unit(r);
    double u_dup = impair_rng_unit(r);
    double u_reorder = impair_rng_unit(r);
    *jitter_ns = impair_rng_upto(r, p->jitter_ns);
    if (u_drop < p->drop)
        return IA_DROP;
    if (u_dup < p->dup)
        return IA_DUP;
    if (u_reorder < p->reorder)
        return IA_HOLD;
    return IA_FORWARD;
}

/* --- timer heap --- */

void impair_heap_init(struct impair_heap *h)
{
    memset(h, 0, sizeof *h);
}

void impair_heap_destroy(struct impair_heap *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}

static bool earlier(const struct impair_timer *a, const struct impair_timer *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

int impair_heap_push(struct impair_heap *h, uint64_t at, void *ptr, uint64_t gen)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        struct impair_timer *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    struct impair_timer t = {.at = at, .order = h->next_order++, .ptr = ptr, .gen = gen};
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&t, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = t;
    return 0;
}

bool impair_heap_peek(const struct impair_heap *h, struct impair_timer *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    return true;
}

bool impair_heap_pop(struct impair_heap *h, struct impair_timer *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    struct impair_timer last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && earlier(&h->v[c + 1], &h->v[c]))
            c++;
        if (!earlier(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return true;
}
