/* udp: the load generator's UDP transport: one connected datagram socket per client (its own
 * port; the kernel filters other senders), a frame per datagram, zlib with --compress, and
 * batched reads that keep the kernel's receive time of each datagram (see transport.h). The
 * hybrid transport reads its data path with the same code. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "transport.h"
#include "worker.h"

int lg_udp_socket(const struct lg_worker *w, const struct lg_client *c,
                  const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* best effort: without kernel receive times the rx lag histogram stays empty */
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    int rc = lg_sock_bind_source(fd, w, c, false);
    if (rc == 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd); /* nothing useful to do if it fails */
        return rc;
    }
    return fd;
}

/* --- receiving --- */

/* One datagram: decompressed when it carries the mark, its frame handed on. Returns whether
 * it was an ACK or FROM of a measured message. */
static bool datagram(struct lg_worker *w, struct lg_client *c, char *buf, size_t len, uint64_t now)
{
    size_t wire = len;
    w->st.bytes_recv_wire_total += len;
    const char *frame = buf;
    if (len > 0 && (unsigned char)buf[0] == PROTO_ZMARK) {
        int z = zframe_decompress(&w->z, buf, len, w->scratch2, LG_ZBUF);
        if (z < 0) {
            w->st.errors++;
            return false;
        }
        frame = w->scratch2;
        len = (size_t)z;
    }
    w->st.bytes_recv_plain_total += len;
    size_t plain = len;
    if (len > 0 && frame[len - 1] == '\n')
        len--;
    if (len > 0 && frame[len - 1] == '\r')
        len--;
    bool meas = lg_client_frame(w, c, frame, len, now);
    if (meas) {
        w->st.bytes_recv_wire += wire;
        w->st.bytes_recv_plain += plain;
    }
    return meas;
}

/* The kernel's receive time of a datagram (SO_TIMESTAMPNS, CLOCK_REALTIME), or 0. */
static uint64_t rx_kernel_ns(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        }
    }
    return 0;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Level-triggered: one recvmmsg takes what is queued (up to LG_RX_BATCH datagrams); a short
 * batch means the queue is empty, which saves the EAGAIN call a recv loop ends with. */
void lg_udp_read(struct lg_worker *w, struct lg_client *c, int fd)
{
    struct mmsghdr msgs[LG_RX_BATCH];
    struct iovec iov[LG_RX_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl[LG_RX_BATCH];
    for (;;) {
        memset(msgs, 0, sizeof(msgs));
        for (int i = 0; i < LG_RX_BATCH; i++) {
            iov[i].iov_base = w->rx + (size_t)i * LG_RX_SIZE;
            iov[i].iov_len = LG_RX_SIZE;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            // cppcheck-suppress legacyUninitvar ; only its address is taken: the kernel fills it
            msgs[i].msg_hdr.msg_control = ctl[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
        }
        int n = recvmmsg(fd, msgs, LG_RX_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            w->st.errors++; /* ECONNREFUSED: ICMP port unreachable, no server there */
            if (errno == ECONNREFUSED && c->state != LG_READY)
                lg_client_fail(w, c);
            return;
        }
        uint64_t now = clock_now_ns(), wall = realtime_ns();
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                w->st.errors++; /* larger than any frame we send or expect */
                continue;
            }
            bool meas = datagram(w, c, iov[i].iov_base, msgs[i].msg_len, now);
            /* rx lag: how long the datagram waited in our socket for this worker */
            uint64_t k = rx_kernel_ns(&msgs[i].msg_hdr);
            if (meas && k != 0 && wall != 0)
                lg_meter_record(&w->meter, LG_RX_LAG, wall > k ? wall - k : 0);
            if (c->state == LG_FAILED)
                return;
        }
        if (n < LG_RX_BATCH)
            return;
    }
}

static void udp_io(evutil_socket_t fd, short what, void *arg)
{
    struct lg_client *c = arg;
    if (what & EV_READ)
        lg_udp_read(c->w, c, (int)fd);
}

/* --- the transport --- */

static int udp_launch(struct lg_worker *w, struct lg_client *c)
{
    c->fd = lg_udp_socket(w, c, &w->cfg->server);
    if (c->fd < 0)
        return c->fd;
    c->ev = event_new(w->base, c->fd, EV_READ | EV_PERSIST, udp_io, c);
    if (c->ev == NULL || event_add(c->ev, NULL) < 0)
        return -ENOMEM;
    lg_client_connected(w, c, c->launch_ns);
    return 0;
}

struct lg_tx lg_udp_sendv(struct lg_worker *w, struct lg_client *c, int fd, const struct iovec *iov,
                          int iovcnt, size_t plain)
{
    struct lg_tx tx = {.plain = plain};
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    w->st.bytes_sent_plain_total += plain;
    ssize_t n;
    tx.tx_ns = clock_now_ns(); /* after compressing: raw latency is the network's */
    do {
        n = fd >= 0 ? sendmsg(fd, &mh, 0) : -1;
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        /* ENOBUFS/EAGAIN: dropped at our end; ECONNREFUSED: an earlier datagram met no
         * server. Either way the datagram is lost, and the timeout will say so. */
        w->st.errors++;
        w->st.send_errors++;
        return tx;
    }
    c->last_tx_ns = clock_now_ns();
    w->st.bytes_sent_wire_total += (uint64_t)n;
    tx.wire = (uint64_t)n;
    return tx;
}

/* A frame in one datagram, compressed with --compress. */
static struct lg_tx udp_send(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    struct iovec iov = {buf, len};
    if (w->cfg->compress) {
        int z = zframe_compress(&w->z, buf, len, w->scratch2, LG_ZBUF);
        if (z < 0) {
            w->st.errors++;
            return (struct lg_tx){0};
        }
        iov = (struct iovec){w->scratch2, (size_t)z};
    }
    return lg_udp_sendv(w, c, c->fd, &iov, 1, len);
}

/* HELLO and JOIN go plain even with --compress: a server answers an address it does not
 * know with no more bytes than it received, and the HELLO's padding compresses to nothing
 * (PROTOCOL.md, "Reflection"). The server answers plain until the first compressed MSG. */
static struct lg_tx udp_send_ctl(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    struct iovec iov = {buf, len};
    return lg_udp_sendv(w, c, c->fd, &iov, 1, len);
}

static void udp_close(struct lg_client *c)
{
    lg_sock_close(&c->fd, &c->ev);
}

const struct lg_transport lg_udp = {
    .name = "udp",
    .upper = "UDP",
    .default_port = 5001,
    .datagrams = true,
    .connectionless = true,
    .compress = true,
    .launch = udp_launch,
    .send_ctl = udp_send_ctl,
    .send_msg = udp_send,
    .welcome = lg_client_join,
    .pong = NULL,
    .retry = lg_client_retry,
    .close = udp_close,
};
