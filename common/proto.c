/* proto: parsing and formatting of the chat's text frames (see proto.h, PROTOCOL.md). */
#include "proto.h"

#include "parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* --- names --- */

static const char *const err_names[PROTO_E__COUNT] = {
    [PROTO_OK] = "ok",
    [PROTO_E_BAD_FRAME] = "bad_frame",
    [PROTO_E_TOO_LONG] = "too_long",
    [PROTO_E_BAD_ID] = "bad_id",
    [PROTO_E_BAD_ROOM] = "bad_room",
    [PROTO_E_ID_IN_USE] = "id_in_use",
    [PROTO_E_NOT_REG] = "not_registered",
    [PROTO_E_ALREADY_REG] = "already_registered",
    [PROTO_E_UNKNOWN_USER] = "unknown_user",
    [PROTO_E_FULL] = "server_full",
    [PROTO_E_BAD_ZLIB] = "bad_zlib",
    [PROTO_E_TIMEOUT] = "timeout",
    [PROTO_E_RATE] = "rate_limited",
    [PROTO_E_PAD] = "pad",
};

static const char *const err_texts[PROTO_E__COUNT] = {
    [PROTO_OK] = "ok",
    [PROTO_E_BAD_FRAME] = "malformed frame",
    [PROTO_E_TOO_LONG] = "frame too long",
    [PROTO_E_BAD_ID] = "id must be 1 to 32 of A-Z a-z 0-9 _ . -",
    [PROTO_E_BAD_ROOM] = "room must be 1 to 32 of A-Z a-z 0-9 _ . -",
    [PROTO_E_ID_IN_USE] = "id in use",
    [PROTO_E_NOT_REG] = "not registered, send HELLO <id> first",
    [PROTO_E_ALREADY_REG] = "already registered with another id",
    [PROTO_E_UNKNOWN_USER] = "no such user",
    [PROTO_E_FULL] = "server full",
    [PROTO_E_BAD_ZLIB] = "corrupt or oversized compressed frame",
    [PROTO_E_TIMEOUT] = "no HELLO in time",
    [PROTO_E_RATE] = "one WHO a second, try again later",
    [PROTO_E_PAD] = "pad the HELLO to 64 bytes: HELLO <id> [<room>] #...",
};

static const char *const reason_names[PROTO_R__COUNT] = {
    [PROTO_R_QUIT] = "quit", [PROTO_R_TIMEOUT] = "timeout", [PROTO_R_ERROR] = "error",
    [PROTO_R_SLOW] = "slow", [PROTO_R_MOVED] = "moved",     [PROTO_R_SHUTDOWN] = "shutdown",
    [PROTO_R_IDLE] = "idle",
};

static const struct {
    const char *word;
    enum proto_verb verb;
} verbs[] = {
    {"HELLO", PROTO_HELLO}, {"MSG", PROTO_MSG},         {"TO", PROTO_TO},
    {"JOIN", PROTO_JOIN},   {"WHO", PROTO_WHO},         {"PING", PROTO_PING},
    {"BYE", PROTO_BYE},     {"WELCOME", PROTO_WELCOME}, {"ACK", PROTO_ACK},
    {"FROM", PROTO_FROM},   {"PRIV", PROTO_PRIV},       {"USER", PROTO_USER},
    {"USERS", PROTO_USERS}, {"PONG", PROTO_PONG},       {"JOINED", PROTO_JOINED},
    {"LEFT", PROTO_LEFT},   {"ERR", PROTO_ERR},
};

const char *proto_err_name(enum proto_err e)
{
    return (unsigned)e < PROTO_E__COUNT ? err_names[e] : "unknown";
}

const char *proto_err_text(enum proto_err e)
{
    return (unsigned)e < PROTO_E__COUNT ? err_texts[e] : "unknown error";
}

const char *proto_reason_name(enum proto_reason r)
{
    return (unsigned)r < PROTO_R__COUNT ? reason_names[r] : "error";
}

const char *proto_verb_name(enum proto_verb v)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (verbs[i].verb == v)
            return verbs[i].word;
    return "NONE";
}

/* --- scanning helpers: a cursor over [p, end) --- */

struct cursor {
    const char *p;
    const char *end;
};

/* Takes the next word (up to one space or the end). Empty words are refused: the
 * grammar uses exactly one space between fields. */
static bool take_word(struct cursor *c, const char **w, size_t *wl)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    *w = s;
    *wl = (size_t)(c->p - s);
    if (*wl == 0)
        return false;
    if (c->p < c->end)
        c->p++; /* the separating space */
    return true;
}

/* At the end of the frame, and not just after a separating space: "WHO " or "HELLO a "
 * has an empty last field and is refused. The cursor always stands past a verb here. */
static bool at_end(const struct cursor *c)
{
    return c->p == c->end && c->p[-1] != ' ';
}

/* The rest of the frame, possibly empty (used for free text). */
static void take_rest(struct cursor *c, const char **w, size_t *wl)
{
    *w = c->p;
    *wl = (size_t)(c->end - c->p);
    c->p = c->end;
}

/* Decimal u64 without sign or leading '+', no overflow; or '-' when dash_ok. */
static bool parse_seq(const char *s, size_t len, bool dash_ok, uint64_t *out)
{
    if (len == 1 && s[0] == '-' && dash_ok) {
        *out = PROTO_NO_SEQ;
        return true;
    }
    /* UINT64_MAX itself means "no seq" */
    return parse_u64_span(s, len, UINT64_MAX - 1, out) == 0;
}

static bool take_u64(struct cursor *c, bool dash_ok, uint64_t *out)
{
    const char *w;
    size_t wl;
    return take_word(c, &w, &wl) && parse_seq(w, wl, dash_ok, out);
}

bool proto_valid_name(const char *s, size_t len)
{
    if (len == 0 || len > PROTO_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

enum proto_verb proto_verb_lookup(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strlen(verbs[i].word) == len && memcmp(verbs[i].word, word, len) == 0)
            return verbs[i].verb;
    return PROTO_NONE;
}

/* Identifies the first word as a verb of the given set (client or server side).
 * Verbs are upper case and must be followed by a space or the end of the frame. */
static enum proto_verb match_verb(struct cursor *c, bool server_side)
{
    const char *s = c->p;
    const char *e = memchr(s, ' ', (size_t)(c->end - s));
    size_t wl = e ? (size_t)(e - s) : (size_t)(c->end - s);
    enum proto_verb v = proto_verb_lookup(s, wl);
    /* BYE is both a client request and a server notice */
    if (v == PROTO_NONE || (v != PROTO_BYE && (v >= PROTO_WELCOME) != server_side))
        return PROTO_NONE;
    c->p = e ? e + 1 : c->end;
    return v;
}

bool proto_is_err(const struct proto_frame *f, enum proto_err code)
{
    const char *name = proto_err_name(code);
    return f->verb == PROTO_ERR && f->code_len == strlen(name) &&
           memcmp(f->code, name, f->code_len) == 0;
}

bool proto_is_bye(const struct proto_frame *f, enum proto_reason r)
{
    const char *name = proto_reason_name(r);
    return f->verb == PROTO_BYE && f->text_len == strlen(name) &&
           memcmp(f->text, name, f->text_len) == 0;
}

/* --- hybrid tokens --- */

void proto_token_prefix(uint64_t token, char out[PROTO_TOKEN_PREFIX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = PROTO_TOKEN_LEN - 1; i >= 0; i--, token >>= 4)
        out[i] = hex[token & 15];
    out[PROTO_TOKEN_LEN] = ' ';
}

/* 16 lower-case hex digits at s (len >= PROTO_TOKEN_LEN) into *token. */
static bool hex_token(const char *s, uint64_t *token)
{
    uint64_t t = 0;
    for (size_t i = 0; i < PROTO_TOKEN_LEN; i++) {
        char ch = s[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        t = t << 4 | d;
    }
    *token = t;
    return true;
}

bool proto_take_token(const char *buf, size_t len, uint64_t *token, size_t *skip)
{
    if (len < PROTO_TOKEN_LEN || !hex_token(buf, token))
        return false;
    if (len == PROTO_TOKEN_LEN) {
        *skip = PROTO_TOKEN_LEN;
        return true;
    }
    char next = buf[PROTO_TOKEN_LEN];
    if (next == ' ')
        *skip = PROTO_TOKEN_PREFIX;
    else if (next == '\n' || next == '\r') /* the token alone, then a line end */
        *skip = PROTO_TOKEN_LEN;
    else
        return false; /* a 17th character that is not the separator: not our framing */
    return true;
}

/* --- parsing --- */

/* NUL, CR and LF never belong inside a frame: a datagram "MSG 1 a\nb" would reach a
 * line-oriented peer (nc) as two frames. Terminators are stripped before parsing. */
static bool has_forbidden_byte(const char *buf, size_t len)
{
    return memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL ||
           memchr(buf, '\r', len) != NULL;
}

enum proto_err proto_parse_client(const char *buf, size_t len, struct proto_frame *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = PROTO_NO_SEQ;
    if (len == 0 || has_forbidden_byte(buf, len))
        return PROTO_E_BAD_FRAME;
    if ((unsigned char)buf[0] == PROTO_ZMARK)
        return PROTO_E_BAD_FRAME; /* compressed frames are inflated before parsing */

    struct cursor c = {buf, buf + len};
    out->verb = match_verb(&c, false);
    switch (out->verb) {
    case PROTO_NONE: /* plain text: a chat message without sequence number */
        out->verb = PROTO_MSG;
        out->text = buf;
        out->text_len = len;
        return PROTO_OK;
    case PROTO_HELLO:
        if (!take_word(&c, &out->id, &out->id_len))
            return PROTO_E_BAD_FRAME;
        /* the room, unless the padding comes first: '#' never starts a name */
        if (c.p < c.end && *c.p != PROTO_PAD_MARK && !take_word(&c, &out->room, &out->room_len))
            return PROTO_E_BAD_FRAME;
        if (c.p < c.end && *c.p == PROTO_PAD_MARK)
            c.p = c.end; /* padding: '#' and anything up to the end, ignored */
        else if (!at_end(&c))
            return PROTO_E_BAD_FRAME;
        if (!proto_valid_name(out->id, out->id_len))
            return PROTO_E_BAD_ID;
        if (out->room != NULL && !proto_valid_name(out->room, out->room_len))
            return PROTO_E_BAD_ROOM;
        return PROTO_OK;
    case PROTO_MSG:
        if (!take_u64(&c, true, &out->seq))
            return PROTO_E_BAD_FRAME;
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    case PROTO_TO:
        if (!take_word(&c, &out->id, &out->id_len))
            return PROTO_E_BAD_FRAME;
        if (!proto_valid_name(out->id, out->id_len))
            return PROTO_E_BAD_ID;
        if (!take_u64(&c, true, &out->seq))
            return PROTO_E_BAD_FRAME;
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    case PROTO_JOIN:
        if (!take_word(&c, &out->room, &out->room_len) || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return proto_valid_name(out->room, out->room_len) ? PROTO_OK : PROTO_E_BAD_ROOM;
    case PROTO_WHO:
    case PROTO_BYE:
        return at_end(&c) ? PROTO_OK : PROTO_E_BAD_FRAME;
    case PROTO_PING:
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    default:
        return PROTO_E_BAD_FRAME;
    }
}

enum proto_err proto_parse_server(const char *buf, size_t len, struct proto_frame *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = PROTO_NO_SEQ;
    if (len == 0 || memchr(buf, '\0', len) != NULL)
        return PROTO_E_BAD_FRAME;

    struct cursor c = {buf, buf + len};
    out->verb = match_verb(&c, true);
    switch (out->verb) {
    case PROTO_WELCOME: {
        if (!take_word(&c, &out->id, &out->id_len) || !take_word(&c, &out->addr, &out->addr_len))
            return PROTO_E_BAD_FRAME;
        if (at_end(&c))
            return PROTO_OK;
        /* hybrid: <token> <udp_port> */
        const char *tok;
        size_t tok_len;
        uint64_t port;
        if (!take_word(&c, &tok, &tok_len) || tok_len != PROTO_TOKEN_LEN ||
            !hex_token(tok, &out->token) || !take_u64(&c, false, &port) || port == 0 ||
            port > 65535 || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        out->has_token = true;
        out->udp_port = (uint16_t)port;
        return PROTO_OK;
    }
    case PROTO_ACK:
        if (!take_u64(&c, true, &out->seq) || !take_u64(&c, false, &out->n) || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return PROTO_OK;
    case PROTO_FROM:
    case PROTO_PRIV:
        if (!take_word(&c, &out->id, &out->id_len) || !take_u64(&c, true, &out->seq))
            return PROTO_E_BAD_FRAME;
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    case PROTO_USER:
        if (!take_word(&c, &out->id, &out->id_len) || !take_word(&c, &out->addr, &out->addr_len) ||
            !take_word(&c, &out->room, &out->room_len) || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return PROTO_OK;
    case PROTO_USERS:
        if (!take_u64(&c, false, &out->n) || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return PROTO_OK;
    case PROTO_PONG:
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    case PROTO_JOINED:
        if (!take_word(&c, &out->id, &out->id_len) || !take_word(&c, &out->room, &out->room_len) ||
            !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return PROTO_OK;
    case PROTO_LEFT:
        if (!take_word(&c, &out->id, &out->id_len) || !take_word(&c, &out->room, &out->room_len) ||
            !take_word(&c, &out->text, &out->text_len) || !at_end(&c))
            return PROTO_E_BAD_FRAME;
        return PROTO_OK;
    case PROTO_BYE:
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    case PROTO_ERR:
        if (!take_word(&c, &out->code, &out->code_len))
            return PROTO_E_BAD_FRAME;
        take_rest(&c, &out->text, &out->text_len);
        return PROTO_OK;
    default:
        out->verb = PROTO_NONE;
        return PROTO_E_BAD_FRAME;
    }
}

int proto_next_line(const char *buf, size_t len, size_t max, size_t *line_len, size_t *consumed)
{
    /* A frame of max bytes may be followed by CR LF: look that far, no further. */
    size_t scan = len < max + 2 ? len : max + 2;
    const char *lf = memchr(buf, '\n', scan);
    if (lf == NULL)
        return len > max + 1 ? -1 : 0; /* max bytes plus a CR may still await their LF */
    size_t l = (size_t)(lf - buf);
    *consumed = l + 1;
    if (l > 0 && buf[l - 1] == '\r')
        l--;
    if (l > max)
        return -1;
    *line_len = l;
    return 1;
}

/* --- escaping --- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid or a C1 control. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    size_t n;
    unsigned int cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    /* overlong, surrogates, out of range, C1 controls; and the bidirectional controls
     * (U+202A..U+202E, U+2066..U+2069), which would let a message reorder its own log line */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F) ||
        (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
        return 0;
    return n;
}

size_t proto_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        char esc[4];
        const char *piece = esc;
        size_t pl;
        size_t take = 1;
        if (ch >= 0x80 && (take = utf8_len(s + i, len - i)) > 0) {
            piece = (const char *)s + i; /* valid UTF-8: copied whole or not at all */
            pl = take;
        } else if (ch == '\\' || ch == '"') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            pl = 2;
        } else if (ch == '\n' || ch == '\t') {
            esc[0] = '\\';
            esc[1] = ch == '\n' ? 'n' : 't';
            pl = 2;
        } else if (ch < 0x20 || ch >= 0x7F) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
            pl = 4;
            take = 1;
        } else {
            esc[0] = (char)ch;
            pl = 1;
        }
        if (o + pl >= cap)
            break;
        memcpy(out + o, piece, pl);
        o += pl;
        i += take;
    }
    if (cap > 0)
        out[o] = '\0';
    return o;
}

/* --- formatting --- */

static int fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

/* Appends text[0..len) after a formatted head; text may contain any bytes but NUL. */
static int with_text(char *buf, size_t cap, int head, const char *text, size_t len)
{
    if (head < 0 || (size_t)head + len >= cap)
        return -1;
    memcpy(buf + head, text, len);
    buf[head + len] = '\0';
    return head + (int)len;
}

/* Writes a sequence number or '-' into a small buffer. */
static const char *seq_str(uint64_t seq, char tmp[24])
{
    if (seq == PROTO_NO_SEQ)
        return "-";
    snprintf(tmp, 24, "%llu", (unsigned long long)seq);
    return tmp;
}

int proto_fmt_hello(char *buf, size_t cap, const char *id)
{
    return fmt(buf, cap, "HELLO %s", id);
}

int proto_fmt_hello_in(char *buf, size_t cap, const char *id, const char *room)
{
    return fmt(buf, cap, "HELLO %s %s", id, room);
}

int proto_fmt_hello_pad(char *buf, size_t cap, const char *id, const char *room, size_t min_len)
{
    int n = room != NULL ? proto_fmt_hello_in(buf, cap, id, room) : proto_fmt_hello(buf, cap, id);
    if (n < 0 || (size_t)n >= min_len)
        return n;
    size_t want = min_len < (size_t)n + 2 ? (size_t)n + 2 : min_len; /* " #" at least */
    if (want >= cap)
        return -1;
    buf[n] = ' ';
    memset(buf + n + 1, PROTO_PAD_MARK, want - (size_t)n - 1);
    buf[want] = '\0';
    return (int)want;
}

int proto_fmt_msg(char *buf, size_t cap, uint64_t seq, const char *text, size_t text_len)
{
    char t[24];
    return with_text(buf, cap, fmt(buf, cap, "MSG %s ", seq_str(seq, t)), text, text_len);
}

int proto_fmt_to(char *buf, size_t cap, const char *id, uint64_t seq, const char *text,
                 size_t text_len)
{
    char t[24];
    return with_text(buf, cap, fmt(buf, cap, "TO %s %s ", id, seq_str(seq, t)), text, text_len);
}

int proto_fmt_welcome(char *buf, size_t cap, const char *id, const char *addr)
{
    return fmt(buf, cap, "WELCOME %s %s", id, addr);
}

int proto_fmt_welcome_token(char *buf, size_t cap, const char *id, const char *addr, uint64_t token,
                            uint16_t udp_port)
{
    char t[PROTO_TOKEN_PREFIX + 1];
    proto_token_prefix(token, t);
    t[PROTO_TOKEN_LEN] = '\0';
    return fmt(buf, cap, "WELCOME %s %s %s %u", id, addr, t, (unsigned)udp_port);
}

int proto_fmt_ack(char *buf, size_t cap, uint64_t seq, uint64_t n)
{
    char t[24];
    return fmt(buf, cap, "ACK %s %llu", seq_str(seq, t), (unsigned long long)n);
}

int proto_fmt_from(char *buf, size_t cap, bool priv, const char *id, uint64_t seq, const char *text,
                   size_t text_len)
{
    char t[24];
    return with_text(buf, cap,
                     fmt(buf, cap, "%s %s %s ", priv ? "PRIV" : "FROM", id, seq_str(seq, t)), text,
                     text_len);
}

int proto_fmt_user(char *buf, size_t cap, const char *id, const char *addr, const char *room)
{
    return fmt(buf, cap, "USER %s %s %s", id, addr, room);
}

int proto_fmt_users(char *buf, size_t cap, uint64_t n)
{
    return fmt(buf, cap, "USERS %llu", (unsigned long long)n);
}

int proto_fmt_pong(char *buf, size_t cap, const char *token, size_t token_len)
{
    if (token_len == 0)
        return fmt(buf, cap, "PONG");
    return with_text(buf, cap, fmt(buf, cap, "PONG "), token, token_len);
}

int proto_fmt_joined(char *buf, size_t cap, const char *id, const char *room)
{
    return fmt(buf, cap, "JOINED %s %s", id, room);
}

int proto_fmt_left(char *buf, size_t cap, const char *id, const char *room, enum proto_reason r)
{
    return fmt(buf, cap, "LEFT %s %s %s", id, room, proto_reason_name(r));
}

int proto_fmt_bye(char *buf, size_t cap, enum proto_reason r)
{
    return fmt(buf, cap, "BYE %s", proto_reason_name(r));
}

int proto_fmt_err(char *buf, size_t cap, enum proto_err e, const char *detail)
{
    if (detail != NULL)
        return fmt(buf, cap, "ERR %s %s: %s", proto_err_name(e), proto_err_text(e), detail);
    return fmt(buf, cap, "ERR %s %s", proto_err_name(e), proto_err_text(e));
}

int proto_fmt_err_code(char *buf, size_t cap, enum proto_err e)
{
    return fmt(buf, cap, "ERR %s", proto_err_name(e));
}
