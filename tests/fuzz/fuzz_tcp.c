/* fuzz_tcp: tcp_server's per-connection path and the chat core under it, driven without
 * sockets (libFuzzer).
 *
 * Both I/O models serve a connection through the same tcp_conn.c functions, which this
 * harness calls as a client's thread or an event loop would: tcp_conn_read() on bytes as
 * recv() delivers them (the link wraps recv), the owner's POLLOUT flush
 * (tcp_conn_writable), and leaving (tcp_conn_depart, tcp_conn_close) on EOF, reset, HELLO
 * timeout, BYE or a sender's slow-consumer verdict. Each input mixes the two read paths:
 * half the clients read like a client thread (their own line buffer, always there), half
 * like an event loop (a shared read buffer, a line buffer only while a line is unfinished).
 * Four clients share one chat core (chat.c), so HELLO, rooms, TO, WHO and fan-out meet. The
 * link also wraps send() and sendmsg(): each client's "socket" takes only as many bytes as
 * the input allows, which drives the outbound queue up to its limit and the cut-off.
 *
 * Checks: every byte the server sends parses as a server frame (proto_parse_server) no
 * longer than max-frame plus the frame head; every log line is whole and escaped; after
 * every client has left, the registry is empty (no id, no room); and ASan/UBSan/LSan see
 * every access and allocation.
 *
 * Input: byte 0 picks --max-frame (bits 0-1), --max-queue (bits 2-4), quiet (bit 5) and
 * which clients read like a loop (bit 6); then records:
 *   op (low 3 bits: what; next 2 bits: which client), then per op:
 *   0-3 data:   len, then len bytes as received
 *   4 budget:   n: the socket takes n*8 more bytes, then is full (0: full now)
 *   5 drain:    the peer reads everything; the owner flushes its queue (POLLOUT)
 *   6 close:    n: EOF (n even) or a reset (n odd), the owner leaves
 *   7 timeout:  the hello timeout fires (only before HELLO, as in the models) */
#include "../../servers/tcp_server.h"

#include "fuzz_util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);

#define FZ_CLIENTS 4
#define FZ_UNLIMITED ((size_t)-1)

struct fz_peer {
    struct tcp_client *c;
    struct tcp_ctx own; /* a client thread's context (loop clients share fz_loop) */
    bool loop;          /* read like an event loop */
    size_t budget;      /* bytes the socket takes before EAGAIN */
    const char *in;     /* bytes recv() hands over next */
    size_t in_len;
    char *out; /* what the server sent, not yet checked (a partial last line) */
    size_t out_len, out_cap;
};

struct tcp_srv tcp_srv; /* defined by tcp_server.c in the real program */
static struct fz_peer peers[FZ_CLIENTS];
static struct tcp_ctx fz_loop; /* the event loop's context, shared by its clients */
static int log_fd = -1;

static int fz_want_out_locked(struct tcp_client *c, bool on)
{
    (void)c; /* the harness flushes on op 5, as POLLOUT would */
    (void)on;
    return 0;
}

static const struct tcp_io fz_io = {.event_fd = -1, .want_out_locked = fz_want_out_locked};

static struct fz_peer *peer_of_fd(int fd)
{
    for (int i = 0; i < FZ_CLIENTS; i++)
        if (peers[i].c != NULL && peers[i].c->fd == fd)
            return &peers[i];
    return NULL;
}

static struct tcp_ctx *ctx_of(struct fz_peer *p)
{
    return p->loop ? &fz_loop : &p->own;
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
        FZ_CHECK(l <= tcp_srv.cfg.max_frame + CHAT_FRAME_EXTRA);
        off += l + 1;
    }
    memmove(p->out, p->out + off, p->out_len - off);
    p->out_len -= off;
    /* a line longer than any frame without its LF would be a bug too */
    FZ_CHECK(p->out_len <= tcp_srv.cfg.max_frame + CHAT_FRAME_EXTRA);
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

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
    struct fz_peer *p = peer_of_fd(fd);
    if (p == NULL)
        return __real_recv(fd, buf, len, flags);
    size_t n = len < p->in_len ? len : p->in_len;
    if (n == 0) { /* nothing more this time, as a non-blocking socket says */
        errno = EAGAIN;
        return -1;
    }
    memcpy(buf, p->in, n);
    p->in += n;
    p->in_len -= n;
    return (ssize_t)n;
}

/* --- a connection's life, step by step --- */

static void peer_open(struct fz_peer *p, int i, bool loop)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC); /* close() needs a real fd */
    FZ_CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(50000 + i)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    p->c = tcp_conn_new(fd, &sa);
    FZ_CHECK(p->c != NULL);
    p->loop = loop;
    if (!loop) { /* what tcp_threads.c's client_main sets up */
        FZ_CHECK(tcp_ctx_init(&p->own, TCP_PEERS_KEEP_THREAD, 0) == 0);
        p->c->part = malloc(tcp_srv.cfg.max_frame + 2);
        FZ_CHECK(p->c->part != NULL);
    }
    p->budget = FZ_UNLIMITED;
    p->in_len = 0;
    p->out_len = 0;
}

/* What either model does once its client is done: tell the chat, flush, close. */
static void peer_close(struct fz_peer *p, enum proto_reason seen, bool said_bye)
{
    struct tcp_client *c = p->c;
    p->budget = FZ_UNLIMITED; /* the last flush must not wait for a socket that never drains */
    p->in_len = 0;
    if (tcp_conn_depart(ctx_of(p), c, tcp_conn_reason(c, seen), said_bye))
        (void)tcp_conn_writable(c);
    check_output(p);
    tcp_conn_close(ctx_of(p), c);
    if (!p->loop)
        tcp_ctx_destroy(&p->own);
    tcp_conn_unref(c); /* the owner's reference */
    p->c = NULL;
}

static void peer_restart(struct fz_peer *p, int i, enum proto_reason seen, bool said_bye)
{
    bool loop = p->loop;
    peer_close(p, seen, said_bye);
    peer_open(p, i, loop);
}

/* Bytes arriving on the socket: the owner reads until recv() has nothing more. */
static void peer_input(struct fz_peer *p, int i, const char *buf, size_t len)
{
    p->in = buf;
    p->in_len = len;
    while (p->in_len > 0) {
        if (atomic_load(&p->c->close_reason) >= 0)
            return; /* the models stop reading once another thread ended it */
        if (tcp_conn_read(ctx_of(p), p->c) == TCP_IN_LEFT) {
            peer_restart(p, i, PROTO_R_QUIT, true);
            return;
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_fd = fz_log_capture();
    tcp_srv.io = &fz_io;
    FZ_CHECK(chat_server_init(&tcp_srv.chat, FZ_CLIENTS) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    unsigned cfg = fz_byte(&in);
    static const size_t maxes[4] = {PROTO_MIN_FRAME, 100, 512, PROTO_MAX_FRAME_DEFAULT};
    tcp_srv.cfg = (struct tcp_config){.host = "127.0.0.1", .max_clients = FZ_CLIENTS};
    tcp_srv.cfg.max_frame = maxes[cfg & 3];
    tcp_srv.cfg.max_queue = (tcp_srv.cfg.max_frame + CHAT_FRAME_EXTRA) * (1 + ((cfg >> 2) & 7));
    tcp_srv.cfg.hello_timeout_s = 10;
    log_set_quiet((cfg & 0x20) != 0);
    size_t rbuf = tcp_srv.cfg.max_frame + 2 > 512 ? tcp_srv.cfg.max_frame + 2 : 512;
    FZ_CHECK(tcp_ctx_init(&fz_loop, SIZE_MAX, rbuf) == 0);
    for (int i = 0; i < FZ_CLIENTS; i++)
        peer_open(&peers[i], i, ((unsigned)i + (cfg >> 6)) & 1);

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
            p->budget = FZ_UNLIMITED;
            (void)tcp_conn_writable(p->c);
            break;
        case 6:
            peer_restart(p, i, (fz_byte(&in) & 1) ? PROTO_R_ERROR : PROTO_R_QUIT, false);
            break;
        case 7:
            if (!chat_registered(&p->c->chat))
                peer_restart(p, i, PROTO_R_TIMEOUT, false);
            break;
        }
        /* a sender cut someone off (slow, broken): its owner wakes up and leaves */
        for (int k = 0; k < FZ_CLIENTS; k++) {
            if (atomic_load(&peers[k].c->close_reason) >= 0)
                peer_restart(&peers[k], k, PROTO_R_ERROR, false);
            check_output(&peers[k]);
        }
        fz_log_check(log_fd);
    }

    for (int i = 0; i < FZ_CLIENTS; i++) {
        peer_close(&peers[i], PROTO_R_SHUTDOWN, false);
        free(peers[i].out);
        peers[i] = (struct fz_peer){0};
    }
    tcp_ctx_destroy(&fz_loop);
    const struct registry *reg = &tcp_srv.chat.reg;
    FZ_CHECK(reg->count == 0 && reg->by_id == NULL && reg->rooms == NULL);
    fz_log_check(log_fd);
    return 0;
}
