/* client_frames: server frames shown and remembered (see client_frames.h). */
#include "client_frames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_term.h"

#define CLI_WHO_MAX_ROWS 100000 /* a hostile server cannot make us buffer more */

/* Escapes a short field (id, room, address) into out; longer ones are cut. */
static const char *esc_field(const char *in, size_t len, char *out, size_t cap)
{
    proto_escape(in, len, out, cap);
    return out;
}

static void show_who(struct cli_session *s, uint64_t count)
{
    size_t wid = 2, waddr = 8;
    for (size_t i = 0; i < s->who_n; i++) {
        size_t l = strlen(s->who[i].id);
        wid = l > wid ? l : wid;
        l = strlen(s->who[i].addr);
        waddr = l > waddr ? l : waddr;
    }
    /* "endereço" has one two-byte character: pad by display width, not bytes */
    cli_printf(s, "  %-*s  endereço%*s  sala", (int)wid, "id", (int)(waddr - 8), "");
    for (size_t i = 0; i < s->who_n; i++)
        cli_printf(s, "  %-*s  %-*s  %s%s", (int)wid, s->who[i].id, (int)waddr, s->who[i].addr,
                   s->who[i].room, strcmp(s->who[i].id, s->opt.id) == 0 ? "  (você)" : "");
    cli_printf(s, "* %llu usuário(s) conectado(s)", (unsigned long long)count);
    s->who_n = 0;
}

static void add_who_row(struct cli_session *s, const struct proto_frame *f)
{
    if (s->who_n == s->who_cap) {
        if (s->who_cap >= CLI_WHO_MAX_ROWS)
            return;
        size_t cap = s->who_cap ? s->who_cap * 2 : 16;
        struct cli_who_row *rows = realloc(s->who, cap * sizeof(*rows));
        if (rows == NULL)
            return; /* out of memory: the table is short, the chat goes on */
        s->who = rows;
        s->who_cap = cap;
    }
    struct cli_who_row *r = &s->who[s->who_n++];
    esc_field(f->id, f->id_len, r->id, sizeof(r->id));
    esc_field(f->addr, f->addr_len, r->addr, sizeof(r->addr));
    esc_field(f->room, f->room_len, r->room, sizeof(r->room));
}

static void on_welcome(struct cli_session *s)
{
    char room[PROTO_ID_MAX + 1];
    pthread_mutex_lock(&s->lock);
    bool was = s->registered;
    s->registered = true;
    s->told_in_use = false;
    memcpy(room, s->room, sizeof(room));
    pthread_mutex_unlock(&s->lock);
    if (was)
        return; /* a repeated WELCOME (UDP retry) */
    cli_printf(s, "Conectado ao servidor!");
    if (strcmp(room, PROTO_DEFAULT_ROOM) != 0) {
        char frame[64];
        int n = snprintf(frame, sizeof(frame), "JOIN %s", room);
        if (s->tp->send(s, frame, (size_t)n) < 0)
            cli_printf(s, "* não foi possível voltar à sala %s", room);
    }
    cli_wake_main(s);
}

static void on_err(struct cli_session *s, const struct proto_frame *f)
{
    char code[4 * 40 + 1];
    esc_field(f->code, f->code_len, code, sizeof(code));
    if (proto_is_err(f, PROTO_E_NOT_REG))
        return; /* the transport registers again and says so */
    if (proto_is_err(f, PROTO_E_ID_IN_USE)) {
        pthread_mutex_lock(&s->lock);
        bool told = s->told_in_use;
        s->told_in_use = true;
        pthread_mutex_unlock(&s->lock);
        if (!told)
            cli_printf(s, "* o id %s já está em uso no servidor; tentando de novo...", s->opt.id);
        return;
    }
    /* refusals of a chat frame: its ACK will never come */
    if (proto_is_err(f, PROTO_E_UNKNOWN_USER) || proto_is_err(f, PROTO_E_TOO_LONG) ||
        proto_is_err(f, PROTO_E_BAD_ID))
        cli_settled(s);
    proto_escape(f->text, f->text_len, s->esc, 4 * CLI_RECV_MAX + 1);
    cli_printf(s, "* erro: %s%s%s", code, f->text_len ? ": " : "", s->esc);
}

enum proto_err cli_handle_frame(struct cli_session *s, const char *buf, size_t len,
                                struct proto_frame *f)
{
    char id[4 * PROTO_ID_MAX + 1], room[4 * PROTO_ID_MAX + 1];
    const size_t esc_cap = 4 * CLI_RECV_MAX + 1;
    enum proto_err e = proto_parse_server(buf, len, f);
    if (e != PROTO_OK) {
        proto_escape(buf, len, s->esc, esc_cap);
        cli_printf(s, "* quadro inválido do servidor: \"%s\"", s->esc);
        return e;
    }
    switch (f->verb) {
    case PROTO_WELCOME:
        on_welcome(s);
        break;
    case PROTO_ACK:
        cli_printf(s, "%s : \"ACK\"", s->opt.id);
        cli_settled(s);
        break;
    case PROTO_FROM:
    case PROTO_PRIV:
        esc_field(f->id, f->id_len, id, sizeof(id));
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        cli_printf(s, "%s%s : \"%s\"", f->verb == PROTO_PRIV ? "[privado] " : "", id, s->esc);
        break;
    case PROTO_USER:
        add_who_row(s, f);
        break;
    case PROTO_USERS:
        show_who(s, f->n);
        break;
    case PROTO_PONG:
        break; /* keep-alive: the transport noted that something arrived */
    case PROTO_JOINED:
        esc_field(f->id, f->id_len, id, sizeof(id));
        esc_field(f->room, f->room_len, room, sizeof(room));
        if (f->id_len == strlen(s->opt.id) && memcmp(f->id, s->opt.id, f->id_len) == 0 &&
            proto_valid_name(f->room, f->room_len)) {
            pthread_mutex_lock(&s->lock);
            memcpy(s->room, f->room, f->room_len);
            s->room[f->room_len] = '\0';
            pthread_mutex_unlock(&s->lock);
            cli_printf(s, "* você entrou na sala %s", room);
        } else {
            cli_printf(s, "* %s entrou na sala %s", id, room);
        }
        break;
    case PROTO_LEFT:
        esc_field(f->id, f->id_len, id, sizeof(id));
        esc_field(f->room, f->room_len, room, sizeof(room));
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        cli_printf(s, "* %s saiu da sala %s (%s)", id, room, s->esc);
        break;
    case PROTO_BYE:
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        if (proto_is_bye(f, PROTO_R_QUIT)) {
            pthread_mutex_lock(&s->lock);
            s->bye_seen = true;
            pthread_mutex_unlock(&s->lock);
            /* the session is over, whether we asked (/quit, EOF) or not: exit 0 */
            atomic_store(&s->quit, true);
            cli_wake_main(s);
        }
        cli_printf(s, "* o servidor encerrou a sessão (%s)", s->esc);
        break;
    case PROTO_ERR:
        on_err(s, f);
        break;
    default:
        break;
    }
    return PROTO_OK;
}
