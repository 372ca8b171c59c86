/* impair_core: the PRNG, decisions and timers of bin/udp_impair and bin/linkem (pure code). */
#include "impair_core.h"

#include "rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- PRNG --- */

void impair_rng_seed(struct impair_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&seed);
}

void impair_rng_seed_dir(struct impair_rng *r, uint64_t seed, enum impair_dir dir)
{
    impair_rng_seed(r, dir == IMPAIR_UP ? seed : seed ^ 0x5bd1e9955bd1e995ull);
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
    return rng_unit(impair_rng_next(r));
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

/* --- the link model --- */

int impair_ge_params(double loss, double burst, double *p, double *r)
{
    if (!(loss > 0.0 && loss < 1.0) || !(burst >= 1.0) || !isfinite(burst))
        return -EINVAL;
    double rr = 1.0 / burst;
    double pp = loss * rr / (1.0 - loss);
    if (pp > 1.0)
        return -EINVAL;
    *p = pp;
    *r = rr;
    return 0;
}

static bool prob_ok(double p)
{
    return p >= 0.0 && p <= 1.0;
}

int impair_link_init(struct impair_link *l, const struct impair_link_cfg *cfg, uint64_t seed,
                     enum impair_dir dir)
{
    if (!prob_ok(cfg->loss) || !prob_ok(cfg->dup) || !prob_ok(cfg->ge_p) || !prob_ok(cfg->ge_r) ||
        (cfg->loss > 0.0 && cfg->ge_r > 0.0))
        return -EINVAL;
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    impair_rng_seed_dir(&l->rng, seed, dir);
    return 0;
}

void impair_link_destroy(struct impair_link *l)
{
    free(l->q);
    l->q = NULL;
    l->q_n = l->q_cap = 0;
}

uint64_t impair_link_tx_ns(uint64_t rate_bps, uint32_t len)
{
    if (rate_bps == 0)
        return 0;
    uint64_t bits_ns = (uint64_t)len * 8u * 1000000000u; /* < 2^49 for any IP length */
    return (bits_ns + rate_bps - 1) / rate_bps;
}

/* The loss model's verdict for the next packet (one draw, whichever model). */
static bool link_lost(struct impair_link *l, double u)
{
    if (l->cfg.ge_r > 0.0) {
        /* the chain moves first, then the packet meets the state it is in: a burst starts
         * with the packet that finds the bad state and lasts 1/r packets on average */
        if (l->ge_bad)
            l->ge_bad = !(u < l->cfg.ge_r);
        else
            l->ge_bad = u < l->cfg.ge_p;
        return l->ge_bad;
    }
    return u < l->cfg.loss;
}

static int queue_grow(struct impair_link *l)
{
    size_t cap = l->q_cap ? l->q_cap * 2 : 64;
    struct impair_link_wait *q = malloc(cap * sizeof *q);
    if (!q)
        return -ENOMEM;
    for (size_t i = 0; i < l->q_n; i++) /* unwrap the ring into the new one */
        q[i] = l->q[(l->q_head + i) % l->q_cap];
    free(l->q);
    l->q = q;
    l->q_cap = cap;
    l->q_head = 0;
    return 0;
}

/* One copy of len bytes enters the bottleneck at now; *exit gets when its last bit is out.
 * Returns false when the drop-tail queue refuses it. */
static bool link_enqueue(struct impair_link *l, uint64_t now, uint32_t len, uint64_t *exit)
{
    const struct impair_link_cfg *c = &l->cfg;
    if (c->rate_bps == 0) {
        *exit = now;
        return true;
    }
    /* copies whose serialisation has begun by now have left the queue */
    while (l->q_n > 0 && l->q[l->q_head].start <= now) {
        l->q_bytes -= l->q[l->q_head].len;
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_n--;
    }
    uint64_t start = now;
    if (l->busy_until > now) {
        start = l->busy_until; /* it has to wait: the queue decides */
        if ((c->queue_pkts && l->q_n >= c->queue_pkts) ||
            (c->queue_bytes && l->q_bytes + len > c->queue_bytes))
            return false;
        if (l->q_n == l->q_cap && queue_grow(l) < 0)
            return false;
        l->q[(l->q_head + l->q_n) % l->q_cap] = (struct impair_link_wait){start, len};
        l->q_n++;
        l->q_bytes += len;
        if (l->q_n > l->n.max_queue)
            l->n.max_queue = l->q_n;
        if (l->q_bytes > l->n.max_queue_bytes)
            l->n.max_queue_bytes = l->q_bytes;
    } else {
        l->carry = 0; /* an idle link starts afresh */
    }
    /* exact over a long busy period: the remainder of each division is carried */
    uint64_t bits_ns = (uint64_t)len * 8u * 1000000000u + l->carry;
    l->busy_until = start + bits_ns / c->rate_bps;
    l->carry = bits_ns % c->rate_bps;
    *exit = l->busy_until;
    return true;
}

void impair_link_arrive(struct impair_link *l, uint64_t now, uint32_t len,
                        struct impair_link_verdict *v)
{
    double u_loss = impair_rng_unit(&l->rng);
    double u_dup = impair_rng_unit(&l->rng);
    uint64_t jitter[2];
    jitter[0] = impair_rng_upto(&l->rng, l->cfg.jitter_ns);
    jitter[1] = impair_rng_upto(&l->rng, l->cfg.jitter_ns);
    memset(v, 0, sizeof *v);
    v->idx = l->next_idx++;
    l->n.pkts_in++;
    l->n.bytes_in += len;
    if (link_lost(l, u_loss)) {
        v->lost = true;
        l->n.lost++;
        return;
    }
    v->duplicated = u_dup < l->cfg.dup;
    if (v->duplicated)
        l->n.duplicated++;
    for (int i = 0; i < 1 + v->duplicated; i++) {
        uint64_t exit;
        if (!link_enqueue(l, now, len, &exit)) {
            v->queue_drops++;
            l->n.queue_drops++;
            continue;
        }
        uint64_t depart = exit + l->cfg.delay_ns + jitter[i];
        if (!l->cfg.reorder) {
            if (depart < l->last_out)
                depart = l->last_out; /* one wire: it waits for the packet ahead */
            l->last_out = depart;
        }
        v->depart[v->copies++] = depart;
    }
}

/* --- per-flow reordering --- */

void impair_flows_init(struct impair_flows *f)
{
    memset(f, 0, sizeof *f);
}

void impair_flows_destroy(struct impair_flows *f)
{
    free(f->key);
    free(f->hi);
    memset(f, 0, sizeof *f);
}

#define IMPAIR_FLOWS_MAX (1u << 22) /* 4 M flows, 64 MiB: a port scan must not take it all */

/* The slot of key in an open-addressing table of cap (a power of two) slots. */
static size_t flow_slot(const uint64_t *keys, size_t cap, uint64_t key)
{
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
    while (keys[i] != 0 && keys[i] != key)
        i = (i + 1) & (cap - 1);
    return i;
}

static int flows_grow(struct impair_flows *f)
{
    size_t cap = f->cap ? f->cap * 2 : 1024;
    if (cap > IMPAIR_FLOWS_MAX)
        return -ENOSPC;
    uint64_t *key = calloc(cap, sizeof *key);
    uint64_t *hi = calloc(cap, sizeof *hi);
    if (!key || !hi) {
        free(key);
        free(hi);
        return -ENOMEM;
    }
    for (size_t i = 0; i < f->cap; i++) {
        if (f->key[i] == 0)
            continue;
        size_t j = flow_slot(key, cap, f->key[i]);
        key[j] = f->key[i];
        hi[j] = f->hi[i];
    }
    free(f->key);
    free(f->hi);
    f->key = key;
    f->hi = hi;
    f->cap = cap;
    return 0;
}

bool impair_flows_sent(struct impair_flows *f, uint64_t flow, uint64_t idx)
{
    if (flow == 0)
        flow = 1;
    size_t i = f->cap ? flow_slot(f->key, f->cap, flow) : 0;
    if (f->cap == 0 || f->key[i] == 0) { /* a new flow: room for it first (load <= 3/4) */
        if (f->n + 1 > f->cap / 2 && flows_grow(f) < 0 && f->n + 1 > f->cap * 3 / 4) {
            f->untracked++; /* the table is full: not judged, and counted so nobody trusts it */
            return false;
        }
        i = flow_slot(f->key, f->cap, flow);
        f->key[i] = flow;
        f->n++;
    }
    if (idx + 1 < f->hi[i])
        return true;
    f->hi[i] = idx + 1;
    return false;
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
