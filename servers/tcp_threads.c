/* tcp_threads: tcp_server --io threads, one thread per client (deliberately simple).
 *
 * Each client has exactly one thread that waits in ppoll() on its socket, reads, and hands
 * its frames to the chat core (tcp_conn.c); there is no second thread and no extra fd per
 * client, so 10,000 clients fit in pid_max and the fd limit. A finished thread unlinks
 * itself, queues itself on a list and signals an eventfd; the accepting thread joins it.
 *
 * Waking a client's thread (its queue became non-empty, it was dropped as slow, shutdown):
 * pthread_kill(SIGUSR1). Client threads keep SIGUSR1 blocked except inside ppoll(), so a
 * wake-up sent while they are busy stays pending and interrupts their next ppoll(): none is
 * lost. A slow or broken client is shut down by the sender that found it so (tcp_conn.c),
 * which wakes its thread with POLLHUP.
 *
 * Locking: threads_lock guards the list of live threads, the list of finished ones and
 * nothing else; it is taken before a client's out_lock (stop) and never with the chat lock. */
#include "tcp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <utlist.h>

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcp_client *live; /* guarded by threads_lock: every client with a thread */
static struct tcp_client *dead; /* guarded by threads_lock: finished threads to join */
static pthread_attr_t attr;
static sigset_t wait_mask; /* ppoll's mask in client threads: all blocked but SIGUSR1 */
static struct tcp_io io;   /* tcp_io_threads with its eventfd, once started */

/* Interrupts the owner's ppoll. Caller holds out_lock, which keeps the thread alive. */
static void wake_locked(struct tcp_client *c)
{
    if (c->have_self && c->out_state != OUT_CLOSED && !pthread_equal(c->self, pthread_self()))
        (void)pthread_kill(c->self, SIGUSR1); /* cannot fail for a live thread */
}

/* --- a client's thread --- */

/* Sends what is queued, waiting at most ms for the socket: a leaving client's last frames
 * (LEFT, BYE) deserve a chance, not a hang. */
static void final_flush(struct tcp_client *c, int ms)
{
    uint64_t deadline = clock_now_ms() + (uint64_t)ms;
    while (tcp_conn_writable(c)) {
        uint64_t now = clock_now_ms();
        if (now >= deadline)
            return;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc == 0 || (rc < 0 && errno != EINTR))
            return;
    }
}

/* Waits for input (and for POLLOUT when frames are queued) until the client leaves.
 * Returns why it left; *said_bye when it left with BYE (the core did the leaving). */
static enum proto_reason client_loop(struct tcp_ctx *t, struct tcp_client *c, bool *said_bye)
{
    uint64_t hello_by = c->connect_ns / 1000000u + (uint64_t)tcp_srv.cfg.hello_timeout_s * 1000u;
    uint64_t idle_ms = (uint64_t)tcp_srv.chat.idle_s * 1000u;
    for (;;) {
        if (atomic_load(&tcp_srv.stopping))
            return PROTO_R_SHUTDOWN;
        if (atomic_load(&c->close_reason) >= 0)
            return (enum proto_reason)atomic_load(&c->close_reason);
        /* before HELLO, the registration deadline; after, --idle-timeout if set (this
         * thread alone writes active_ms: chat.h) */
        bool registered = chat_registered(&c->chat);
        uint64_t deadline = !registered ? hello_by
                            : idle_ms   ? c->chat.active_ms + idle_ms
                                        : UINT64_MAX;
        struct timespec ts, *tsp = NULL;
        if (deadline != UINT64_MAX) {
            uint64_t now = clock_now_ms();
            if (now >= deadline)
                return registered ? PROTO_R_IDLE : PROTO_R_TIMEOUT;
            ts.tv_sec = (time_t)((deadline - now) / 1000u);
            ts.tv_nsec = (long)((deadline - now) % 1000u) * 1000000L;
            tsp = &ts;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        pthread_mutex_lock(&c->out_lock);
        if (c->want_pollout && c->out_state == OUT_OPEN)
            p.events |= POLLOUT;
        pthread_mutex_unlock(&c->out_lock);
        int rc = ppoll(&p, 1, tsp, &wait_mask);
        if (rc < 0) {
            if (errno == EINTR)
                continue; /* a wake-up: look at the flags again */
            log_line("ERROR", "ppoll: %s", strerror(errno));
            return PROTO_R_ERROR;
        }
        if (p.revents & POLLOUT)
            (void)tcp_conn_writable(c); /* the next ppoll asks for POLLOUT if still needed */
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            switch (tcp_conn_read(t, c)) {
            case TCP_IN_OK:
                break;
            case TCP_IN_EOF:
                return PROTO_R_QUIT;
            case TCP_IN_ERROR:
                return PROTO_R_ERROR;
            case TCP_IN_LEFT:
                *said_bye = true;
                return PROTO_R_QUIT;
            }
        }
    }
}

static void *client_main(void *arg)
{
    struct tcp_client *c = arg;
    pthread_mutex_lock(&c->out_lock);
    c->self = pthread_self();
    c->have_self = true;
    pthread_mutex_unlock(&c->out_lock);

    struct tcp_ctx t; /* zeroed by tcp_ctx_init even when it fails */
    bool ready = tcp_ctx_init(&t, TCP_PEERS_KEEP_THREAD, 0) == 0 &&
                 (c->part = malloc(tcp_srv.cfg.max_frame + 2)) != NULL;
    if (!ready) {
        log_line("ERROR", "Memória insuficiente para o cliente de %s", c->chat.addr);
    } else {
        bool said_bye = false;
        enum proto_reason why = tcp_conn_reason(c, client_loop(&t, c, &said_bye));
        if (tcp_conn_depart(&t, c, why, said_bye))
            final_flush(c, TCP_FINAL_FLUSH_MS);
    }
    tcp_conn_close(&t, c);
    tcp_ctx_destroy(&t);
    free(c->part); /* by the thread that allocated it: its malloc arena gets it back now */
    c->part = NULL;

    pthread_mutex_lock(&threads_lock);
    DL_DELETE2(live, c, prev, next);
    c->next = dead; /* singly linked from here on */
    dead = c;
    atomic_fetch_sub(&tcp_srv.nconns, 1);
    pthread_mutex_unlock(&threads_lock);
    uint64_t one = 1;
    if (write(io.event_fd, &one, sizeof(one)) < 0)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    return NULL;
}

/* --- the accepting thread's side --- */

static void on_wake(int sig)
{
    (void)sig; /* only interrupts ppoll() */
}

static int threads_start(void)
{
    /* SIGUSR1 stays blocked (main blocked it) but inside a client thread's ppoll() */
    struct sigaction sa = {.sa_handler = on_wake};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0 || pthread_sigmask(SIG_BLOCK, NULL, &wait_mask) != 0)
        return -errno;
    sigdelset(&wait_mask, SIGUSR1);
    int rc = pthread_attr_init(&attr);
    if (rc == 0)
        rc = pthread_attr_setstacksize(&attr, TCP_STACK_SIZE);
    if (rc != 0)
        return -rc;
    io.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return io.event_fd < 0 ? -errno : 0;
}

static int threads_adopt(struct tcp_client *c)
{
    pthread_mutex_lock(&threads_lock);
    DL_PREPEND2(live, c, prev, next);
    atomic_fetch_add(&tcp_srv.nconns, 1);
    int rc = pthread_create(&c->tid, &attr, client_main, c);
    if (rc != 0) {
        DL_DELETE2(live, c, prev, next);
        atomic_fetch_sub(&tcp_srv.nconns, 1);
    }
    pthread_mutex_unlock(&threads_lock);
    if (rc != 0)
        log_line("ERROR", "pthread_create: %s", strerror(rc));
    return -rc;
}

/* Joins every finished client thread and drops the thread's reference. */
static void reap(void)
{
    uint64_t cnt;
    if (read(io.event_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        log_line("ERROR", "eventfd: %s", strerror(errno));
    pthread_mutex_lock(&threads_lock);
    struct tcp_client *list = dead;
    dead = NULL;
    pthread_mutex_unlock(&threads_lock);
    while (list != NULL) {
        struct tcp_client *next = list->next;
        int rc = pthread_join(list->tid, NULL);
        if (rc != 0)
            log_line("ERROR", "pthread_join: %s", strerror(rc));
        tcp_conn_unref(list);
        list = next;
    }
}

/* Ends every client (each thread sends BYE shutdown itself) and joins them. */
static void threads_stop(void)
{
    pthread_mutex_lock(&threads_lock);
    for (struct tcp_client *c = live; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->out_lock);
        wake_locked(c); /* a thread not started yet sees `stopping` itself */
        pthread_mutex_unlock(&c->out_lock);
    }
    pthread_mutex_unlock(&threads_lock);
    for (;;) {
        pthread_mutex_lock(&threads_lock);
        bool done = live == NULL && dead == NULL;
        pthread_mutex_unlock(&threads_lock);
        if (done)
            break;
        struct pollfd p = {.fd = io.event_fd, .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            log_line("ERROR", "poll: %s", strerror(errno));
        reap();
    }
    pthread_attr_destroy(&attr);
    close(io.event_fd);
}

static int threads_want_out_locked(struct tcp_client *c, bool on)
{
    if (on)
        wake_locked(c); /* its next ppoll() asks for POLLOUT */
    return 0;
}

static struct tcp_io io = {
    .start = threads_start,
    .adopt = threads_adopt,
    .event_fd = -1,
    .on_event = reap,
    .want_out_locked = threads_want_out_locked,
    .stop = threads_stop,
};

const struct tcp_io *const tcp_io_threads = &io;
