/* tcp_conn: one TCP client's thread: reading and framing, the frames of PROTOCOL.md,
 * relaying through the recipients' bounded queues, and leaving (see tcp_server.c). */
#include "tcp_server.h"

#include "clock.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- clients: lifetime and output --- */

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
    net_addr_str(sa, c->addr);
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
    free(c);
}

/* Interrupts the owner's ppoll. Caller holds out_lock, which keeps the thread alive. */
void tcp_conn_wake_locked(struct tcp_client *c)
{
    if (c->have_self && c->out_state != OUT_CLOSED && !pthread_equal(c->self, pthread_self()))
        (void)pthread_kill(c->self, SIGUSR1); /* cannot fail for a live thread */
}

/* Ends a client from any thread: stop sending, wake its owner, which cleans up.
 * Caller holds out_lock. */
static void client_kill_locked(struct tcp_client *c, enum proto_reason why)
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

/* Hands one whole frame (with its LF) to c without ever blocking. Returns false when c
 * takes no more frames (slow, broken or closing). Thread-safe. */
static bool client_send(struct tcp_client *c, const char *buf, size_t len)
{
    bool ok = true;
    pthread_mutex_lock(&c->out_lock);
    if (c->out_state != OUT_OPEN) {
        ok = false;
        goto out;
    }
    c->frames_out++;
    if (outq_len(&c->outq) == 0) { /* the common case: straight to the socket, no copy */
        ssize_t n;
        do {
            n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            client_kill_locked(c, PROTO_R_ERROR);
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
        client_kill_locked(c, rc == -ENOBUFS ? PROTO_R_SLOW : PROTO_R_ERROR);
        ok = false;
        goto out;
    }
    /* No flush here: the socket was full a moment ago, and a non-empty queue always has its
     * owner waiting for POLLOUT (want_pollout), which flushes it without a wasted send. */
    if (!c->want_pollout) {
        c->want_pollout = true;
        tcp_conn_wake_locked(c);
    }
out:
    pthread_mutex_unlock(&c->out_lock);
    return ok;
}

/* --- per-thread state of a client's own thread --- */

struct conn_ctx {
    struct tcp_client *c;
    char *rbuf; /* max_frame + 2 bytes: one frame plus CR LF */
    size_t rlen;
    bool discarding; /* inside a too-long line: drop bytes up to the next LF */
    char *fbuf;      /* outgoing frame being formatted */
    size_t fcap;
    struct tcp_client **peers; /* recipients referenced under reg_lock */
    size_t npeers, peers_cap;
    bool bye; /* the client said BYE */
};

/* Appends the LF to a frame formatted into t->fbuf and sends it to c. */
static void send_fbuf(struct conn_ctx *t, struct tcp_client *c, int n)
{
    if (n < 0)
        return; /* cannot happen: fbuf fits the largest frame */
    t->fbuf[n] = '\n';
    client_send(c, t->fbuf, (size_t)n + 1);
}

static void reply_err(struct conn_ctx *t, enum proto_err e, const char *detail)
{
    send_fbuf(t, t->c, proto_fmt_err(t->fbuf, t->fcap - 1, e, detail));
}

/* Appends a reference to every member of room but skip to t->peers. Caller holds reg_lock
 * (read or write). On allocation failure the rest of the room is skipped. */
static void collect_room(struct conn_ctx *t, const struct reg_room *room,
                         const struct tcp_client *skip)
{
    if (room == NULL)
        return;
    if (t->npeers + room->count > t->peers_cap) {
        size_t cap = t->peers_cap ? t->peers_cap : 16;
        while (cap < t->npeers + room->count)
            cap *= 2;
        struct tcp_client **p = realloc(t->peers, cap * sizeof(*p));
        if (p == NULL) {
            log_line("ERROR", "Memória insuficiente para entregar mensagem à sala %s", room->name);
        } else {
            t->peers = p;
            t->peers_cap = cap;
        }
    }
    for (const struct reg_member *m = room->first; m && t->npeers < t->peers_cap;
         m = m->next_in_room) {
        struct tcp_client *pc = m->owner;
        if (pc == skip)
            continue;
        tcp_conn_ref(pc);
        t->peers[t->npeers++] = pc;
    }
}

/* Sends the frame in t->fbuf (n bytes) to every collected peer and drops the references. */
static void send_peers_range(struct conn_ctx *t, size_t from, size_t to, int n)
{
    if (n >= 0)
        t->fbuf[n] = '\n';
    for (size_t i = from; i < to; i++) {
        if (n >= 0)
            client_send(t->peers[i], t->fbuf, (size_t)n + 1);
        tcp_conn_unref(t->peers[i]);
    }
}

/* Keep at most this many peer slots between messages: one big room must not leave every
 * thread that ever spoke in it holding room-sized memory (10,000 threads x 80 KB). */
#define TCP_PEERS_KEEP 1024

/* Sends the frame to every collected peer and empties the collection. */
static void send_peers(struct conn_ctx *t, int n)
{
    send_peers_range(t, 0, t->npeers, n);
    t->npeers = 0;
    if (t->peers_cap > TCP_PEERS_KEEP) {
        free(t->peers);
        t->peers = NULL;
        t->peers_cap = 0;
    }
}

/* --- frames --- */

static void do_hello(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    if (registry_registered(&c->member)) {
        if (strlen(c->member.id) == f->id_len && memcmp(c->member.id, f->id, f->id_len) == 0)
            send_fbuf(t, c, proto_fmt_welcome(t->fbuf, t->fcap - 1, c->member.id, c->addr));
        else
            reply_err(t, PROTO_E_ALREADY_REG, NULL);
        return;
    }
    /* HELLO <id> <room> registers straight into a room (PROTOCOL.md: no lobby flood) */
    char room[PROTO_ID_MAX + 1] = PROTO_DEFAULT_ROOM;
    if (f->room != NULL) {
        memcpy(room, f->room, f->room_len);
        room[f->room_len] = '\0';
    }
    pthread_rwlock_wrlock(&tcp_srv.reg_lock);
    int rc = registry_add(&tcp_srv.reg, &c->member, f->id, f->id_len, room, strlen(room), c);
    if (rc == 0) {
        /* WELCOME goes out under the lock so that no FROM can overtake it */
        send_fbuf(t, c, proto_fmt_welcome(t->fbuf, t->fcap - 1, c->member.id, c->addr));
        collect_room(t, c->member.room, c);
    }
    pthread_rwlock_unlock(&tcp_srv.reg_lock);
    if (rc == -EEXIST) {
        reply_err(t, PROTO_E_ID_IN_USE, NULL);
        return;
    }
    if (rc < 0) {
        log_line("ERROR", "Memória insuficiente para registrar cliente de %s", c->addr);
        reply_err(t, PROTO_E_BAD_ID, "server out of memory");
        return;
    }
    log_line("CONNECT", "Cliente %s conectado de %s", c->member.id, c->addr);
    send_peers(t, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
}

static void do_msg(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    c->chat_in++;
    pthread_rwlock_rdlock(&tcp_srv.reg_lock);
    collect_room(t, c->member.room, c);
    pthread_rwlock_unlock(&tcp_srv.reg_lock);
    /* relayed before the ACK: once the sender has its ACK, every FROM is on its way */
    send_peers(
        t, proto_fmt_from(t->fbuf, t->fcap - 1, false, c->member.id, f->seq, f->text, f->text_len));
    send_fbuf(t, c, proto_fmt_ack(t->fbuf, t->fcap - 1, f->seq, c->chat_in));
    log_message(c->member.id, f->text, f->text_len);
}

static void do_to(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    c->chat_in++;
    pthread_rwlock_rdlock(&tcp_srv.reg_lock);
    struct reg_member *m = registry_find(&tcp_srv.reg, f->id, f->id_len);
    struct tcp_client *to = m ? m->owner : NULL;
    if (to != NULL)
        tcp_conn_ref(to);
    pthread_rwlock_unlock(&tcp_srv.reg_lock);
    if (to == NULL) {
        reply_err(t, PROTO_E_UNKNOWN_USER, NULL);
        return;
    }
    send_fbuf(
        t, to,
        proto_fmt_from(t->fbuf, t->fcap - 1, true, c->member.id, f->seq, f->text, f->text_len));
    tcp_conn_unref(to);
    send_fbuf(t, c, proto_fmt_ack(t->fbuf, t->fcap - 1, f->seq, c->chat_in));
    log_message(c->member.id, f->text, f->text_len);
}

static void do_join(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    char old[PROTO_ID_MAX + 1], room[PROTO_ID_MAX + 1];
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    pthread_rwlock_wrlock(&tcp_srv.reg_lock);
    strcpy(old, c->member.room->name);
    bool moved = strcmp(old, room) != 0;
    int rc = registry_move(&tcp_srv.reg, &c->member, f->room, f->room_len);
    size_t split = 0;
    if (rc == 0 && moved) {
        /* the mover hears JOINED before any FROM of its new room; both rooms are taken in
         * the same critical section, so whoever arrives after the move hears nothing of it */
        send_fbuf(t, c, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
        collect_room(t, registry_room(&tcp_srv.reg, old, strlen(old)), c);
        split = t->npeers;
        collect_room(t, c->member.room, c);
    }
    pthread_rwlock_unlock(&tcp_srv.reg_lock);
    if (rc < 0) {
        log_line("ERROR", "Memória insuficiente para mover %s para a sala %s", c->member.id, room);
        reply_err(t, PROTO_E_BAD_ROOM, "server out of memory");
        return;
    }
    if (!moved) {
        send_fbuf(t, c, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
        return;
    }
    send_peers_range(t, 0, split,
                     proto_fmt_left(t->fbuf, t->fcap - 1, c->member.id, old, PROTO_R_MOVED));
    send_peers_range(t, split, t->npeers,
                     proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
    t->npeers = 0;
}

/* WHO: every USER line and USERS, formatted under the read lock, sent after it. */
static void do_who(struct conn_ctx *t)
{
    enum { LINE = PROTO_ID_MAX * 2 + NET_ADDRSTRLEN + 16 };
    pthread_rwlock_rdlock(&tcp_srv.reg_lock);
    size_t cap = (tcp_srv.reg.count + 1) * LINE, len = 0, n = 0;
    char *out = malloc(cap);
    if (out != NULL) {
        for (struct reg_member *m = tcp_srv.reg.by_id; m != NULL; m = m->hh.next) {
            const struct tcp_client *pc = m->owner;
            int l = proto_fmt_user(out + len, cap - len - 1, m->id, pc->addr, m->room->name);
            if (l < 0)
                break;
            len += (size_t)l;
            out[len++] = '\n';
            n++;
        }
        int l = proto_fmt_users(out + len, cap - len - 1, n);
        if (l >= 0) {
            len += (size_t)l;
            out[len++] = '\n';
        }
    }
    pthread_rwlock_unlock(&tcp_srv.reg_lock);
    if (out == NULL) {
        log_line("ERROR", "Memória insuficiente para responder WHO");
        send_fbuf(t, t->c, proto_fmt_users(t->fbuf, t->fcap - 1, 0));
        return;
    }
    client_send(t->c, out, len);
    free(out);
}

/* One frame from the client (terminator removed). Returns false after BYE. */
static bool handle_line(struct conn_ctx *t, const char *line, size_t len)
{
    struct proto_frame f;
    enum proto_err e = proto_parse_client(line, len, &f);
    if (e != PROTO_OK) {
        reply_err(t, e, NULL);
        return true;
    }
    if (!registry_registered(&t->c->member) && f.verb != PROTO_HELLO && f.verb != PROTO_PING) {
        reply_err(t, PROTO_E_NOT_REG, NULL);
        return true;
    }
    switch (f.verb) {
    case PROTO_HELLO:
        do_hello(t, &f);
        break;
    case PROTO_MSG:
        do_msg(t, &f);
        break;
    case PROTO_TO:
        do_to(t, &f);
        break;
    case PROTO_JOIN:
        do_join(t, &f);
        break;
    case PROTO_WHO:
        do_who(t);
        break;
    case PROTO_PING:
        send_fbuf(t, t->c, proto_fmt_pong(t->fbuf, t->fcap - 1, f.text, f.text_len));
        break;
    case PROTO_BYE:
        t->bye = true;
        return false;
    default:
        reply_err(t, PROTO_E_BAD_FRAME, NULL);
        break;
    }
    return true;
}

/* Splits what arrived into lines. Returns false after BYE. */
static bool handle_input(struct conn_ctx *t)
{
    size_t max = tcp_srv.cfg.max_frame, off = 0;
    bool go_on = true;
    if (t->discarding) {
        const char *lf = memchr(t->rbuf, '\n', t->rlen);
        if (lf == NULL) {
            t->rlen = 0;
            return true;
        }
        off = (size_t)(lf - t->rbuf) + 1;
        t->discarding = false;
    }
    while (go_on && off < t->rlen) {
        size_t line_len = 0, used = 0;
        int r = proto_next_line(t->rbuf + off, t->rlen - off, max, &line_len, &used);
        if (r == 0)
            break;
        if (r < 0) { /* once per line, then everything up to its LF is dropped */
            reply_err(t, PROTO_E_TOO_LONG, NULL);
            const char *lf = memchr(t->rbuf + off, '\n', t->rlen - off);
            if (lf == NULL) {
                t->discarding = true;
                off = t->rlen;
            } else {
                off = (size_t)(lf - t->rbuf) + 1;
            }
            continue;
        }
        go_on = handle_line(t, t->rbuf + off, line_len);
        off += used;
    }
    memmove(t->rbuf, t->rbuf + off, t->rlen - off);
    t->rlen -= off;
    return go_on;
}

/* --- a client's thread --- */

/* Sends what is queued, waiting at most ms for the socket: a leaving client's last frames
 * (LEFT, BYE) deserve a chance, not a hang. */
static void final_flush(struct tcp_client *c, int ms)
{
    uint64_t deadline = clock_now_ms() + (uint64_t)ms;
    for (;;) {
        pthread_mutex_lock(&c->out_lock);
        bool more = false;
        if (c->out_state == OUT_OPEN && outq_flush(&c->outq, c->fd) >= 0)
            more = outq_len(&c->outq) > 0;
        pthread_mutex_unlock(&c->out_lock);
        uint64_t now = clock_now_ms();
        if (!more || now >= deadline)
            return;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc == 0 || (rc < 0 && errno != EINTR))
            return;
    }
}

/* Everything a leaving client owes the others: the registry, LEFT to its room, the log. */
static void client_leave(struct conn_ctx *t, enum proto_reason why)
{
    struct tcp_client *c = t->c;
    if (registry_registered(&c->member)) {
        char room[PROTO_ID_MAX + 1];
        pthread_rwlock_wrlock(&tcp_srv.reg_lock);
        strcpy(room, c->member.room->name);
        registry_remove(&tcp_srv.reg, &c->member);
        /* On shutdown every member gets BYE shutdown at the same moment; a LEFT from each
         * to each would be N^2 frames (minutes for 10,000 clients), so none is sent. */
        if (why != PROTO_R_SHUTDOWN)
            collect_room(t, registry_room(&tcp_srv.reg, room, strlen(room)), c);
        pthread_rwlock_unlock(&tcp_srv.reg_lock);
        send_peers(t, proto_fmt_left(t->fbuf, t->fcap - 1, c->member.id, room, why));
        if (why == PROTO_R_SLOW)
            log_line("WARN", "Cliente %s removido: consumidor lento", c->member.id);
        log_line("DISCONNECT", "Cliente %s desconectado", c->member.id);
    } else if (why == PROTO_R_TIMEOUT) {
        log_line("WARN", "Conexão de %s encerrada: nenhum HELLO a tempo", c->addr);
    }
    if (why == PROTO_R_QUIT || why == PROTO_R_SHUTDOWN) {
        if (why == PROTO_R_SHUTDOWN || t->bye)
            send_fbuf(t, c, proto_fmt_bye(t->fbuf, t->fcap - 1, why));
    }
    if (why != PROTO_R_SLOW && why != PROTO_R_ERROR)
        final_flush(c, TCP_FINAL_FLUSH_MS);

    pthread_mutex_lock(&c->out_lock);
    c->out_state = OUT_CLOSED; /* from here on nobody touches fd or thread */
    pthread_mutex_unlock(&c->out_lock);
    /* best effort: read what the peer still sent, so close() sends FIN, not RST, and the
     * peer can read our last frames */
    for (int i = 0; i < 16 && recv(c->fd, t->rbuf, tcp_srv.cfg.max_frame + 2, MSG_DONTWAIT) > 0;
         i++)
        ;
    if (close(c->fd) < 0)
        log_line("ERROR", "close: %s", strerror(errno));
    atomic_fetch_add(&tcp_srv.stat_chat, c->chat_in);
}

/* Waits for input (and for POLLOUT when frames are queued) until the client leaves.
 * Returns why it left. */
static enum proto_reason client_loop(struct conn_ctx *t)
{
    struct tcp_client *c = t->c;
    uint64_t deadline = c->connect_ns / 1000000u + (uint64_t)tcp_srv.cfg.hello_timeout_s * 1000u;
    for (;;) {
        if (atomic_load(&tcp_srv.stopping))
            return PROTO_R_SHUTDOWN;
        if (atomic_load(&c->close_reason) >= 0)
            return (enum proto_reason)atomic_load(&c->close_reason);
        struct timespec ts, *tsp = NULL;
        if (!registry_registered(&c->member)) {
            uint64_t now = clock_now_ms();
            if (now >= deadline) {
                reply_err(t, PROTO_E_TIMEOUT, NULL);
                return PROTO_R_TIMEOUT;
            }
            ts.tv_sec = (time_t)((deadline - now) / 1000u);
            ts.tv_nsec = (long)((deadline - now) % 1000u) * 1000000L;
            tsp = &ts;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        pthread_mutex_lock(&c->out_lock);
        if (c->want_pollout && c->out_state == OUT_OPEN)
            p.events |= POLLOUT;
        pthread_mutex_unlock(&c->out_lock);
        int rc = ppoll(&p, 1, tsp, &tcp_srv.wait_mask);
        if (rc < 0) {
            if (errno == EINTR)
                continue; /* a wake-up: look at the flags again */
            log_line("ERROR", "ppoll: %s", strerror(errno));
            return PROTO_R_ERROR;
        }
        if (p.revents & POLLOUT) {
            pthread_mutex_lock(&c->out_lock);
            if (c->out_state == OUT_OPEN && outq_flush(&c->outq, c->fd) < 0)
                client_kill_locked(c, PROTO_R_ERROR);
            if (outq_len(&c->outq) == 0)
                c->want_pollout = false;
            pthread_mutex_unlock(&c->out_lock);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n =
                recv(c->fd, t->rbuf + t->rlen, tcp_srv.cfg.max_frame + 2 - t->rlen, MSG_DONTWAIT);
            if (n == 0)
                return PROTO_R_QUIT;
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                    continue;
                return PROTO_R_ERROR;
            }
            t->rlen += (size_t)n;
            if (!handle_input(t))
                return PROTO_R_QUIT;
        }
    }
}

void *tcp_conn_main(void *arg)
{
    struct conn_ctx t = {.c = arg};
    struct tcp_client *c = t.c;
    pthread_mutex_lock(&c->out_lock);
    c->self = pthread_self();
    c->have_self = true;
    pthread_mutex_unlock(&c->out_lock);

    enum proto_reason why = PROTO_R_ERROR;
    t.fcap = tcp_srv.cfg.max_frame + TCP_FRAME_EXTRA;
    t.rbuf = malloc(tcp_srv.cfg.max_frame + 2);
    t.fbuf = malloc(t.fcap);
    if (t.rbuf == NULL || t.fbuf == NULL)
        log_line("ERROR", "Memória insuficiente para o cliente de %s", c->addr);
    else
        why = client_loop(&t);
    int other = atomic_load(&c->close_reason);
    if (other >= 0) /* shutdown() by a sender looks like EOF: say what really happened */
        why = (enum proto_reason)other;
    if (t.fbuf != NULL && t.rbuf != NULL) {
        client_leave(&t, why);
    } else {
        pthread_mutex_lock(&c->out_lock);
        c->out_state = OUT_CLOSED;
        pthread_mutex_unlock(&c->out_lock);
        close(c->fd);
    }
    free(t.rbuf);
    free(t.fbuf);
    free(t.peers);

    pthread_mutex_lock(&tcp_srv.conn_lock);
    if (c->conn_prev != NULL)
        c->conn_prev->conn_next = c->conn_next;
    else
        tcp_srv.conns = c->conn_next;
    if (c->conn_next != NULL)
        c->conn_next->conn_prev = c->conn_prev;
    tcp_srv.nconns--;
    c->dead_next = tcp_srv.dead;
    tcp_srv.dead = c;
    pthread_mutex_unlock(&tcp_srv.conn_lock);
    uint64_t one = 1;
    if (write(tcp_srv.reap_fd, &one, sizeof(one)) < 0)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    return NULL;
}
