/* client: the chat protocol of one simulated client, whatever the transport (see client.h).
 *
 * Set-up: (connect,) HELLO <id> <room> -> WELCOME, then the transport's next step (JOIN ->
 * JOINED; hybrid: a PING on the data path -> PONG). Then MSG frames on the open-loop
 * schedule (worker.c decides when), and the server's ACKs and FROMs handed to measure.c. */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "parse.h"
#include "worker.h"

int lg_client_init(struct lg_client *c, struct lg_worker *w, uint32_t index, uint32_t room)
{
    c->index = index;
    c->room = room;
    c->w = w;
    c->fd = -1;
    c->ufd = -1;
    const struct lg_config *cfg = w->cfg;
    return lg_meas_init(&c->m, lg_meas_ring_slots(cfg->rate, cfg->timeout_ms),
                        lg_fanout_tracking(cfg) ? cfg->room_size : 0);
}

void lg_client_destroy(struct lg_client *c)
{
    if (c->w != NULL)
        c->w->tp->close(c);
    lg_meas_destroy(&c->m);
}

static int fmt_id(const struct lg_worker *w, uint32_t index, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s%" PRIu32, w->cfg->id_prefix, index);
}

static void handshake_over(struct lg_worker *w, struct lg_client *c)
{
    if (c->state == LG_CONNECTING || c->state == LG_HELLO || c->state == LG_JOINING)
        w->handshakes--;
}

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
    w->tp->close(c);
}

void lg_client_ready(struct lg_worker *w, struct lg_client *c)
{
    handshake_over(w, c);
    c->state = LG_READY;
    w->st.connected++;
    atomic_fetch_add(&w->n_ready, 1);
}

/* --- set-up --- */

/* A control frame; a broken connection fails the client. Returns 0 or -errno. */
static int send_ctl(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    struct lg_tx tx = w->tp->send_ctl(w, c, buf, len);
    return tx.err;
}

/* HELLO straight into the room (PROTOCOL.md: no JOINED storm in the lobby); the JOIN that
 * follows WELCOME is answered with JOINED whether or not the server took the room. Over
 * plain UDP it is padded: a server answers an address it does not know with no more bytes
 * than it received (PROTOCOL.md, "Reflection"). */
static int fmt_hello(struct lg_worker *w, struct lg_client *c, char *buf, size_t cap)
{
    char id[48], room[24];
    fmt_id(w, c->index, id, sizeof(id));
    snprintf(room, sizeof(room), "r%" PRIu32, c->room);
    if (w->tp->connectionless)
        return proto_fmt_hello_pad(buf, cap, id, room, PROTO_HELLO_PAD);
    return proto_fmt_hello_in(buf, cap, id, room);
}

static int fmt_join(const struct lg_client *c, char *buf, size_t cap)
{
    return snprintf(buf, cap, "JOIN r%" PRIu32, c->room);
}

static void send_hello(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char buf[96];
    int len = fmt_hello(w, c, buf, sizeof(buf) - 1);
    c->state = LG_HELLO;
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    if (len < 0 || send_ctl(w, c, buf, (size_t)len) < 0)
        lg_client_fail(w, c);
}

static void send_join(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char buf[64];
    int len = fmt_join(c, buf, sizeof(buf) - 1);
    c->state = LG_JOINING;
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    if (send_ctl(w, c, buf, (size_t)len) < 0)
        lg_client_fail(w, c);
}

void lg_client_launch(struct lg_worker *w, struct lg_client *c)
{
    c->launch_ns = clock_now_ns();
    w->handshakes++;
    c->state = LG_CONNECTING;
    if (w->tp->launch(w, c) < 0)
        lg_client_fail(w, c);
}

void lg_client_connected(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    send_hello(w, c, now);
}

void lg_client_join(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                    uint64_t now)
{
    (void)f;
    lg_meter_record(&w->meter, LG_CONNECT, now - c->launch_ns);
    send_join(w, c, now);
}

/* A connectionless server forgot us (its keep-alive timeout, a restart). PROTOCOL.md says
 * register again: HELLO and JOIN at once, at most once a second, while the schedule goes on
 * (what it sends before the server has us again is lost, and counted so). The server's
 * count in ACKs restarts, so the uplink/downlink split of such a client is approximate. */
static void reregister(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    char buf[96];
    int len = fmt_hello(w, c, buf, sizeof(buf) - 1);
    if (len > 0)
        (void)send_ctl(w, c, buf, (size_t)len); /* datagrams: fails only locally, counted */
    len = fmt_join(c, buf, sizeof(buf) - 1);
    (void)send_ctl(w, c, buf, (size_t)len);
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    w->st.reregistered++;
}

/* --- sending --- */

void lg_client_send_msg(struct lg_worker *w, struct lg_client *c)
{
    const struct lg_config *cfg = w->cfg;
    struct lg_msg msg;
    if (lg_meas_next(&w->meter, &c->m, &msg) < 0)
        return; /* the schedule moved on: this message is simply not sent */
    char *buf = w->scratch;
    int len = snprintf(buf, 64, "MSG %" PRIu64 " %" PRIu64 " ", msg.seq, msg.intended_ns);
    size_t off = cfg->size ? (size_t)(lg_rng_next(&w->rng) % (w->pool_len - cfg->size)) : 0;
    memcpy(buf + len, w->pool + off, cfg->size);
    size_t flen = (size_t)len + cfg->size;
    if (cfg->size == 0)
        flen--; /* "MSG <seq> <t_ns>" with an empty text: drop the trailing space */
    struct lg_tx tx = w->tp->send_msg(w, c, buf, flen);
    lg_meas_sent(&w->meter, &c->m, &msg, tx.tx_ns != 0 ? tx.tx_ns : clock_now_ns(), tx.wire,
                 tx.plain);
    if (tx.err < 0)
        lg_client_fail(w, c);
}

/* --- receiving --- */

/* The run's index of the sender from one of our ids ("L<tag>-<index>"), or UINT32_MAX. */
static uint32_t sender_index(const struct lg_worker *w, const struct proto_frame *f)
{
    if (f->id_len <= w->id_prefix_len || memcmp(f->id, w->cfg->id_prefix, w->id_prefix_len) != 0)
        return UINT32_MAX;
    uint64_t v;
    if (parse_u64_span(f->id + w->id_prefix_len, f->id_len - w->id_prefix_len, w->cfg->clients - 1,
                       &v) < 0)
        return UINT32_MAX;
    return (uint32_t)v;
}

static bool on_from(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                    uint64_t now)
{
    const struct lg_config *cfg = w->cfg;
    uint32_t si = sender_index(w, f);
    if (si == UINT32_MAX || f->seq == PROTO_NO_SEQ || si / cfg->room_size != c->room)
        return false; /* not one of ours (a room is in one shard and one worker) */
    struct lg_client *snd = &w->clients[lg_shard_local(&cfg->shard, cfg->room_size, si)];
    if (snd->w != w)
        return false;
    uint64_t t_ns;
    if (parse_u64_prefix(f->text, f->text_len, &t_ns) == 0) {
        w->st.errors++;
        return false;
    }
    uint32_t pos = si - c->room * cfg->room_size;
    return lg_meas_from(&w->meter, &c->m, pos, &snd->m, f->seq, t_ns, now);
}

static void on_err(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                   uint64_t now)
{
    w->st.errors++;
    w->st.err_frames++;
    if (c->state == LG_HELLO && proto_is_err(f, PROTO_E_ID_IN_USE)) {
        lg_client_fail(w, c);
    } else if (proto_is_err(f, PROTO_E_FULL)) {
        w->st.server_full++;
        lg_client_fail(w, c);
    } else if (c->state == LG_READY && w->tp->connectionless && proto_is_err(f, PROTO_E_NOT_REG) &&
               now >= c->retry_ns) {
        reregister(w, c, now);
    }
}

bool lg_client_frame(struct lg_worker *w, struct lg_client *c, const char *buf, size_t len,
                     uint64_t now)
{
    struct proto_frame f;
    if (proto_parse_server(buf, len, &f) != PROTO_OK) {
        w->st.errors++;
        return false;
    }
    char id[48];
    int idlen;
    switch (f.verb) {
    case PROTO_WELCOME:
        if (c->state == LG_HELLO) /* else a repeated WELCOME after a HELLO retry */
            w->tp->welcome(w, c, &f, now);
        return false;
    case PROTO_JOINED:
        idlen = fmt_id(w, c->index, id, sizeof(id));
        if (c->state == LG_JOINING && f.id_len == (size_t)idlen && memcmp(f.id, id, f.id_len) == 0)
            lg_client_ready(w, c);
        return false;
    case PROTO_PONG:
        if (w->tp->pong != NULL && c->state == LG_JOINING)
            w->tp->pong(w, c, now);
        return false;
    case PROTO_ACK:
        return f.seq != PROTO_NO_SEQ && lg_meas_ack(&w->meter, &c->m, f.seq, f.n, now);
    case PROTO_FROM:
        return on_from(w, c, &f, now);
    case PROTO_ERR:
        on_err(w, c, &f, now);
        return false;
    case PROTO_BYE: /* the server is closing us (shutdown, slow, timeout) */
        if (c->state == LG_READY && w->tp->connectionless && proto_is_bye(&f, PROTO_R_TIMEOUT)) {
            if (now >= c->retry_ns)
                reregister(w, c, now); /* it forgot us; come back */
            return false;
        }
        lg_client_fail(w, c);
        return false;
    default:
        return false; /* JOINED/LEFT of others, ...: not ours to count */
    }
}

/* --- housekeeping --- */

uint64_t lg_client_tick(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    switch (c->state) {
    case LG_CONNECTING:
    case LG_HELLO:
    case LG_JOINING:
        if (now > c->launch_ns && now - c->launch_ns > LG_CONNECT_TIMEOUT_NS)
            lg_client_fail(w, c);
        else if (w->tp->retry != NULL && c->state != LG_CONNECTING && now >= c->retry_ns)
            w->tp->retry(w, c, now); /* a busy server drops datagrams: retry every second */
        break;
    case LG_READY:
        if (w->tp->connectionless && now > c->last_tx_ns + w->ping_ns) {
            /* quiet (a long set-up, a low rate): keep the server from timing us out */
            char ping[] = "PING lg";
            (void)send_ctl(w, c, ping, sizeof(ping) - 1); /* datagrams: fails only locally */
            c->last_tx_ns = now;
            w->st.keepalives++;
        }
        return lg_meas_sweep(&w->meter, &c->m, now);
    case LG_FAILED:
        return lg_meas_sweep(&w->meter, &c->m, now);
    case LG_IDLE:
        break;
    }
    return c->m.next_seq - c->m.base;
}

/* The set-up step again after a lost datagram: HELLO or JOIN (connectionless transports). */
void lg_client_retry(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    if (c->state == LG_HELLO)
        send_hello(w, c, now);
    else
        send_join(w, c, now);
}

void lg_client_finish(struct lg_worker *w, struct lg_client *c)
{
    lg_meas_finish(&w->meter, &c->m, c->state == LG_READY);
    if (c->state == LG_FAILED || c->state == LG_IDLE || c->fd < 0)
        return;
    /* so the server forgets us now: a UDP server would otherwise keep every client until
     * its keep-alive timeout, and the next run could find it full */
    char bye[] = "BYE";
    (void)send_ctl(w, c, bye, sizeof(bye) - 1); /* best effort: we are leaving anyway */
}
