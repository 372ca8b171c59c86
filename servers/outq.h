/* outq: a bounded outbound byte queue (a growable ring) for one client's socket.
 *
 * The TCP server gives every client one of these so that a slow reader never makes a
 * sender wait: what the socket does not take right now waits here, up to a limit. Storage
 * is allocated on first use and grows by doubling up to the limit, so ten thousand idle
 * clients cost nothing. Not thread-safe: the caller holds the client's out-lock. */
#ifndef CHATBENCH_OUTQ_H
#define CHATBENCH_OUTQ_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct outq {
    char *buf;    /* ring storage of cap bytes; NULL until the first append */
    size_t cap;   /* bytes allocated: 0 or a power of two, at most limit rounded up */
    size_t head;  /* offset of the oldest queued byte */
    size_t len;   /* bytes queued; never more than limit */
    size_t limit; /* the most bytes this queue may hold */
};

/* Initialises an empty queue that will hold at most limit bytes. Allocates nothing. */
void outq_init(struct outq *q, size_t limit);

/* Frees the storage; the queue is empty (and usable) afterwards. */
void outq_destroy(struct outq *q);

/* Copies n bytes to the tail. Returns 0; -ENOBUFS when the queue would pass its limit
 * (nothing is appended then); -ENOMEM when storage cannot grow. */
int outq_append(struct outq *q, const void *data, size_t n);

/* Bytes queued. */
static inline size_t outq_len(const struct outq *q)
{
    return q->len;
}

/* Points iov[0] (and iov[1] when the data wraps) at the queued bytes, oldest first.
 * Returns how many iovecs were filled: 0 when the queue is empty, 1 or 2. */
int outq_peek(const struct outq *q, struct iovec iov[2]);

/* Drops the n oldest bytes (n <= outq_len). */
void outq_consume(struct outq *q, size_t n);

/* Sends as much as the socket takes now (sendmsg, MSG_DONTWAIT | MSG_NOSIGNAL) and drops
 * what was sent. Returns the bytes sent (0 when the socket is full or the queue empty), or
 * a negative errno for a real error (EPIPE, ECONNRESET...). EINTR is retried. When the
 * queue becomes empty and its storage is large, the storage is released. */
ssize_t outq_flush(struct outq *q, int fd);

#endif
