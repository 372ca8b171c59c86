/* client: the protocol of one simulated client over TCP, UDP or hybrid, run on its worker's
 * thread.
 *
 * Set-up: (TCP connect,) HELLO -> WELCOME, JOIN r<room> -> JOINED. Hybrid: TCP connect,
 * HELLO <id> <room> -> WELCOME with the token, then "<token> PING" on UDP -> PONG (the data
 * path works; the set-up time ends there). Then MSG frames on the
 * open-loop schedule (worker.c decides when), ACKs and FROMs matched against a ring of
 * in-flight messages indexed by seq. Nothing here takes a lock. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lg.h"
#include "net.h"
#include "parse.h"
#include "proto.h"

static void client_io(evutil_socket_t fd, short what, void *arg);

static bool is_udp(const struct lg_worker *w)
{
    return w->cfg->proto == LG_UDP;
}

static bool is_hybrid(const struct lg_worker *w)
{
    return w->cfg->proto == LG_HYBRID;
}

/* Chat travels over UDP (plain UDP or hybrid): lost frames, timeouts, no ordering promise. */
static bool udp_data(const struct lg_worker *w)
{
    return w->cfg->proto != LG_TCP;
}

static bool measured(const struct lg_client *c, uint64_t seq)
{
    return seq >= c->first_measured;
}

static int fmt_id(const struct lg_worker *w, uint32_t index, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s%" PRIu32, w->id_prefix, index);
}

/* Re-registers the client's event for reading, plus writing when asked. */
static int set_events(struct lg_worker *w, struct lg_client *c, bool write)
{
    short what = EV_READ | EV_PERSIST | (write ? EV_WRITE : 0);
    if (c->ev != NULL && event_get_events(c->ev) == what)
        return 0;
    if (c->ev == NULL)
        c->ev = event_new(w->base, c->fd, what, client_io, c);
    else if (event_del(c->ev) < 0 || event_assign(c->ev, w->base, c->fd, what, client_io, c) < 0)
        return -1;
    if (c->ev == NULL || event_add(c->ev, NULL) < 0)
        return -1;
    c->want_write = write;
    return 0;
}

static void handshake_over(struct lg_worker *w, struct lg_client *c)
{
    if (c->state == LG_CONNECTING || c->state == LG_HELLO || c->state == LG_JOINING)
        w->handshakes--;
}

/* A client's error affects that client only: it is closed and counted. */
void lg_client_fail(struct lg_worker *w, struct lg_client *c)
{
    if (c->state == LG_FAILED)
        return;
    handshake_over(w, c);
    if (c->state == LG_READY) {
        /* a live client lost its connection; its in-flight frames count as lost */
        w->st.errors++;
        w->st.disconnects++;
        atomic_fetch_add(&w->n_dropped, 1);
    } else {
        w->st.connect_failed++;
        atomic_fetch_add(&w->n_failed, 1);
    }
    c->state = LG_FAILED;
    lg_client_close(c);
}

void lg_client_close(struct lg_client *c)
{
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* nothing useful to do if it fails */
        c->fd = -1;
    }
    if (c->uev != NULL) {
        event_free(c->uev);
        c->uev = NULL;
    }
    if (c->ufd >= 0) {
        close(c->ufd); /* nothing useful to do if it fails */
        c->ufd = -1;
    }
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->wcap = 0;
}

/* --- sending --- */

static int tcp_queue(struct lg_client *c, const char *p, size_t len)
{
    /* a server that stopped reading: give up on this client rather than grow without end */
    if (c->wlen + len > LG_WBUF_MAX)
        return -ENOBUFS;
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + len)
            cap *= 2;
        char *b = realloc(c->wbuf, cap);
        if (b == NULL)
            return -ENOMEM;
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, len);
    c->wlen += len;
    return 0;
}

/* Sends what the non-blocking socket takes now: the bytes sent (possibly fewer than len,
 * EAGAIN ends it), or -errno. */
static ssize_t send_some(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        off += (size_t)n;
    }
    return (ssize_t)off;
}

static int tcp_flush(struct lg_worker *w, struct lg_client *c)
{
    ssize_t sent = send_some(c->fd, c->wbuf, c->wlen);
    if (sent < 0)
        return (int)sent;
    size_t off = (size_t)sent;
    memmove(c->wbuf, c->wbuf + off, c->wlen - off);
    c->wlen -= off;
    return set_events(w, c, c->wlen > 0) < 0 ? -EIO : 0;
}

/* Hybrid: one datagram "<token> <frame>" on the data path (two iovecs, no copy). Like UDP,
 * a failure is a lost datagram, counted. */
static void hyb_send_data(struct lg_worker *w, struct lg_client *c, const char *buf, size_t len)
{
    struct iovec iov[2] = {{c->token, sizeof(c->token)}, {(void *)buf, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    w->st.bytes_sent_plain_total += sizeof(c->token) + len;
    ssize_t n;
    w->tx_ns = clock_now_ns();
    do {
        n = c->ufd >= 0 ? sendmsg(c->ufd, &mh, 0) : -1;
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        w->st.errors++;
        w->st.send_errors++;
        return;
    }
    c->last_tx_ns = clock_now_ns();
    w->st.bytes_sent_wire_total += (uint64_t)n;
}

/* Sends one frame (no terminator in buf; buf has room for one more byte). Returns 0, or a
 * negative errno after which the client must be failed (TCP only). */
static int send_frame(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    if (is_udp(w)) {
        const char *out = buf;
        size_t olen = len;
        if (w->cfg->compress) {
            int z = zframe_compress(&w->z, buf, len, w->scratch2, LG_ZBUF);
            if (z < 0) {
                w->st.errors++;
                return 0;
            }
            out = w->scratch2;
            olen = (size_t)z;
        }
        w->st.bytes_sent_plain_total += len;
        ssize_t n;
        w->tx_ns = clock_now_ns(); /* after compressing: raw latency is the network's */
        do {
            n = send(c->fd, out, olen, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            /* ENOBUFS/EAGAIN: dropped at our end; ECONNREFUSED: an earlier datagram met no
             * server. Either way the datagram is lost, and the timeout will say so. */
            w->st.errors++;
            w->st.send_errors++;
            return 0;
        }
        c->last_tx_ns = clock_now_ns();
        w->st.bytes_sent_wire_total += olen;
        return 0;
    }
    buf[len++] = '\n';
    w->st.bytes_sent_plain_total += len;
    w->st.bytes_sent_wire_total += len;
    w->tx_ns = clock_now_ns();
    if (c->wlen > 0) /* keep order behind what is queued */
        return tcp_queue(c, buf, len);
    ssize_t sent = send_some(c->fd, buf, len);
    if (sent < 0)
        return (int)sent;
    size_t off = (size_t)sent;
    if (off == len)
        return 0;
    if (tcp_queue(c, buf + off, len - off) < 0 || set_events(w, c, true) < 0)
        return -ENOMEM;
    return 0;
}

static void send_hello(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char id[48], room[24], buf[96];
    fmt_id(w, c->index, id, sizeof(id));
    snprintf(room, sizeof(room), "r%" PRIu32, c->room);
    /* straight into the room (PROTOCOL.md: no JOINED storm in the lobby); the JOIN that
     * follows WELCOME is answered with JOINED whether or not the server took the room */
    int len = proto_fmt_hello_in(buf, sizeof(buf) - 1, id, room);
    c->state = LG_HELLO;
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    if (len < 0 || send_frame(w, c, buf, (size_t)len) < 0)
        lg_client_fail(w, c);
}

static void send_join(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf) - 1, "JOIN r%" PRIu32, c->room);
    c->state = LG_JOINING;
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    if (send_frame(w, c, buf, (size_t)len) < 0)
        lg_client_fail(w, c);
}

/* UDP: the server forgot us (its keep-alive timeout, a restart). PROTOCOL.md says register
 * again: HELLO and JOIN at once, at most once a second, while the schedule goes on (what it
 * sends before the server has us again is lost, and counted so). The server's count in ACKs
 * restarts, so the uplink/downlink split of such a client is approximate. */
static void reregister(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char id[48], room[24], buf[96];
    fmt_id(w, c->index, id, sizeof(id));
    snprintf(room, sizeof(room), "r%" PRIu32, c->room);
    /* straight into the room (PROTOCOL.md: no JOINED storm in the lobby); the JOIN that
     * follows WELCOME is answered with JOINED whether or not the server took the room */
    int len = proto_fmt_hello_in(buf, sizeof(buf) - 1, id, room);
    if (len > 0)
        (void)send_frame(w, c, buf, (size_t)len); /* UDP: fails only locally, counted */
    len = snprintf(buf, sizeof(buf) - 1, "JOIN r%" PRIu32, c->room);
    (void)send_frame(w, c, buf, (size_t)len);
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    w->st.reregistered++;
}

static int grow_ring(struct lg_client *c)
{
    uint32_t n = (c->mask + 1) * 2;
    struct lg_slot *r = calloc(n, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= c->mask; i++)
        if (c->ring[i].used)
            r[c->ring[i].seq & (n - 1)] = c->ring[i];
    free(c->ring);
    c->ring = r;
    c->mask = n - 1;
    return 0;
}

void lg_client_send_msg(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    const struct lg_config *cfg = w->cfg;
    uint64_t seq = c->next_seq;
    uint64_t intended = lg_sched_peek(&c->sched);
    lg_sched_advance(&c->sched);
    bool meas = intended >= w->warm_end;
    if (meas && c->first_measured == UINT64_MAX)
        c->first_measured = seq;
    while (c->ring[seq & c->mask].used) {
        if (grow_ring(c) < 0) {
            w->st.errors++;
            return; /* the schedule moved on: this message is simply not sent */
        }
    }
    char *buf = w->scratch;
    int len = snprintf(buf, 64, "MSG %" PRIu64 " %" PRIu64 " ", seq, intended);
    size_t off = cfg->size ? (size_t)(lg_rng_next(&w->rng) % (w->pool_len - cfg->size)) : 0;
    memcpy(buf + len, w->pool + off, cfg->size);
    size_t flen = (size_t)len + cfg->size;
    if (cfg->size == 0)
        flen--; /* "MSG <seq> <t_ns>" with an empty text: drop the trailing space */
    struct lg_slot *s = &c->ring[seq & c->mask];
    s->seq = seq;
    s->intended_ns = intended;
    s->sent_ns = 0; /* set below, from just before the send */
    s->last_from_ns = 0;
    s->fan_left = c->room_members > 0 ? c->room_members - 1 : 0;
    s->acked = 0;
    s->used = 1;
    c->next_seq++;
    c->sent_all++;
    w->cur->sent++;
    (void)now;
    uint64_t wire0 = w->st.bytes_sent_wire_total, plain0 = w->st.bytes_sent_plain_total;
    int rc = 0;
    w->tx_ns = 0;
    if (is_hybrid(w))
        hyb_send_data(w, c, buf, flen);
    else
        rc = send_frame(w, c, buf, flen);
    /* the send time is taken after formatting and compressing, just before send(): raw
     * latency is the network and the server; the lag holds the load generator's own delay */
    s->sent_ns = w->tx_ns != 0 ? w->tx_ns : clock_now_ns();
    if (meas) { /* what this MSG added to the totals (TCP: queued bytes count as sent) */
        w->st.sent++;
        w->st.fanout_expected += s->fan_left;
        hist_record(&w->st.lag, s->sent_ns > intended ? s->sent_ns - intended : 0);
        w->st.bytes_sent_wire += w->st.bytes_sent_wire_total - wire0;
        w->st.bytes_sent_plain += w->st.bytes_sent_plain_total - plain0;
    }
    if (rc < 0)
        lg_client_fail(w, c);
}

/* --- receiving --- */

static void on_ack(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                   uint64_t now)
{
    if (f->seq == PROTO_NO_SEQ)
        return;
    struct lg_slot *s = &c->ring[f->seq & c->mask];
    bool found = s->used && s->seq == f->seq;
    /* an unknown send time must not disturb the jitter: pretend the transit did not change */
    uint64_t send_ns =
        found ? s->sent_ns
              : (c->ack_ss.have_transit ? now - (uint64_t)c->ack_ss.last_transit_ns : now);
    enum seq_kind k = seqstats_arrive(&c->ack_ss, f->seq, send_ns, now);
    bool meas = measured(c, f->seq);
    w->rx_measured = meas;
    if (k != SEQ_IN_ORDER && !udp_data(w))
        w->st.tcp_disorder++;
    if (k == SEQ_DUPLICATE) {
        if (meas)
            w->st.duplicates++;
        return;
    }
    if (!c->have_hi || f->seq > c->hi_seq) {
        c->have_hi = true;
        c->hi_seq = f->seq;
        c->hi_n = f->n;
    }
    if (!meas && (!c->have_base || f->seq > c->base_seq)) {
        c->have_base = true;
        c->base_seq = f->seq;
        c->base_n = f->n;
    }
    if (meas) { /* the running estimate as this arrival left it */
        w->st.jitter_sum_ns += c->ack_ss.jitter_ns;
        w->st.jitter_n++;
    }
    if (meas && (k == SEQ_REORDERED || k == SEQ_TOO_OLD))
        w->st.reordered++;
    if (meas && k == SEQ_TOO_OLD)
        w->st.too_old++;
    bool expired =
        udp_data(w) && found && now - s->sent_ns > (uint64_t)w->cfg->timeout_ms * 1000000u;
    if (!found || s->acked || expired) {
        if (meas)
            w->st.late++; /* after its timeout: counted as lost (now, or by the next sweep) */
        return;
    }
    s->acked = 1;
    w->acks_seen++;
    w->cur->acked++;
    hist_record(&w->cur->ack, now - s->intended_ns);
    if (meas) {
        w->st.acked++;
        hist_record(&w->st.ack, now - s->intended_ns);
        hist_record(&w->st.ack_raw, now - s->sent_ns);
    }
}

/* Index of the sender from one of our ids ("L<pid>-<index>"), or UINT32_MAX. */
static uint32_t sender_index(const struct lg_worker *w, const struct proto_frame *f)
{
    if (f->id_len <= w->id_prefix_len || memcmp(f->id, w->id_prefix, w->id_prefix_len) != 0)
        return UINT32_MAX;
    uint64_t v;
    if (parse_u64_span(f->id + w->id_prefix_len, f->id_len - w->id_prefix_len, w->cfg->clients - 1,
                       &v) < 0)
        return UINT32_MAX;
    return (uint32_t)v;
}

static void on_from(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                    uint64_t now)
{
    uint32_t si = sender_index(w, f);
    if (si == UINT32_MAX || f->seq == PROTO_NO_SEQ)
        return; /* not one of ours */
    struct lg_client *snd = &w->clients[si];
    if (snd->room != c->room || snd->w != w)
        return;
    uint64_t t_ns;
    if (parse_u64_prefix(f->text, f->text_len, &t_ns) == 0) {
        w->st.errors++;
        return;
    }
    bool meas = measured(snd, f->seq);
    w->rx_measured = meas;
    if (c->from_ss != NULL) {
        uint32_t pos = si - c->room * w->cfg->room_size;
        enum seq_kind k = seqstats_arrive(&c->from_ss[pos], f->seq, t_ns, now);
        if (k != SEQ_IN_ORDER && !udp_data(w))
            w->st.tcp_disorder++;
        if (k == SEQ_DUPLICATE) {
            if (meas)
                w->st.fanout_dup++;
            return;
        }
        if (meas && (k == SEQ_REORDERED || k == SEQ_TOO_OLD))
            w->st.fanout_reordered++;
    }
    uint64_t lat = now > t_ns ? now - t_ns : 0;
    hist_record(&w->cur->fanout, lat);
    if (meas) {
        w->st.fanout_received++;
        hist_record(&w->st.fanout, lat);
    }
    struct lg_slot *s = &snd->ring[f->seq & snd->mask];
    if (s->used && s->seq == f->seq && s->fan_left > 0) {
        s->fan_left--;
        if (now > s->last_from_ns)
            s->last_from_ns = now;
        if (s->fan_left == 0 && meas)
            hist_record(&w->st.fanout_last, s->last_from_ns - s->intended_ns);
    }
}

static void udp_io(evutil_socket_t fd, short what, void *arg);
static void lg_client_timestamps(int fd);

/* Hybrid: WELCOME <id> <ip>:<port> <token> <udp_port> on the control connection. Opens the
 * data path and sends the PING that binds it; PONG ends the set-up. */
static void hyb_welcome(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                        uint64_t now)
{
    if (c->state != LG_HELLO)
        return; /* a repeated WELCOME */
    struct sockaddr_in sa;
    if (!f->has_token || net_resolve(w->cfg->host, f->udp_port, &sa) < 0) {
        w->st.errors++;
        lg_client_fail(w, c); /* not a hybrid server */
        return;
    }
    proto_token_prefix(f->token, c->token);
    c->ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->ufd >= 0)
        lg_client_timestamps(c->ufd);
    if (c->ufd < 0 || connect(c->ufd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (c->uev = event_new(w->base, c->ufd, EV_READ | EV_PERSIST, udp_io, c)) == NULL ||
        event_add(c->uev, NULL) < 0) {
        lg_client_fail(w, c);
        return;
    }
    c->tries = 0;
    c->state = LG_JOINING; /* waiting for the PONG over UDP */
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    hyb_send_data(w, c, "PING lg", 7);
}

static void on_frame(struct lg_worker *w, struct lg_client *c, const char *buf, size_t len,
                     uint64_t now)
{
    struct proto_frame f;
    if (proto_parse_server(buf, len, &f) != PROTO_OK) {
        w->st.errors++;
        return;
    }
    char id[48];
    int idlen;
    switch (f.verb) {
    case PROTO_WELCOME:
        if (is_hybrid(w)) {
            hyb_welcome(w, c, &f, now);
            return;
        }
        if (c->state != LG_HELLO)
            return; /* a repeated WELCOME after a HELLO retry */
        hist_record(&w->st.connect, now - (is_udp(w) ? c->hello_ns : c->launch_ns));
        c->tries = 0;
        send_join(w, c, now);
        return;
    case PROTO_JOINED:
        idlen = fmt_id(w, c->index, id, sizeof(id));
        if (c->state == LG_JOINING && f.id_len == (size_t)idlen &&
            memcmp(f.id, id, f.id_len) == 0) {
            handshake_over(w, c);
            c->state = LG_READY;
            w->st.connected++;
            atomic_fetch_add(&w->n_ready, 1);
        }
        return;
    case PROTO_PONG:
        if (is_hybrid(w) && c->state == LG_JOINING) { /* the data path works: ready */
            hist_record(&w->st.connect, now - c->launch_ns);
            handshake_over(w, c);
            c->state = LG_READY;
            w->st.connected++;
            atomic_fetch_add(&w->n_ready, 1);
        }
        return;
    case PROTO_ACK:
        on_ack(w, c, &f, now);
        return;
    case PROTO_FROM:
        on_from(w, c, &f, now);
        return;
    case PROTO_ERR:
        w->st.errors++;
        w->st.err_frames++;
        if (c->state == LG_HELLO && proto_is_err(&f, PROTO_E_ID_IN_USE))
            lg_client_fail(w, c);
        else if (proto_is_err(&f, PROTO_E_FULL)) {
            w->st.server_full++;
            lg_client_fail(w, c);
        } else if (c->state == LG_READY && is_udp(w) && proto_is_err(&f, PROTO_E_NOT_REG) &&
                   now >= c->retry_ns)
            reregister(w, c, now);
        return;
    case PROTO_BYE: /* the server is closing us (shutdown, slow, timeout) */
        if (c->state == LG_READY && is_udp(w) && proto_is_bye(&f, PROTO_R_TIMEOUT)) {
            if (now >= c->retry_ns)
                reregister(w, c, now); /* UDP: it forgot us; come back */
            return;
        }
        lg_client_fail(w, c);
        return;
    default:
        return; /* JOINED/LEFT of others, PONG, ...: not ours to count */
    }
}

static void udp_datagram(struct lg_worker *w, struct lg_client *c, char *buf, size_t len,
                         uint64_t now)
{
    size_t n_wire = len;
    w->st.bytes_recv_wire_total += len;
    const char *frame = buf;
    if (len > 0 && (unsigned char)buf[0] == PROTO_ZMARK) {
        int z = zframe_decompress(&w->z, buf, len, w->scratch2, LG_ZBUF);
        if (z < 0) {
            w->st.errors++;
            return;
        }
        frame = w->scratch2;
        len = (size_t)z;
    }
    w->st.bytes_recv_plain_total += len;
    size_t wire = n_wire, plain = len;
    if (len > 0 && frame[len - 1] == '\n')
        len--;
    if (len > 0 && frame[len - 1] == '\r')
        len--;
    w->rx_measured = false;
    on_frame(w, c, frame, len, now);
    if (w->rx_measured) {
        w->st.bytes_recv_wire += wire;
        w->st.bytes_recv_plain += plain;
    }
}

/* Level-triggered: one recvmmsg takes what is queued (up to LG_RX_BATCH datagrams); a short
 * batch means the queue is empty, which saves the EAGAIN call a recv loop ends with. */
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

/* Asks the kernel for receive timestamps (SO_TIMESTAMPNS) on a UDP socket. */
static void lg_client_timestamps(int fd)
{
    int one = 1;
    /* best effort: without it the rx lag histogram stays empty */
    (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}

static void udp_read(struct lg_worker *w, struct lg_client *c, int fd)
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
            w->rx_measured = false;
            udp_datagram(w, c, iov[i].iov_base, msgs[i].msg_len, now);
            /* rx lag: how long the datagram waited in our socket for this worker */
            uint64_t k = rx_kernel_ns(&msgs[i].msg_hdr);
            if (w->rx_measured && k != 0 && wall != 0)
                hist_record(&w->st.rx_lag, wall > k ? wall - k : 0);
            if (c->state == LG_FAILED)
                return;
        }
        if (n < LG_RX_BATCH)
            return;
    }
}

static void tcp_read(struct lg_worker *w, struct lg_client *c)
{
    char *buf = w->scratch;
    size_t have = c->rlen;
    if (have > 0)
        memcpy(buf, c->rbuf, have);
    for (;;) {
        size_t space = LG_ZBUF - have;
        ssize_t n = recv(c->fd, buf + have, space, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* EOF or reset: the server dropped us */
            lg_client_fail(w, c);
            return;
        }
        uint64_t now = clock_now_ns();
        w->st.bytes_recv_wire_total += (uint64_t)n;
        w->st.bytes_recv_plain_total += (uint64_t)n;
        have += (size_t)n;
        size_t pos = 0, line_len, used;
        int r;
        while ((r = proto_next_line(buf + pos, have - pos, LG_RBUF, &line_len, &used)) == 1) {
            w->rx_measured = false;
            on_frame(w, c, buf + pos, line_len, now);
            if (w->rx_measured) {
                w->st.bytes_recv_wire += used;
                w->st.bytes_recv_plain += used;
            }
            if (c->state == LG_FAILED)
                return;
            pos += used;
        }
        if (r < 0) {
            w->st.errors++;
            lg_client_fail(w, c);
            return;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if ((size_t)n < space)
            break; /* drained; level-triggered events call again when more arrives */
    }
    if (have > 0 && c->rbuf == NULL && (c->rbuf = malloc(LG_RBUF + 1)) == NULL) {
        lg_client_fail(w, c);
        return;
    }
    if (have > 0)
        memcpy(c->rbuf, buf, have);
    c->rlen = have;
    if (have == 0) { /* most clients have no partial line: give the memory back */
        free(c->rbuf);
        c->rbuf = NULL;
    }
}

static void client_io(evutil_socket_t fd, short what, void *arg)
{
    struct lg_client *c = arg;
    struct lg_worker *w = c->w;
    (void)fd;
    if ((what & EV_WRITE) && c->state == LG_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err != 0) {
            lg_client_fail(w, c);
            return;
        }
        if (set_events(w, c, false) < 0) {
            lg_client_fail(w, c);
            return;
        }
        send_hello(w, c, clock_now_ns());
        return;
    }
    if ((what & EV_WRITE) && tcp_flush(w, c) < 0) {
        lg_client_fail(w, c);
        return;
    }
    if (what & EV_READ) {
        if (is_udp(w))
            udp_read(w, c, c->fd);
        else
            tcp_read(w, c);
    }
}

/* Hybrid: the data path's datagrams. */
static void udp_io(evutil_socket_t fd, short what, void *arg)
{
    struct lg_client *c = arg;
    if (what & EV_READ)
        udp_read(c->w, c, (int)fd);
}

/* --- set-up and housekeeping --- */

void lg_client_launch(struct lg_worker *w, struct lg_client *c)
{
    uint64_t now = clock_now_ns();
    struct sockaddr_in sa;
    c->launch_ns = now;
    w->handshakes++;
    c->state = LG_CONNECTING;
    if (net_resolve(w->cfg->host, w->cfg->port, &sa) < 0) {
        lg_client_fail(w, c);
        return;
    }
    int type = is_udp(w) ? SOCK_DGRAM : SOCK_STREAM;
    c->fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        lg_client_fail(w, c);
        return;
    }
    if (is_udp(w))
        lg_client_timestamps(c->fd);
    if (!is_udp(w)) {
        int one = 1;
        /* best effort: frames are small and latency is what we measure */
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    /* UDP too: a connected socket has its own port and the kernel filters other senders */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        lg_client_fail(w, c);
        return;
    }
    if (is_udp(w)) {
        if (set_events(w, c, false) < 0) {
            lg_client_fail(w, c);
            return;
        }
        c->hello_ns = now;
        send_hello(w, c, now);
    } else if (set_events(w, c, true) < 0) { /* writable = connected */
        lg_client_fail(w, c);
    }
}

static void sweep(struct lg_worker *w, struct lg_client *c, uint64_t now, bool final)
{
    uint64_t timeout = (uint64_t)w->cfg->timeout_ms * 1000000u;
    while (c->base < c->next_seq) {
        struct lg_slot *s = &c->ring[c->base & c->mask];
        if (s->used && s->seq == c->base) {
            bool done = s->acked && s->fan_left == 0;
            bool expired = final || (udp_data(w) && now > s->sent_ns && now - s->sent_ns > timeout);
            if (!done && !expired)
                break;
            if (!s->acked) {
                w->cur->lost++;
                if (measured(c, s->seq))
                    w->st.lost++;
            }
            if (s->fan_left > 0 && measured(c, s->seq))
                w->st.fanout_last_incomplete++; /* censored: no fan-out last sample */
            s->used = 0;
        }
        c->base++;
    }
}

void lg_client_tick(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    switch (c->state) {
    case LG_CONNECTING:
    case LG_HELLO:
    case LG_JOINING:
        if (now > c->launch_ns && now - c->launch_ns > LG_CONNECT_TIMEOUT_NS) {
            lg_client_fail(w, c);
        } else if (is_hybrid(w) && c->state == LG_JOINING && now >= c->retry_ns) {
            c->tries++; /* the binding PING or its PONG was lost */
            c->retry_ns = now + LG_HELLO_RETRY_NS;
            hyb_send_data(w, c, "PING lg", 7);
        } else if (is_udp(w) && c->state != LG_CONNECTING && now >= c->retry_ns) {
            /* a busy server drops datagrams: retry every second until the set-up timeout */
            c->tries++;
            if (c->state == LG_HELLO)
                send_hello(w, c, now);
            else
                send_join(w, c, now);
        }
        return;
    case LG_READY:
        if (is_udp(w) && now > c->last_tx_ns + LG_KEEPALIVE_NS) {
            /* quiet (a long set-up, a low rate): keep the server from timing us out */
            char ping[] = "PING lg";
            (void)send_frame(w, c, ping, sizeof(ping) - 1); /* UDP: fails only locally */
            c->last_tx_ns = now;
        }
        sweep(w, c, now, false);
        return;
    case LG_FAILED:
        sweep(w, c, now, false);
        return;
    case LG_IDLE:
        return;
    }
}

void lg_client_finish(struct lg_worker *w, struct lg_client *c)
{
    sweep(w, c, clock_now_ns(), true);
}

void lg_client_bye(struct lg_worker *w, struct lg_client *c)
{
    if (c->state == LG_FAILED || c->state == LG_IDLE || c->fd < 0)
        return;
    /* so the server forgets us now: a UDP server would otherwise keep every client until
     * its keep-alive timeout, and the next run could find it full */
    char bye[] = "BYE";
    (void)send_frame(w, c, bye, sizeof(bye) - 1); /* best effort: we are leaving anyway */
}

uint64_t lg_client_inflight(const struct lg_client *c)
{
    return c->next_seq - c->base;
}
