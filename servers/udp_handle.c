/* udp_handle: what udp_server does with one datagram: decoding (zlib, the hybrid token),
 * finding its client by address, refusals that need no client, and the chat transport over
 * datagrams that the chat core (chat.c) answers through; also the keep-alive's expiry and
 * the farewell at shutdown. Locking rules: udp_server.h and chat.h. */
#include "udp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

/* --- per-thread context --- */

int udp_ctx_init(struct udp_ctx *cx, struct udp_server *s, const struct chat_transport *tp)
{
    memset(cx, 0, sizeof(*cx));
    cx->s = s;
    int rc = zframe_init(&cx->z, NULL);
    if (rc < 0)
        return rc;
    if (chat_ctx_init(&cx->chat, &s->chat, tp, s->cfg.max_frame) < 0) {
        udp_ctx_destroy(cx);
        return -ENOMEM;
    }
    cx->frame_cap = s->cfg.max_frame + 2;
    cx->zout_cap = zframe_bound(cx->chat.out_cap);
    cx->frame = malloc(cx->frame_cap);
    cx->zout = malloc(cx->zout_cap);
    bool ok = cx->frame != NULL && cx->zout != NULL;
    for (int g = 0; g < 2; g++) {
        cx->group[g].plain = calloc(s->cfg.max_clients, sizeof(struct sockaddr_in));
        cx->group[g].zip = calloc(s->cfg.max_clients, sizeof(struct sockaddr_in));
        ok = ok && cx->group[g].plain != NULL && cx->group[g].zip != NULL;
    }
    if (!ok) {
        udp_ctx_destroy(cx);
        return -ENOMEM;
    }
    return 0;
}

void udp_ctx_destroy(struct udp_ctx *cx)
{
    zframe_destroy(&cx->z);
    chat_ctx_destroy(&cx->chat);
    free(cx->frame);
    free(cx->zout);
    cx->frame = cx->zout = NULL;
    for (int g = 0; g < 2; g++) {
        free(cx->group[g].plain);
        free(cx->group[g].zip);
        cx->group[g].plain = cx->group[g].zip = NULL;
    }
}

/* --- sending: the frame is in cx->chat.out[0..len), without terminator --- */

size_t udp_form(struct udp_ctx *cx, size_t len, bool zip, const char **wire)
{
    char *out = cx->chat.out;
    if (zip) {
        int zl = zframe_compress(&cx->z, out, len, cx->zout, cx->zout_cap);
        if (zl > 0) {
            *wire = cx->zout;
            return (size_t)zl;
        }
        /* cannot happen with zout_cap = bound; plain is still understood */
    }
    out[len] = '\n';
    *wire = out;
    return len + 1;
}

void udp_queue(struct udp_ctx *cx, const char *wire, size_t len, const struct sockaddr_in *to,
               size_t n, enum udp_outq_mode mode)
{
    if (cx->batch)
        udp_outq_push_later(&cx->s->outq, wire, len, to, n, mode);
    else
        udp_outq_push(&cx->s->outq, wire, len, to, n, mode);
}

void udp_push_form(struct udp_ctx *cx, size_t len, bool zip, const struct sockaddr_in *to, size_t n,
                   enum udp_outq_mode mode)
{
    if (n == 0)
        return;
    const char *wire;
    size_t wl = udp_form(cx, len, zip, &wire);
    udp_queue(cx, wire, wl, to, n, mode);
}

/* A refusal that needs no client (not registered, undecodable, misplaced). To an address
 * that has not registered (known false), it stays within what it sent (udp_guard.c). */
static void send_err(struct udp_ctx *cx, const struct sockaddr_in *to, bool zip, bool known,
                     enum proto_err e, const char *detail)
{
    int n = proto_fmt_err(cx->chat.out, cx->chat.out_cap - 1, e, detail);
    if (n < 0)
        return;
    if (known)
        udp_push_form(cx, (size_t)n, zip, to, 1, UDP_OUTQ_REPLY);
    else
        (void)udp_guard_reply(cx, (size_t)n, zip, to, cx->req_bytes);
}

/* --- the chat transport over datagrams --- */

void udp_gather(struct chat_ctx *cx, struct chat_client *m, int g)
{
    const struct udp_client *c = udp_client_of(m);
    struct udp_group *gr = &udp_ctx_of(cx)->group[g];
    if (c->ctl != NULL && !c->bound)
        return; /* hybrid, no datagram yet: no address to send to */
    if (c->zip)
        gr->zip[gr->n_zip++] = c->addr;
    else
        gr->plain[gr->n_plain++] = c->addr;
}

void udp_send(struct chat_ctx *cx, int g, int len)
{
    struct udp_ctx *u = udp_ctx_of(cx);
    struct udp_group *gr = &u->group[g];
    enum udp_outq_mode mode = u->wait ? UDP_OUTQ_WAIT : UDP_OUTQ_FANOUT;
    if (len >= 0) {
        udp_push_form(u, (size_t)len, false, gr->plain, gr->n_plain, mode);
        udp_push_form(u, (size_t)len, true, gr->zip, gr->n_zip, mode);
    }
    gr->n_plain = gr->n_zip = 0;
}

void udp_active(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_server *s = udp_ctx_of(cx)->s;
    struct udp_client *c = udp_client_of(m);
    if (s->cfg.idle_timeout_s == 0 || c->idle_out)
        return;
    if (c->idle_listed) {
        if (s->idle->idle_prev == c)
            return; /* already the most recent */
        DL_DELETE2(s->idle, c, idle_prev, idle_next);
    }
    DL_APPEND2(s->idle, c, idle_prev, idle_next);
    c->idle_listed = true;
}

void udp_detach(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_server *s = udp_ctx_of(cx)->s;
    struct udp_client *c = udp_client_of(m);
    if (c->idle_listed)
        DL_DELETE2(s->idle, c, idle_prev, idle_next);
    c->idle_listed = false;
    if (c->ctl == NULL || c->bound)
        HASH_DELETE(hh_addr, s->by_addr, c);
    if (c->ctl != NULL) {
        HASH_DELETE(hh_tok, s->by_tok, c); /* the token dies with the session */
        c->bound = false;
    } else {
        DL_DELETE2(s->lru, c, lru_prev, lru_next);
    }
}

static void dg_hold_self(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_ctx *u = udp_ctx_of(cx);
    const struct udp_client *c = udp_client_of(m);
    u->self_addr = c->addr;
    u->self_zip = c->zip;
    /* a HELLO's answers, WELCOME included, go to an address that had not registered when
     * it sent the datagram: they stay within its size */
    u->self_budget = chat_registered(m) ? SIZE_MAX : u->req_bytes;
}

static void dg_reply(struct chat_ctx *cx, int len)
{
    struct udp_ctx *u = udp_ctx_of(cx);
    if (u->self_budget != SIZE_MAX)
        (void)udp_guard_reply(u, (size_t)len, u->self_zip, &u->self_addr, u->self_budget);
    else
        udp_push_form(u, (size_t)len, u->self_zip, &u->self_addr, 1, UDP_OUTQ_REPLY);
}

/* A datagram per frame; they ride in the fan-out class: when the queue is three quarters
 * full they are dropped before any ACK is (WHO's USERS n tells the asker what it missed). */
static void dg_reply_bulk(struct chat_ctx *cx, const char *frames, size_t len)
{
    struct udp_ctx *u = udp_ctx_of(cx);
    if (u->self_budget != SIZE_MAX)
        return; /* WHO answers registered clients only: never a block to a stranger */
    while (len > 0) {
        const char *lf = memchr(frames, '\n', len);
        size_t l = lf != NULL ? (size_t)(lf - frames) : len;
        if (l < cx->out_cap) { /* always: the frames were formatted for out */
            memcpy(cx->out, frames, l);
            udp_push_form(u, l, u->self_zip, &u->self_addr, 1, UDP_OUTQ_FANOUT);
        }
        size_t used = lf != NULL ? l + 1 : l;
        frames += used;
        len -= used;
    }
}

/* HELLO from a new address: index it by address and put it on the activity list. */
static int dg_attach(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_server *s = udp_ctx_of(cx)->s;
    struct udp_client *c = udp_client_of(m);
    HASH_ADD(hh_addr, s->by_addr, key, sizeof(c->key), c);
    if (c->hh_addr.tbl == NULL)
        return -ENOMEM; /* the table could not grow (registry.h) */
    DL_APPEND2(s->lru, c, lru_prev, lru_next);
    return 0;
}

/* One WHO answer a second per client: a 3-byte datagram that fans out into one datagram
 * per client is the best amplifier a UDP server can offer (to a forged source, too). */
#define UDP_WHO_MIN_MS 1000

const struct chat_transport udp_dgram_transport = {
    .hello_words = CHAT_WORDS_REGISTER,
    .who_min_ms = UDP_WHO_MIN_MS,
    .exclusive = true, /* a datagram is handled under the write lock anyway */
    .active = udp_active,
    .hold_self = dg_hold_self,
    .reply = dg_reply,
    .reply_bulk = dg_reply_bulk,
    .gather = udp_gather,
    .send = udp_send,
    .attach = dg_attach,
    .detach = udp_detach,
};

/* --- the client table by address --- */

uint64_t udp_addr_key(const struct sockaddr_in *a)
{
    return (uint64_t)ntohl(a->sin_addr.s_addr) << 16 | ntohs(a->sin_port);
}

struct udp_client *udp_find_addr(struct udp_server *s, const struct sockaddr_in *a)
{
    uint64_t k = udp_addr_key(a);
    struct udp_client *c;
    HASH_FIND(hh_addr, s->by_addr, &k, sizeof(k), c);
    return c;
}

static void touch(struct udp_server *s, struct udp_client *c, uint64_t now_ms)
{
    c->last_ms = now_ms;
    if (c->ctl != NULL)
        return;                  /* hybrid: the control connection is the session; no UDP timeout */
    if (s->lru->lru_prev != c) { /* not already the most recent: move it to the tail */
        DL_DELETE2(s->lru, c, lru_prev, lru_next);
        DL_APPEND2(s->lru, c, lru_prev, lru_next);
    }
}

/* HELLO from an address nobody holds: a record the chat core registers or refuses.
 * Entered with the chat lock held; returns with it released. */
static void hello_from(struct udp_ctx *cx, const struct sockaddr_in *from, bool zip,
                       const struct proto_frame *f, uint64_t now_ms)
{
    if (!udp_guard_hello(cx, f, from, zip, cx->req_bytes)) {
        chat_unlock(&cx->s->chat); /* answered within its size, or not at all */
        return;
    }
    struct udp_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        chat_unlock(&cx->s->chat);
        char addr[NET_ADDRSTRLEN];
        log_line("ERROR", "Memória insuficiente para registrar cliente de %s",
                 net_addr_str(from, addr));
        send_err(cx, from, zip, false, PROTO_E_FULL, "out of memory");
        return;
    }
    c->addr = *from;
    c->key = udp_addr_key(from);
    net_addr_str(from, c->chat.addr);
    c->zip = zip;
    c->last_ms = now_ms;
    if (chat_frame_locked(&cx->chat, &c->chat, f) != CHAT_DONE)
        free(c); /* refused: it never entered a table */
}

/* --- one datagram --- */

void udp_handle_datagram(struct udp_ctx *cx, const struct sockaddr_in *from, char *buf, size_t len,
                         bool truncated)
{
    struct udp_server *s = cx->s;
    uint64_t now_ms = clock_now_ms();
    bool zip = false;
    enum proto_err pre = PROTO_OK; /* a refusal decided before parsing */
    uint64_t token = 0;

    s->dgrams_in++;
    s->bytes_in += len;
    cx->req_bytes = len; /* what an answer to a stranger may not exceed (udp_guard.c) */
    if (s->cfg.hybrid) {
        size_t skip;
        if (!proto_take_token(buf, len, &token, &skip)) {
            udp_hyb_refuse(s, from, now_ms);
            return;
        }
        buf += skip;
        len -= skip;
    }
    if (truncated) {
        pre = PROTO_E_TOO_LONG;
    } else if (len > 0 && (unsigned char)buf[0] == PROTO_ZMARK) {
        s->zdgrams_in++;
        s->zbytes_in += len;
        /* room for a maximal frame plus its optional CR LF */
        int n = zframe_decompress(&cx->z, buf, len, cx->frame, s->cfg.max_frame + 2);
        if (n < 0) {
            pre = PROTO_E_BAD_ZLIB;
        } else {
            zip = true;
            buf = cx->frame;
            len = (size_t)n;
        }
    }
    if (pre == PROTO_OK) {
        if (len > 0 && buf[len - 1] == '\n') { /* one optional LF or CR LF */
            len--;
            if (len > 0 && buf[len - 1] == '\r')
                len--;
        }
        if (len > s->cfg.max_frame)
            pre = zip ? PROTO_E_BAD_ZLIB : PROTO_E_TOO_LONG;
    }

    chat_lock_write(&s->chat);
    struct udp_client *c;
    if (s->cfg.hybrid) {
        c = udp_hyb_session(s, token, from);
        if (c == NULL) {
            chat_unlock(&s->chat);
            udp_hyb_refuse(s, from, now_ms);
            return;
        }
    } else {
        c = udp_find_addr(s, from);
    }
    if (c != NULL) {
        touch(s, c, now_ms); /* any datagram shows the client is alive */
        if (pre == PROTO_OK)
            c->zip = zip;
    }
    struct proto_frame f;
    if (pre == PROTO_OK && len == 0) { /* an empty datagram: a silent keep-alive */
        chat_unlock(&s->chat);
        return;
    }
    if (pre == PROTO_OK)
        pre = proto_parse_client(buf, len, &f);
    /* PING too (PROTOCOL.md, UDP specifics): a forgotten client learns it from its keep-alive */
    if (pre == PROTO_OK && c == NULL && f.verb != PROTO_HELLO)
        pre = PROTO_E_NOT_REG;
    if (pre != PROTO_OK) {
        chat_unlock(&s->chat);
        s->rejected_in++;
        send_err(cx, from, zip && pre != PROTO_E_BAD_ZLIB, c != NULL, pre, NULL);
        return;
    }
    /* hybrid: the session's life (HELLO, BYE) and its slow verbs belong to the control
     * connection; a datagram carries chat and PING only */
    if (s->cfg.hybrid && f.verb != PROTO_MSG && f.verb != PROTO_TO && f.verb != PROTO_PING) {
        chat_unlock(&s->chat);
        s->rejected_in++;
        send_err(cx, from, zip, true, PROTO_E_BAD_FRAME, "send it on the control connection");
        return;
    }
    if (c == NULL)
        hello_from(cx, from, zip, &f, now_ms);
    else if (chat_frame_locked(&cx->chat, &c->chat, &f) == CHAT_LEFT)
        free(c); /* BYE (plain mode only): it is in no table any more */
}

/* --- keep-alive and shutdown --- */

/* --idle-timeout: removes registered clients whose last frame but PING is older, one per
 * lock hold (as udp_expire); a hybrid session is ended by its control thread. */
static void expire_idle(struct udp_ctx *cx, uint64_t now_ms)
{
    struct udp_server *s = cx->s;
    uint64_t idle_ms = (uint64_t)s->cfg.idle_timeout_s * 1000u;
    for (;;) {
        chat_lock_write(&s->chat);
        struct udp_client *c = s->idle; /* oldest activity first: stop at the first alive */
        if (c == NULL || c->chat.active_ms + idle_ms > now_ms) {
            chat_unlock(&s->chat);
            return;
        }
        atomic_fetch_add(&s->idles, 1);
        if (c->ctl != NULL) {
            DL_DELETE2(s->idle, c, idle_prev, idle_next);
            c->idle_listed = false;
            c->idle_out = true;
            udp_hyb_kick(c->ctl);
            chat_unlock(&s->chat);
            continue;
        }
        /* LEFT <id> <room> idle to its room, [TIMEOUT], BYE idle to it */
        chat_leave_locked(&cx->chat, &c->chat, PROTO_R_IDLE, true);
        free(c);
    }
}

void udp_expire(struct udp_ctx *cx, uint64_t now_ms)
{
    struct udp_server *s = cx->s;
    if (s->cfg.idle_timeout_s != 0)
        expire_idle(cx, now_ms);
    uint64_t limit_ms = (uint64_t)s->cfg.timeout_s * 1000u;
    /* One client per lock hold: when a whole room times out at once, the log line (a
     * write(2)) and the room's notices of each go out with the lock released, so the
     * receiver keeps serving the living between two removals. */
    for (;;) {
        chat_lock_write(&s->chat);
        /* The activity list is oldest first: stop at the first client still alive. last_ms
         * may be a little after now_ms (the receiver read the clock later): no subtraction,
         * it would wrap and expire a client that just spoke. */
        struct udp_client *c = s->lru;
        if (c == NULL || c->last_ms + limit_ms >= now_ms) {
            chat_unlock(&s->chat);
            return;
        }
        /* LEFT <id> <room> timeout to its room, [TIMEOUT], BYE timeout to it */
        chat_leave_locked(&cx->chat, &c->chat, PROTO_R_TIMEOUT, true);
        free(c);
        atomic_fetch_add(&s->timeouts, 1);
    }
}

/* chat_remove_all's step at shutdown: c will hear the one BYE shutdown. */
static void farewell_one(struct chat_ctx *cx, struct chat_client *m)
{
    struct udp_client *c = udp_client_of(m);
    udp_gather(cx, m, 0);
    udp_detach(cx, m);
    if (c->ctl == NULL) /* a hybrid session's record belongs to its control connection */
        free(c);
}

size_t udp_farewell(struct udp_ctx *cx)
{
    size_t n = chat_remove_all(&cx->chat, farewell_one);
    cx->wait = true; /* every client should hear it: wait for room in the queue */
    udp_send(&cx->chat, 0, proto_fmt_bye(cx->chat.out, cx->chat.out_cap - 1, PROTO_R_SHUTDOWN));
    cx->wait = false;
    return n;
}
