/* impair_relay: what bin/udp_impair does to each datagram (the decision, holds for reordering,
 * delays) and the pool of datagrams that wait. The rules and the report's columns are
 * described at the top of udp_impair.c. */
#include "udp_impair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IMP_MAX_QUEUED (256ull << 20) /* bytes of held and delayed datagrams */

static const uint32_t pool_caps[IMP_POOL_CLASSES] = {512, 4096, IMP_MAX_DGRAM};

/* --- packet pool --- */
static struct imp_pkt *pkt_get(struct imp_relay *r, uint32_t len)
{
    size_t c = 0;
    while (c + 1 < IMP_POOL_CLASSES && pool_caps[c] < len)
        c++; /* len <= IMP_MAX_DGRAM, the last class */
    if (r->bytes_out + pool_caps[c] > IMP_MAX_QUEUED) {
        r->queue_full++; /* a flood of big delayed datagrams must not take all memory */
        return NULL;
    }
    struct imp_pkt *p = r->pool[c];
    if (p) {
        r->pool[c] = p->next_free;
    } else {
        p = malloc(sizeof *p + pool_caps[c]);
        if (!p)
            return NULL;
        p->gen = 0;
        p->cap = pool_caps[c];
    }
    r->pkts_out++;
    r->bytes_out += p->cap;
    p->next_free = NULL;
    return p;
}

static void pkt_put(struct imp_relay *r, struct imp_pkt *p)
{
    size_t c = 0;
    while (c + 1 < IMP_POOL_CLASSES && pool_caps[c] < p->cap)
        c++;
    p->gen++;
    p->kind = PK_FREE;
    p->map = NULL;
    p->next_free = r->pool[c];
    r->pool[c] = p;
    r->pkts_out--;
    r->bytes_out -= p->cap;
}

/* A pooled copy of datagram data[0..len) of mapping m going in direction dir, or NULL (the
 * pool's bound, or no memory). */
static struct imp_pkt *pkt_copy(struct imp_relay *r, struct imp_map *m, enum impair_dir dir,
                                const struct impair_info *in, const char *data, size_t len)
{
    struct imp_pkt *p = pkt_get(r, (uint32_t)len);
    if (!p)
        return NULL;
    memcpy(p->data, data, len);
    p->len = (uint32_t)len;
    p->map = m;
    p->dir = dir;
    p->verb = in->verb;
    p->seq = in->seq;
    return p;
}

/* --- sending --- */
static void count(struct imp_relay *r, enum impair_dir dir, enum impair_verb verb, enum imp_stat s)
{
    r->st[dir][verb][s]++;
}

/* Sends one copy now. idx is the copy's emission index (IMP_NO_IDX outside --match): a copy
 * sent after one emitted later was overtaken through jitter. */
static void send_now(struct imp_relay *r, struct imp_map *m, enum impair_dir dir,
                     enum impair_verb verb, uint64_t seq, const char *data, size_t len,
                     uint64_t idx)
{
    ssize_t n;
    if (dir == IMPAIR_UP)
        n = send(m->fd, data, len, MSG_NOSIGNAL);
    else
        n = sendto(r->lfd, data, len, MSG_NOSIGNAL, (const struct sockaddr *)&m->client,
                   sizeof m->client);
    if (n < 0) {
        /* UDP is best effort: a refused copy is counted, never retried. */
        count(r, dir, verb, IS_SEND_ERRORS);
        imp_log_action(r, m, dir, verb, "send-error", seq);
    }
    if (idx == IMP_NO_IDX)
        return;
    if (idx + 1 < m->sent_hi[dir]) {
        count(r, dir, verb, IS_JITTER_REORDERED);
        imp_log_action(r, m, dir, verb, "jitter-reordered", seq);
    } else {
        m->sent_hi[dir] = idx + 1;
    }
}

static void schedule_delayed(struct imp_relay *r, struct imp_pkt *p, uint64_t delay_ns)
{
    p->kind = PK_DELAYED;
    p->gen++;
    if (impair_heap_push(&r->timers, r->now + delay_ns, p, p->gen) < 0) {
        /* Out of memory for the timer: send now rather than lose or leak it. */
        send_now(r, p->map, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
        pkt_put(r, p);
        return;
    }
    p->map->inflight++;
    count(r, p->dir, p->verb, IS_DELAYED);
}

/* Emits `copies` copies of an impaired datagram: now, or after its delay. */
static void emit(struct imp_relay *r, struct imp_map *m, enum impair_dir dir,
                 const struct impair_info *in, const char *data, size_t len, uint64_t delay_ns,
                 int copies)
{
    uint64_t idx = m->emit_idx[dir]++;
    for (int i = 0; i < copies; i++) {
        struct imp_pkt *p = (delay_ns && !r->flushing) ? pkt_copy(r, m, dir, in, data, len) : NULL;
        if (!p) {
            send_now(r, m, dir, in->verb, in->seq, data, len, idx);
            continue;
        }
        p->idx = idx;
        schedule_delayed(r, p, delay_ns);
    }
}

/* Emits a packet that was held: now or after its own delay. Takes ownership of p. */
static void emit_pkt(struct imp_relay *r, struct imp_pkt *p)
{
    struct imp_map *m = p->map;
    p->idx = m->emit_idx[p->dir]++;
    if (p->delay_ns && !r->flushing) {
        schedule_delayed(r, p, p->delay_ns);
        return;
    }
    send_now(r, m, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
    pkt_put(r, p);
}

/* After a datagram of `stream` went out: a held datagram of the same stream follows it. */
static void release_if_next(struct imp_relay *r, struct imp_map *m, enum impair_dir dir,
                            uint64_t stream)
{
    struct imp_pkt *p = m->held[dir];
    if (!p || (!r->cfg.scope_mapping && m->held_stream[dir] != stream))
        return;
    m->held[dir] = NULL;
    count(r, dir, p->verb, IS_REORDERED);
    imp_log_action(r, m, dir, p->verb, "reordered", p->seq);
    emit_pkt(r, p);
}

void imp_flush_held(struct imp_relay *r, struct imp_map *m, enum impair_dir dir)
{
    struct imp_pkt *p = m->held[dir];
    m->held[dir] = NULL;
    count(r, dir, p->verb, IS_HELD_FLUSHED);
    imp_log_action(r, m, dir, p->verb, "held-flushed", p->seq);
    emit_pkt(r, p);
}

/* --- the decision for one datagram --- */
void imp_process(struct imp_relay *r, struct imp_map *m, enum impair_dir dir, const char *data,
                 size_t len)
{
    struct impair_info in;
    bool compressed = false;
    if (len > 0 && (unsigned char)data[0] == 0xFF) {
        /* The relay knows the dictionary, so it sees the verb and seq inside; a datagram
         * that does not inflate stays ZLIB (chat, by the --match rule). */
        int n = zframe_decompress(&r->z, data, len, r->zbuf, IMP_MAX_DGRAM);
        compressed = n >= 0;
        if (compressed)
            impair_classify(r->zbuf, (size_t)n, &in);
    }
    if (!compressed)
        impair_classify(data, len, &in);
    count(r, dir, in.verb, IS_RECEIVED);
    if (compressed)
        count(r, dir, in.verb, IS_COMPRESSED);
    m->last_ns = r->now;
    if (!impair_matched(r->cfg.match, in.verb, dir)) {
        count(r, dir, in.verb, IS_FORWARDED);
        imp_log_action(r, m, dir, in.verb, "passed", in.seq);
        send_now(r, m, dir, in.verb, in.seq, data, len, IMP_NO_IDX);
        return;
    }
    uint64_t jitter = 0;
    enum impair_action a = impair_decide(&r->cfg.probs[dir], &r->rng[dir], &jitter);
    uint64_t delay = r->cfg.delay_ns[dir] + jitter;
    if (a == IA_DROP) {
        count(r, dir, in.verb, IS_DROPPED);
        imp_log_action(r, m, dir, in.verb, "dropped", in.seq);
        return;
    }
    count(r, dir, in.verb, IS_FORWARDED);
    if (a == IA_HOLD && !m->held[dir]) {
        struct imp_pkt *p = pkt_copy(r, m, dir, &in, data, len);
        if (p) {
            p->delay_ns = delay;
            p->kind = PK_HELD;
            p->gen++;
            if (impair_heap_push(&r->timers, r->now + r->cfg.hold_ns, p, p->gen) == 0) {
                m->held[dir] = p;
                m->held_stream[dir] = in.stream;
                count(r, dir, in.verb, IS_HELD);
                imp_log_action(r, m, dir, in.verb, "held", in.seq);
                return;
            }
            pkt_put(r, p);
        }
        a = IA_FORWARD; /* no memory: forward it instead */
    }
    /* A hold chosen while another is pending is forwarded: only one hold at a time, and
     * the next datagram of a held one's stream is never held itself. */
    if (a == IA_DUP) {
        count(r, dir, in.verb, IS_DUPLICATED);
        imp_log_action(r, m, dir, in.verb, "duplicated", in.seq);
        emit(r, m, dir, &in, data, len, delay, 2);
    } else {
        imp_log_action(r, m, dir, in.verb, "forwarded", in.seq);
        emit(r, m, dir, &in, data, len, delay, 1);
    }
    release_if_next(r, m, dir, in.stream);
}

/* --- timers --- */
void imp_run_timers(struct imp_relay *r)
{
    struct impair_timer t;
    while (impair_heap_peek(&r->timers, &t) && (t.at <= r->now || r->flushing)) {
        impair_heap_pop(&r->timers, &t);
        struct imp_pkt *p = t.ptr;
        if (p->gen != t.gen)
            continue; /* a hold that ended with a swap */
        if (p->kind == PK_HELD) {
            imp_flush_held(r, p->map, p->dir);
        } else {
            p->map->inflight--;
            send_now(r, p->map, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
            pkt_put(r, p);
        }
    }
}

void imp_pool_destroy(struct imp_relay *r)
{
    for (size_t c = 0; c < IMP_POOL_CLASSES; c++)
        while (r->pool[c]) {
            struct imp_pkt *p = r->pool[c];
            r->pool[c] = p->next_free;
            free(p);
        }
}
