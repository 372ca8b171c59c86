/* udp_hybrid: the hybrid mode's TCP control connections (udp_server --hybrid). One small
 * thread per connection: blocking reads of lines, HELLO/WHO/JOIN/PING/BYE, and the end of
 * the session the moment the connection closes. Chat travels over UDP (udp_handle.c).
 *
 * Threads: the acceptor starts a joinable thread per connection; a finished thread moves
 * its record to ctls_dead, and the acceptor (or udp_hybrid_stop) joins and frees it. */
#include "udp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#define HYB_BACKLOG 1024
#define HYB_STACK_SIZE (128u * 1024) /* a control thread needs little */
#define HYB_SEND_TIMEOUT_S 5         /* a control peer that does not read is dropped */

/* --- one connection --- */

static void ctl_send(struct udp_ctl *ctl, int len, const char *frame)
{
    if (len >= 0)
        (void)udp_ctl_write(ctl, frame, (size_t)len); /* a broken peer shows up on read */
}

static void ctl_err(struct udp_ctl *ctl, enum proto_err e, const char *detail)
{
    char buf[256];
    ctl_send(ctl, proto_fmt_err(buf, sizeof(buf), e, detail), buf);
}

/* Sets the receive timeout: the HELLO deadline, or none (0) once registered. */
static void set_rcvtimeo(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        log_line("ERROR", "setsockopt SO_RCVTIMEO: %s", strerror(errno)); /* best effort */
}

/* Handles one control line. Returns false when the connection should close (BYE). */
static bool ctl_line(struct udp_ctl *ctl, const char *line, size_t len)
{
    struct udp_server *s = ctl->srv;
    char buf[128];
    struct proto_frame f;
    if (len == 0)
        return true; /* an empty line: nothing to answer */
    enum proto_err e = proto_parse_client(line, len, &f);
    if (e != PROTO_OK) {
        ctl_err(ctl, e, NULL);
        return true;
    }
    if (ctl->client == NULL && f.verb != PROTO_HELLO && f.verb != PROTO_PING) {
        ctl_err(ctl, PROTO_E_NOT_REG, NULL);
        return true;
    }
    switch (f.verb) {
    case PROTO_HELLO:
        pthread_mutex_lock(&s->ctl_lock);
        s->ctl_ctx.ctl = ctl;
        e = udp_hyb_register(&s->ctl_ctx, ctl, &f);
        s->ctl_ctx.ctl = NULL;
        pthread_mutex_unlock(&s->ctl_lock);
        (void)udp_ctl_flush(ctl); /* a failure shuts the connection: its recv sees it */
        if (e != PROTO_OK)
            ctl_err(ctl, e, NULL);
        else
            set_rcvtimeo(ctl->fd, 0);
        return true;
    case PROTO_WHO:
    case PROTO_JOIN:
        pthread_mutex_lock(&s->ctl_lock);
        s->ctl_ctx.ctl = ctl;
        udp_hyb_command(&s->ctl_ctx, ctl->client, &f);
        s->ctl_ctx.ctl = NULL;
        pthread_mutex_unlock(&s->ctl_lock);
        (void)udp_ctl_flush(ctl); /* a failure shuts the connection: its recv sees it */
        return true;
    case PROTO_PING:
        if (f.text_len < sizeof(buf) - 8) {
            ctl_send(ctl, proto_fmt_pong(buf, sizeof(buf), f.text, f.text_len), buf);
        } else { /* a long token: the frame's own buffer is not ours to write; format apart */
            char *big = malloc(f.text_len + 8);
            if (big != NULL)
                ctl_send(ctl, proto_fmt_pong(big, f.text_len + 8, f.text, f.text_len), big);
            free(big);
        }
        return true;
    case PROTO_BYE:
        ctl_send(ctl, proto_fmt_bye(buf, sizeof(buf), PROTO_R_QUIT), buf);
        ctl->bye = true;
        return false;
    default: /* MSG, TO and plain text */
        ctl_err(ctl, PROTO_E_BAD_FRAME, "chat goes over UDP with the session token");
        return true;
    }
}

/* Reads lines until the peer leaves; returns why the session ends. */
static enum proto_reason ctl_loop(struct udp_ctl *ctl, char *buf, size_t cap)
{
    struct udp_server *s = ctl->srv;
    size_t max = s->cfg.max_frame, have = 0;
    bool discard = false; /* skipping the rest of a too long line */
    for (;;) {
        ssize_t n = recv(ctl->fd, buf + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (atomic_load(&s->stopping))
            return PROTO_R_SHUTDOWN;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { /* SO_RCVTIMEO: no HELLO */
            ctl_err(ctl, PROTO_E_TIMEOUT, NULL);
            return PROTO_R_TIMEOUT;
        }
        if (n < 0)
            return PROTO_R_ERROR;
        if (n == 0)
            return PROTO_R_QUIT; /* a clean close ends the session as BYE does */
        have += (size_t)n;
        for (;;) {
            size_t ll, used;
            int r = proto_next_line(buf, have, max, &ll, &used);
            if (r < 0) { /* more than max bytes without LF */
                if (!discard)
                    ctl_err(ctl, PROTO_E_TOO_LONG, NULL);
                discard = true;
                have = 0;
                break;
            }
            if (r == 0)
                break;
            bool go_on = true;
            if (discard)
                discard = false; /* the tail of the too long line */
            else
                go_on = ctl_line(ctl, buf, ll);
            memmove(buf, buf + used, have - used);
            have -= used;
            if (!go_on)
                return PROTO_R_QUIT;
        }
    }
}

static void *ctl_main(void *arg)
{
    struct udp_ctl *ctl = arg;
    struct udp_server *s = ctl->srv;
    enum proto_reason why = PROTO_R_ERROR;
    size_t cap = s->cfg.max_frame + 2; /* proto_next_line: max bytes plus CR LF */
    char *buf = malloc(cap);
    if (buf != NULL)
        why = ctl_loop(ctl, buf, cap);
    free(buf);
    pthread_mutex_lock(&ctl->wlock);
    int dead = ctl->dead;
    pthread_mutex_unlock(&ctl->wlock);
    if (dead == -EAGAIN || dead == -EWOULDBLOCK)
        why = PROTO_R_SLOW; /* it did not read its answers for HYB_SEND_TIMEOUT_S */
    else if (dead != 0)
        why = PROTO_R_ERROR;
    if (atomic_load(&s->stopping))
        why = PROTO_R_SHUTDOWN;

    pthread_mutex_lock(&s->ctl_lock);
    udp_hyb_remove(&s->ctl_ctx, ctl, why);
    pthread_mutex_unlock(&s->ctl_lock);

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

    struct udp_ctl *ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL) {
        close(fd);
        return;
    }
    ctl->srv = s;
    ctl->fd = fd;
    net_addr_str(&peer, ctl->addr);
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
        char b[128];
        int n = proto_fmt_err(b, sizeof(b), PROTO_E_FULL, NULL);
        if (n > 0) {
            b[n++] = '\n';
            (void)send(fd, b, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT); /* best effort */
        }
        log_line("WARN", "Conexão de controle de %s recusada: %s", ctl->addr,
                 full ? "servidor cheio" : strerror(rc));
        pthread_mutex_destroy(&ctl->wlock);
        free(ctl);
        close(fd);
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
