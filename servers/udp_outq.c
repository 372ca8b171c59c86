/* udp_outq: bounded outbound datagram queue for udp_server (see udp_outq.h). */
#include "udp_outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int udp_outq_init(struct udp_outq *q, size_t data_cap, size_t ent_cap)
{
    memset(q, 0, sizeof(*q));
    if (data_cap == 0 || data_cap > UINT32_MAX || ent_cap == 0)
        return -EINVAL;
    q->data = malloc(data_cap);
    q->ent = calloc(ent_cap, sizeof(*q->ent));
    if (q->data == NULL || q->ent == NULL) {
        free(q->data);
        free(q->ent);
        return -ENOMEM;
    }
    q->data_cap = data_cap;
    q->ent_cap = ent_cap;
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc == 0) {
        rc = pthread_cond_init(&q->nonempty, NULL);
        if (rc == 0) {
            rc = pthread_cond_init(&q->space, NULL);
            if (rc != 0)
                pthread_cond_destroy(&q->nonempty);
        }
        if (rc != 0)
            pthread_mutex_destroy(&q->lock);
    }
    if (rc != 0) {
        free(q->data);
        free(q->ent);
        q->data = NULL;
        q->ent = NULL;
        return -rc;
    }
    return 0;
}

void udp_outq_destroy(struct udp_outq *q)
{
    if (q->data == NULL)
        return;
    pthread_cond_destroy(&q->space);
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
    free(q->data);
    free(q->ent);
    q->data = NULL;
    q->ent = NULL;
}

/* Reserves len contiguous payload bytes, keeping data_used within limit; returns the offset
 * and sets *reserved to len plus the padding skipped at the ring's end, or returns -1.
 * Caller holds q->lock. */
static long reserve(struct udp_outq *q, size_t len, size_t limit, size_t *reserved)
{
    if (q->data_used == 0)
        q->data_head = q->data_tail = 0; /* empty: start over, no padding needed */
    if (len == 0)
        len = 1; /* keep every payload distinct so release arithmetic stays simple */
    if (q->data_used >= limit || limit - q->data_used < len)
        return -1;
    size_t off;
    size_t pad = 0;
    if (q->data_tail >= q->data_head) {
        if (q->data_cap - q->data_tail >= len) {
            off = q->data_tail;
        } else if (q->data_head >= len) {
            pad = q->data_cap - q->data_tail; /* wrap: skip the ring's tail end */
            off = 0;
        } else {
            return -1;
        }
    } else {
        if (q->data_head - q->data_tail < len)
            return -1;
        off = q->data_tail;
    }
    q->data_tail = (off + len) % q->data_cap;
    q->data_used += pad + len;
    *reserved = pad + len;
    return (long)off;
}

/* Clears sleeping and says whether the sender must be signalled (once the lock is
 * released): it sleeps and there is work. Caller holds q->lock. */
static bool take_wake(struct udp_outq *q)
{
    bool wake = q->sleeping && q->ent_count > 0;
    if (wake)
        q->sleeping = false;
    return wake;
}

static size_t push(struct udp_outq *q, const void *p, size_t len, const struct sockaddr_in *to,
                   size_t n, enum udp_outq_mode mode, bool wake)
{
    if (n == 0)
        return 0;
    bool fanout = mode == UDP_OUTQ_FANOUT;
    size_t ent_limit = fanout ? q->ent_cap - q->ent_cap / 4 : q->ent_cap;
    size_t data_limit = fanout ? q->data_cap - q->data_cap / 4 : q->data_cap;
    size_t done = 0;
    pthread_mutex_lock(&q->lock);
    while (done < n) {
        size_t room = q->ent_count < ent_limit ? ent_limit - q->ent_count : 0;
        size_t k = n - done < room ? n - done : room;
        size_t reserved = 0;
        long off = k > 0 ? reserve(q, len, data_limit, &reserved) : -1;
        if (off < 0) {
            if (mode != UDP_OUTQ_WAIT || q->stopping) {
                q->dropped += n - done;
                wake = true; /* full: a sleeping sender must drain it now, not after the batch */
                break;
            }
            if (take_wake(q)) /* only the sender makes room: it must be awake */
                pthread_cond_signal(&q->nonempty);
            pthread_cond_wait(&q->space, &q->lock);
            continue;
        }
        memcpy(q->data + off, p, len);
        for (size_t i = 0; i < k; i++) {
            struct udp_outq_ent *e = &q->ent[(q->ent_head + q->ent_count) % q->ent_cap];
            e->to = to[done + i];
            e->off = (uint32_t)off;
            e->len = (uint32_t)len;
            e->release = i + 1 == k ? (uint32_t)reserved : 0;
            q->ent_count++;
        }
        done += k;
    }
    /* a batch that queued a sender's batch (UDP_OUTQ_EARLY_WAKE) wakes it without waiting
     * for the kick: big rooms' fan-outs must not pile up until the queue is full */
    wake = (wake || q->ent_count >= UDP_OUTQ_EARLY_WAKE) && take_wake(q);
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->nonempty);
    return done;
}

size_t udp_outq_push(struct udp_outq *q, const void *p, size_t len, const struct sockaddr_in *to,
                     size_t n, enum udp_outq_mode mode)
{
    return push(q, p, len, to, n, mode, true);
}

size_t udp_outq_push_later(struct udp_outq *q, const void *p, size_t len,
                           const struct sockaddr_in *to, size_t n, enum udp_outq_mode mode)
{
    return push(q, p, len, to, n, mode, false);
}

void udp_outq_kick(struct udp_outq *q)
{
    pthread_mutex_lock(&q->lock);
    bool wake = take_wake(q);
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->nonempty);
}

size_t udp_outq_take(struct udp_outq *q, struct udp_outq_ent *out, size_t max)
{
    pthread_mutex_lock(&q->lock);
    while (q->ent_count == 0 && !q->stopping) {
        q->sleeping = true; /* the next push (or kick) signals */
        pthread_cond_wait(&q->nonempty, &q->lock);
    }
    q->sleeping = false;
    size_t k = q->ent_count < max ? q->ent_count : max;
    for (size_t i = 0; i < k; i++)
        out[i] = q->ent[(q->ent_head + i) % q->ent_cap];
    q->ent_head = (q->ent_head + k) % q->ent_cap;
    q->ent_count -= k;
    pthread_mutex_unlock(&q->lock);
    return k;
}

void udp_outq_release(struct udp_outq *q, const struct udp_outq_ent *e, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += e[i].release;
    pthread_mutex_lock(&q->lock);
    q->data_head = (q->data_head + bytes) % q->data_cap;
    q->data_used -= bytes;
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->lock);
}

void udp_outq_stop(struct udp_outq *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->lock);
}

uint64_t udp_outq_dropped(struct udp_outq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->lock);
    return d;
}
