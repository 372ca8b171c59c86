/* impair_core: classification, PRNG, decisions and timers of bin/udp_impair (pure code). */
#include "impair_core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- classification --- */

static const char *const verb_names[IV__COUNT] = {
    [IV_HELLO] = "HELLO", [IV_MSG] = "MSG",   [IV_TO] = "TO",         [IV_JOIN] = "JOIN",
    [IV_WHO] = "WHO",     [IV_PING] = "PING", [IV_BYE] = "BYE",       [IV_WELCOME] = "WELCOME",
    [IV_ACK] = "ACK",     [IV_FROM] = "FROM", [IV_PRIV] = "PRIV",     [IV_USER] = "USER",
    [IV_USERS] = "USERS", [IV_PONG] = "PONG", [IV_JOINED] = "JOINED", [IV_LEFT] = "LEFT",
    [IV_ERR] = "ERR",     [IV_ZLIB] = "ZLIB", [IV_OTHER] = "OTHER",
};

const char *impair_verb_name(enum impair_verb v)
{
    return (unsigned)v < IV__COUNT ? verb_names[v] : "OTHER";
}

/* Verbs that may appear as a datagram's first word (ZLIB and OTHER are not words). */
static int verb_lookup(const char *s, size_t len)
{
    for (int v = 0; v < IV_ZLIB; v++)
        if (strlen(verb_names[v]) == len && memcmp(verb_names[v], s, len) == 0)
            return v;
    return -1;
}

/* The next space-separated word of buf[*pos..len); a frame's LF/CR ends the last word. */
static bool next_word(const char *buf, size_t len, size_t *pos, const char **w, size_t *wlen)
{
    size_t i = *pos;
    if (i >= len)
        return false;
    size_t j = i;
    while (j < len && buf[j] != ' ' && buf[j] != '\n' && buf[j] != '\r')
        j++;
    *w = buf + i;
    *wlen = j - i;
    *pos = (j < len && buf[j] == ' ') ? j + 1 : len;
    return true;
}

static uint64_t parse_seq(const char *w, size_t len)
{
    if (len == 0 || len > 20)
        return IMPAIR_NO_SEQ;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (w[i] < '0' || w[i] > '9')
            return IMPAIR_NO_SEQ;
        uint64_t d = (uint64_t)(w[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return IMPAIR_NO_SEQ;
        v = v * 10 + d;
    }
    return v;
}

/* FNV-1a, enough to tell sequence spaces apart within one mapping. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void impair_classify(const char *buf, size_t len, struct impair_info *out)
{
    out->verb = IV_OTHER;
    out->seq = IMPAIR_NO_SEQ;
    out->stream = 0;
    if (len > 0 && (unsigned char)buf[0] == 0xFF) {
        out->verb = IV_ZLIB;
    } else {
        size_t pos = 0;
        const char *w = NULL;
        size_t wl = 0;
        if (next_word(buf, len, &pos, &w, &wl)) {
            int v = verb_lookup(w, wl);
            if (v >= 0)
                out->verb = (enum impair_verb)v;
        }
        const char *id = NULL;
        size_t id_len = 0;
        switch (out->verb) {
        case IV_MSG:
        case IV_ACK:
            if (next_word(buf, len, &pos, &w, &wl))
                out->seq = parse_seq(w, wl);
            break;
        case IV_FROM:
        case IV_PRIV:
        case IV_TO:
            if (next_word(buf, len, &pos, &id, &id_len) && next_word(buf, len, &pos, &w, &wl))
                out->seq = parse_seq(w, wl);
            break;
        default:
            break;
        }
        out->stream = fnv1a(0xcbf29ce484222325ull, &out->verb, sizeof out->verb);
        if (id)
            out->stream = fnv1a(out->stream, id, id_len);
        return;
    }
    out->stream = fnv1a(0xcbf29ce484222325ull, &out->verb, sizeof out->verb);
}

int impair_parse_match(const char *list, uint32_t *mask)
{
    uint32_t m = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int v = -1;
        for (int i = 0; i < IV__COUNT; i++)
            if (strlen(verb_names[i]) == len && strncasecmp(verb_names[i], p, len) == 0)
                v = i;
        if (v < 0)
            return -EINVAL;
        m |= 1u << v;
        if (!e)
            break;
        p = e + 1;
        if (!*p)
            return -EINVAL; /* trailing comma */
    }
    if (m == 0)
        return -EINVAL;
    *mask = m;
    return 0;
}

bool impair_matched(uint32_t mask, enum impair_verb v, enum impair_dir dir)
{
    if (v == IV_ZLIB) {
        if (mask & (1u << IV_ZLIB))
            return true;
        if (dir == IMPAIR_UP)
            return mask & (1u << IV_MSG);
        return mask & ((1u << IV_ACK) | (1u << IV_FROM));
    }
    return mask & (1u << v);
}

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

enum impair_action impair_decide(const struct impair_probs *p, struct impair_rng *r,
                                 uint64_t *jitter_ns)
{
    double u_drop = impair_rng_unit(r);
    double u_dup = impair_rng_unit(r);
    double u_reorder = impair_rng_unit(r);
    uint64_t u_jitter = impair_rng_next(r);
    *jitter_ns = p->jitter_ns ? u_jitter % (p->jitter_ns + 1) : 0;
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
