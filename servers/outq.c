/* outq: bounded outbound byte queue (see outq.h). */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUTQ_MIN_CAP 4096u         /* first allocation: a few frames */
#define OUTQ_KEEP_CAP (64u * 1024) /* storage above this is released once drained */

void outq_init(struct outq *q, size_t limit)
{
    memset(q, 0, sizeof(*q));
    q->limit = limit;
}

void outq_destroy(struct outq *q)
{
    free(q->buf);
    q->buf = NULL;
    q->cap = q->head = q->len = 0;
}

/* Re-allocates to new_cap bytes and linearises the ring (the oldest byte at offset 0). */
static int outq_grow(struct outq *q, size_t new_cap)
{
    char *nb = malloc(new_cap);
    if (nb == NULL)
        return -ENOMEM;
    struct iovec iov[2];
    int cnt = outq_peek(q, iov);
    size_t off = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(nb + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    free(q->buf);
    q->buf = nb;
    q->cap = new_cap;
    q->head = 0;
    return 0;
}

int outq_append(struct outq *q, const void *data, size_t n)
{
    if (n > q->limit - q->len)
        return -ENOBUFS;
    if (n == 0)
        return 0;
    if (q->len + n > q->cap) {
        size_t nc = q->cap ? q->cap : OUTQ_MIN_CAP;
        while (nc < q->len + n)
            nc *= 2;
        int rc = outq_grow(q, nc);
        if (rc < 0)
            return rc;
    }
    size_t tail = (q->head + q->len) % q->cap;
    size_t first = q->cap - tail < n ? q->cap - tail : n;
    memcpy(q->buf + tail, data, first);
    memcpy(q->buf, (const char *)data + first, n - first);
    q->len += n;
    return 0;
}

int outq_peek(const struct outq *q, struct iovec iov[2])
{
    if (q->len == 0)
        return 0;
    size_t first = q->cap - q->head < q->len ? q->cap - q->head : q->len;
    iov[0].iov_base = q->buf + q->head;
    iov[0].iov_len = first;
    if (first == q->len)
        return 1;
    iov[1].iov_base = q->buf;
    iov[1].iov_len = q->len - first;
    return 2;
}

void outq_consume(struct outq *q, size_t n)
{
    if (n > q->len)
        n = q->len;
    q->len -= n;
    q->head = q->len == 0 ? 0 : (q->head + n) % q->cap;
    if (q->len == 0 && q->cap > OUTQ_KEEP_CAP)
        outq_destroy(q); /* a burst is over: give the memory back */
}

ssize_t outq_flush(struct outq *q, int fd)
{
    struct iovec iov[2];
    int cnt = outq_peek(q, iov);
    if (cnt == 0)
        return 0;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    outq_consume(q, (size_t)n);
    return n;
}
