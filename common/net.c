/* net: socket helpers (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

int net_resolve(const char *host, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return -EINVAL;
    sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

static int bound_socket(const char *host, uint16_t port, int type, int *fd)
{
    struct sockaddr_in sa;
    int rc = net_resolve(host, port, &sa);
    if (rc < 0)
        return rc;
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int one = 1;
    /* best effort: only shortens TIME_WAIT trouble on restart */
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

int net_listen_tcp(const char *host, uint16_t port, int backlog, int *fd)
{
    int s = -1, rc = bound_socket(host, port, SOCK_STREAM, &s);
    if (rc < 0)
        return rc;
    if (listen(s, backlog) < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

int net_bind_udp(const char *host, uint16_t port, int *fd)
{
    return bound_socket(host, port, SOCK_DGRAM, fd);
}

/* Waits for a non-blocking connect on s to finish: 0 or the connection's -errno,
 * -ETIMEDOUT once end_ms (CLOCK_MONOTONIC; 0: none) has passed, -ECANCELED as soon as
 * cancel_fd is readable. */
static int wait_connected(int s, uint64_t end_ms, int cancel_fd)
{
    for (;;) {
        int ms = -1;
        if (end_ms != 0) {
            uint64_t now = clock_now_ms();
            if (now >= end_ms)
                return -ETIMEDOUT;
            ms = end_ms - now > 60000 ? 60000 : (int)(end_ms - now);
        }
        struct pollfd p[2] = {{s, POLLOUT, 0}, {cancel_fd, POLLIN, 0}};
        int n = poll(p, cancel_fd >= 0 ? 2 : 1, ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue; /* a signal or the deadline: checked above */
        if (cancel_fd >= 0 && p[1].revents != 0)
            return -ECANCELED;
        if (p[0].revents != 0) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return -errno;
            return -err;
        }
    }
}

int net_connect_tcp(const char *host, uint16_t port, int timeout_ms, int cancel_fd, int *fd)
{
    struct sockaddr_in sa;
    int rc = net_resolve(host, port, &sa);
    if (rc < 0)
        return rc;
    /* non-blocking while connecting: a blocking connect(2) to an address that drops
     * packets holds its thread for the whole SYN retry schedule, whatever the caller wants */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    uint64_t end = timeout_ms < 0 ? 0 : clock_now_ms() + (uint64_t)timeout_ms;
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = errno == EINPROGRESS ? wait_connected(s, end, cancel_fd) : -errno;
        if (rc < 0)
            goto out;
    }
    if ((rc = net_set_nonblock(s, 0)) < 0)
        goto out;
    int one = 1;
    /* best effort: chat frames are small and latency-sensitive */
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd = s;
    return 0;
out:
    close(s);
    return rc;
}

int net_local_port(int fd, uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -errno;
    *port = ntohs(sa.sin_port);
    return 0;
}

int net_write_until(int fd, const void *buf, size_t len, bool (*stop)(void *arg), void *arg)
{
    const char *p = buf;
    int flags = MSG_NOSIGNAL | (stop != NULL ? MSG_DONTWAIT : 0);
    bool sock = true; /* until send(2) says otherwise */
    while (len > 0) {
        ssize_t n = sock ? send(fd, p, len, flags) : write(fd, p, len);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int err = errno;
        if (err == ENOTSOCK && sock) {
            sock = false; /* a pipe, a file or a terminal */
            continue;
        }
        /* without stop, EAGAIN is an answer: SO_SNDTIMEO ran out (the servers' control
         * connections rely on it), or the caller made the fd non-blocking */
        if ((err != EINTR && err != EAGAIN && err != EWOULDBLOCK) || (stop == NULL && err != EINTR))
            return -err;
        if (stop != NULL && stop(arg))
            return -ECANCELED;
        if (err == EINTR)
            continue;
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, NET_WAIT_SLICE_MS) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

int net_write_all(int fd, const void *buf, size_t len)
{
    return net_write_until(fd, buf, len, NULL, NULL);
}

int net_set_sockbuf(int fd, int rcv, int bytes)
{
    if (setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &bytes, sizeof(bytes)) ==
        0)
        return 0;
    if (setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, &bytes, sizeof(bytes)) == 0)
        return 0;
    return -errno;
}

int net_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

char *net_addr_str(const struct sockaddr_in *sa, char *out)
{
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip)) == NULL)
        strcpy(ip, "?");
    snprintf(out, NET_ADDRSTRLEN, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return out;
}

int net_raise_nofile(long *now)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -errno;
    }
    *now = (long)rl.rlim_cur;
    return 0;
}
