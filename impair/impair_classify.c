/* impair_classify: what a chat datagram is (its verb, seq and sequence space) for bin/udp_impair,
 * and the --match list of verbs it impairs. Pure code over buffers. */
#include "impair_classify.h"

#include "parse.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

_Static_assert(IV_HELLO == 0 && (int)IV_ZLIB == (int)PROTO_ERR, "impair_verb follows proto_verb");

const char *impair_verb_name(enum impair_verb v)
{
    if ((unsigned)v < IV_ZLIB)
        return proto_verb_name((enum proto_verb)(v + 1));
    return v == IV_ZLIB ? "ZLIB" : "OTHER";
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
    uint64_t v;
    return parse_u64_span(w, len, UINT64_MAX, &v) == 0 ? v : IMPAIR_NO_SEQ;
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
            enum proto_verb v = proto_verb_lookup(w, wl);
            if (v != PROTO_NONE)
                out->verb = (enum impair_verb)(v - 1);
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
        for (int i = 0; i < IV__COUNT; i++) {
            const char *name = impair_verb_name((enum impair_verb)i);
            if (strlen(name) == len && strncasecmp(name, p, len) == 0)
                v = i;
        }
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
