/* udp_outq: udp_server's bounded outbound queue of datagrams (many producers, one sender).
 *
 * A payload is stored once however many recipients it has (a room's FROM), in a byte ring;
 * each recipient is one entry (address + payload reference) in an entry ring. The sender
 * sends straight from the ring without copying and releases payload bytes in FIFO order
 * once sent. When either ring is full, a push drops the datagrams and counts them: UDP
 * semantics, the protocol retransmits nothing. Thread-safe: one mutex (q->lock). */
#ifndef CHATBENCH_UDP_OUTQ_H
#define CHATBENCH_UDP_OUTQ_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct udp_outq_ent {
    struct sockaddr_in to;
    uint32_t off;     /* payload offset in data */
    uint32_t len;     /* payload length */
    uint32_t release; /* data bytes freed once this entry is sent (0 but for a payload's last) */
};

struct udp_outq {
    pthread_mutex_t lock;
    pthread_cond_t nonempty; /* signalled when a push finds the sender asleep, and on stop */
    pthread_cond_t space;    /* signalled when the sender frees space (for waiting pushes) */
    char *data;              /* payload ring, guarded by lock (bytes in flight: by the sender) */
    size_t data_cap;
    size_t data_head;         /* oldest reserved byte; guarded by lock */
    size_t data_tail;         /* next free byte; guarded by lock */
    size_t data_used;         /* reserved bytes, padding included; guarded by lock */
    struct udp_outq_ent *ent; /* entry ring, guarded by lock */
    size_t ent_cap;
    size_t ent_head;  /* guarded by lock */
    size_t ent_count; /* guarded by lock */
    bool stopping;    /* guarded by lock: the sender drains what is left, then ends */
    bool sleeping;    /* guarded by lock: the sender waits in udp_outq_take for entries */
    uint64_t dropped; /* datagrams refused because the queue was full; guarded by lock */
};

/* Allocates rings of data_cap bytes and ent_cap entries. Returns 0, -EINVAL or -ENOMEM. */
int udp_outq_init(struct udp_outq *q, size_t data_cap, size_t ent_cap);
void udp_outq_destroy(struct udp_outq *q);

/* How a push may use the queue. Fan-out (FROM, JOINED, LEFT to a room) may fill only three
 * quarters of it: the last quarter is kept for direct replies (WELCOME, ACK, PONG, ERR), so
 * that a flood of room notices (10,000 clients joining one lobby) cannot starve them. */
enum udp_outq_mode {
    UDP_OUTQ_REPLY,  /* drop when the queue is full */
    UDP_OUTQ_FANOUT, /* drop when the queue is three quarters full */
    UDP_OUTQ_WAIT,   /* wait for the sender instead of dropping (shutdown only) */
};

/* Queues payload p[0..len) for each of the n addresses. When the queue lacks room, the
 * datagrams are dropped (and counted), or waited for in UDP_OUTQ_WAIT mode. Returns how
 * many were queued. Wakes the sender if it sleeps (one wake-up, after the lock is
 * released: a sender woken under it would only block again on the lock). */
size_t udp_outq_push(struct udp_outq *q, const void *p, size_t len, const struct sockaddr_in *to,
                     size_t n, enum udp_outq_mode mode);
/* The same, without waking the sender: the caller queues a batch (all the replies to one
 * recvmmsg) and then calls udp_outq_kick once. The sender is woken once per batch, and
 * sends the batch with one sendmmsg. It is woken at once all the same when the queue holds
 * UDP_OUTQ_EARLY_WAKE entries (what it sends in one sendmmsg), when a push finds the queue
 * full, and when a UDP_OUTQ_WAIT push must wait. */
#define UDP_OUTQ_EARLY_WAKE 64
size_t udp_outq_push_later(struct udp_outq *q, const void *p, size_t len,
                           const struct sockaddr_in *to, size_t n, enum udp_outq_mode mode);
void udp_outq_kick(struct udp_outq *q);

/* Sender side. Waits for entries (or stop), copies up to max of them into out and returns
 * how many; 0 means stopping and empty. The payloads stay valid until udp_outq_release. */
size_t udp_outq_take(struct udp_outq *q, struct udp_outq_ent *out, size_t max);
/* Frees the payload bytes of entries returned by udp_outq_take, once sent. */
void udp_outq_release(struct udp_outq *q, const struct udp_outq_ent *e, size_t n);

/* Asks the sender to finish: udp_outq_take returns 0 once the queue is empty. */
void udp_outq_stop(struct udp_outq *q);

uint64_t udp_outq_dropped(struct udp_outq *q);

#endif
