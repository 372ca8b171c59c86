/* udp_hybrid: the hybrid mode of udp_server (--hybrid): the TCP control connections, one
 * small thread each (blocking reads of lines handed to the chat core, replies written
 * back), and the session tokens that open every datagram (PROTOCOL.md, "Hybrid mode").
 * Chat travels over UDP (udp_handle.c); a session ends the moment its connection closes.
 *
 * Threads: the acceptor starts a joinable thread per connection; a finished thread moves
 * its record to ctls_dead, and the acceptor (or udp_hybrid_stop) joins and frees it. The
 * control threads share one chat context (ctl_ctx, under ctl_lock): control traffic is
 * rare, and a context holds a zlib state and recipient lists for max-clients. Replies are
 * queued on the connection while that context is held and written after it is released, so
 * a peer that does not read never holds ctl_lock. */
#include "udp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#define HYB_BACKLOG 1024
#define HYB_STACK_SIZE (128u * 1024) /* a control thread needs little */
#define HYB_SEND_TIMEOUT_S 5         /* a control peer that does not read is dropped */
#define HYB_PEND_KEEP 65536          /* reply storage kept between two flushes */

/* --- session tokens --- */

static struct udp_client *find_tok(struct udp_server *s, uint64_t token)
{
    struct udp_client *c;
    HASH_FIND(hh_tok, s->by_tok, &token, sizeof(token), c);
    return c;
}

/* A fresh random token, unique among the live ones. Caller holds the chat lock. */
static int new_token(struct udp_server *s, uint64_t *out)
{
    for (;;) {
        uint64_t t;
        ssize_t n = getrandom(&t, sizeof(t), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(t))
            return n < 0 ? -errno : -EIO;
        if (t != 0 && find_tok(s, t) == NULL) {
            *out = t;
            return 0;
        }
    }
}

struct udp_client *udp_hyb_session(struct udp_server *s, uint64_t token,
                                   const struct sockaddr_in *from)
{
    struct udp_client *c = find_tok(s, token);
    if (c == NULL)
        return NULL;
    /* the first datagram with the token pins the session to its address; later ones must
     * come from there, and an address another session holds cannot be taken */
    if (c->bound)
        return c->key == udp_addr_key(from) ? c : NULL;
    if (udp_find_addr(s, from) != NULL)
        return NULL;
    c->addr = *from;
    c->key = udp_addr_key(from);
    HASH_ADD(hh_addr, s->by_addr, key, sizeof(c->key), c);
    if (c->hh_addr.tbl == NULL)
        return NULL; /* the table could not grow (registry.h): refused, try again later */
    net_addr_str(from, c->chat.addr);
    c->bound = true;
    return c;
}

void udp_hyb_kick(struct udp_ctl *ctl)
{
    atomic_store(&ctl->idle, true);
    /* wakes its thread's recv with 0 (its fd is open while the session is registered, and
     * the chat lock is held); the answers it still writes, BYE idle, may go out */
    (void)shutdown(ctl->fd, SHUT_RD);
}

void udp_hyb_refuse(struct udp_server *s, const struct sockaddr_in *from, uint64_t now_ms)
{
    /* silent on the wire: an answer to a forged source address would make the server a
     * reflector. One [WARN] line per second at most. */
    s->token_refused++;
    s->token_unwarned++;
    if (s->token_warned_ms == 0 || now_ms >= s->token_warned_ms + 1000) {
        char addr[NET_ADDRSTRLEN];
        log_line("WARN",
                 "Token ausente ou inválido: %" PRIu64 " datagramas recusados (último de %s)",
                 s->token_unwarned, net_addr_str(from, addr));
        s->token_warned_ms = now_ms;
        s->token_unwarned = 0;
    }
}

/* --- replies on a control connection --- */

/* Writes one block of whole frames to a control connection under its wlock (blocking,
 * bounded by the socket's send timeout). Returns 0 or -errno; after a failure the
 * connection is shut down and every later write fails at once. */
static int ctl_write(struct udp_ctl *ctl, const char *buf, size_t len)
{
    int rc;
    pthread_mutex_lock(&ctl->wlock);
    /* one failure (a peer that does not read: SO_SNDTIMEO) is enough */
    rc = ctl->dead != 0 ? ctl->dead : net_write_all(ctl->fd, buf, len);
    if (rc < 0 && ctl->dead == 0) {
        ctl->dead = rc;
        (void)shutdown(ctl->fd, SHUT_RDWR); /* its thread wakes and ends the session */
    }
    pthread_mutex_unlock(&ctl->wlock);
    return rc;
}

/* Queues frames for the connection (lf: add the LF that ends a single frame). When the
 * queue cannot grow the connection is closed (chat.h, out of memory): pend_cap is set to
 * SIZE_MAX as the mark, and the next flush ends it. */
static void ctl_queue(struct udp_ctl *ctl, const char *frames, size_t len, bool lf)
{
    size_t need = ctl->pend_len + len + (lf ? 1 : 0);
    if (ctl->pend_cap == SIZE_MAX)
        return;
    if (need > ctl->pend_cap) {
        size_t cap = ctl->pend_cap ? ctl->pend_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *p = realloc(ctl->pend, cap);
        if (p == NULL) {
            ctl->pend_cap = SIZE_MAX;
            return;
        }
        ctl->pend = p;
        ctl->pend_cap = cap;
    }
    memcpy(ctl->pend + ctl->pend_len, frames, len);
    ctl->pend_len += len;
    if (lf)
        ctl->pend[ctl->pend_len++] = '\n';
}

/* Writes the queued replies and empties the queue. Its owner thread, without ctl_lock. */
static void ctl_flush(struct udp_ctl *ctl)
{
    if (ctl->pend_cap == SIZE_MAX) {
        log_line("ERROR", "Memória insuficiente para responder à conexão de controle de %s",
                 ctl->addr);
        pthread_mutex_lock(&ctl->wlock);
        if (ctl->dead == 0) {
            ctl->dead = -ENOMEM;
            (void)shutdown(ctl->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&ctl->wlock);
        free(ctl->pend);
        ctl->pend = NULL;
        ctl->pend_len = ctl->pend_cap = 0;
        return;
    }
    if (ctl->pend_len > 0) /* a failure shuts the connection: its recv sees it */
        (void)ctl_write(ctl, ctl->pend, ctl->pend_len);
    ctl->pend_len = 0;
    if (ctl->pend_cap > HYB_PEND_KEEP) { /* a big WHO: give the memory back */
        free(ctl->pend);
        ctl->pend = NULL;
        ctl->pend_cap = 0;
    }
}

static void ctl_err(struct udp_ctl *ctl, enum proto_err e, const char *detail)
{
    char buf[256];
    int n = proto_fmt_err(buf, sizeof(buf), e, detail);
    if (n >= 0)
        ctl_queue(ctl, buf, (size_t)n, true);
}

/* --- the chat transport over a control connection (notices still go over UDP) --- */

static void ctl_hold_self(struct chat_ctx *cx, struct chat_client *c)
{
    udp_ctx_of(cx)->self_ctl = udp_client_of(c)->ctl;
}

static void ctl_reply(struct chat_ctx *cx, int len)
{
    ctl_queue(udp_ctx_of(cx)->self_ctl, cx->out, (size_t)len, true);
}

static void ctl_reply_bulk(struct chat_ctx *cx, const char *frames, size_t len)
{
    ctl_queue(udp_ctx_of(cx)->self_ctl, frames, len, false);
}

/* HELLO: the session gets its token (out of entropy or memory: refused as full). */
static int ctl_attach(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_server *s = udp_ctx_of(cx)->s;
    struct udp_client *c = udp_client_of(m);
    int rc = new_token(s, &c->token);
    if (rc < 0)
        return rc;
    HASH_ADD(hh_tok, s->by_tok, token, sizeof(c->token), c);
    return c->hh_tok.tbl == NULL ? -ENOMEM : 0; /* registry.h */
}

/* WELCOME <id> <ip>:<port> <token> <udp_port>: the control peer's address, its token and
 * where the datagrams go. */
static int ctl_fmt_welcome(struct chat_ctx *cx, const struct chat_client *m, char *buf, size_t cap)
{
    const struct udp_client *c = (const struct udp_client *)m; /* chat is its first member */
    return proto_fmt_welcome_token(buf, cap, m->member.id, c->ctl->addr, c->token,
                                   udp_ctx_of(cx)->s->cfg.port);
}

const struct chat_transport udp_ctl_transport = {
    .hello_words = CHAT_WORDS_REGISTER,
    .exclusive = true, /* the active hook moves the session on the server's idle list */
    .active = udp_active,
    .hold_self = ctl_hold_self,
    .reply = ctl_reply,
    .reply_bulk = ctl_reply_bulk,
    .gather = udp_gather,
    .send = udp_send,
    .attach = ctl_attach,
    .detach = udp_detach,
    .fmt_welcome = ctl_fmt_welcome,
};

/* --- one connection --- */

/* Sets the receive timeout: the HELLO deadline, or none (0) once registered. */
static void set_rcvtimeo(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        log_line("ERROR", "setsockopt SO_RCVTIMEO: %s", strerror(errno)); /* best effort */
}

/* Handles one control line. Returns false once the session has ended (BYE). */
static bool ctl_line(struct udp_ctl *ctl, const char *line, size_t len)
{
    struct udp_server *s = ctl->srv;
    struct chat_client *c = &ctl->client.chat; /* its own session: this thread registers it */
    struct proto_frame f;
    enum proto_err e = proto_parse_client(line, len, &f);
    bool was_registered = chat_registered(c);
    if (e != PROTO_OK) {
        ctl_err(ctl, e, NULL);
        return true;
    }
    if (was_registered && (f.verb == PROTO_MSG || f.verb == PROTO_TO)) {
        ctl_err(ctl, PROTO_E_BAD_FRAME, "chat goes over UDP with the session token");
        return true;
    }
    pthread_mutex_lock(&s->ctl_lock);
    enum chat_result r = chat_frame(&s->ctl_ctx.chat, c, &f);
    pthread_mutex_unlock(&s->ctl_lock);
    if (!was_registered && chat_registered(c))
        set_rcvtimeo(ctl->fd, 0); /* the HELLO deadline is met */
    return r != CHAT_LEFT;
}

/* Reads lines until the peer leaves; returns why the session ends. */
static enum proto_reason ctl_loop(struct udp_ctl *ctl, char *buf, size_t cap)
{
    struct udp_server *s = ctl->srv;
    struct lines in = {0};
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(ctl->fd, buf + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (atomic_load(&s->stopping))
            return PROTO_R_SHUTDOWN;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { /* SO_RCVTIMEO: no HELLO */
            ctl_err(ctl, PROTO_E_TIMEOUT, NULL);
            ctl_flush(ctl);
            return PROTO_R_TIMEOUT;
        }
        if (n < 0)
            return PROTO_R_ERROR;
        if (n == 0)
            return PROTO_R_QUIT; /* a clean close ends the session as BYE does */
        have += (size_t)n;
        size_t off = 0, start = 0, line_len = 0;
        bool go_on = true;
        for (enum lines_ev ev; go_on && (ev = lines_next(&in, buf, have, s->cfg.max_frame, &off,
                                                         &start, &line_len)) != LINES_MORE;) {
            if (ev == LINES_TOO_LONG)
                ctl_err(ctl, PROTO_E_TOO_LONG, NULL);
            else
                go_on = ctl_line(ctl, buf + start, line_len);
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        ctl_flush(ctl); /* a failure shuts the connection: its recv sees it */
        if (!go_on)
            return PROTO_R_QUIT; /* BYE: the core has ended the session already */
    }
}

static void *ctl_main(void *arg)
{
    struct udp_ctl *ctl = arg;
    struct udp_server *s = ctl->srv;
    enum proto_reason why = PROTO_R_ERROR;
    size_t cap = s->cfg.max_frame + 2; /* lines.h: max bytes plus CR LF */
    char *buf = malloc(cap);
    if (buf != NULL)
        why = ctl_loop(ctl, buf, cap);
    else
        log_line("ERROR", "Memória insuficiente para a conexão de controle de %s", ctl->addr);
    free(buf);
    pthread_mutex_lock(&ctl->wlock);
    int dead = ctl->dead;
    pthread_mutex_unlock(&ctl->wlock);
    if (dead == -EAGAIN || dead == -EWOULDBLOCK)
        why = PROTO_R_SLOW; /* it did not read its answers for HYB_SEND_TIMEOUT_S */
    else if (dead != 0)
        why = PROTO_R_ERROR;
    else if (atomic_load(&ctl->idle))
        why = PROTO_R_IDLE; /* the keep-alive shut its reading side: --idle-timeout */
    if (atomic_load(&s->stopping))
        why = PROTO_R_SHUTDOWN;

    /* the session ends with its connection (a no-op after BYE): LEFT to the room, the log;
     * an idle one hears BYE idle on its way out */
    bool bye = why == PROTO_R_IDLE && chat_registered(&ctl->client.chat); /* not after BYE */
    pthread_mutex_lock(&s->ctl_lock);
    chat_leave(&s->ctl_ctx.chat, &ctl->client.chat, why, bye);
    pthread_mutex_unlock(&s->ctl_lock);
    ctl_flush(ctl);

    pthread_mutex_lock(&s->ctls_lock);
    DL_DELETE(s->ctls, ctl);
    ctl->next = s->ctls_dead; /* singly linked from here on */
    s->ctls_dead = ctl;
    if (--s->nctls == 0)
        pthread_cond_broadcast(&s->ctls_gone);
    pthread_mutex_unlock(&s->ctls_lock);
    close(ctl->fd); /* nobody else touches it once it left the live list */
    return NULL;
}

/* --- the listener --- */

/* Joins and frees finished connection threads. */
static void reap(struct udp_server *s)
{
    pthread_mutex_lock(&s->ctls_lock);
    struct udp_ctl *dead = s->ctls_dead;
    s->ctls_dead = NULL;
    pthread_mutex_unlock(&s->ctls_lock);
    while (dead != NULL) {
        struct udp_ctl *next = dead->next;
        pthread_join(dead->tid, NULL);
        pthread_mutex_destroy(&dead->wlock);
        free(dead->pend);
        free(dead);
        dead = next;
    }
}

static void set_opt(int fd, int level, int name, int value, const char *what)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        log_line("ERROR", "setsockopt %s: %s", what, strerror(errno)); /* best effort */
}

/* ERR server_full to a control connection that cannot be served, then closed. */
static void refuse(int fd, const char *addr, const char *why)
{
    char b[128];
    int n = proto_fmt_err(b, sizeof(b) - 1, PROTO_E_FULL, NULL);
    if (n > 0) {
        b[n++] = '\n';
        (void)send(fd, b, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT); /* best effort */
    }
    log_line("WARN", "Conexão de controle de %s recusada: %s", addr, why);
    close(fd);
}

static void ctl_accept(struct udp_server *s, pthread_attr_t *attr)
{
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(s->ctl_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            log_line("ERROR", "accept falhou: %s", strerror(errno));
        if (errno == EMFILE || errno == ENFILE)
            (void)poll(NULL, 0, 100); /* out of descriptors: let some close first */
        return;
    }
    set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
    /* a peer that vanished without a FIN must not hold its session for ever */
    set_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    set_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)s->cfg.timeout_s, "TCP_KEEPIDLE");
    set_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, 5, "TCP_KEEPINTVL");
    set_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT");
    struct timeval tv = {.tv_sec = HYB_SEND_TIMEOUT_S};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        log_line("ERROR", "setsockopt SO_SNDTIMEO: %s", strerror(errno));
    set_rcvtimeo(fd, (int)s->cfg.hello_timeout_s);

    char addr[NET_ADDRSTRLEN];
    net_addr_str(&peer, addr);
    struct udp_ctl *ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL) {
        log_line("ERROR", "Memória insuficiente para a conexão de controle de %s", addr);
        refuse(fd, addr, "sem recursos");
        return;
    }
    ctl->srv = s;
    ctl->fd = fd;
    memcpy(ctl->addr, addr, sizeof(addr));
    ctl->client.ctl = ctl; /* its session's record, registered by HELLO */
    memcpy(ctl->client.chat.addr, addr, sizeof(addr)); /* until its first datagram */
    pthread_mutex_init(&ctl->wlock, NULL);

    pthread_mutex_lock(&s->ctls_lock);
    /* one connection per client at most, plus some room for ones that are leaving */
    bool full = s->nctls >= s->cfg.max_clients + 64;
    int rc = full ? EAGAIN : pthread_create(&ctl->tid, attr, ctl_main, ctl);
    if (rc == 0) {
        DL_APPEND(s->ctls, ctl);
        s->nctls++;
    }
    pthread_mutex_unlock(&s->ctls_lock);
    if (rc != 0) {
        pthread_mutex_destroy(&ctl->wlock);
        free(ctl);
        refuse(fd, addr, full ? "servidor cheio" : strerror(rc));
    }
}

static void *acceptor_main(void *arg)
{
    struct udp_server *s = arg;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, HYB_STACK_SIZE) != 0) {
        log_line("ERROR", "pthread_attr: controle híbrido desativado");
        return NULL;
    }
    struct pollfd p[2] = {{.fd = s->ctl_fd, .events = POLLIN},
                          {.fd = s->wake_fd, .events = POLLIN}};
    while (!atomic_load(&s->stopping)) {
        int n = poll(p, 2, 1000);
        if (n < 0 && errno != EINTR) {
            log_line("ERROR", "poll falhou: %s", strerror(errno));
            break;
        }
        if (n > 0 && (p[1].revents & POLLIN))
            break;
        if (n > 0 && (p[0].revents & POLLIN))
            ctl_accept(s, &attr);
        reap(s);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

/* --- start and stop --- */

int udp_hybrid_start(struct udp_server *s, pthread_t *acceptor)
{
    int rc = pthread_create(acceptor, NULL, acceptor_main, s);
    return rc == 0 ? 0 : -rc;
}

size_t udp_hybrid_stop(struct udp_server *s, pthread_t acceptor)
{
    pthread_join(acceptor, NULL); /* it saw wake_fd */
    close(s->ctl_fd);
    s->ctl_fd = -1;

    static const char bye[] = "BYE shutdown\n";
    size_t told = 0;
    pthread_mutex_lock(&s->ctls_lock);
    for (struct udp_ctl *c = s->ctls; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->wlock);
        /* best effort, never blocking: a peer that does not read loses its BYE */
        if (send(c->fd, bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
            told++;
        pthread_mutex_unlock(&c->wlock);
        (void)shutdown(c->fd, SHUT_RDWR); /* wakes its thread; errors: it is going anyway */
    }
    while (s->nctls > 0)
        pthread_cond_wait(&s->ctls_gone, &s->ctls_lock);
    pthread_mutex_unlock(&s->ctls_lock);
    reap(s);
    return told;
}
