/* tcp_epoll: tcp_server --io epoll, N event-loop threads (--loops, default one per core),
 * each owning the connections the accepting thread hands it (round robin). No thread per
 * client and no lock on a loop's own tables: its connections, its HELLO deadlines and its
 * leaving clients are touched by that loop alone. A client costs its record (a few hundred
 * bytes) and, only while a line is unfinished, a line buffer; an idle one nothing more.
 *
 * Raw epoll, not libevent: the one cross-thread action this server needs is a sender on
 * another loop asking the recipient's loop to wait for EPOLLOUT, and epoll_ctl() does that
 * directly and thread-safely on the owner's epoll set (libevent would take the base's lock
 * and write its notification pipe for each such event_add, and keep a struct event per
 * client). Level-triggered: one read per ready client per turn, so a flooding client
 * cannot starve the others of its loop.
 *
 * Relaying across loops is the threaded server's scheme (tcp_conn.c): a sender, whatever
 * loop it runs on, writes the frame straight into the recipient's socket without blocking,
 * under the recipient's out_lock; what the socket does not take goes into the recipient's
 * bounded queue and the sender adds EPOLLOUT to the recipient's registration (under that
 * same out_lock, where the owner also removes it once the queue is empty), so the owner
 * loop flushes it. Nobody waits: a full queue past --max-queue drops the recipient as a slow
 * consumer (its socket is shut down, its loop sees the hang-up and ends it). Per-loop
 * inboxes (the frame copied into the owner loop's queue, then an eventfd wake-up) were
 * considered and not built: they cost a copy, a lock and a wake-up per frame handed over,
 * where the direct send costs the one send(2) each recipient needs anyway and wakes nobody
 * while the recipient's socket has room, which is nearly always.
 *
 * Timers: the HELLO deadline (--hello-timeout), the idle deadline of a registered client
 * (--idle-timeout) and the last-frames flush of a leaving client (TCP_FINAL_FLUSH_MS) have
 * fixed lengths, so each loop keeps three FIFO lists in deadline order and epoll_wait()
 * sleeps until the earliest. A client's activity moves it to the tail of the idle list (its
 * time is the loop's latest). A leaving client's last frames are flushed as its socket
 * takes them, never by waiting in the loop.
 *
 * Shutdown: the accepting thread sets `stopping` and writes each loop's eventfd; every loop
 * ends its clients (BYE shutdown, no LEFT flood), lets them flush for at most
 * TCP_FINAL_FLUSH_MS, closes them and returns; the accepting thread joins the loops. */
#include "tcp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#define LOOP_EVENTS 256
#define LOOP_RBUF (16u * 1024) /* one read per ready client per turn: at most this much */

/* tcp_client.timer: which list holds it (an index into tcp_loop.timers); TIMER_NONE, or
 * TIMER_GONE once closed (its record lives on until the events of the turn are looked at) */
enum { TIMER_HELLO, TIMER_IDLE, TIMER_LINGER, TIMER_LISTS, TIMER_NONE = TIMER_LISTS, TIMER_GONE };

struct tcp_loop {
    pthread_t tid;
    int epfd;
    int wake_fd;                /* eventfd: new connections in the inbox, or shutdown */
    pthread_mutex_t inbox_lock; /* guards inbox */
    struct tcp_client *inbox;   /* accepted, not yet adopted by the loop */
    /* the loop's own */
    struct tcp_client *conns; /* every connection it serves */
    /* utlist lists in deadline order (every timer of a list has one length): TIMER_HELLO,
     * not registered yet; TIMER_IDLE, registered (with --idle-timeout); TIMER_LINGER, left,
     * its last frames being flushed */
    struct tcp_client *timers[TIMER_LISTS];
    struct tcp_client *closed; /* closed during this turn; unreferenced after its events */
    struct tcp_ctx ctx;
    bool stopped; /* its clients have been told BYE shutdown */
};

static struct tcp_loop *loops;
static int nloops;

/* --- timers --- */

static void timer_add(struct tcp_loop *lp, struct tcp_client *c, int which, uint64_t due)
{
    c->timer = which;
    c->deadline_ms = due;
    DL_APPEND2(lp->timers[which], c, tprev, tnext);
}

static void timer_del(struct tcp_loop *lp, struct tcp_client *c)
{
    if (c->timer >= TIMER_LISTS)
        return;
    DL_DELETE2(lp->timers[c->timer], c, tprev, tnext);
    c->timer = TIMER_NONE;
}

/* Milliseconds until the earliest deadline, for epoll_wait (-1: none). */
static int next_timeout(const struct tcp_loop *lp, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    for (int i = 0; i < TIMER_LISTS; i++)
        if (lp->timers[i] != NULL && lp->timers[i]->deadline_ms < due)
            due = lp->timers[i]->deadline_ms;
    if (due == UINT64_MAX)
        return -1;
    return due <= now ? 0 : (int)(due - now < 60000 ? due - now : 60000);
}

/* --- registration in the loop's epoll set --- */

/* The events c waits for: input unless it is leaving, output while frames are queued.
 * Caller holds out_lock (want_pollout and lingering are guarded by it). */
static int set_events_locked(struct tcp_client *c)
{
    struct epoll_event ev = {
        .events = (c->lingering ? 0 : EPOLLIN) | (c->want_pollout ? EPOLLOUT : 0), .data.ptr = c};
    return epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

static int epoll_want_out_locked(struct tcp_client *c, bool on)
{
    (void)on; /* want_pollout already says which */
    if (c->out_state != OUT_OPEN)
        return 0; /* its owner is closing it: the fd is not ours to touch */
    return set_events_locked(c);
}

/* --- a connection's life in its loop --- */

static void finish(struct tcp_loop *lp, struct tcp_client *c)
{
    timer_del(lp, c);
    c->timer = TIMER_GONE;
    DL_DELETE2(lp->conns, c, prev, next);
    tcp_conn_close(&lp->ctx, c); /* close() also takes it out of the epoll set */
    atomic_fetch_sub(&tcp_srv.nconns, 1);
    c->next = lp->closed; /* an event of this turn may still name it */
    lp->closed = c;
}

/* c leaves for reason seen (or said BYE): the chat hears of it, then its last frames are
 * flushed as the socket takes them, for at most TCP_FINAL_FLUSH_MS. */
static void end(struct tcp_loop *lp, struct tcp_client *c, enum proto_reason seen, bool said_bye)
{
    timer_del(lp, c);
    enum proto_reason why = tcp_conn_reason(c, seen);
    if (!tcp_conn_depart(&lp->ctx, c, why, said_bye) || !tcp_conn_writable(c)) {
        finish(lp, c);
        return;
    }
    pthread_mutex_lock(&c->out_lock);
    c->lingering = true;
    int rc = c->out_state == OUT_OPEN ? set_events_locked(c) : -EPIPE;
    pthread_mutex_unlock(&c->out_lock);
    if (rc < 0) {
        finish(lp, c);
        return;
    }
    timer_add(lp, c, TIMER_LINGER, clock_now_ms() + TCP_FINAL_FLUSH_MS);
}

static void on_event(struct tcp_loop *lp, struct tcp_client *c, uint32_t ev)
{
    if (c->timer == TIMER_GONE)
        return;         /* closed earlier in this turn */
    if (c->lingering) { /* only its last frames are of interest */
        if ((ev & (EPOLLERR | EPOLLHUP)) || ((ev & EPOLLOUT) && !tcp_conn_writable(c)))
            finish(lp, c);
        return;
    }
    if (ev & EPOLLOUT)
        (void)tcp_conn_writable(c); /* it stops waiting for EPOLLOUT once the queue is empty */
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    switch (tcp_conn_read(&lp->ctx, c)) {
    case TCP_IN_OK:
        break;
    case TCP_IN_EOF: /* a sender's shutdown() looks the same: end() asks why */
        end(lp, c, PROTO_R_QUIT, false);
        break;
    case TCP_IN_ERROR:
        end(lp, c, PROTO_R_ERROR, false);
        break;
    case TCP_IN_LEFT:
        end(lp, c, PROTO_R_QUIT, true);
        break;
    }
}

/* Takes the connections the accepting thread queued for this loop. */
static void adopt_inbox(struct tcp_loop *lp)
{
    uint64_t cnt;
    if (read(lp->wake_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    pthread_mutex_lock(&lp->inbox_lock);
    struct tcp_client *list = lp->inbox;
    lp->inbox = NULL;
    pthread_mutex_unlock(&lp->inbox_lock);
    while (list != NULL) {
        struct tcp_client *c = list;
        list = c->next;
        DL_PREPEND2(lp->conns, c, prev, next);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            log_line("ERROR", "Conexão de %s encerrada: epoll_ctl: %s", c->chat.addr,
                     strerror(errno));
            finish(lp, c);
            continue;
        }
        uint64_t due = c->connect_ns / 1000000u + (uint64_t)tcp_srv.cfg.hello_timeout_s * 1000u;
        timer_add(lp, c, TIMER_HELLO, due);
    }
}

/* Registered, or active since (chat_transport.active, on this loop): the idle deadline
 * moves to active_ms + --idle-timeout, at the tail of the list. Off: no idle timer. */
static void epoll_active(struct tcp_client *c)
{
    struct tcp_loop *lp = c->loop;
    if (tcp_srv.chat.idle_s == 0 || c->timer == TIMER_GONE)
        return;
    timer_del(lp, c);
    timer_add(lp, c, TIMER_IDLE, c->chat.active_ms + (uint64_t)tcp_srv.chat.idle_s * 1000u);
}

static void run_timers(struct tcp_loop *lp, uint64_t now)
{
    struct tcp_client *c;
    while ((c = lp->timers[TIMER_HELLO]) != NULL && c->deadline_ms <= now) {
        timer_del(lp, c);
        if (!chat_registered(&c->chat))
            end(lp, c, PROTO_R_TIMEOUT, false);
    }
    while ((c = lp->timers[TIMER_IDLE]) != NULL && c->deadline_ms <= now)
        end(lp, c, PROTO_R_IDLE, false); /* end() takes it off the list */
    while ((c = lp->timers[TIMER_LINGER]) != NULL && c->deadline_ms <= now)
        finish(lp, c); /* its peer did not take its last frames in time */
}

static void release_closed(struct tcp_loop *lp)
{
    while (lp->closed != NULL) { /* no event of this turn is left to name them */
        struct tcp_client *c = lp->closed;
        lp->closed = c->next;
        tcp_conn_unref(c); /* the loop's reference */
    }
}

static void *loop_main(void *arg)
{
    struct tcp_loop *lp = arg;
    struct epoll_event evs[LOOP_EVENTS];
    for (;;) {
        if (atomic_load(&tcp_srv.stopping) && !lp->stopped) {
            adopt_inbox(lp); /* the last ones the accepting thread handed over hear it too */
            lp->stopped = true;
            struct tcp_client *c, *next; /* end() may unlink c */
            DL_FOREACH_SAFE2(lp->conns, c, next, next)
            {
                // cppcheck-suppress uninitvar ; false positive: utlist's macro assigns c
                if (!c->lingering)
                    end(lp, c, PROTO_R_SHUTDOWN, false);
            }
        }
        if (lp->stopped && lp->conns == NULL)
            break;
        int n = epoll_wait(lp->epfd, evs, LOOP_EVENTS, next_timeout(lp, clock_now_ms()));
        if (n < 0 && errno != EINTR) {
            log_line("ERROR", "epoll_wait: %s", strerror(errno));
            n = 0; /* cannot happen with a valid set; the timers still run */
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == lp)
                adopt_inbox(lp);
            else
                on_event(lp, evs[i].data.ptr, evs[i].events);
        }
        run_timers(lp, clock_now_ms());
        release_closed(lp);
    }
    release_closed(lp);
    return NULL;
}

/* --- the accepting thread's side --- */

static void loop_destroy(struct tcp_loop *lp)
{
    tcp_ctx_destroy(&lp->ctx);
    pthread_mutex_destroy(&lp->inbox_lock);
    if (lp->wake_fd >= 0)
        close(lp->wake_fd);
    if (lp->epfd >= 0)
        close(lp->epfd);
}

static int loop_init(struct tcp_loop *lp)
{
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = lp->epfd < 0 || lp->wake_fd < 0 ? -errno : 0;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = lp};
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wake_fd, &ev) < 0)
            rc = -errno;
    }
    size_t rbuf = tcp_srv.cfg.max_frame + 2 > LOOP_RBUF ? tcp_srv.cfg.max_frame + 2 : LOOP_RBUF;
    if (rc == 0)
        rc = tcp_ctx_init(&lp->ctx, SIZE_MAX, rbuf);
    if (rc == 0)
        rc = -pthread_mutex_init(&lp->inbox_lock, NULL);
    return rc;
}

static int epoll_start(void)
{
    nloops = tcp_srv.cfg.loops;
    loops = calloc((size_t)nloops, sizeof(*loops));
    if (loops == NULL)
        return -ENOMEM;
    for (int i = 0; i < nloops; i++) {
        struct tcp_loop *lp = &loops[i];
        lp->epfd = lp->wake_fd = -1;
        int rc = loop_init(lp);
        if (rc == 0)
            rc = -pthread_create(&lp->tid, NULL, loop_main, lp);
        if (rc < 0)
            return rc; /* start-up: the caller dies */
    }
    return 0;
}

static int epoll_adopt(struct tcp_client *c)
{
    static unsigned next; /* the accepting thread's alone */
    struct tcp_loop *lp = &loops[next++ % (unsigned)nloops];
    c->loop = lp;
    c->timer = TIMER_NONE; /* the inbox lock hands these to the loop */
    atomic_fetch_add(&tcp_srv.nconns, 1);
    pthread_mutex_lock(&lp->inbox_lock);
    c->next = lp->inbox;
    lp->inbox = c;
    pthread_mutex_unlock(&lp->inbox_lock);
    uint64_t one = 1;
    if (write(lp->wake_fd, &one, sizeof(one)) < 0) /* cannot fail before 2^64 - 1 wake-ups */
        log_line("ERROR", "eventfd: %s", strerror(errno));
    return 0;
}

static void epoll_stop(void)
{
    uint64_t one = 1;
    for (int i = 0; i < nloops; i++)
        if (write(loops[i].wake_fd, &one, sizeof(one)) < 0)
            log_line("ERROR", "eventfd: %s", strerror(errno)); /* it sees `stopping` anyway */
    for (int i = 0; i < nloops; i++) {
        int rc = pthread_join(loops[i].tid, NULL);
        if (rc != 0)
            log_line("ERROR", "pthread_join: %s", strerror(rc));
        loop_destroy(&loops[i]);
    }
    free(loops);
    loops = NULL;
}

static const struct tcp_io io = {
    .start = epoll_start,
    .adopt = epoll_adopt,
    .event_fd = -1,
    .on_event = NULL,
    .want_out_locked = epoll_want_out_locked,
    .stop = epoll_stop,
    .active = epoll_active,
};

const struct tcp_io *const tcp_io_epoll = &io;
