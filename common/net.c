/* net: socket helpers (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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

int net_connect_tcp(const char *host, uint16_t port, int *fd)
{
    struct sockaddr_in sa;
    int rc = net_resolve(host, port, &sa);
    if (rc < 0)
        return rc;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        rc = -errno;
        close(s);
        return rc;
    }
    int one = 1;
    /* best effort: chat frames are small and latency-sensitive */
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd = s;
    return 0;
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

int net_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
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
