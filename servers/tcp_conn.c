/* tcp_conn: one TCP client, whichever thread serves it: its record and references, its
 * output (a direct non-blocking send, the rest in its bounded queue), the chat transport
 * over it, its input framed into the chat core, and its leaving. tcp_threads.c and
 * tcp_epoll.c call these from a client's thread or from an event loop. */
#include "tcp_server.h"

#include "clock.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- the record --- */

struct tcp_client *tcp_conn_new(int fd, const struct sockaddr_in *sa)
{
    struct tcp_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->out_lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    net_addr_str(sa, c->chat.addr);
    c->connect_ns = clock_now_ns();
    atomic_init(&c->refs, 1);
    atomic_init(&c->close_reason, -1);
    outq_init(&c->outq, tcp_srv.cfg.max_queue);
    return c;
}

void tcp_conn_ref(struct tcp_client *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void tcp_conn_unref(struct tcp_client *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    outq_destroy(&c->outq);
    pthread_mutex_destroy(&c->out_lock);
    free(c->part);
    free(c);
}

/* --- output --- */

/* Ends a client from any thread: stop sending, wake its owner, which cleans up.
 * Caller holds out_lock. */
static void kill_locked(struct tcp_client *c, enum proto_reason why)
{
    if (c->out_state != OUT_OPEN)
        return;
    c->out_state = OUT_DEAD;
    int none = -1;
    atomic_compare_exchange_strong(&c->close_reason, &none, (int)why);
    if (why == PROTO_R_SLOW)
        atomic_fetch_add(&tcp_srv.stat_slow, 1);
    (void)shutdown(c->fd, SHUT_RDWR); /* best effort: wakes the owner with POLLHUP */
}

bool tcp_conn_send(struct tcp_client *c, const char *buf, size_t len)
{
    bool ok = true;
    pthread_mutex_lock(&c->out_lock);
    if (c->out_state != OUT_OPEN) {
        ok = false;
        goto out;
    }
    if (outq_len(&c->outq) == 0) { /* the common case: straight to the socket, no copy */
        ssize_t n;
        do {
            n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            kill_locked(c, PROTO_R_ERROR);
            ok = false;
            goto out;
        }
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
        if (len == 0)
            goto out;
    }
    int rc = outq_append(&c->outq, buf, len);
    if (rc < 0) {
        kill_locked(c, rc == -ENOBUFS ? PROTO_R_SLOW : PROTO_R_ERROR);
        ok = false;
        goto out;
    }
    /* No flush here: the socket was full a moment ago, and a non-empty queue always has its
     * owner waiting for POLLOUT (want_pollout), which flushes it without a wasted send. */
    int werr = 0;
    if (!c->want_pollout) {
        c->want_pollout = true;
        if ((werr = tcp_srv.io->want_out_locked(c, true)) < 0) { /* its queue would stall */
            kill_locked(c, PROTO_R_ERROR);
            ok = false;
        }
    }
    pthread_mutex_unlock(&c->out_lock);
    if (werr < 0) /* logged once the lock is released: a log line is a write(2) */
        log_line("ERROR", "Cliente de %s encerrado: espera por escrita impossível: %s",
                 c->chat.addr, strerror(-werr));
    return ok;
out:
    pthread_mutex_unlock(&c->out_lock);
    return ok;
}

bool tcp_conn_writable(struct tcp_client *c)
{
    pthread_mutex_lock(&c->out_lock);
    if (c->out_state == OUT_OPEN && outq_flush(&c->outq, c->fd) < 0)
        kill_locked(c, PROTO_R_ERROR);
    if (c->want_pollout && (outq_len(&c->outq) == 0 || c->out_state != OUT_OPEN)) {
        c->want_pollout = false;
        (void)tcp_srv.io->want_out_locked(c, false); /* at worst a wasted wake-up later */
    }
    bool more = c->want_pollout;
    pthread_mutex_unlock(&c->out_lock);
    return more;
}

/* --- the chat transport over a client's socket --- */

static struct tcp_ctx *tcp_ctx_of(struct chat_ctx *cx)
{
    return (struct tcp_ctx *)cx; /* chat is its first member */
}

static void tp_hold_self(struct chat_ctx *cx, struct chat_client *c)
{
    /* the owner calls the core for its own client and holds a reference all along */
    tcp_ctx_of(cx)->self = (struct tcp_client *)c; /* chat is its first member */
}

static void tp_reply(struct chat_ctx *cx, int len)
{
    cx->out[len] = '\n';
    tcp_conn_send(tcp_ctx_of(cx)->self, cx->out, (size_t)len + 1);
}

static void tp_reply_bulk(struct chat_ctx *cx, const char *frames, size_t len)
{
    tcp_conn_send(tcp_ctx_of(cx)->self, frames, len);
}

static void tp_gather(struct chat_ctx *cx, struct chat_client *m, int g)
{
    struct tcp_peers *p = &tcp_ctx_of(cx)->peers[g];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct tcp_client **v = realloc(p->v, cap * sizeof(*v));
        if (v == NULL) { /* chat.h: the members gathered so far still get the frame */
            log_line("ERROR", "Memória insuficiente para entregar mensagem a %s", m->member.id);
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    struct tcp_client *pc = (struct tcp_client *)m;
    tcp_conn_ref(pc);
    p->v[p->n++] = pc;
}

static void tp_send(struct chat_ctx *cx, int g, int len)
{
    struct tcp_ctx *t = tcp_ctx_of(cx);
    struct tcp_peers *p = &t->peers[g];
    if (len >= 0)
        cx->out[len] = '\n';
    for (size_t i = 0; i < p->n; i++) {
        if (len >= 0)
            tcp_conn_send(p->v[i], cx->out, (size_t)len + 1);
        tcp_conn_unref(p->v[i]);
    }
    p->n = 0;
    if (p->cap > t->peers_keep) {
        free(p->v);
        p->v = NULL;
        p->cap = 0;
    }
}

/* --idle-timeout: an event loop keeps its clients on a timer list by activity; a client's
 * own thread reads active_ms itself. The owner calls this, on its own thread. */
static void tp_active(struct chat_ctx *cx, struct chat_client *c)
{
    (void)cx;
    if (tcp_srv.io->active != NULL)
        tcp_srv.io->active((struct tcp_client *)c); /* chat is its first member */
}

static const struct chat_transport tcp_transport = {
    .hello_words = CHAT_WORDS_CONNECT,
    .active = tp_active,
    .hold_self = tp_hold_self,
    .reply = tp_reply,
    .reply_bulk = tp_reply_bulk,
    .gather = tp_gather,
    .send = tp_send,
};

int tcp_ctx_init(struct tcp_ctx *t, size_t keep, size_t rbuf_cap)
{
    memset(t, 0, sizeof(*t));
    t->peers_keep = keep;
    if (chat_ctx_init(&t->chat, &tcp_srv.chat, &tcp_transport, tcp_srv.cfg.max_frame) < 0)
        return -ENOMEM;
    if (rbuf_cap > 0) {
        t->rbuf = malloc(rbuf_cap);
        t->rbuf_cap = rbuf_cap;
        if (t->rbuf == NULL) {
            chat_ctx_destroy(&t->chat);
            return -ENOMEM;
        }
    }
    return 0;
}

void tcp_ctx_destroy(struct tcp_ctx *t)
{
    chat_ctx_destroy(&t->chat);
    free(t->peers[0].v);
    free(t->peers[1].v);
    free(t->rbuf);
}

/* --- input --- */

static void send_err(struct tcp_ctx *t, struct tcp_client *c, enum proto_err e)
{
    struct chat_ctx *cx = &t->chat;
    int n = proto_fmt_err(cx->out, cx->out_cap - 1, e, NULL);
    if (n < 0)
        return; /* cannot happen: out fits any ERR */
    cx->out[n] = '\n';
    tcp_conn_send(c, cx->out, (size_t)n + 1);
}

/* Hands the lines of buf[*off..len) to the chat core; *off ends at the unfinished tail.
 * Returns false once the client has left (BYE): the rest is not read. */
static bool handle_lines(struct tcp_ctx *t, struct tcp_client *c, const char *buf, size_t len,
                         size_t *off)
{
    for (;;) {
        size_t start = 0, line_len = 0;
        switch (lines_next(&c->in, buf, len, tcp_srv.cfg.max_frame, off, &start, &line_len)) {
        case LINES_MORE:
            return true;
        case LINES_TOO_LONG:
            send_err(t, c, PROTO_E_TOO_LONG);
            break;
        case LINES_LINE:
            if (chat_line(&t->chat, &c->chat, buf + start, line_len) == CHAT_LEFT)
                return false;
            break;
        }
    }
}

enum tcp_in tcp_conn_read(struct tcp_ctx *t, struct tcp_client *c)
{
    size_t cap = tcp_srv.cfg.max_frame + 2; /* one frame plus CR LF */
    bool own = c->part != NULL;             /* an unfinished line: the new bytes go after it */
    char *buf = own ? c->part : t->rbuf;
    size_t have = own ? c->part_len : 0;
    ssize_t n = recv(c->fd, buf + have, (own ? cap : t->rbuf_cap) - have, MSG_DONTWAIT);
    if (n == 0)
        return TCP_IN_EOF;
    if (n < 0)
        return (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) ? TCP_IN_OK
                                                                           : TCP_IN_ERROR;
    size_t len = have + (size_t)n, off = 0;
    if (!handle_lines(t, c, buf, len, &off))
        return TCP_IN_LEFT;
    size_t tail = len - off; /* at most max_frame + 1 bytes: lines.h */
    if (own) {
        memmove(c->part, c->part + off, tail);
        c->part_len = tail;
        if (tail == 0 && t->rbuf != NULL) { /* a loop's client: no memory while idle */
            free(c->part);
            c->part = NULL;
        }
    } else if (tail > 0) {
        c->part = malloc(cap);
        if (c->part == NULL) {
            log_line("ERROR", "Memória insuficiente para o cliente de %s", c->chat.addr);
            return TCP_IN_ERROR;
        }
        memcpy(c->part, buf + off, tail);
        c->part_len = tail;
    }
    return TCP_IN_OK;
}

/* --- leaving --- */

enum proto_reason tcp_conn_reason(struct tcp_client *c, enum proto_reason seen)
{
    int other = atomic_load(&c->close_reason);
    /* shutdown() by a sender looks like EOF: say what really happened */
    return other >= 0 ? (enum proto_reason)other : seen;
}

bool tcp_conn_depart(struct tcp_ctx *t, struct tcp_client *c, enum proto_reason why, bool said_bye)
{
    if (!said_bye) { /* after BYE the core has done it all */
        if (why == PROTO_R_TIMEOUT && !chat_registered(&c->chat)) {
            send_err(t, c, PROTO_E_TIMEOUT);
            log_line("WARN", "Conexão de %s encerrada: nenhum HELLO a tempo", c->chat.addr);
        }
        chat_leave(&t->chat, &c->chat, why, why == PROTO_R_SHUTDOWN || why == PROTO_R_IDLE);
        if (why == PROTO_R_IDLE)
            atomic_fetch_add(&tcp_srv.stat_idle, 1);
    }
    atomic_fetch_add(&tcp_srv.stat_chat, c->chat.chat_in);
    return why != PROTO_R_SLOW && why != PROTO_R_ERROR;
}

void tcp_conn_close(struct tcp_ctx *t, struct tcp_client *c)
{
    pthread_mutex_lock(&c->out_lock);
    c->out_state = OUT_CLOSED; /* from here on nobody touches fd or owner */
    pthread_mutex_unlock(&c->out_lock);
    /* best effort: read what the peer still sent, so close() sends FIN, not RST, and the
     * peer can read our last frames. Into a buffer the owner has anyway: a thread's stack
     * stays resident in glibc's stack cache after it exits. */
    char *sink = t->rbuf != NULL ? t->rbuf : c->part;
    size_t cap = t->rbuf != NULL ? t->rbuf_cap : tcp_srv.cfg.max_frame + 2;
    for (int i = 0; sink != NULL && i < 16 && recv(c->fd, sink, cap, MSG_DONTWAIT) > 0; i++)
        ;
    if (close(c->fd) < 0)
        log_line("ERROR", "close: %s", strerror(errno));
}
