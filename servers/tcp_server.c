/* tcp_server: the chat over TCP, one thread per client (deliberately simple; see THEORY).
 *
 * Threads: the main thread accepts connections, handles SIGINT/SIGTERM (signalfd) and
 * joins finished client threads (an eventfd tells it when); each client has exactly one
 * thread that reads its socket, parses frames and relays them. There is no second thread
 * and no extra fd per client, so 10,000 clients fit in pid_max and the fd limit.
 *
 * Relaying: a sender writes a frame straight into the recipient's socket (non-blocking,
 * under the recipient's out_lock). What the socket does not take goes into the recipient's
 * bounded queue (outq), and the recipient's own thread is told, with SIGUSR1, to wait for
 * POLLOUT too. Client threads keep SIGUSR1 blocked except inside ppoll(), so a wake-up sent
 * while they are busy stays pending and interrupts their next ppoll(): none is lost.
 *
 * Slow consumers (PROTOCOL.md, "Flow control"): when a frame would push a queue past
 * --max-queue, nothing more is sent to that client (out_state OUT_DEAD), shutdown() wakes
 * its thread, which logs [WARN], tells its room LEFT <id> <room> slow and closes. The
 * sender never waits: this is Redis's client-output-buffer-limit policy.
 *
 * Lock order: reg_lock, then a client's out_lock; conn_lock is never held with another. */
#include "clock.h"
#include "log.h"
#include "net.h"
#include "outq.h"
#include "proto.h"
#include "registry.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define TCP_STACK_SIZE (128u * 1024) /* 10,000 threads: 1.25 GiB of address space, little RSS */
#define TCP_FRAME_EXTRA 160          /* room for verb, id and seq around max-frame bytes of text */
#define TCP_FINAL_FLUSH_MS 500       /* how long a leaving client's last frames may take */
#define TCP_ACCEPT_BATCH 64

struct srv_config {
    const char *host;
    uint16_t port;
    long max_clients;
    size_t max_frame;
    size_t max_queue;
    int hello_timeout_s;
};

enum out_state {
    OUT_OPEN,   /* frames are sent and queued */
    OUT_DEAD,   /* slow or broken: frames are dropped; the fd is still open */
    OUT_CLOSED, /* the owner is closing the fd: nobody may touch fd or thread any more */
};

struct tcp_client {
    /* immutable once the thread runs */
    int fd;
    char addr[NET_ADDRSTRLEN];
    uint64_t connect_ns;
    pthread_t tid;            /* written by pthread_create, read by the main thread only */
    atomic_int refs;          /* the owner thread's, plus one per sender holding it */
    atomic_int close_reason;  /* -1, or why another thread ended this client */
    struct reg_member member; /* guarded by reg_lock; written only by the owner thread */
    /* guarded by conn_lock */
    struct tcp_client *conn_prev, *conn_next, *dead_next;
    /* guarded by out_lock */
    pthread_mutex_t out_lock;
    struct outq outq;
    enum out_state out_state;
    bool want_pollout; /* the owner must wait for POLLOUT too */
    bool have_self;
    pthread_t self;      /* the owner thread, for pthread_kill */
    uint64_t frames_out; /* frames handed to this client */
    uint64_t chat_in;    /* owner thread only: chat frames received, for ACK */
};

static struct {
    struct srv_config cfg;
    pthread_rwlock_t reg_lock;
    struct registry reg; /* guarded by reg_lock */
    pthread_mutex_t conn_lock;
    struct tcp_client *conns; /* guarded by conn_lock: every connection with a thread */
    struct tcp_client *dead;  /* guarded by conn_lock: finished threads to join */
    long nconns;              /* guarded by conn_lock */
    int reap_fd;              /* eventfd: a client thread finished */
    atomic_bool stopping;
    sigset_t wait_mask; /* ppoll's mask in client threads: all blocked but SIGUSR1 */
    pthread_attr_t attr;
    atomic_ulong stat_conns, stat_chat, stat_slow, stat_refused;
} srv;

/* --- clients: lifetime and output --- */

static struct tcp_client *client_new(int fd, const struct sockaddr_in *sa)
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
    outq_init(&c->outq, srv.cfg.max_queue);
    return c;
}

static void client_ref(struct tcp_client *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void client_unref(struct tcp_client *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    outq_destroy(&c->outq);
    pthread_mutex_destroy(&c->out_lock);
    free(c);
}

/* Interrupts the owner's ppoll. Caller holds out_lock, which keeps the thread alive. */
static void client_wake_locked(struct tcp_client *c)
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
        atomic_fetch_add(&srv.stat_slow, 1);
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
    if (outq_flush(&c->outq, c->fd) < 0) {
        client_kill_locked(c, PROTO_R_ERROR);
        ok = false;
        goto out;
    }
    if (outq_len(&c->outq) > 0 && !c->want_pollout) {
        c->want_pollout = true;
        client_wake_locked(c);
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

/* Takes a reference to every member of room but skip, into t->peers. Caller holds
 * reg_lock (read or write). On allocation failure the rest of the room is skipped. */
static void collect_room(struct conn_ctx *t, const struct reg_room *room,
                         const struct tcp_client *skip)
{
    t->npeers = 0;
    if (room == NULL)
        return;
    if (room->count > t->peers_cap) {
        size_t cap = t->peers_cap ? t->peers_cap : 16;
        while (cap < room->count)
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
        client_ref(pc);
        t->peers[t->npeers++] = pc;
    }
}

/* Sends the frame in t->fbuf (n bytes) to every collected peer and drops the references. */
static void send_peers(struct conn_ctx *t, int n)
{
    if (n >= 0)
        t->fbuf[n] = '\n';
    for (size_t i = 0; i < t->npeers; i++) {
        if (n >= 0)
            client_send(t->peers[i], t->fbuf, (size_t)n + 1);
        client_unref(t->peers[i]);
    }
    t->npeers = 0;
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
    pthread_rwlock_wrlock(&srv.reg_lock);
    int rc = registry_add(&srv.reg, &c->member, f->id, f->id_len, PROTO_DEFAULT_ROOM,
                          strlen(PROTO_DEFAULT_ROOM), c);
    if (rc == 0) {
        /* WELCOME goes out under the lock so that no FROM can overtake it */
        send_fbuf(t, c, proto_fmt_welcome(t->fbuf, t->fcap - 1, c->member.id, c->addr));
        collect_room(t, c->member.room, c);
    }
    pthread_rwlock_unlock(&srv.reg_lock);
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
    send_peers(t, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, PROTO_DEFAULT_ROOM));
}

static void do_msg(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    c->chat_in++;
    pthread_rwlock_rdlock(&srv.reg_lock);
    collect_room(t, c->member.room, c);
    pthread_rwlock_unlock(&srv.reg_lock);
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
    pthread_rwlock_rdlock(&srv.reg_lock);
    struct reg_member *m = registry_find(&srv.reg, f->id, f->id_len);
    struct tcp_client *to = m ? m->owner : NULL;
    if (to != NULL)
        client_ref(to);
    pthread_rwlock_unlock(&srv.reg_lock);
    if (to == NULL) {
        reply_err(t, PROTO_E_UNKNOWN_USER, NULL);
        return;
    }
    send_fbuf(
        t, to,
        proto_fmt_from(t->fbuf, t->fcap - 1, true, c->member.id, f->seq, f->text, f->text_len));
    client_unref(to);
    send_fbuf(t, c, proto_fmt_ack(t->fbuf, t->fcap - 1, f->seq, c->chat_in));
    log_message(c->member.id, f->text, f->text_len);
}

static void do_join(struct conn_ctx *t, const struct proto_frame *f)
{
    struct tcp_client *c = t->c;
    char old[PROTO_ID_MAX + 1], room[PROTO_ID_MAX + 1];
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    pthread_rwlock_wrlock(&srv.reg_lock);
    strcpy(old, c->member.room->name);
    bool moved = strcmp(old, room) != 0;
    int rc = registry_move(&srv.reg, &c->member, f->room, f->room_len);
    if (rc == 0 && moved) {
        /* the mover hears JOINED before any FROM of its new room */
        send_fbuf(t, c, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
        collect_room(t, registry_room(&srv.reg, old, strlen(old)), c);
    }
    pthread_rwlock_unlock(&srv.reg_lock);
    if (rc < 0) {
        log_line("ERROR", "Memória insuficiente para mover %s para a sala %s", c->member.id, room);
        reply_err(t, PROTO_E_BAD_ROOM, "server out of memory");
        return;
    }
    if (!moved) {
        send_fbuf(t, c, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
        return;
    }
    send_peers(t, proto_fmt_left(t->fbuf, t->fcap - 1, c->member.id, old, PROTO_R_MOVED));
    /* the new room's members, taken afresh: whoever is there now hears of the arrival */
    pthread_rwlock_rdlock(&srv.reg_lock);
    collect_room(t, c->member.room, c);
    pthread_rwlock_unlock(&srv.reg_lock);
    send_peers(t, proto_fmt_joined(t->fbuf, t->fcap - 1, c->member.id, room));
}

/* WHO: every USER line and USERS, formatted under the read lock, sent after it. */
static void do_who(struct conn_ctx *t)
{
    enum { LINE = PROTO_ID_MAX * 2 + NET_ADDRSTRLEN + 16 };
    pthread_rwlock_rdlock(&srv.reg_lock);
    size_t cap = (srv.reg.count + 1) * LINE, len = 0, n = 0;
    char *out = malloc(cap);
    if (out != NULL) {
        for (struct reg_member *m = srv.reg.by_id; m != NULL; m = m->hh.next) {
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
    pthread_rwlock_unlock(&srv.reg_lock);
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
    size_t max = srv.cfg.max_frame, off = 0;
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
        pthread_rwlock_wrlock(&srv.reg_lock);
        strcpy(room, c->member.room->name);
        registry_remove(&srv.reg, &c->member);
        /* On shutdown every member gets BYE shutdown at the same moment; a LEFT from each
         * to each would be N^2 frames (minutes for 10,000 clients), so none is sent. */
        if (why != PROTO_R_SHUTDOWN)
            collect_room(t, registry_room(&srv.reg, room, strlen(room)), c);
        pthread_rwlock_unlock(&srv.reg_lock);
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
    for (int i = 0; i < 16 && recv(c->fd, t->rbuf, srv.cfg.max_frame + 2, MSG_DONTWAIT) > 0; i++)
        ;
    if (close(c->fd) < 0)
        log_line("ERROR", "close: %s", strerror(errno));
    atomic_fetch_add(&srv.stat_chat, c->chat_in);
}

/* Waits for input (and for POLLOUT when frames are queued) until the client leaves.
 * Returns why it left. */
static enum proto_reason client_loop(struct conn_ctx *t)
{
    struct tcp_client *c = t->c;
    uint64_t deadline = c->connect_ns / 1000000u + (uint64_t)srv.cfg.hello_timeout_s * 1000u;
    for (;;) {
        if (atomic_load(&srv.stopping))
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
        int rc = ppoll(&p, 1, tsp, &srv.wait_mask);
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
                recv(c->fd, t->rbuf + t->rlen, srv.cfg.max_frame + 2 - t->rlen, MSG_DONTWAIT);
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

static void *client_main(void *arg)
{
    struct conn_ctx t = {.c = arg};
    struct tcp_client *c = t.c;
    pthread_mutex_lock(&c->out_lock);
    c->self = pthread_self();
    c->have_self = true;
    pthread_mutex_unlock(&c->out_lock);

    enum proto_reason why = PROTO_R_ERROR;
    t.fcap = srv.cfg.max_frame + TCP_FRAME_EXTRA;
    t.rbuf = malloc(srv.cfg.max_frame + 2);
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

    pthread_mutex_lock(&srv.conn_lock);
    if (c->conn_prev != NULL)
        c->conn_prev->conn_next = c->conn_next;
    else
        srv.conns = c->conn_next;
    if (c->conn_next != NULL)
        c->conn_next->conn_prev = c->conn_prev;
    srv.nconns--;
    c->dead_next = srv.dead;
    srv.dead = c;
    pthread_mutex_unlock(&srv.conn_lock);
    uint64_t one = 1;
    if (write(srv.reap_fd, &one, sizeof(one)) < 0)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    return NULL;
}

/* --- main thread: accept, reap, signals --- */

/* Joins every finished client thread and drops the thread's reference. */
static void reap(void)
{
    uint64_t cnt;
    if (read(srv.reap_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    pthread_mutex_lock(&srv.conn_lock);
    struct tcp_client *list = srv.dead;
    srv.dead = NULL;
    pthread_mutex_unlock(&srv.conn_lock);
    while (list != NULL) {
        struct tcp_client *next = list->dead_next;
        int rc = pthread_join(list->tid, NULL);
        if (rc != 0)
            log_line("ERROR", "pthread_join: %s", strerror(rc));
        client_unref(list);
        list = next;
    }
}

static void refuse(int fd, const char *addr, enum proto_err e)
{
    char buf[128];
    int n = proto_fmt_err(buf, sizeof(buf) - 1, e, NULL);
    buf[n] = '\n';
    /* best effort: a refused peer that does not read loses nothing of ours */
    (void)send(fd, buf, (size_t)n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
    atomic_fetch_add(&srv.stat_refused, 1);
    log_line("WARN", "Conexão de %s recusada: %s", addr,
             e == PROTO_E_FULL ? "servidor cheio" : "sem recursos");
}

/* Accepts what is pending. Returns -1 when accept is out of fds (pause it a little). */
static int accept_some(int lfd)
{
    for (int i = 0; i < TCP_ACCEPT_BATCH; i++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_line("ERROR", "accept: %s", strerror(errno));
                return -1;
            }
            return 0; /* EAGAIN, or a connection that died in the backlog */
        }
        int one = 1;
        /* best effort: chat frames are small and latency-sensitive */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char addr[NET_ADDRSTRLEN];
        net_addr_str(&sa, addr);
        pthread_mutex_lock(&srv.conn_lock);
        bool full = srv.nconns >= srv.cfg.max_clients;
        pthread_mutex_unlock(&srv.conn_lock);
        if (full) {
            refuse(fd, addr, PROTO_E_FULL);
            continue;
        }
        struct tcp_client *c = client_new(fd, &sa);
        if (c == NULL) {
            refuse(fd, addr, PROTO_E_FULL);
            continue;
        }
        pthread_mutex_lock(&srv.conn_lock);
        c->conn_next = srv.conns;
        if (srv.conns != NULL)
            srv.conns->conn_prev = c;
        srv.conns = c;
        srv.nconns++;
        int rc = pthread_create(&c->tid, &srv.attr, client_main, c);
        if (rc != 0) {
            srv.conns = c->conn_next;
            if (srv.conns != NULL)
                srv.conns->conn_prev = NULL;
            srv.nconns--;
        }
        pthread_mutex_unlock(&srv.conn_lock);
        if (rc != 0) {
            log_line("ERROR", "pthread_create: %s", strerror(rc));
            client_unref(c);
            refuse(fd, addr, PROTO_E_FULL);
            continue;
        }
        atomic_fetch_add(&srv.stat_conns, 1);
    }
    return 0;
}

/* Runs until SIGINT or SIGTERM. Returns the signal's number. */
static int serve(int lfd, int sfd)
{
    int paused_ms = 0;
    for (;;) {
        struct pollfd p[3] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = srv.reap_fd, .events = POLLIN},
            {.fd = paused_ms ? -1 : lfd, .events = POLLIN},
        };
        int rc = poll(p, 3, paused_ms ? paused_ms : -1);
        if (rc < 0 && errno != EINTR) {
            log_line("ERROR", "poll: %s", strerror(errno));
            return SIGTERM;
        }
        paused_ms = 0;
        if (rc <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                return (int)si.ssi_signo;
        }
        if (p[1].revents & POLLIN)
            reap();
        if ((p[2].revents & POLLIN) && accept_some(lfd) < 0)
            paused_ms = 100; /* out of fds: let some clients leave first */
    }
}

/* Ends every client (each thread sends LEFT and BYE shutdown itself) and joins them. */
static void stop_all(void)
{
    atomic_store(&srv.stopping, true);
    pthread_mutex_lock(&srv.conn_lock);
    for (struct tcp_client *c = srv.conns; c != NULL; c = c->conn_next) {
        pthread_mutex_lock(&c->out_lock);
        client_wake_locked(c); /* a thread not started yet sees `stopping` itself */
        pthread_mutex_unlock(&c->out_lock);
    }
    pthread_mutex_unlock(&srv.conn_lock);
    for (;;) {
        pthread_mutex_lock(&srv.conn_lock);
        bool done = srv.nconns == 0 && srv.dead == NULL;
        pthread_mutex_unlock(&srv.conn_lock);
        if (done)
            break;
        struct pollfd p = {.fd = srv.reap_fd, .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            log_line("ERROR", "poll: %s", strerror(errno));
        reap();
    }
}

/* --- options and start-up --- */

static void usage(FILE *to)
{
    fprintf(to,
            "Usage: tcp_server [options]\n"
            "Chat server over TCP: one thread per client (chatbench).\n\n"
            "  --host ADDR          address to listen on (default 127.0.0.1)\n"
            "  --port N             TCP port (default 5000; 0 picks a free port)\n"
            "  --max-clients N      connections served at once (default 10000)\n"
            "  --max-frame BYTES    longest frame accepted, %d..%d (default %d)\n"
            "  --max-queue BYTES    outbound queue per client before it is dropped as slow\n"
            "                       (default 1048576)\n"
            "  --hello-timeout SEC  time a new connection has to send HELLO (default 10)\n"
            "  -q, --quiet          do not log every chat message\n"
            "  -h, --help           this help\n"
            "  -V, --version        print the version\n",
            PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT, PROTO_MAX_FRAME_DEFAULT);
}

static long parse_num(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tcp_server: %s: '%s' is not a number from %ld to %ld\n", opt, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct srv_config *cfg)
{
    enum { O_HOST = 256, O_PORT, O_MAXC, O_MAXF, O_MAXQ, O_HELLO };
    static const struct option opts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"max-clients", required_argument, NULL, O_MAXC},
        {"max-frame", required_argument, NULL, O_MAXF},
        {"max-queue", required_argument, NULL, O_MAXQ},
        {"hello-timeout", required_argument, NULL, O_HELLO},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *cfg = (struct srv_config){.host = "127.0.0.1",
                               .port = 5000,
                               .max_clients = 10000,
                               .max_frame = PROTO_MAX_FRAME_DEFAULT,
                               .max_queue = 1u << 20,
                               .hello_timeout_s = 10};
    int o;
    while ((o = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
        switch (o) {
        case O_HOST:
            cfg->host = optarg;
            break;
        case O_PORT:
            cfg->port = (uint16_t)parse_num("--port", optarg, 0, 65535);
            break;
        case O_MAXC:
            cfg->max_clients = parse_num("--max-clients", optarg, 1, 1000000);
            break;
        case O_MAXF:
            cfg->max_frame =
                (size_t)parse_num("--max-frame", optarg, PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT);
            break;
        case O_MAXQ:
            cfg->max_queue = (size_t)parse_num("--max-queue", optarg, 1024, 1L << 30);
            break;
        case O_HELLO:
            cfg->hello_timeout_s = (int)parse_num("--hello-timeout", optarg, 1, 86400);
            break;
        case 'q':
            log_set_quiet(true);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("tcp_server chatbench " CHATBENCH_VERSION "\n");
            exit(0);
        default:
            fprintf(stderr, "Try 'tcp_server --help'.\n");
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tcp_server: unexpected argument '%s'; try 'tcp_server --help'\n",
                argv[optind]);
        exit(2);
    }
    if (cfg->max_queue < cfg->max_frame + TCP_FRAME_EXTRA) {
        fprintf(stderr, "tcp_server: --max-queue must hold at least one frame (%zu bytes)\n",
                cfg->max_frame + TCP_FRAME_EXTRA);
        exit(2);
    }
}

static void on_wake(int sig)
{
    (void)sig; /* only interrupts ppoll() */
}

/* Signals: SIGINT/SIGTERM through a signalfd, SIGUSR1 blocked but for ppoll, SIGPIPE
 * ignored. Dies on failure (start-up only). */
static int setup_signals(void)
{
    struct sigaction sa = {.sa_handler = on_wake};
    sigemptyset(&sa.sa_mask);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    if (sigaction(SIGUSR1, &sa, NULL) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0 ||
        pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
        pthread_sigmask(SIG_BLOCK, NULL, &srv.wait_mask) != 0) {
        perror("tcp_server: signals");
        exit(1);
    }
    sigdelset(&srv.wait_mask, SIGUSR1);
    sigdelset(&set, SIGUSR1);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("tcp_server: signalfd");
        exit(1);
    }
    return sfd;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv, &srv.cfg);
    int sfd = setup_signals();
    long nofile = 0;
    if (net_raise_nofile(&nofile) < 0)
        fprintf(stderr, "tcp_server: cannot raise the open-file limit: %s\n", strerror(errno));
    int lfd;
    int rc = net_listen_tcp(srv.cfg.host, srv.cfg.port, 4096, &lfd);
    if (rc < 0) {
        if (rc == -EINVAL)
            fprintf(stderr, "tcp_server: --host %s: not an IPv4 address or known host name\n",
                    srv.cfg.host);
        else
            fprintf(stderr, "tcp_server: cannot listen on %s:%u: %s (port in use? try --port 0)\n",
                    srv.cfg.host, (unsigned)srv.cfg.port, strerror(-rc));
        return rc == -EINVAL ? 2 : 1;
    }
    uint16_t port = srv.cfg.port;
    if (net_local_port(lfd, &port) < 0 || net_set_nonblock(lfd, 1) < 0) {
        perror("tcp_server: listening socket");
        return 1;
    }
    srv.reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_rwlockattr_t rwa;
    if (srv.reap_fd < 0 || pthread_rwlockattr_init(&rwa) != 0 ||
        /* fan-outs read all the time: writers (HELLO, JOIN, leaving) must not starve */
        pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) != 0 ||
        pthread_rwlock_init(&srv.reg_lock, &rwa) != 0 ||
        pthread_mutex_init(&srv.conn_lock, NULL) != 0 || pthread_attr_init(&srv.attr) != 0 ||
        pthread_attr_setstacksize(&srv.attr, TCP_STACK_SIZE) != 0) {
        perror("tcp_server: start-up");
        return 1;
    }
    pthread_rwlockattr_destroy(&rwa);
    registry_init(&srv.reg);

    log_line("INFO", "Servidor TCP iniciado na porta %u", (unsigned)port);
    if (nofile > 0 && nofile < srv.cfg.max_clients + 16)
        log_line("WARN", "Limite de arquivos abertos (%ld) menor que --max-clients (%ld)", nofile,
                 srv.cfg.max_clients);
    log_line("INFO", "Aguardando conexões...");

    int sig = serve(lfd, sfd);
    log_line("INFO", "Sinal %s recebido: encerrando", sig == SIGINT ? "SIGINT" : "SIGTERM");
    close(lfd); /* new connections are refused from here on */
    stop_all();

    registry_destroy(&srv.reg);
    pthread_rwlock_destroy(&srv.reg_lock);
    pthread_mutex_destroy(&srv.conn_lock);
    pthread_attr_destroy(&srv.attr);
    close(srv.reap_fd);
    close(sfd);
    log_line("INFO",
             "Estatísticas: %lu conexões, %lu mensagens, %lu consumidores lentos, "
             "%lu recusadas",
             atomic_load(&srv.stat_conns), atomic_load(&srv.stat_chat), atomic_load(&srv.stat_slow),
             atomic_load(&srv.stat_refused));
    log_line("INFO", "Servidor encerrado");
    return 0;
}
