/* impair_classify: what a chat datagram is (its verb, seq and sequence space) for bin/udp_impair,
 * and the --match list of verbs it impairs. Pure code over buffers. */
#include "impair_classify.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const char *const verb_names[IV__COUNT] = {
    [IV_HELLO] = "HELLO", [IV_MSG] = "MSG",   [IV_TO] = "TO",         [IV_JOIN] = "JOIN",
    [IV_WHO] = "WHO",     [IV_PING] = "PING", [IV_BYE] = "BYE",       [IV_WELCOME] = "WELCOME",
    [IV_ACK] = "ACK",     [IV_FROM] = "FROM", [IV_PRIV] = "PRIV",     [IV_USER] = "USER",
    [IV_USERS] = "USERS", [IV_PONG] = "PONG", [IV_JOINED] = "JOINED", [IV_LEFT] = "LEFT",
    [IV_ERR] = "ERR",     [IV_ZLIB] = "ZLIB", [IV_OTHER] = "OTHER",
};

const char *impair_verb_name(enum impair_verb v)
{
    return (unsigned)v < IV__COUNT ? verb_names[v] : "OTHER";
}

/* Verbs that may appear as a datagram's first word (ZLIB and OTHER are not words). */
static int verb_lookup(const char *s, size_t len)
{
    for (int v = 0; v < IV_ZLIB; v++)
        if (strlen(verb_names[v]) == len && memcmp(verb_names[v], s, len) == 0)
            return v;
    return -1;
}

/* The next space-separated word of buf[*pos..len); a frame's LF/CR ends the last word. */
static bool next_word(const char *buf, size_t len, size_t *pos, const char **w, size_t *wlen)
{
    size_t i = *pos;
    if (i >= len)
        return false;
    size_t j = i;
    while (j < len && buf[j] != ' ' && buf[j] != '\n' && buf[j] != '\r')
        j++;
    *w = buf + i;
    *wlen = j - i;
    *pos = (j < len && buf[j] == ' ') ? j + 1 : len;
    return true;
}

static uint64_t parse_seq(const char *w, size_t len)
{
    if (len == 0 || len > 20)
        return IMPAIR_NO_SEQ;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (w[i] < '0' || w[i] > '9')
            return IMPAIR_NO_SEQ;
        uint64_t d = (uint64_t)(w[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return IMPAIR_NO_SEQ;
        v = v * 10 + d;
    }
    return v;
}

/* FNV-1a, enough to tell sequence spaces apart within one mapping. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void impair_classify(const char *buf, size_t len, struct impair_info *out)
{
    out->verb = IV_OTHER;
    out->seq = IMPAIR_NO_SEQ;
    out->stream = 0;
    if (len > 0 && (unsigned char)buf[0] == 0xFF) {
        out->verb = IV_ZLIB;
    } else {
        size_t pos = 0;
        const char *w = NULL;
        size_t wl = 0;
        if (next_word(buf, len, &pos, &w, &wl)) {
            int v = verb_lookup(w, wl);
            if (v >= 0)
                out->verb = (enum impair_verb)v;
        }
        const char *id = NULL;
        size_t id_len = 0;
        switch (out->verb) {
        case IV_MSG:
        case IV_ACK:
            if (next_word(buf, len, &pos, &w, &wl))
                out->seq = parse_seq(w, wl);
            break;
        case IV_FROM:
        case IV_PRIV:
        case IV_TO:
            if (next_word(buf, len, &pos, &id, &id_len) && next_word(buf, len, &pos, &w, &wl))
                out->seq = parse_seq(w, wl);
            break;
        default:
            break;
        }
        out->stream = fnv1a(0xcbf29ce484222325ull, &out->verb, sizeof out->verb);
        if (id)
            out->stream = fnv1a(out->stream, id, id_len);
        return;
    }
    out->stream = fnv1a(0xcbf29ce484222325ull, &out->verb, sizeof out->verb);
}

int impair_parse_match(const char *list, uint32_t *mask)
{
    uint32_t m = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int v = -1;
        for (int i = 0; i < IV__COUNT; i++)
            if (strlen(verb_names[i]) == len && strncasecmp(verb_names[i], p, len) == 0)
                v = i;
        if (v < 0)
            return -EINVAL;
        m |= 1u << v;
        if (!e)
            break;
        p = e + 1;
        if (!*p)
            return -EINVAL; /* trailing comma */
    }
    if (m == 0)
        return -EINVAL;
    *mask = m;
    return 0;
}

bool impair_matched(uint32_t mask, enum impair_verb v, enum impair_dir dir)
{
    if (v == IV_ZLIB) {
        if (mask & (1u << IV_ZLIB))
            return true;
        if (dir == IMPAIR_UP)
            return mask & (1u << IV_MSG);
        return mask & ((1u << IV_ACK) | (1u << IV_FROM));
    }
    return mask & (1u << v);
}
