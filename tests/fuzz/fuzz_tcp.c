/* fuzz_tcp: tcp_server's per-frame handling driven without sockets (libFuzzer).
 *
 * tcp_conn.c keeps its frame handling static, so this file includes it whole (it has no
 * main(); tcp_server.c, which owns the process, is not linked) and drives the functions a
 * client's thread runs: handle_input() on bytes as
 * recv() would deliver them, the owner's POLLOUT flush, client_leave() on EOF, reset, hello
 * timeout or a sender's slow-consumer verdict. Four clients share one server, so HELLO,
 * rooms, TO, WHO and fan-out meet. The link wraps send() and sendmsg() (-Wl,--wrap): each
 * client's "socket" takes only as many bytes as the input allows, which drives the outbound
 * queue up to its limit and the slow-consumer cut-off.
 *
 * Checks: every byte the server sends parses as a server frame (proto_parse_server) no
 * longer than max-frame plus the frame head; every log line is whole and escaped; the
 * receive buffer never fills without progress; after every client has left, the registry
 * is empty (no id, no room); and ASan/UBSan/LSan see every access and allocation.
 *
 * Input: byte 0 picks --max-frame and --max-queue; then records:
 *   op (low 3 bits: what; next 2 bits: which client), then per op:
 *   0-3 data:   len, then len bytes as received
 *   4 budget:   n: the socket takes n*8 more bytes, then is full (0: full now)
 *   5 drain:    the peer reads everything; the owner flushes its queue (POLLOUT)
 *   6 close:    n: EOF (n even) or a reset (n odd), the owner leaves
 *   7 timeout:  the hello timeout fires (only before HELLO, as in client_loop) */
#include "../../servers/tcp_conn.c"

#include "fuzz_util.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

#define FZ_CLIENTS 4
#define FZ_UNLIMITED ((size_t)-1)

struct fz_peer {
    struct conn_ctx t; /* the owner thread's state; t.c is the client */
    size_t budget;     /* bytes the socket takes before EAGAIN */
    char *out;         /* what the server sent, not yet checked (a partial last line) */
    size_t out_len, out_cap;
};

struct tcp_srv tcp_srv; /* defined by tcp_server.c in the real program */
static struct fz_peer peers[FZ_CLIENTS];
static int log_fd = -1;

static struct fz_peer *peer_of_fd(int fd)
{
    for (int i = 0; i < FZ_CLIENTS; i++)
        if (peers[i].t.c != NULL && peers[i].t.c->fd == fd)
            return &peers[i];
    return NULL;
}

/* Every whole line the server sent must be a frame a client can parse. */
static void check_output(struct fz_peer *p)
{
    size_t off = 0;
    if (p->out_len == 0)
        return;
    for (;;) {
        char *lf = memchr(p->out + off, '\n', p->out_len - off);
        if (lf == NULL)
            break;
        size_t l = (size_t)(lf - (p->out + off));
        struct proto_frame f;
        if (proto_parse_server(p->out + off, l, &f) != PROTO_OK) {
            fprintf(stderr, "unparsable frame from the server: \"%.*s\"\n", (int)l, p->out + off);
            abort();
        }
        FZ_CHECK(l <= tcp_srv.cfg.max_frame + TCP_FRAME_EXTRA);
        off += l + 1;
    }
    memmove(p->out, p->out + off, p->out_len - off);
    p->out_len -= off;
    /* a line longer than any frame without its LF would be a bug too */
    FZ_CHECK(p->out_len <= tcp_srv.cfg.max_frame + TCP_FRAME_EXTRA);
}

static size_t take(struct fz_peer *p, const void *buf, size_t len)
{
    size_t n = len < p->budget ? len : p->budget;
    if (n == 0)
        return 0;
    if (p->budget != FZ_UNLIMITED)
        p->budget -= n;
    if (p->out_len + n > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : 1024;
        while (cap < p->out_len + n)
            cap *= 2;
        p->out = realloc(p->out, cap);
        FZ_CHECK(p->out != NULL);
        p->out_cap = cap;
    }
    memcpy(p->out + p->out_len, buf, n);
    p->out_len += n;
    return n;
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
    struct fz_peer *p = peer_of_fd(fd);
    if (p == NULL)
        return __real_send(fd, buf, len, flags);
    size_t n = take(p, buf, len);
    if (n == 0 && len > 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)n;
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct fz_peer *p = peer_of_fd(fd);
    if (p == NULL)
        return __real_sendmsg(fd, msg, flags);
    size_t total = 0, want = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        want += msg->msg_iov[i].iov_len;
        size_t n = take(p, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
        total += n;
        if (n < msg->msg_iov[i].iov_len)
            break;
    }
    if (total == 0 && want > 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)total;
}

/* --- the owner thread's life, step by step --- */

static void peer_open(struct fz_peer *p, int i)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC); /* close() and recv() need a real fd */
    FZ_CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(50000 + i)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct tcp_client *c = tcp_conn_new(fd, &sa);
    FZ_CHECK(c != NULL);
    p->t = (struct conn_ctx){.c = c};
    p->t.fcap = tcp_srv.cfg.max_frame + TCP_FRAME_EXTRA;
    p->t.rbuf = malloc(tcp_srv.cfg.max_frame + 2);
    p->t.fbuf = malloc(p->t.fcap);
    FZ_CHECK(p->t.rbuf != NULL && p->t.fbuf != NULL);
    p->budget = FZ_UNLIMITED;
    p->out_len = 0;
}

/* What client_main does once client_loop returned. */
static void peer_close(struct fz_peer *p, enum proto_reason why)
{
    struct tcp_client *c = p->t.c;
    int other = atomic_load(&c->close_reason);
    if (other >= 0)
        why = (enum proto_reason)other;
    p->budget = FZ_UNLIMITED; /* final_flush must not wait for a socket that never drains */
    client_leave(&p->t, why);
    check_output(p);
    free(p->t.rbuf);
    free(p->t.fbuf);
    free(p->t.peers);
    p->t = (struct conn_ctx){0};
    tcp_conn_unref(c); /* the owner's reference, as reap() drops it */
}

static void peer_restart(struct fz_peer *p, int i, enum proto_reason why)
{
    peer_close(p, why);
    peer_open(p, i);
}

/* Bytes as recv() would hand them to the owner: at most the room left in rbuf. */
static void peer_input(struct fz_peer *p, int i, const char *buf, size_t len)
{
    size_t room_max = tcp_srv.cfg.max_frame + 2;
    while (len > 0) {
        if (atomic_load(&p->t.c->close_reason) >= 0)
            return; /* client_loop stops reading once another thread ended it */
        FZ_CHECK(p->t.rlen < room_max);
        size_t n = room_max - p->t.rlen;
        if (n > len)
            n = len;
        memcpy(p->t.rbuf + p->t.rlen, buf, n);
        p->t.rlen += n;
        buf += n;
        len -= n;
        if (!handle_input(&p->t)) {
            peer_restart(p, i, PROTO_R_QUIT);
            return;
        }
    }
}

static void peer_drain(struct fz_peer *p)
{
    struct tcp_client *c = p->t.c;
    p->budget = FZ_UNLIMITED;
    pthread_mutex_lock(&c->out_lock);
    if (c->out_state == OUT_OPEN && outq_flush(&c->outq, c->fd) < 0)
        client_kill_locked(c, PROTO_R_ERROR);
    if (outq_len(&c->outq) == 0)
        c->want_pollout = false;
    pthread_mutex_unlock(&c->out_lock);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_fd = fz_log_capture();
    FZ_CHECK(pthread_rwlock_init(&tcp_srv.reg_lock, NULL) == 0);
    FZ_CHECK(pthread_mutex_init(&tcp_srv.conn_lock, NULL) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    unsigned cfg = fz_byte(&in);
    static const size_t maxes[4] = {PROTO_MIN_FRAME, 100, 512, PROTO_MAX_FRAME_DEFAULT};
    tcp_srv.cfg = (struct tcp_config){.host = "127.0.0.1", .max_clients = FZ_CLIENTS};
    tcp_srv.cfg.max_frame = maxes[cfg & 3];
    tcp_srv.cfg.max_queue = (tcp_srv.cfg.max_frame + TCP_FRAME_EXTRA) * (1 + ((cfg >> 2) & 7));
    tcp_srv.cfg.hello_timeout_s = 10;
    log_set_quiet((cfg & 0x20) != 0);
    registry_init(&tcp_srv.reg);
    for (int i = 0; i < FZ_CLIENTS; i++)
        peer_open(&peers[i], i);

    while (in.left > 0) {
        unsigned op = fz_byte(&in);
        int i = (int)((op >> 3) & 3);
        struct fz_peer *p = &peers[i];
        size_t got;
        switch (op & 7) {
        case 0:
        case 1:
        case 2:
        case 3: {
            const char *bytes = fz_bytes(&in, fz_byte(&in), &got);
            peer_input(p, i, bytes, got);
            break;
        }
        case 4:
            p->budget = (size_t)fz_byte(&in) * 8;
            break;
        case 5:
            peer_drain(p);
            break;
        case 6:
            peer_restart(p, i, (fz_byte(&in) & 1) ? PROTO_R_ERROR : PROTO_R_QUIT);
            break;
        case 7:
            if (!registry_registered(&p->t.c->member)) {
                reply_err(&p->t, PROTO_E_TIMEOUT, NULL);
                peer_restart(p, i, PROTO_R_TIMEOUT);
            }
            break;
        }
        /* a sender cut someone off (slow, broken): its owner wakes up and leaves */
        for (int k = 0; k < FZ_CLIENTS; k++) {
            if (atomic_load(&peers[k].t.c->close_reason) >= 0)
                peer_restart(&peers[k], k, PROTO_R_ERROR);
            check_output(&peers[k]);
        }
        fz_log_check(log_fd);
    }

    for (int i = 0; i < FZ_CLIENTS; i++) {
        peer_close(&peers[i], PROTO_R_SHUTDOWN);
        free(peers[i].out);
        peers[i] = (struct fz_peer){0};
    }
    FZ_CHECK(tcp_srv.reg.count == 0 && tcp_srv.reg.by_id == NULL && tcp_srv.reg.rooms == NULL);
    registry_destroy(&tcp_srv.reg);
    fz_log_check(log_fd);
    return 0;
}
