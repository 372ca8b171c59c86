/* tcp: the load generator's TCP transport: one non-blocking connection per client, frames
 * as lines, a per-client write queue for what the socket refuses (see transport.h). The
 * hybrid transport uses the same functions for its control connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "transport.h"
#include "worker.h"

#define LG_RBUF 8192           /* longest line we accept from the server */
#define LG_WBUF_MAX (1u << 20) /* unsent bytes of one client */

static void tcp_io(evutil_socket_t fd, short what, void *arg);

/* Re-registers the client's event for reading, plus writing when asked. */
static int set_events(struct lg_worker *w, struct lg_client *c, bool write)
{
    short what = EV_READ | EV_PERSIST | (write ? EV_WRITE : 0);
    if (c->ev != NULL && event_get_events(c->ev) == what)
        return 0;
    if (c->ev == NULL)
        c->ev = event_new(w->base, c->fd, what, tcp_io, c);
    else if (event_del(c->ev) < 0 || event_assign(c->ev, w->base, c->fd, what, tcp_io, c) < 0)
        return -1;
    if (c->ev == NULL || event_add(c->ev, NULL) < 0)
        return -1;
    return 0;
}

void lg_tcp_close(struct lg_client *c)
{
    lg_sock_close(&c->fd, &c->ev);
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->wcap = 0;
}

int lg_tcp_launch(struct lg_worker *w, struct lg_client *c)
{
    const struct sockaddr_in *sa = &w->cfg->server;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    int one = 1;
    /* best effort: frames are small and latency is what we measure */
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = lg_sock_bind_source(c->fd, w, c, true);
    if (rc < 0)
        return rc;
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS)
        return -errno;
    return set_events(w, c, true) < 0 ? -ENOMEM : 0; /* writable = connected */
}

/* --- sending --- */

static int queue(struct lg_client *c, const char *p, size_t len)
{
    /* a server that stopped reading: give up on this client rather than grow without end */
    if (c->wlen + len > LG_WBUF_MAX)
        return -ENOBUFS;
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + len)
            cap *= 2;
        char *b = realloc(c->wbuf, cap);
        if (b == NULL)
            return -ENOMEM;
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, len);
    c->wlen += len;
    return 0;
}

/* Sends what the non-blocking socket takes now: the bytes sent (possibly fewer than len,
 * EAGAIN ends it), or -errno. */
static ssize_t send_some(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        off += (size_t)n;
    }
    return (ssize_t)off;
}

static int flush(struct lg_worker *w, struct lg_client *c)
{
    ssize_t sent = send_some(c->fd, c->wbuf, c->wlen);
    if (sent < 0)
        return (int)sent;
    size_t off = (size_t)sent;
    memmove(c->wbuf, c->wbuf + off, c->wlen - off);
    c->wlen -= off;
    return set_events(w, c, c->wlen > 0) < 0 ? -EIO : 0;
}

static int send_line(struct lg_worker *w, struct lg_client *c, const char *buf, size_t len)
{
    if (c->wlen > 0) /* keep order behind what is queued */
        return queue(c, buf, len);
    ssize_t sent = send_some(c->fd, buf, len);
    if (sent < 0)
        return (int)sent;
    size_t off = (size_t)sent;
    if (off == len)
        return 0;
    if (queue(c, buf + off, len - off) < 0 || set_events(w, c, true) < 0)
        return -ENOMEM;
    return 0;
}

struct lg_tx lg_tcp_send_line(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    buf[len++] = '\n';
    w->st.bytes_sent_plain_total += len;
    w->st.bytes_sent_wire_total += len;
    struct lg_tx tx = {.tx_ns = clock_now_ns(), .wire = len, .plain = len};
    tx.err = send_line(w, c, buf, len);
    return tx;
}

/* --- receiving --- */

static void read_lines(struct lg_worker *w, struct lg_client *c)
{
    char *buf = w->scratch;
    size_t have = c->rlen;
    if (have > 0)
        memcpy(buf, c->rbuf, have);
    for (;;) {
        size_t space = LG_ZBUF - have;
        ssize_t n = recv(c->fd, buf + have, space, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* EOF or reset: the server dropped us */
            lg_client_fail(w, c);
            return;
        }
        uint64_t now = clock_now_ns();
        w->st.bytes_recv_wire_total += (uint64_t)n;
        w->st.bytes_recv_plain_total += (uint64_t)n;
        have += (size_t)n;
        size_t pos = 0, line_len, used;
        int r;
        while ((r = proto_next_line(buf + pos, have - pos, LG_RBUF, &line_len, &used)) == 1) {
            if (lg_client_frame(w, c, buf + pos, line_len, now)) {
                w->st.bytes_recv_wire += used;
                w->st.bytes_recv_plain += used;
            }
            if (c->state == LG_FAILED)
                return;
            pos += used;
        }
        if (r < 0) {
            w->st.errors++;
            lg_client_fail(w, c);
            return;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if ((size_t)n < space)
            break; /* drained; level-triggered events call again when more arrives */
    }
    if (have > 0 && c->rbuf == NULL && (c->rbuf = malloc(LG_RBUF + 1)) == NULL) {
        lg_client_fail(w, c);
        return;
    }
    if (have > 0)
        memcpy(c->rbuf, buf, have);
    c->rlen = have;
    if (have == 0) { /* most clients have no partial line: give the memory back */
        free(c->rbuf);
        c->rbuf = NULL;
    }
}

static void tcp_io(evutil_socket_t fd, short what, void *arg)
{
    struct lg_client *c = arg;
    struct lg_worker *w = c->w;
    (void)fd;
    if ((what & EV_WRITE) && c->state == LG_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err != 0 ||
            set_events(w, c, false) < 0) {
            lg_client_fail(w, c);
            return;
        }
        lg_client_connected(w, c, clock_now_ns());
        return;
    }
    if ((what & EV_WRITE) && flush(w, c) < 0) {
        lg_client_fail(w, c);
        return;
    }
    if (what & EV_READ)
        read_lines(w, c);
}

const struct lg_transport lg_tcp = {
    .name = "tcp",
    .upper = "TCP",
    .default_port = 5000,
    .datagrams = false,
    .connectionless = false,
    .compress = false,
    .launch = lg_tcp_launch,
    .send_ctl = lg_tcp_send_line,
    .send_msg = lg_tcp_send_line,
    .welcome = lg_client_join,
    .pong = NULL,
    .retry = NULL,
    .close = lg_tcp_close,
};
