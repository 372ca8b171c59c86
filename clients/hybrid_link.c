/* hybrid_link: udp_client --hybrid. A TCP control connection carries HELLO, WHO, JOIN and
 * BYE; chat (MSG, TO) goes over a connected UDP socket, each datagram prefixed with the
 * session token the server's WELCOME gave (PROTOCOL.md, "Hybrid mode"). Losing the control
 * connection ends the session: reconnect with backoff, register again, get a new token. */
#include <errno.h>
#include <inttypes.h>
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

#define HYB_BIND_EVERY_MS 250u /* PING <bind> on the data path until something comes back */
#define HYB_BIND_TRIES 20u     /* then the session is given up and made again */

struct hyb_link {
    pthread_t thread;
    bool started;
    /* Serializes TCP writers (main thread's commands, the receiver's HELLO/JOIN) and keeps
     * the fds open while a send is in flight: the receiver takes it before closing. */
    pthread_mutex_t write_lock;
    int tcp_fd;                      /* guarded by write_lock; -1 while disconnected */
    int udp_fd;                      /* guarded by write_lock; -1 until a WELCOME */
    bool have_token;                 /* guarded by write_lock; false until a WELCOME */
    char prefix[PROTO_TOKEN_PREFIX]; /* guarded by write_lock: "<token> " */
};

static struct hyb_link g_hyb = {.tcp_fd = -1, .udp_fd = -1};

/* Sends frame over TCP (chat false) or, token first, over UDP (chat true). */
static int send_on(struct cli_session *s, bool chat, const char *frame, size_t len)
{
    struct hyb_link *l = s->tp_data;
    char buf[PROTO_TOKEN_PREFIX + CLI_MAX_FRAME + 2];
    if (len > CLI_MAX_FRAME)
        return -EMSGSIZE;
    int rc;
    pthread_mutex_lock(&l->write_lock);
    if (chat) {
        if (l->udp_fd < 0 || !l->have_token) {
            rc = -ENOTCONN;
        } else {
            memcpy(buf, l->prefix, PROTO_TOKEN_PREFIX);
            memcpy(buf + PROTO_TOKEN_PREFIX, frame, len);
            ssize_t n;
            do
                n = send(l->udp_fd, buf, PROTO_TOKEN_PREFIX + len, MSG_NOSIGNAL);
            while (n < 0 && errno == EINTR);
            rc = n < 0 ? -errno : 0;
        }
    } else {
        memcpy(buf, frame, len);
        buf[len] = '\n'; /* one write per frame: a frame is never split by another */
        /* a server that stopped reading holds us only until the session ends (Ctrl-C) */
        rc = l->tcp_fd < 0 ? -ENOTCONN
                           : net_write_until(l->tcp_fd, buf, len + 1, cli_stop_writes, s);
    }
    pthread_mutex_unlock(&l->write_lock);
    return rc;
}

/* MSG, TO and plain text travel over UDP with the token; everything else over TCP. */
static int hyb_send(struct cli_session *s, const char *frame, size_t len)
{
    struct proto_frame f;
    bool chat = proto_parse_client(frame, len, &f) == PROTO_OK &&
                (f.verb == PROTO_MSG || f.verb == PROTO_TO);
    return send_on(s, chat, frame, len);
}

/* Replaces the session's sockets (fd -1: none) and token (NULL: none); closes the old
 * sockets. */
static void set_fds(struct cli_session *s, int tcp_fd, int udp_fd, const uint64_t *token)
{
    struct hyb_link *l = s->tp_data;
    pthread_mutex_lock(&l->write_lock);
    int old_tcp = l->tcp_fd, old_udp = l->udp_fd;
    l->tcp_fd = tcp_fd;
    l->udp_fd = udp_fd;
    l->have_token = token != NULL;
    if (token != NULL)
        proto_token_prefix(*token, l->prefix);
    pthread_mutex_unlock(&l->write_lock);
    if (old_tcp >= 0 && old_tcp != tcp_fd)
        close(old_tcp);
    if (old_udp >= 0 && old_udp != udp_fd)
        close(old_udp);
}

/* One session's state (receiver thread only). */
struct hyb_rx {
    int tcp_fd, udp_fd;
    char welcome[160]; /* the WELCOME line, shown once the data path works */
    bool binding;      /* WELCOME seen, no datagram back yet */
    unsigned bind_tries;
    uint64_t next_bind_ms;
    struct cli_backoff *b;
};

static void send_bind(struct cli_session *s, struct hyb_rx *rx, uint64_t now)
{
    (void)send_on(s, true, "PING bind", 9); /* a lost one is sent again */
    rx->bind_tries++;
    rx->next_bind_ms = now + HYB_BIND_EVERY_MS;
}

/* WELCOME <id> <ip>:<port> <token> <udp_port>: open the data path. False: give up. */
static bool on_welcome(struct cli_session *s, struct hyb_rx *rx, const struct proto_frame *f,
                       const char *line, size_t len)
{
    if (!f->has_token || len >= sizeof(rx->welcome)) {
        cli_printf(s, "* WELCOME sem token: o servidor não está em modo híbrido?");
        return false;
    }
    if (rx->udp_fd >= 0) /* a repeated WELCOME: same session, same token */
        return true;
    struct sockaddr_in sa;
    int fd = -1;
    if (net_resolve(s->opt.host, f->udp_port, &sa) < 0 ||
        (fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        cli_printf(s, "* socket UDP: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    rx->udp_fd = fd;
    set_fds(s, rx->tcp_fd, fd, &f->token);
    memcpy(rx->welcome, line, len);
    rx->welcome[len] = '\0';
    rx->binding = true;
    rx->bind_tries = 0;
    send_bind(s, rx, clock_now_ms());
    return true;
}

/* One control line. False: end this session. */
static bool on_line(struct cli_session *s, struct hyb_rx *rx, const char *line, size_t len)
{
    struct proto_frame f;
    if (proto_parse_server(line, len, &f) == PROTO_OK && f.verb == PROTO_WELCOME)
        return on_welcome(s, rx, &f, line, len);
    if (cli_handle_frame(s, line, len, &f) != PROTO_OK)
        return true;
    return !proto_is_err(&f, PROTO_E_ID_IN_USE) || cli_retry_hello(s, rx->b);
}

static void on_datagram(struct cli_session *s, struct hyb_rx *rx, char *buf, size_t len)
{
    if (len > 0 && buf[len - 1] == '\n') /* one trailing LF (or CR LF) is optional */
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (rx->binding) { /* the data path works: now the session is usable */
        rx->binding = false;
        cli_backoff_reset(rx->b);
        struct proto_frame f;
        (void)cli_handle_frame(s, rx->welcome, strlen(rx->welcome), &f);
    }
    if (len == 9 && memcmp(buf, "PONG bind", 9) == 0)
        return;
    struct proto_frame f;
    (void)cli_handle_frame(s, buf, len, &f);
}

/* Runs one session on a connected control socket until it ends. */
static void run_session(struct cli_session *s, struct hyb_rx *rx, char *buf, char *dbuf)
{
    size_t have = 0;
    bool skipping = false; /* inside a line longer than CLI_RECV_MAX */
    if (cli_send_hello(s) < 0)
        return;
    while (!atomic_load(&s->quit)) {
        uint64_t now = clock_now_ms();
        if (rx->binding && now >= rx->next_bind_ms) {
            if (rx->bind_tries >= HYB_BIND_TRIES) {
                cli_printf(s, "* sem resposta pelo caminho UDP; reconectando...");
                return;
            }
            send_bind(s, rx, now);
        }
        int wait = rx->binding ? (int)(rx->next_bind_ms > now ? rx->next_bind_ms - now : 0) : -1;
        struct pollfd p[3] = {
            {rx->tcp_fd, POLLIN, 0}, {s->quit_fd[0], POLLIN, 0}, {rx->udp_fd, POLLIN, 0}};
        int n = poll(p, rx->udp_fd >= 0 ? 3 : 2, wait);
        if (n < 0 && errno != EINTR) {
            cli_fatal(s, 1, strerror(errno));
            return;
        }
        if (n <= 0 || (p[1].revents & POLLIN))
            continue; /* quit is checked above */
        if (rx->udp_fd >= 0 && (p[2].revents & (POLLIN | POLLERR))) {
            for (;;) {
                ssize_t r = recv(rx->udp_fd, dbuf, CLI_RECV_MAX, MSG_DONTWAIT);
                if (r < 0 && (errno == EINTR || errno == ECONNREFUSED))
                    continue; /* ICMP unreachable: the control connection will tell */
                if (r < 0)
                    break;
                on_datagram(s, rx, dbuf, (size_t)r);
            }
        }
        if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        ssize_t r = recv(rx->tcp_fd, buf + have, CLI_RECV_MAX + 2 - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return; /* EOF, reset, or our own shutdown(): the session is over */
        have += (size_t)r;
        size_t line_len, used;
        int k;
        while ((k = proto_next_line(buf, have, CLI_RECV_MAX, &line_len, &used)) != 0) {
            if (k < 0) { /* a hostile or broken server: drop the line, keep the link */
                skipping = true;
                have = 0;
                break;
            }
            if (!skipping && !on_line(s, rx, buf, line_len))
                return;
            skipping = false;
            memmove(buf, buf + used, have - used);
            have -= used;
        }
    }
}

static void *hyb_receiver(void *arg)
{
    struct cli_session *s = arg;
    struct cli_backoff b;
    cli_backoff_init(&b);
    char *buf = malloc(CLI_RECV_MAX + 2);
    char *dbuf = malloc(CLI_RECV_MAX + 1);
    if (buf == NULL || dbuf == NULL) {
        free(buf);
        free(dbuf);
        cli_fatal(s, 1, "out of memory");
        return NULL;
    }
    bool was_connected = false;
    while (!atomic_load(&s->quit)) {
        int fd, rc = net_connect_tcp(s->opt.host, s->opt.control_port,
                                     (int)s->opt.connect_timeout_ms, s->quit_fd[0], &fd);
        if (rc == 0) {
            set_fds(s, fd, -1, NULL);
            struct hyb_rx rx = {.tcp_fd = fd, .udp_fd = -1, .b = &b};
            if (!atomic_load(&s->quit))
                run_session(s, &rx, buf, dbuf);
            cli_lost(s);
            set_fds(s, -1, -1, NULL); /* the token dies with the control connection */
            if (atomic_load(&s->quit) || cli_bye_seen(s))
                break;
        }
        if (!cli_retry_wait(s, &b, rc, &was_connected, s->opt.control_port, "conexão de controle"))
            break;
    }
    set_fds(s, -1, -1, NULL);
    free(buf);
    free(dbuf);
    return NULL;
}

static int hyb_start(struct cli_session *s)
{
    struct hyb_link *l = &g_hyb;
    int rc = pthread_mutex_init(&l->write_lock, NULL);
    if (rc != 0)
        return -rc;
    s->tp_data = l;
    rc = pthread_create(&l->thread, NULL, hyb_receiver, s);
    if (rc != 0)
        return -rc;
    l->started = true;
    return 0;
}

static void hyb_stop(struct cli_session *s)
{
    struct hyb_link *l = s->tp_data;
    if (l->started)
        pthread_join(l->thread, NULL);
    l->started = false;
    pthread_mutex_destroy(&l->write_lock);
}

const struct cli_transport cli_hybrid_transport = {
    .prog = "udp_client",
    .name = "UDP (hybrid)",
    .default_port = 5001,
    .has_ping = false,
    .has_compress = false,
    .has_hybrid = true,
    .start = hyb_start,
    .send = hyb_send,
    .stop = hyb_stop,
};
