/* tcp_client: terminal chat client for tcp_server; reconnects with backoff when the
 * connection is lost. The shared parts live in client_*.c (client_common.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_backoff.h"
#include "client_common.h"
#include "client_frames.h"
#include "net.h"

struct tcp_link {
    pthread_t thread;
    bool started;
    /* Serializes writers (the main thread's chat, the receiver's HELLO/JOIN) so frames
     * never interleave, and keeps fd open while a write is in flight: the receiver takes it
     * before closing. It guards no state, only the use of the socket. */
    pthread_mutex_t write_lock;
    int fd; /* guarded by the session's lock; -1 while disconnected */
};

static struct tcp_link g_link = {.fd = -1};

static int tcp_send(struct cli_session *s, const char *frame, size_t len)
{
    struct tcp_link *l = s->tp_data;
    char buf[CLI_MAX_FRAME + 2];
    if (len > CLI_MAX_FRAME)
        return -EMSGSIZE;
    memcpy(buf, frame, len);
    buf[len] = '\n'; /* one write per frame: a frame is never split by another */
    pthread_mutex_lock(&l->write_lock);
    pthread_mutex_lock(&s->lock);
    int fd = l->fd;
    pthread_mutex_unlock(&s->lock);
    /* a server that stopped reading holds us only until the session ends (Ctrl-C) */
    int rc = fd < 0 ? -ENOTCONN : net_write_until(fd, buf, len + 1, cli_stop_writes, s);
    pthread_mutex_unlock(&l->write_lock);
    return rc;
}

static void set_fd(struct cli_session *s, int fd)
{
    struct tcp_link *l = s->tp_data;
    pthread_mutex_lock(&l->write_lock); /* no write is using the old fd now */
    pthread_mutex_lock(&s->lock);
    int old = l->fd;
    l->fd = fd;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&l->write_lock);
    if (old >= 0)
        close(old);
}

/* Reads frames until the connection ends. Returns when it is closed or the session quits. */
static void read_frames(struct cli_session *s, int fd, struct cli_backoff *b, char *buf)
{
    size_t len = 0;
    bool skipping = false; /* inside a line longer than CLI_RECV_MAX */
    while (!atomic_load(&s->quit)) {
        ssize_t n = recv(fd, buf + len, CLI_RECV_MAX + 2 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EOF, reset, or our own shutdown() */
        len += (size_t)n;
        size_t line_len, used;
        int r;
        while ((r = proto_next_line(buf, len, CLI_RECV_MAX, &line_len, &used)) != 0) {
            if (r < 0) { /* a hostile or broken server: drop the line, keep the link */
                skipping = true;
                len = 0;
                break;
            }
            if (!skipping) {
                struct proto_frame f;
                if (cli_handle_frame(s, buf, line_len, &f) == PROTO_OK) {
                    if (f.verb == PROTO_WELCOME) {
                        cli_backoff_reset(b);
                    } else if (proto_is_err(&f, PROTO_E_ID_IN_USE) && !cli_retry_hello(s, b)) {
                        return;
                    }
                }
            }
            skipping = false;
            memmove(buf, buf + used, len - used);
            len -= used;
        }
    }
}

static void *tcp_receiver(void *arg)
{
    struct cli_session *s = arg;
    struct cli_backoff b;
    cli_backoff_init(&b);
    char *buf = malloc(CLI_RECV_MAX + 2);
    if (buf == NULL) {
        cli_fatal(s, 1, "out of memory");
        return NULL;
    }
    bool was_connected = false;
    while (!atomic_load(&s->quit)) {
        int fd, rc = net_connect_tcp(s->opt.host, s->opt.port, (int)s->opt.connect_timeout_ms,
                                     s->quit_fd[0], &fd);
        if (rc == 0) {
            set_fd(s, fd);
            if (atomic_load(&s->quit))
                break;
            if (cli_send_hello(s) == 0)
                read_frames(s, fd, &b, buf);
            cli_lost(s);
            set_fd(s, -1);
            if (atomic_load(&s->quit) || cli_bye_seen(s))
                break;
        }
        if (!cli_retry_wait(s, &b, rc, &was_connected, s->opt.port, "conexão"))
            break;
    }
    set_fd(s, -1);
    free(buf);
    return NULL;
}

static int tcp_start(struct cli_session *s)
{
    struct tcp_link *l = &g_link;
    int rc = pthread_mutex_init(&l->write_lock, NULL);
    if (rc != 0)
        return -rc;
    s->tp_data = l;
    rc = pthread_create(&l->thread, NULL, tcp_receiver, s);
    if (rc != 0)
        return -rc;
    l->started = true;
    return 0;
}

static void tcp_wake(struct cli_session *s)
{
    struct tcp_link *l = s->tp_data;
    pthread_mutex_lock(&s->lock);
    if (l->fd >= 0)
        (void)shutdown(l->fd, SHUT_RDWR); /* best effort: unblocks the receiver's recv */
    pthread_mutex_unlock(&s->lock);
}

static void tcp_stop(struct cli_session *s)
{
    struct tcp_link *l = s->tp_data;
    if (l->started)
        pthread_join(l->thread, NULL);
    l->started = false;
    pthread_mutex_destroy(&l->write_lock);
}

static const struct cli_transport tcp_transport = {
    .prog = "tcp_client",
    .name = "TCP",
    .default_port = 5000,
    .has_ping = false,
    .has_compress = false,
    .start = tcp_start,
    .send = tcp_send,
    .wake = tcp_wake,
    .stop = tcp_stop,
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv, &tcp_transport);
}
