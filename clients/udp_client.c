/* udp_client: terminal chat client for udp_server. One socket for life; PINGs keep the
 * registration alive and HELLO is repeated (with backoff) whenever the server forgot us.
 * The shared parts live in client_*.c (client_common.h); --hybrid runs hybrid_link.c instead. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_backoff.h"
#include "client_common.h"
#include "client_frames.h"
#include "client_term.h"
#include "clock.h"
#include "net.h"
#include "zframe.h"

struct udp_link {
    pthread_t thread;
    bool started;
    int fd; /* connected UDP socket: only the server's datagrams reach it */
    /* --compress: zlib state is per thread, so senders share one under zlock (CPU only,
     * no I/O inside) and the receiver has its own. */
    pthread_mutex_t zlock;
    struct zframe ztx;                /* guarded by zlock */
    struct zframe zrx;                /* receiver thread only */
    char ztx_buf[CLI_MAX_FRAME + 64]; /* guarded by zlock */
};

static struct udp_link g_link = {.fd = -1};

static int send_datagram(int fd, const char *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        return -errno;
    }
}

/* send(2) on a datagram socket is atomic, so plain frames need no lock. */
static int udp_send(struct cli_session *s, const char *frame, size_t len)
{
    struct udp_link *l = s->tp_data;
    if (!s->opt.compress)
        return send_datagram(l->fd, frame, len);
    pthread_mutex_lock(&l->zlock);
    int n = zframe_compress(&l->ztx, frame, len, l->ztx_buf, sizeof(l->ztx_buf));
    int rc = n < 0 ? n : send_datagram(l->fd, l->ztx_buf, (size_t)n);
    pthread_mutex_unlock(&l->zlock);
    return rc;
}

/* HELLO and the keep-alive PING go plain and padded, even with --compress: a server answers
 * an address it does not know with no more bytes than it received (PROTOCOL.md,
 * "Reflection"), and padding compresses to nothing. A HELLO of PROTO_HELLO_PAD bytes earns
 * its WELCOME; a PING of 21 bytes, "PING" and a 16-digit token, earns the 19 of "ERR
 * not_registered" once the server has forgotten us, which is how we learn it. */
static int udp_send_hello(struct cli_session *s)
{
    struct udp_link *l = s->tp_data;
    char frame[PROTO_HELLO_PAD + PROTO_ID_MAX + 16];
    int n = proto_fmt_hello_pad(frame, sizeof(frame), s->opt.id, NULL, PROTO_HELLO_PAD);
    return n < 0 ? -EINVAL : send_datagram(l->fd, frame, (size_t)n);
}

static int udp_send_ping(struct cli_session *s, uint64_t token)
{
    struct udp_link *l = s->tp_data;
    char frame[32];
    int n = snprintf(frame, sizeof(frame), "PING %016llu", (unsigned long long)token);
    return send_datagram(l->fd, frame, (size_t)n);
}

/* Receiver state machine, one thread: registering (HELLO with backoff until WELCOME) and
 * registered (PING every interval; silence for 3 intervals means the server is gone). */
struct udp_rx {
    bool registered;
    bool announced; /* "reconnecting" said for this episode */
    uint64_t next_hello_ms;
    uint64_t next_ping_ms;
    uint64_t last_rx_ms;
    uint64_t ping_token;
    struct cli_backoff b;
};

static void lost(struct cli_session *s, struct udp_rx *rx, uint64_t now, const char *why)
{
    rx->registered = false;
    rx->next_hello_ms = now;
    cli_lost(s);
    cli_printf(s, "* %s; registrando de novo...", why);
}

static void on_datagram(struct cli_session *s, struct udp_rx *rx, char *buf, size_t len,
                        uint64_t now, uint64_t interval)
{
    if (len > 0 && (unsigned char)buf[0] == PROTO_ZMARK) {
        /* the server answers compressed clients in kind; inflate into the tail of buf */
        struct udp_link *l = s->tp_data;
        char *plain = buf + CLI_RECV_MAX + 1;
        int n = zframe_decompress(&l->zrx, buf, len, plain, CLI_RECV_MAX);
        if (n < 0) {
            cli_printf(s, "* datagrama comprimido inválido do servidor (%s)", strerror(-n));
            return;
        }
        buf = plain;
        len = (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n') /* one trailing LF (or CR LF) is optional */
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    rx->last_rx_ms = now;
    struct proto_frame f;
    if (cli_handle_frame(s, buf, len, &f) != PROTO_OK)
        return;
    if (f.verb == PROTO_WELCOME) {
        if (!rx->registered)
            rx->next_ping_ms = now + interval;
        rx->registered = true;
        rx->announced = false;
        cli_backoff_reset(&rx->b);
    } else if (proto_is_err(&f, PROTO_E_NOT_REG)) {
        if (rx->registered)
            lost(s, rx, now, "o servidor esqueceu este cliente");
    } else if (proto_is_err(&f, PROTO_E_ID_IN_USE) || proto_is_err(&f, PROTO_E_FULL)) {
        rx->registered = false; /* HELLO again after the backoff already scheduled */
    } else if (f.verb == PROTO_BYE && !cli_bye_seen(s)) {
        if (rx->registered)
            lost(s, rx, now, "sessão encerrada");
        rx->next_hello_ms = now + CLI_BACKOFF_MIN_MS;
    }
}

/* Timers: keep-alive PINGs, silence detection, HELLO retries. Returns false to stop. */
static bool on_timers(struct cli_session *s, struct udp_rx *rx, uint64_t now, uint64_t interval)
{
    if (rx->registered) {
        if (now - rx->last_rx_ms >= 3 * interval) {
            lost(s, rx, now, "sem resposta do servidor");
        } else if (now >= rx->next_ping_ms) {
            (void)udp_send_ping(s, ++rx->ping_token); /* a lost PING is what we detect */
            rx->next_ping_ms = now + interval;
        }
    }
    if (!rx->registered && now >= rx->next_hello_ms) {
        uint32_t d = cli_backoff_fail(s, &rx->b);
        if (d == 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "no WELCOME from %s:%u; giving up (--max-retries)",
                     s->opt.host, (unsigned)s->opt.port);
            cli_fatal(s, 1, msg);
            return false;
        }
        (void)udp_send_hello(s); /* no answer is handled by the next retry */
        if (rx->b.failures == 2 && !rx->announced) {
            cli_printf(s,
                       "* servidor não responde; tentando de novo (a cada %.1f s no "
                       "máximo)...",
                       CLI_BACKOFF_MAX_MS / 1000.0);
            rx->announced = true;
        }
        rx->next_hello_ms = now + d;
    }
    return true;
}

static void *udp_receiver(void *arg)
{
    struct cli_session *s = arg;
    struct udp_link *l = s->tp_data;
    uint64_t interval = (uint64_t)(s->opt.ping_interval_s * 1000.0);
    struct udp_rx rx = {0};
    cli_backoff_init(&rx.b);
    rx.next_hello_ms = clock_now_ms();
    char *buf = malloc(2 * (CLI_RECV_MAX + 1)); /* received datagram, then inflated frame */
    if (buf == NULL) {
        cli_fatal(s, 1, "out of memory");
        return NULL;
    }
    while (!atomic_load(&s->quit)) {
        uint64_t now = clock_now_ms();
        if (!on_timers(s, &rx, now, interval))
            break;
        uint64_t next = rx.registered ? rx.next_ping_ms : rx.next_hello_ms;
        if (rx.registered && rx.last_rx_ms + 3 * interval < next)
            next = rx.last_rx_ms + 3 * interval;
        int wait = next > now ? (int)(next - now) : 0;
        struct pollfd p[2] = {{l->fd, POLLIN, 0}, {s->quit_fd[0], POLLIN, 0}};
        int n = poll(p, 2, wait);
        if (n < 0 && errno != EINTR) {
            cli_fatal(s, 1, strerror(errno));
            break;
        }
        if (n <= 0 || !(p[0].revents & (POLLIN | POLLERR)))
            continue;
        /* everything queued now, without blocking */
        for (;;) {
            ssize_t r = recv(l->fd, buf, CLI_RECV_MAX, MSG_DONTWAIT);
            if (r < 0) {
                /* ECONNREFUSED: an ICMP "port unreachable"; the server is down. The
                 * retries and the silence timer cover it. */
                if (errno == EINTR || errno == ECONNREFUSED)
                    continue;
                break; /* EAGAIN: all read */
            }
            on_datagram(s, &rx, buf, (size_t)r, clock_now_ms(), interval);
        }
    }
    free(buf);
    return NULL;
}

static int udp_start(struct cli_session *s)
{
    if (s->opt.hybrid) { /* --hybrid: the session runs on the hybrid transport from here on */
        s->tp = &cli_hybrid_transport;
        return s->tp->start(s);
    }
    struct udp_link *l = &g_link;
    struct sockaddr_in sa;
    int rc = net_resolve(s->opt.host, s->opt.port, &sa);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot resolve '%s'\n", s->tp->prog, s->opt.host);
        return rc;
    }
    if (s->opt.compress) {
        if ((rc = zframe_init(&l->ztx, NULL)) < 0 || (rc = zframe_init(&l->zrx, NULL)) < 0)
            return rc;
    }
    rc = pthread_mutex_init(&l->zlock, NULL);
    if (rc != 0)
        return -rc;
    l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        return -errno;
    /* connect: send() needs no address and datagrams from anyone else are dropped */
    if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    s->tp_data = l;
    rc = pthread_create(&l->thread, NULL, udp_receiver, s);
    if (rc != 0)
        return -rc;
    l->started = true;
    return 0;
}

static void udp_stop(struct cli_session *s)
{
    struct udp_link *l = s->tp_data;
    if (l->started)
        pthread_join(l->thread, NULL);
    l->started = false;
    close(l->fd);
    l->fd = -1;
    zframe_destroy(&l->ztx);
    zframe_destroy(&l->zrx);
    pthread_mutex_destroy(&l->zlock);
}

static const struct cli_transport udp_transport = {
    .prog = "udp_client",
    .name = "UDP",
    .default_port = 5001,
    .has_ping = true,
    .has_compress = true,
    .has_hybrid = true,
    .start = udp_start,
    .send = udp_send,
    .stop = udp_stop,
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv, &udp_transport);
}
