/* chat: the chat's rules over any transport (see chat.h for the locking rules and the
 * out-of-memory policy, PROTOCOL.md for the behaviour). */
#include "chat.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- server and context --- */

int chat_server_init(struct chat_server *s, size_t max_clients)
{
    pthread_rwlockattr_t rwa;
    int rc = pthread_rwlockattr_init(&rwa);
    if (rc != 0)
        return -rc;
    /* fan-outs read all the time: writers (HELLO, JOIN, leaving) must not starve */
    rc = pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (rc == 0)
        rc = pthread_rwlock_init(&s->lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    if (rc != 0)
        return -rc;
    registry_init(&s->reg);
    s->max_clients = max_clients;
    return 0;
}

void chat_server_destroy(struct chat_server *s)
{
    registry_destroy(&s->reg);
    pthread_rwlock_destroy(&s->lock);
}

int chat_ctx_init(struct chat_ctx *cx, struct chat_server *s, const struct chat_transport *tp,
                  size_t max_frame)
{
    cx->srv = s;
    cx->tp = tp;
    cx->out_cap = max_frame + CHAT_FRAME_EXTRA;
    cx->out = malloc(cx->out_cap);
    return cx->out != NULL ? 0 : -ENOMEM;
}

void chat_ctx_destroy(struct chat_ctx *cx)
{
    free(cx->out);
    cx->out = NULL;
}

void chat_lock_read(struct chat_server *s)
{
    pthread_rwlock_rdlock(&s->lock);
}

void chat_lock_write(struct chat_server *s)
{
    pthread_rwlock_wrlock(&s->lock);
}

void chat_unlock(struct chat_server *s)
{
    pthread_rwlock_unlock(&s->lock);
}

/* --- sending: frames are formatted into cx->out, one at a time --- */

static void reply(struct chat_ctx *cx, int len)
{
    if (len >= 0) /* -1 cannot happen: out fits the largest frame */
        cx->tp->reply(cx, len);
}

static void reply_err(struct chat_ctx *cx, enum proto_err e, const char *detail)
{
    reply(cx, proto_fmt_err(cx->out, cx->out_cap - 1, e, detail));
}

/* Gathers every member of room but except into group g. Caller holds the lock. */
static void gather_room(struct chat_ctx *cx, const struct reg_room *room,
                        const struct chat_client *except, int g)
{
    if (room == NULL)
        return;
    for (const struct reg_member *m = room->first; m != NULL; m = m->next_in_room) {
        struct chat_client *mc = m->owner;
        if (mc != except)
            cx->tp->gather(cx, mc, g);
    }
}

static int fmt_welcome(struct chat_ctx *cx, const struct chat_client *c)
{
    if (cx->tp->fmt_welcome != NULL)
        return cx->tp->fmt_welcome(cx, c, cx->out, cx->out_cap - 1);
    return proto_fmt_welcome(cx->out, cx->out_cap - 1, c->member.id, c->addr);
}

/* --- verbs: each is entered with the lock held and returns with it released --- */

static enum chat_result do_hello(struct chat_ctx *cx, struct chat_client *c,
                                 const struct proto_frame *f)
{
    struct chat_server *s = cx->srv;
    char id[PROTO_ID_MAX + 1], addr[NET_ADDRSTRLEN];
    char room[PROTO_ID_MAX + 1] = PROTO_DEFAULT_ROOM;
    memcpy(id, f->id, f->id_len);
    id[f->id_len] = '\0';
    memcpy(addr, c->addr, sizeof(addr));
    if (chat_registered(c)) { /* a retried HELLO is welcomed again; another id is not */
        bool same = strcmp(c->member.id, id) == 0;
        int n = same ? fmt_welcome(cx, c) : -1;
        chat_unlock(s);
        if (same)
            reply(cx, n);
        else
            reply_err(cx, PROTO_E_ALREADY_REG, NULL);
        return CHAT_DONE;
    }
    /* HELLO <id> <room> registers straight into a room: thousands of load-test clients
     * arriving at once would otherwise cost n^2 JOINED notices in the default room */
    size_t rlen = strlen(room);
    if (f->room != NULL) {
        memcpy(room, f->room, f->room_len);
        room[rlen = f->room_len] = '\0';
    }
    int rc = 0;
    enum proto_err e = PROTO_OK;
    c->active_ms = clock_now_ms(); /* before attach, which may index it by activity */
    if (registry_find(&s->reg, f->id, f->id_len) != NULL) {
        e = PROTO_E_ID_IN_USE; /* the holder is not disturbed */
    } else if (s->reg.count >= s->max_clients) {
        e = PROTO_E_FULL;
    } else {
        rc = registry_add(&s->reg, &c->member, f->id, f->id_len, room, rlen, c);
        if (rc == 0 && cx->tp->attach != NULL && (rc = cx->tp->attach(cx, c)) < 0)
            registry_remove(&s->reg, &c->member);
        if (rc < 0) /* no memory for a room or an index entry, or no token: refused */
            e = PROTO_E_FULL;
    }
    if (e != PROTO_OK) {
        chat_unlock(s);
        if (rc == -ENOMEM)
            log_line("ERROR", "Memória insuficiente para registrar cliente %s de %s", id, addr);
        else if (rc < 0)
            log_line("ERROR", "Cliente %s de %s não registrado: %s", id, addr, strerror(-rc));
        else if (e == PROTO_E_FULL)
            log_line("WARN", "Servidor cheio: cliente %s de %s recusado", id, addr);
        reply_err(cx, e, rc == -ENOMEM ? "out of memory" : NULL);
        return CHAT_REFUSED;
    }
    reply(cx, fmt_welcome(cx, c)); /* under the lock: no FROM can overtake it */
    if (cx->tp->active != NULL)
        cx->tp->active(cx, c);
    gather_room(cx, c->member.room, c, 0);
    chat_unlock(s);

    if (cx->tp->hello_words == CHAT_WORDS_CONNECT)
        log_line("CONNECT", "Cliente %s conectado de %s", id, addr);
    else
        log_line("REGISTER", "Novo cliente %s registrado de %s", id, addr);
    cx->tp->send(cx, 0, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room));
    return CHAT_DONE;
}

/* MSG and plain text to the room, TO to one client (priv). */
static void do_chat(struct chat_ctx *cx, struct chat_client *c, const struct proto_frame *f,
                    bool priv)
{
    char id[PROTO_ID_MAX + 1];
    memcpy(id, c->member.id, sizeof(id));
    uint64_t n = ++c->chat_in; /* received, even when TO names nobody */
    bool found = true;
    if (!priv) {
        gather_room(cx, c->member.room, c, 0);
    } else {
        struct reg_member *to = registry_find(&cx->srv->reg, f->id, f->id_len);
        if (to != NULL)
            cx->tp->gather(cx, to->owner, 0);
        found = to != NULL;
    }
    chat_unlock(cx->srv);
    if (!found) {
        reply_err(cx, PROTO_E_UNKNOWN_USER, NULL);
        return;
    }
    /* relayed before the ACK: once the sender has its ACK, every FROM is on its way */
    cx->tp->send(cx, 0,
                 proto_fmt_from(cx->out, cx->out_cap - 1, priv, id, f->seq, f->text, f->text_len));
    reply(cx, proto_fmt_ack(cx->out, cx->out_cap - 1, f->seq, n));
    log_message(id, f->text, f->text_len);
}

static void do_join(struct chat_ctx *cx, struct chat_client *c, const struct proto_frame *f)
{
    struct chat_server *s = cx->srv;
    char id[PROTO_ID_MAX + 1], old[PROTO_ID_MAX + 1], room[PROTO_ID_MAX + 1];
    memcpy(id, c->member.id, sizeof(id));
    memcpy(old, c->member.room->name, sizeof(old));
    memcpy(room, f->room, f->room_len);
    room[f->room_len] = '\0';
    bool moved = strcmp(old, room) != 0;
    if (moved && registry_move(&s->reg, &c->member, f->room, f->room_len) < 0) {
        chat_unlock(s); /* -ENOMEM: it stays where it was */
        log_line("ERROR", "Memória insuficiente para mover %s para a sala %s", id, room);
        reply_err(cx, PROTO_E_FULL, "out of memory");
        return;
    }
    if (moved) {
        /* the mover hears JOINED before any FROM of its new room; both rooms are taken in
         * the same critical section, so whoever arrives after the move hears nothing of it */
        reply(cx, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room));
        gather_room(cx, registry_room(&s->reg, old, strlen(old)), c, 0);
        gather_room(cx, c->member.room, c, 1);
    }
    chat_unlock(s);
    if (!moved) {
        reply(cx, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room));
    } else {
        cx->tp->send(cx, 0, proto_fmt_left(cx->out, cx->out_cap - 1, id, old, PROTO_R_MOVED));
        cx->tp->send(cx, 1, proto_fmt_joined(cx->out, cx->out_cap - 1, id, room));
    }
    log_line("INFO", "Cliente %s entrou na sala %s", id, room);
}

/* WHO: every USER line formatted into one block under the lock, sent after it. */
static void do_who(struct chat_ctx *cx, struct chat_client *c)
{
    struct chat_server *s = cx->srv;
    enum { LINE = PROTO_ID_MAX * 2 + NET_ADDRSTRLEN + 16 };
    if (cx->tp->who_min_ms != 0) {
        uint64_t now = clock_now_ms();
        if (c->who_ms != 0 && now < c->who_ms + cx->tp->who_min_ms) {
            chat_unlock(s);
            reply_err(cx, PROTO_E_RATE, NULL);
            return;
        }
        c->who_ms = now;
    }
    /* WHO is rare: one allocation here keeps the lock short even with 10,000 clients */
    size_t cap = s->reg.count * LINE + 1, len = 0, n = 0;
    char *block = malloc(cap);
    if (block != NULL) {
        for (const struct reg_member *m = s->reg.by_id; m != NULL; m = m->hh.next) {
            const struct chat_client *mc = m->owner;
            int l = proto_fmt_user(block + len, cap - len - 1, m->id, mc->addr, m->room->name);
            if (l < 0)
                break;
            len += (size_t)l;
            block[len++] = '\n';
            n++;
        }
    }
    chat_unlock(s);
    if (block == NULL) {
        log_line("ERROR", "Memória insuficiente para responder WHO");
        reply_err(cx, PROTO_E_FULL, "out of memory");
        return;
    }
    if (len > 0)
        cx->tp->reply_bulk(cx, block, len);
    free(block);
    reply(cx, proto_fmt_users(cx->out, cx->out_cap - 1, n));
}

/* --- frames --- */

static enum chat_result handle(struct chat_ctx *cx, struct chat_client *c,
                               const struct proto_frame *f, bool locked)
{
    struct chat_server *s = cx->srv;
    cx->tp->hold_self(cx, c);
    if (f->verb == PROTO_PING || (!chat_registered(c) && f->verb != PROTO_HELLO)) {
        if (locked)
            chat_unlock(s);
        if (f->verb == PROTO_PING)
            reply(cx, proto_fmt_pong(cx->out, cx->out_cap - 1, f->text, f->text_len));
        else
            reply_err(cx, PROTO_E_NOT_REG, NULL);
        return CHAT_DONE;
    }
    if (!locked) {
        if (!cx->tp->exclusive &&
            (f->verb == PROTO_MSG || f->verb == PROTO_TO || f->verb == PROTO_WHO))
            chat_lock_read(s);
        else
            chat_lock_write(s);
    }
    if (chat_registered(c)) { /* any request but PING keeps it from --idle-timeout */
        c->active_ms = clock_now_ms();
        if (cx->tp->active != NULL)
            cx->tp->active(cx, c);
    }
    switch (f->verb) {
    case PROTO_HELLO:
        return do_hello(cx, c, f);
    case PROTO_MSG:
    case PROTO_TO:
        do_chat(cx, c, f, f->verb == PROTO_TO);
        return CHAT_DONE;
    case PROTO_JOIN:
        do_join(cx, c, f);
        return CHAT_DONE;
    case PROTO_WHO:
        do_who(cx, c);
        return CHAT_DONE;
    case PROTO_BYE:
        chat_leave_locked(cx, c, PROTO_R_QUIT, true);
        return CHAT_LEFT;
    default: /* proto_parse_client returns client verbs only */
        chat_unlock(s);
        reply_err(cx, PROTO_E_BAD_FRAME, NULL);
        return CHAT_DONE;
    }
}

enum chat_result chat_frame(struct chat_ctx *cx, struct chat_client *c, const struct proto_frame *f)
{
    return handle(cx, c, f, false);
}

enum chat_result chat_frame_locked(struct chat_ctx *cx, struct chat_client *c,
                                   const struct proto_frame *f)
{
    return handle(cx, c, f, true);
}

enum chat_result chat_line(struct chat_ctx *cx, struct chat_client *c, const char *line, size_t len)
{
    struct proto_frame f;
    enum proto_err e = proto_parse_client(line, len, &f);
    if (e == PROTO_OK)
        return handle(cx, c, &f, false);
    cx->tp->hold_self(cx, c);
    reply_err(cx, e, NULL);
    return CHAT_DONE;
}

/* --- leaving --- */

void chat_leave_locked(struct chat_ctx *cx, struct chat_client *c, enum proto_reason why, bool bye)
{
    struct chat_server *s = cx->srv;
    cx->tp->hold_self(cx, c);
    if (!chat_registered(c)) {
        chat_unlock(s);
        if (bye)
            reply(cx, proto_fmt_bye(cx->out, cx->out_cap - 1, why));
        return;
    }
    char id[PROTO_ID_MAX + 1], room[PROTO_ID_MAX + 1];
    memcpy(id, c->member.id, sizeof(id));
    memcpy(room, c->member.room->name, sizeof(room));
    if (cx->tp->detach != NULL)
        cx->tp->detach(cx, c);
    registry_remove(&s->reg, &c->member);
    /* On shutdown every member gets BYE shutdown at the same moment; a LEFT from each to
     * each would be N^2 frames (minutes for 10,000 clients), so none is sent. */
    if (why != PROTO_R_SHUTDOWN)
        gather_room(cx, registry_room(&s->reg, room, strlen(room)), c, 0);
    chat_unlock(s);

    if (why != PROTO_R_SHUTDOWN)
        cx->tp->send(cx, 0, proto_fmt_left(cx->out, cx->out_cap - 1, id, room, why));
    if (why == PROTO_R_SLOW)
        log_line("WARN", "Cliente %s removido: consumidor lento", id);
    if (why == PROTO_R_TIMEOUT)
        log_line("TIMEOUT", "Cliente %s removido por inatividade", id);
    else if (why == PROTO_R_IDLE)
        log_line("TIMEOUT", "Cliente %s removido por ociosidade (%u s sem atividade)", id,
                 s->idle_s);
    else
        log_line("DISCONNECT", "Cliente %s desconectado", id);
    if (bye)
        reply(cx, proto_fmt_bye(cx->out, cx->out_cap - 1, why));
}

void chat_leave(struct chat_ctx *cx, struct chat_client *c, enum proto_reason why, bool bye)
{
    if (!chat_registered(c)) { /* the owner's own view: nobody else registers it */
        cx->tp->hold_self(cx, c);
        if (bye)
            reply(cx, proto_fmt_bye(cx->out, cx->out_cap - 1, why));
        return;
    }
    chat_lock_write(cx->srv);
    chat_leave_locked(cx, c, why, bye);
}

size_t chat_remove_all(struct chat_ctx *cx,
                       void (*each)(struct chat_ctx *cx, struct chat_client *c))
{
    struct chat_server *s = cx->srv;
    chat_lock_write(s);
    size_t n = s->reg.count;
    struct reg_member *m = s->reg.by_id;
    while (m != NULL) {
        struct reg_member *next = m->hh.next; /* app order survives the removal of m */
        struct chat_client *c = m->owner;
        registry_remove(&s->reg, m);
        each(cx, c);
        m = next;
    }
    chat_unlock(s);
    return n;
}
