/* udp_handle: what udp_server does with one datagram, and its client table (see
 * udp_server.h for the locking rules, PROTOCOL.md for the behaviour). */
#include "udp_server.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <utlist.h>

/* --- per-thread context --- */

int udp_ctx_init(struct udp_ctx *cx, struct udp_server *s)
{
    memset(cx, 0, sizeof(*cx));
    cx->s = s;
    int rc = zframe_init(&cx->z, NULL);
    if (rc < 0)
        return rc;
    cx->frame_cap = s->cfg.max_frame + 2;
    /* the longest reply is a FROM/PRIV: a head of at most 5+32+1+20+1 bytes, the text, LF */
    cx->out_cap = s->cfg.max_frame + 128;
    cx->zout_cap = zframe_bound(cx->out_cap);
    cx->frame = malloc(cx->frame_cap);
    cx->out = malloc(cx->out_cap);
    cx->zout = malloc(cx->zout_cap);
    cx->to_plain = calloc(s->cfg.max_clients, sizeof(*cx->to_plain));
    cx->to_zip = calloc(s->cfg.max_clients, sizeof(*cx->to_zip));
    if (!cx->frame || !cx->out || !cx->zout || !cx->to_plain || !cx->to_zip) {
        udp_ctx_destroy(cx);
        return -ENOMEM;
    }
    return 0;
}

void udp_ctx_destroy(struct udp_ctx *cx)
{
    zframe_destroy(&cx->z);
    free(cx->frame);
    free(cx->out);
    free(cx->zout);
    free(cx->to_plain);
    free(cx->to_zip);
    cx->frame = cx->out = cx->zout = NULL;
    cx->to_plain = cx->to_zip = NULL;
}

/* --- sending: the frame is in cx->out[0..len), without terminator --- */

/* Queues the frame for n addresses, compressed (once) or plain with a LF for nc users. */
static void push_form(struct udp_ctx *cx, size_t len, bool zip, const struct sockaddr_in *to,
                      size_t n, enum udp_outq_mode mode)
{
    if (n == 0)
        return;
    if (zip) {
        int zl = zframe_compress(&cx->z, cx->out, len, cx->zout, cx->zout_cap);
        if (zl > 0) {
            udp_outq_push(&cx->s->outq, cx->zout, (size_t)zl, to, n, mode);
            return;
        }
        /* cannot happen with zout_cap = bound; plain is still understood */
    }
    cx->out[len] = '\n';
    udp_outq_push(&cx->s->outq, cx->out, len + 1, to, n, mode);
}

int udp_ctl_write(struct udp_ctl *ctl, const char *frame, size_t len)
{
    char small[512];
    int rc;
    pthread_mutex_lock(&ctl->wlock);
    if (ctl->dead != 0) { /* one failure (a peer that does not read: SO_SNDTIMEO) is enough */
        rc = ctl->dead;
    } else if (len < sizeof(small)) { /* the usual case: one write, one segment */
        memcpy(small, frame, len);
        small[len] = '\n';
        rc = net_write_all(ctl->fd, small, len + 1);
    } else if ((rc = net_write_all(ctl->fd, frame, len)) == 0) {
        rc = net_write_all(ctl->fd, "\n", 1);
    }
    if (rc < 0 && ctl->dead == 0) {
        ctl->dead = rc;
        (void)shutdown(ctl->fd, SHUT_RDWR); /* its thread wakes and ends the session */
    }
    pthread_mutex_unlock(&ctl->wlock);
    return rc;
}

/* Queues a frame plus LF for the control connection; written by udp_ctl_flush once the
 * shared context is released, so a peer that does not read never holds ctl_lock. */
static void ctl_queue(struct udp_ctl *ctl, const char *frame, size_t len)
{
    if (ctl->pend_len + len + 1 > ctl->pend_cap) {
        size_t cap = ctl->pend_cap ? ctl->pend_cap : 4096;
        while (cap < ctl->pend_len + len + 1)
            cap *= 2;
        char *p = realloc(ctl->pend, cap);
        if (p == NULL)
            return; /* out of memory: the reply is lost, the session goes on */
        ctl->pend = p;
        ctl->pend_cap = cap;
    }
    memcpy(ctl->pend + ctl->pend_len, frame, len);
    ctl->pend[ctl->pend_len + len] = '\n';
    ctl->pend_len += len + 1;
}

int udp_ctl_flush(struct udp_ctl *ctl)
{
    if (ctl->pend_len == 0)
        return 0;
    size_t len = ctl->pend_len;
    ctl->pend_len = 0;
    /* udp_ctl_write adds the LF that ends the last frame */
    int rc = udp_ctl_write(ctl, ctl->pend, len - 1);
    if (ctl->pend_cap > 65536) { /* a big WHO: give the memory back */
        free(ctl->pend);
        ctl->pend = NULL;
        ctl->pend_cap = 0;
    }
    return rc;
}

/* A reply to one client: queued for its control connection while cx->ctl is set (hybrid),
 * else one datagram. */
static void send_one(struct udp_ctx *cx, const struct sockaddr_in *to, bool zip, int len)
{
    if (len < 0)
        return;
    if (cx->ctl != NULL)
        ctl_queue(cx->ctl, cx->out, (size_t)len);
    else
        push_form(cx, (size_t)len, zip, to, 1, UDP_OUTQ_REPLY);
}

/* Sends the frame to the recipients gathered with add_recipient, then forgets them.
 * wait: at shutdown, wait for room in the queue rather than drop. */
static void send_gathered(struct udp_ctx *cx, int len, bool wait)
{
    enum udp_outq_mode mode = wait ? UDP_OUTQ_WAIT : UDP_OUTQ_FANOUT;
    if (len >= 0) {
        push_form(cx, (size_t)len, false, cx->to_plain, cx->n_plain, mode);
        push_form(cx, (size_t)len, true, cx->to_zip, cx->n_zip, mode);
    }
    cx->n_plain = cx->n_zip = 0;
}

static void add_recipient(struct udp_ctx *cx, const struct udp_client *c)
{
    if (c->ctl != NULL && !c->bound)
        return; /* hybrid, no datagram yet: no address to send to */
    if (c->zip)
        cx->to_zip[cx->n_zip++] = c->addr;
    else
        cx->to_plain[cx->n_plain++] = c->addr;
}

/* Gathers every member of room but except. Caller holds tab_lock. */
static void gather_room(struct udp_ctx *cx, const struct udp_room *room,
                        const struct udp_client *except)
{
    const struct udp_client *m;
    DL_FOREACH2(room->members, m, next)
    {
        // cppcheck-suppress uninitvar ; false positive: utlist's macro assigns m
        if (m != except)
            add_recipient(cx, m);
    }
}

static void send_err(struct udp_ctx *cx, const struct sockaddr_in *to, bool zip, enum proto_err e)
{
    send_one(cx, to, zip, proto_fmt_err(cx->out, cx->out_cap - 1, e, NULL));
}

/* --- the table; every function here needs tab_lock --- */

static uint64_t addr_key(const struct sockaddr_in *sa)
{
    return ((uint64_t)ntohl(sa->sin_addr.s_addr) << 16) | ntohs(sa->sin_port);
}

static struct udp_client *find_addr(struct udp_server *s, const struct sockaddr_in *sa)
{
    uint64_t key = addr_key(sa);
    struct udp_client *c;
    HASH_FIND(hh_addr, s->by_addr, &key, sizeof(key), c);
    return c;
}

static struct udp_client *find_id(struct udp_server *s, const char *id, size_t len)
{
    struct udp_client *c;
    HASH_FIND(hh_id, s->by_id, id, len, c);
    return c;
}

static struct udp_client *find_tok(struct udp_server *s, uint64_t token)
{
    struct udp_client *c;
    HASH_FIND(hh_tok, s->by_tok, &token, sizeof(token), c);
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

/* Finds or creates a room; NULL when out of memory. */
static struct udp_room *room_get(struct udp_server *s, const char *name, size_t len)
{
    struct udp_room *r;
    HASH_FIND(hh, s->rooms, name, len, r);
    if (r != NULL)
        return r;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    memcpy(r->name, name, len);
    HASH_ADD(hh, s->rooms, name[0], len, r);
    return r;
}

static void room_enter(struct udp_room *r, struct udp_client *c)
{
    DL_APPEND2(r->members, c, prev, next);
    r->count++;
    c->room = r;
}

/* Takes c out of its room, freeing the room when it empties. */
static void room_leave(struct udp_server *s, struct udp_client *c)
{
    struct udp_room *r = c->room;
    DL_DELETE2(r->members, c, prev, next);
    c->room = NULL;
    if (--r->count == 0) {
        HASH_DELETE(hh, s->rooms, r);
        free(r);
    }
}

/* What callers need of a client after it is freed. */
struct gone {
    char id[PROTO_ID_MAX + 1];
    char room[PROTO_ID_MAX + 1];
    struct sockaddr_in addr;
    bool zip;
};

/* Removes c from the table, gathering its room's remaining members, and frees it. */
static void client_remove(struct udp_ctx *cx, struct udp_client *c, struct gone *g)
{
    struct udp_server *s = cx->s;
    memcpy(g->id, c->id, sizeof(g->id));
    memcpy(g->room, c->room->name, sizeof(g->room));
    g->addr = c->addr;
    g->zip = c->zip;
    gather_room(cx, c->room, c);
    room_leave(s, c);
    if (c->ctl == NULL || c->bound)
        HASH_DELETE(hh_addr, s->by_addr, c);
    HASH_DELETE(hh_id, s->by_id, c);
    if (c->ctl != NULL)
        HASH_DELETE(hh_tok, s->by_tok, c); /* the token dies with the session */
    else
        DL_DELETE2(s->lru, c, lru_prev, lru_next);
    s->nclients--;
    free(c);
}

/* --- verbs; each is entered with tab_lock held and returns with it released --- */

static void do_hello(struct udp_ctx *cx, struct udp_client *c, const struct sockaddr_in *from,
                     bool zip, const struct proto_frame *f, uint64_t now_ms)
{
    struct udp_server *s = cx->s;
    char id[PROTO_ID_MAX + 1], addr[NET_ADDRSTRLEN];
    memcpy(id, f->id, f->id_len);
    id[f->id_len] = '\0';
    net_addr_str(from, addr);

    if (c != NULL) { /* a registered address: a retried HELLO, or another id */
        bool same = strcmp(c->id, id) == 0;
        pthread_mutex_unlock(&s->tab_lock);
        if (same)
            send_one(cx, from, zip, proto_fmt_welcome(cx->out, cx->out_cap - 1, id, addr));
        else
            send_err(cx, from, zip, PROTO_E_ALREADY_REG);
        return;
    }
    enum proto_err e = PROTO_OK;
    if (find_id(s, f->id, f->id_len) != NULL)
        e = PROTO_E_ID_IN_USE; /* the holder is not disturbed */
    else if (s->nclients >= s->cfg.max_clients)
        e = PROTO_E_FULL;
    /* HELLO <id> <room> registers straight into a room: thousands of load-test clients
     * arriving at once would otherwise cost n^2 JOINED notices in the default room */
    char rname[PROTO_ID_MAX + 1] = PROTO_DEFAULT_ROOM;
    size_t rlen = strlen(rname);
    if (f->room != NULL) {
        memcpy(rname, f->room, f->room_len);
        rname[rlen = f->room_len] = '\0';
    }
    struct udp_room *lobby = NULL;
    if (e == PROTO_OK) {
        lobby = room_get(s, rname, rlen);
        c = lobby != NULL ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL)
            e = PROTO_E_FULL; /* out of memory is a kind of full */
    }
    if (e != PROTO_OK) {
        pthread_mutex_unlock(&s->tab_lock);
        if (e == PROTO_E_FULL)
            log_line("WARN", "Servidor cheio: cliente %s de %s recusado", id, addr);
        send_err(cx, from, zip, e);
        return;
    }
    c->addr = *from;
    c->key = addr_key(from);
    memcpy(c->addr_str, addr, sizeof(addr));
    memcpy(c->id, id, sizeof(id));
    c->zip = zip;
    c->last_ms = now_ms;
    HASH_ADD(hh_addr, s->by_addr, key, sizeof(c->key), c);
    HASH_ADD_KEYPTR(hh_id, s->by_id, c->id, f->id_len, c);
    DL_APPEND2(s->lru, c, lru_prev, lru_next);
    s->nclients++;
    gather_room(cx, lobby, NULL);
    room_enter(lobby, c);
    pthread_mutex_unlock(&s->tab_lock);

    /* every log line is written before the reply is queued: who sees the reply may rely on
     * the line (the tests do) */
    log_line("REGISTER", "Novo cliente %s registrado de %s", id, addr);
    send_one(cx, from, zip, proto_fmt_welcome(cx->out, cx->out_cap - 1, id, addr));
    send_gathered(cx, proto_fmt_joined(cx->out, cx->out_cap - 1, id, rname), false);
}

static void do_msg(struct udp_ctx *cx, struct udp_client *c, bool zip, const struct proto_frame *f)
{
    char id[PROTO_ID_MAX + 1];
    struct sockaddr_in from = c->addr;
    memcpy(id, c->id, sizeof(id));
    uint64_t n = ++c->chats;
    gather_room(cx, c->room, c);
    pthread_mutex_unlock(&cx->s->tab_lock);

    log_message(id, f->text, f->text_len);
    /* relayed before the ACK, as tcp_server does: once the sender has its ACK, its
     * FROMs are queued */
    send_gathered(cx,
                  proto_fmt_from(cx->out, cx->out_cap - 1, false, id, f->seq, f->text, f->text_len),
                  false);
    send_one(cx, &from, zip, proto_fmt_ack(cx->out, cx->out_cap - 1, f->seq, n));
}

static void do_to(struct udp_ctx *cx, struct udp_client *c, bool zip, const struct proto_frame *f)
{
    char id[PROTO_ID_MAX + 1];
    struct sockaddr_in from = c->addr;
    memcpy(id, c->id, sizeof(id));
    uint64_t n = ++c->chats; /* received, even when nobody has that id */
    struct udp_client *t = find_id(cx->s, f->id, f->id_len);
    if (t != NULL)
        add_recipient(cx, t);
    pthread_mutex_unlock(&cx->s->tab_lock);

    if (t == NULL) {
        send_err(cx, &from, zip, PROTO_E_UNKNOWN_USER);
        return;
    }
    log_message(id, f->text, f->text_len);
    send_gathered(cx,
                  proto_fmt_from(cx->out, cx->out_cap - 1, true, id, f->seq, f->text, f->text_len),
                  false);
    send_one(cx, &from, zip, proto_fmt_ack(cx->out, cx->out_cap - 1, f->seq, n));
}

static void do_join(struct udp_ctx *cx, struct udp_client *c, bool zip, const struct proto_frame *f)
{
    struct udp_server *s = cx->s;
    char id[PROTO_ID_MAX + 1], room[PROTO_ID_MAX + 1];
    struct sockaddr_in from = c->addr;
    memcpy(id, c->id, sizeof(id));
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    if (strcmp(c->room->name, room) != 0) {
        struct udp_room *r = room_get(s, room, f->room_len);
        if (r == NULL) { /* out of memory: it stays where it is */
            pthread_mutex_unlock(&s->tab_lock);
            send_err(cx, &from, zip, PROTO_E_BAD_ROOM);
            return;
        }
        /* the old room hears LEFT before the room may be freed: push under tab_lock */
        gather_room(cx, c->room, c);
        send_gathered(
            cx, proto_fmt_left(cx->out, cx->out_cap - 1, id, c->room->name, PROTO_R_MOVED), false);
        room_leave(s, c);
        gather_room(cx, r, NULL);
        room_enter(r, c);
    }
    pthread_mutex_unlock(&s->tab_lock);

    log_line("INFO", "Cliente %s entrou na sala %s", id, room);
    send_one(cx, &from, zip, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room));
    send_gathered(cx, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room), false);
}

/* One WHO line's worth, copied out so that formatting happens without the lock. */
struct who_row {
    char id[PROTO_ID_MAX + 1];
    char addr[NET_ADDRSTRLEN];
    char room[PROTO_ID_MAX + 1];
};

/* One WHO answer a second per client: a 3-byte datagram that fans out into one datagram
 * per client is the best amplifier a UDP server can offer (to a forged source, too). */
#define UDP_WHO_MIN_MS 1000

static void do_who(struct udp_ctx *cx, struct udp_client *c, bool zip)
{
    struct udp_server *s = cx->s;
    struct sockaddr_in from = c->addr;
    uint64_t now = clock_now_ms();
    if (c->who_ms != 0 && now < c->who_ms + UDP_WHO_MIN_MS && cx->ctl == NULL) {
        pthread_mutex_unlock(&s->tab_lock);
        send_err(cx, &from, zip, PROTO_E_RATE);
        return;
    }
    c->who_ms = now;
    /* WHO is rare: one allocation here keeps the lock short even with 10,000 clients */
    size_t n = s->nclients;
    struct who_row *rows = malloc(n * sizeof(*rows));
    if (rows != NULL) {
        size_t i = 0;
        for (struct udp_client *m = s->by_id; m != NULL; m = m->hh_id.next, i++) {
            memcpy(rows[i].id, m->id, sizeof(rows[i].id));
            memcpy(rows[i].addr, m->addr_str, sizeof(rows[i].addr));
            memcpy(rows[i].room, m->room->name, sizeof(rows[i].room));
        }
    }
    pthread_mutex_unlock(&s->tab_lock);
    if (rows == NULL) {
        send_err(cx, &from, zip, PROTO_E_FULL);
        return;
    }
    /* the rows of a long answer ride in the fan-out class: when the queue is three quarters
     * full they are dropped before any ACK is (USERS n tells the asker what it missed) */
    for (size_t i = 0; i < n; i++) {
        int len = proto_fmt_user(cx->out, cx->out_cap - 1, rows[i].id, rows[i].addr, rows[i].room);
        if (cx->ctl != NULL)
            send_one(cx, &from, zip, len);
        else if (len >= 0)
            push_form(cx, (size_t)len, zip, &from, 1, UDP_OUTQ_FANOUT);
    }
    send_one(cx, &from, zip, proto_fmt_users(cx->out, cx->out_cap - 1, n));
    free(rows);
}

static void do_bye(struct udp_ctx *cx, struct udp_client *c)
{
    struct gone g;
    client_remove(cx, c, &g);
    pthread_mutex_unlock(&cx->s->tab_lock);

    log_line("DISCONNECT", "Cliente %s desconectado", g.id);
    send_one(cx, &g.addr, g.zip, proto_fmt_bye(cx->out, cx->out_cap - 1, PROTO_R_QUIT));
    send_gathered(cx, proto_fmt_left(cx->out, cx->out_cap - 1, g.id, g.room, PROTO_R_QUIT), false);
}

/* --- hybrid: tokens on datagrams --- */

/* Counts a refused datagram (missing, unknown or stolen token). Silent on the wire: an
 * answer to a forged source address would make the server a reflector. One [WARN] line
 * per second at most. Receiver thread only. */
static void refuse_token(struct udp_server *s, const struct sockaddr_in *from, uint64_t now_ms)
{
    s->token_refused++;
    s->token_unwarned++;
    if (s->token_warned_ms == 0 || now_ms >= s->token_warned_ms + 1000) {
        char addr[NET_ADDRSTRLEN];
        log_line("WARN",
                 "Token ausente ou inválido: %" PRIu64 " datagramas recusados (último de %s)",
                 s->token_unwarned, net_addr_str(from, addr));
        s->token_warned_ms = now_ms;
        s->token_unwarned = 0;
    }
}

/* Pins a hybrid client to the address of its first datagram with the token; later ones
 * must come from that address. False: another address, or one another session holds.
 * Caller holds tab_lock. */
static bool hyb_bind(struct udp_server *s, struct udp_client *c, const struct sockaddr_in *from)
{
    if (c->bound)
        return c->key == addr_key(from);
    if (find_addr(s, from) != NULL)
        return false;
    c->addr = *from;
    c->key = addr_key(from);
    net_addr_str(from, c->addr_str);
    HASH_ADD(hh_addr, s->by_addr, key, sizeof(c->key), c);
    c->bound = true;
    return true;
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
    if (s->cfg.hybrid) {
        size_t skip;
        if (!proto_take_token(buf, len, &token, &skip)) {
            refuse_token(s, from, now_ms);
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

    pthread_mutex_lock(&s->tab_lock);
    struct udp_client *c;
    if (s->cfg.hybrid) {
        c = find_tok(s, token);
        if (c == NULL || !hyb_bind(s, c, from)) {
            pthread_mutex_unlock(&s->tab_lock);
            refuse_token(s, from, now_ms);
            return;
        }
    } else {
        c = find_addr(s, from);
    }
    if (c != NULL) {
        touch(s, c, now_ms); /* any datagram shows the client is alive */
        if (pre == PROTO_OK)
            c->zip = zip;
    }
    struct proto_frame f;
    if (pre == PROTO_OK && len == 0) { /* an empty datagram: a silent keep-alive */
        pthread_mutex_unlock(&s->tab_lock);
        return;
    }
    if (pre == PROTO_OK)
        pre = proto_parse_client(buf, len, &f);
    /* PING too (PROTOCOL.md, UDP specifics): a forgotten client learns it from its keep-alive */
    if (pre == PROTO_OK && c == NULL && f.verb != PROTO_HELLO)
        pre = PROTO_E_NOT_REG;
    if (pre != PROTO_OK) {
        pthread_mutex_unlock(&s->tab_lock);
        s->rejected_in++;
        send_err(cx, from, zip && pre != PROTO_E_BAD_ZLIB, pre);
        return;
    }
    /* hybrid: the session's life (HELLO, BYE) and its slow verbs belong to the control
     * connection; a datagram carries chat and PING only */
    if (s->cfg.hybrid && f.verb != PROTO_MSG && f.verb != PROTO_TO && f.verb != PROTO_PING) {
        pthread_mutex_unlock(&s->tab_lock);
        s->rejected_in++;
        send_one(cx, from, zip,
                 proto_fmt_err(cx->out, cx->out_cap - 1, PROTO_E_BAD_FRAME,
                               "send it on the control connection"));
        return;
    }

    switch (f.verb) {
    case PROTO_HELLO:
        do_hello(cx, c, from, zip, &f, now_ms);
        break;
    case PROTO_MSG:
        do_msg(cx, c, zip, &f);
        break;
    case PROTO_TO:
        do_to(cx, c, zip, &f);
        break;
    case PROTO_JOIN:
        do_join(cx, c, zip, &f);
        break;
    case PROTO_WHO:
        do_who(cx, c, zip);
        break;
    case PROTO_BYE:
        do_bye(cx, c);
        break;
    case PROTO_PING:
        pthread_mutex_unlock(&s->tab_lock);
        send_one(cx, from, zip, proto_fmt_pong(cx->out, cx->out_cap - 1, f.text, f.text_len));
        break;
    default: /* proto_parse_client returns client verbs only */
        pthread_mutex_unlock(&s->tab_lock);
        send_err(cx, from, zip, PROTO_E_BAD_FRAME);
        break;
    }
}

/* --- keep-alive and shutdown --- */

void udp_expire(struct udp_ctx *cx, uint64_t now_ms)
{
    struct udp_server *s = cx->s;
    uint64_t limit_ms = (uint64_t)s->cfg.timeout_s * 1000u;
    /* One client per lock hold: when a whole room times out at once, the log line (a
     * write(2)) and the room's notices of each go out with tab_lock released, so the
     * receiver keeps serving the living between two removals. */
    for (;;) {
        pthread_mutex_lock(&s->tab_lock);
        /* The activity list is oldest first: stop at the first client still alive. last_ms
         * may be a little after now_ms (the receiver read the clock later): no subtraction,
         * it would wrap and expire a client that just spoke. */
        if (s->lru == NULL || s->lru->last_ms + limit_ms >= now_ms) {
            pthread_mutex_unlock(&s->tab_lock);
            return;
        }
        struct gone g;
        client_remove(cx, s->lru, &g); /* gathers its room into cx, this thread's own */
        pthread_mutex_unlock(&s->tab_lock);

        log_line("TIMEOUT", "Cliente %s removido por inatividade", g.id);
        send_one(cx, &g.addr, g.zip, proto_fmt_bye(cx->out, cx->out_cap - 1, PROTO_R_TIMEOUT));
        send_gathered(cx, proto_fmt_left(cx->out, cx->out_cap - 1, g.id, g.room, PROTO_R_TIMEOUT),
                      false);
        atomic_fetch_add(&s->timeouts, 1);
    }
}

size_t udp_farewell(struct udp_ctx *cx)
{
    struct udp_server *s = cx->s;
    pthread_mutex_lock(&s->tab_lock);
    size_t n = s->nclients;
    struct udp_client *c, *tmp;
    HASH_ITER(hh_id, s->by_id, c, tmp)
    {
        // cppcheck-suppress uninitvar ; false positive: uthash's macro assigns c
        add_recipient(cx, c);
    }
    /* wait for room in the queue: every client should hear it */
    send_gathered(cx, proto_fmt_bye(cx->out, cx->out_cap - 1, PROTO_R_SHUTDOWN), true);
    HASH_ITER(hh_id, s->by_id, c, tmp)
    {
        if (c->ctl == NULL || c->bound)
            HASH_DELETE(hh_addr, s->by_addr, c);
        if (c->ctl != NULL)
            HASH_DELETE(hh_tok, s->by_tok, c);
        HASH_DELETE(hh_id, s->by_id, c);
        room_leave(s, c);
        free(c);
    }
    struct udp_room *r, *rtmp;
    HASH_ITER(hh, s->rooms, r, rtmp)
    { /* rooms a failed HELLO created but never filled */
        HASH_DELETE(hh, s->rooms, r);
        free(r);
    }
    s->lru = NULL;
    s->nclients = 0;
    pthread_mutex_unlock(&s->tab_lock);
    return n;
}

/* --- hybrid mode: the control threads' side of the table (PROTOCOL.md, "Hybrid mode") --- */

/* WELCOME <id> <ip>:<port> <token> <udp_port> to the control connection. */
static void hyb_welcome(struct udp_ctx *cx, struct udp_ctl *ctl, const struct udp_client *c)
{
    int n = proto_fmt_welcome_token(cx->out, cx->out_cap - 1, c->id, ctl->addr, c->token,
                                    cx->s->cfg.port);
    if (n >= 0)
        ctl_queue(ctl, cx->out, (size_t)n);
}

/* A fresh random token, unique among the live ones. Caller holds tab_lock. */
static int new_token(struct udp_server *s, uint64_t *out)
{
    for (;;) {
        uint64_t t;
        ssize_t n = getrandom(&t, sizeof(t), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(t))
            return n < 0 ? -errno : -EIO;
        if (t != 0 && find_tok(s, t) == NULL) {
            *out = t;
            return 0;
        }
    }
}

enum proto_err udp_hyb_register(struct udp_ctx *cx, struct udp_ctl *ctl,
                                const struct proto_frame *f)
{
    struct udp_server *s = cx->s;
    char id[PROTO_ID_MAX + 1];
    memcpy(id, f->id, f->id_len);
    id[f->id_len] = '\0';
    if (ctl->client != NULL) { /* a retried HELLO gets the same session; another id does not */
        if (strcmp(ctl->client->id, id) != 0)
            return PROTO_E_ALREADY_REG;
        hyb_welcome(cx, ctl, ctl->client);
        return PROTO_OK;
    }
    char rname[PROTO_ID_MAX + 1] = PROTO_DEFAULT_ROOM;
    size_t rlen = strlen(rname);
    if (f->room != NULL) {
        memcpy(rname, f->room, f->room_len);
        rname[rlen = f->room_len] = '\0';
    }

    pthread_mutex_lock(&s->tab_lock);
    enum proto_err e = PROTO_OK;
    struct udp_room *room = NULL;
    struct udp_client *c = NULL;
    uint64_t token = 0;
    if (find_id(s, f->id, f->id_len) != NULL)
        e = PROTO_E_ID_IN_USE;
    else if (s->nclients >= s->cfg.max_clients)
        e = PROTO_E_FULL;
    else if (new_token(s, &token) < 0 || (room = room_get(s, rname, rlen)) == NULL ||
             (c = calloc(1, sizeof(*c))) == NULL)
        e = PROTO_E_FULL; /* out of memory or entropy is a kind of full */
    if (e != PROTO_OK || room == NULL || c == NULL) { /* (e is set whenever one is NULL) */
        pthread_mutex_unlock(&s->tab_lock);
        if (e == PROTO_E_FULL)
            log_line("WARN", "Servidor cheio: cliente %s de %s recusado", id, ctl->addr);
        return e;
    }
    c->ctl = ctl;
    c->token = token;
    memcpy(c->addr_str, ctl->addr, sizeof(c->addr_str)); /* until its first datagram */
    memcpy(c->id, id, sizeof(id));
    HASH_ADD_KEYPTR(hh_id, s->by_id, c->id, f->id_len, c);
    HASH_ADD(hh_tok, s->by_tok, token, sizeof(c->token), c);
    s->nclients++;
    gather_room(cx, room, NULL);
    room_enter(room, c);
    pthread_mutex_unlock(&s->tab_lock);

    ctl->client = c;
    log_line("REGISTER", "Novo cliente %s registrado de %s", id, ctl->addr);
    hyb_welcome(cx, ctl, c);
    send_gathered(cx, proto_fmt_joined(cx->out, cx->out_cap - 1, id, rname), false);
    return PROTO_OK;
}

void udp_hyb_command(struct udp_ctx *cx, struct udp_client *c, const struct proto_frame *f)
{
    pthread_mutex_lock(&cx->s->tab_lock);
    if (f->verb == PROTO_JOIN)
        do_join(cx, c, false, f);
    else if (f->verb == PROTO_WHO)
        do_who(cx, c, false);
    else
        pthread_mutex_unlock(&cx->s->tab_lock);
}

void udp_hyb_remove(struct udp_ctx *cx, struct udp_ctl *ctl, enum proto_reason why)
{
    struct udp_client *c = ctl->client;
    if (c == NULL)
        return;
    struct gone g;
    pthread_mutex_lock(&cx->s->tab_lock);
    client_remove(cx, c, &g);
    pthread_mutex_unlock(&cx->s->tab_lock);
    ctl->client = NULL;
    log_line("DISCONNECT", "Cliente %s desconectado", g.id);
    /* at shutdown every member leaves at once: no LEFT (PROTOCOL.md) */
    send_gathered(
        cx,
        why == PROTO_R_SHUTDOWN ? -1 : proto_fmt_left(cx->out, cx->out_cap - 1, g.id, g.room, why),
        false);
}
