/* fuzz_proto: libFuzzer harness for common/proto.c, the frame grammar every program shares.
 *
 * Beyond "does not crash" (ASan and UBSan watch that), it checks properties a bug would
 * break: proto_next_line never returns a line longer than max or one holding a LF;
 * proto_escape's output is printable, bounded and decodes back to its input; a chat
 * frame the client parser accepts survives the server's FROM/PRIV formatting and the
 * client's parse of that FROM unchanged (what a relay must guarantee); a hybrid token read
 * off a datagram is written back the same, and a WELCOME with a token survives its round
 * trip through the formatter. */
#include "fuzz_util.h"
#include "proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- proto_escape: printable, bounded, reversible --- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Length of a valid non-C1 UTF-8 sequence at s, or 0 (an independent decoder). */
static size_t utf8_ok(const unsigned char *s, size_t avail)
{
    uint32_t cp;
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        n = 2, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (cp >= 0x80 && cp <= 0x9F))
        return 0;
    return n;
}

static void check_escape(const char *in, size_t len, size_t cap)
{
    char *out = malloc(cap);
    char *back = malloc(len + 1);
    FZ_CHECK(out != NULL && back != NULL);
    size_t n = proto_escape(in, len, out, cap);
    FZ_CHECK(n < cap && out[n] == '\0' && strlen(out) == n);
    /* decode it: only known escapes, printable ASCII, valid UTF-8 */
    size_t b = 0;
    const unsigned char *o = (const unsigned char *)out;
    for (size_t i = 0; i < n;) {
        if (o[i] == '\\') {
            FZ_CHECK(i + 1 < n);
            char e = out[i + 1];
            if (e == 'n' || e == 't' || e == '\\' || e == '"') {
                back[b++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
                i += 2;
            } else {
                FZ_CHECK(e == 'x' && i + 3 < n);
                int hi = hexval(out[i + 2]), lo = hexval(out[i + 3]);
                FZ_CHECK(hi >= 0 && lo >= 0);
                back[b++] = (char)(hi * 16 + lo);
                i += 4;
            }
            continue;
        }
        FZ_CHECK(o[i] != '"');
        if (o[i] < 0x80) {
            FZ_CHECK(o[i] >= 0x20 && o[i] < 0x7F); /* nothing a terminal would act on */
            back[b++] = out[i++];
            continue;
        }
        size_t u = utf8_ok(o + i, n - i);
        FZ_CHECK(u > 0);
        memcpy(back + b, out + i, u);
        b += u;
        i += u;
    }
    /* what was escaped is a prefix of the input, and all of it when cap was ample */
    FZ_CHECK(b <= len && memcmp(back, in, b) == 0);
    if (cap > 4 * len)
        FZ_CHECK(b == len);
    free(out);
    free(back);
}

/* --- proto_next_line --- */

static void check_next_line(const char *buf, size_t len, size_t max)
{
    size_t off = 0;
    while (off < len) {
        size_t line_len = 12345, used = 12345;
        int r = proto_next_line(buf + off, len - off, max, &line_len, &used);
        FZ_CHECK(r >= -1 && r <= 1);
        if (r == 0) {
            FZ_CHECK(len - off <= max + 1);
            FZ_CHECK(memchr(buf + off, '\n', len - off) == NULL);
            break;
        }
        if (r < 0) {
            /* too long: no LF within max + 2 bytes, or the line before it is over max */
            const char *lf = memchr(buf + off, '\n', len - off);
            if (lf == NULL) {
                FZ_CHECK(len - off > max + 1);
                break;
            }
            off = (size_t)(lf - buf) + 1;
            continue;
        }
        FZ_CHECK(line_len <= max && used >= line_len + 1 && used <= line_len + 2);
        FZ_CHECK(off + used <= len && buf[off + used - 1] == '\n');
        FZ_CHECK(memchr(buf + off, '\n', line_len) == NULL);
        if (used == line_len + 2)
            FZ_CHECK(buf[off + line_len] == '\r');
        off += used;
    }
}

/* --- the relay round trip: client frame -> server FROM/PRIV -> client parse --- */

static void check_relay(const char *buf, size_t len)
{
    struct proto_frame f;
    enum proto_err e = proto_parse_client(buf, len, &f);
    FZ_CHECK(e >= PROTO_OK && e < PROTO_E__COUNT);
    if (e != PROTO_OK) {
        FZ_CHECK(e == PROTO_E_BAD_FRAME || e == PROTO_E_BAD_ID || e == PROTO_E_BAD_ROOM);
        return;
    }
    /* parsed pointers stay inside the frame */
    const char *end = buf + len;
    if (f.id != NULL)
        FZ_CHECK(f.id >= buf && f.id + f.id_len <= end && proto_valid_name(f.id, f.id_len));
    if (f.room != NULL)
        FZ_CHECK(f.room >= buf && f.room + f.room_len <= end &&
                 proto_valid_name(f.room, f.room_len));
    if (f.text != NULL)
        FZ_CHECK(f.text >= buf && f.text + f.text_len <= end);
    if (f.verb != PROTO_MSG && f.verb != PROTO_TO && f.verb != PROTO_PING)
        return;

    size_t cap = len + 256;
    char *out = malloc(cap);
    FZ_CHECK(out != NULL);
    struct proto_frame g;
    int n;
    if (f.verb == PROTO_PING) {
        n = proto_fmt_pong(out, cap, f.text, f.text_len);
        FZ_CHECK(n >= 0 && proto_parse_server(out, (size_t)n, &g) == PROTO_OK);
        FZ_CHECK(g.verb == PROTO_PONG && g.text_len == f.text_len &&
                 memcmp(g.text, f.text, f.text_len) == 0);
        free(out);
        return;
    }
    bool priv = f.verb == PROTO_TO;
    n = proto_fmt_from(out, cap, priv, "sender_1", f.seq, f.text, f.text_len);
    FZ_CHECK(n >= 0 && (size_t)n < cap);
    FZ_CHECK(proto_parse_server(out, (size_t)n, &g) == PROTO_OK);
    FZ_CHECK(g.verb == (priv ? PROTO_PRIV : PROTO_FROM));
    FZ_CHECK(g.seq == f.seq && g.id_len == 8 && memcmp(g.id, "sender_1", 8) == 0);
    FZ_CHECK(g.text_len == f.text_len && memcmp(g.text, f.text, f.text_len) == 0);
    n = proto_fmt_ack(out, cap, f.seq, 42);
    FZ_CHECK(n >= 0 && proto_parse_server(out, (size_t)n, &g) == PROTO_OK);
    FZ_CHECK(g.verb == PROTO_ACK && g.seq == f.seq && g.n == 42);
    free(out);
}

/* --- hybrid: the token in front of a datagram, the WELCOME that hands it out --- */

static void check_token(const char *buf, size_t len)
{
    uint64_t t;
    size_t skip;
    if (proto_take_token(buf, len, &t, &skip)) {
        FZ_CHECK(skip == PROTO_TOKEN_LEN || skip == PROTO_TOKEN_PREFIX);
        FZ_CHECK(skip <= len);
        char pre[PROTO_TOKEN_PREFIX];
        proto_token_prefix(t, pre);
        FZ_CHECK(memcmp(pre, buf, PROTO_TOKEN_LEN) == 0); /* one spelling per token */
        FZ_CHECK(skip == PROTO_TOKEN_LEN || buf[PROTO_TOKEN_LEN] == ' ');
    }
    struct proto_frame f;
    if (proto_parse_server(buf, len, &f) != PROTO_OK || f.verb != PROTO_WELCOME || !f.has_token)
        return;
    FZ_CHECK(f.udp_port > 0);
    char id[64], addr[64], out[256];
    if (f.id_len >= sizeof(id) || f.addr_len >= sizeof(addr))
        return;
    memcpy(id, f.id, f.id_len);
    id[f.id_len] = '\0';
    memcpy(addr, f.addr, f.addr_len);
    addr[f.addr_len] = '\0';
    int n = proto_fmt_welcome_token(out, sizeof(out), id, addr, f.token, f.udp_port);
    struct proto_frame g;
    FZ_CHECK(n >= 0 && proto_parse_server(out, (size_t)n, &g) == PROTO_OK);
    FZ_CHECK(g.verb == PROTO_WELCOME && g.has_token && g.token == f.token &&
             g.udp_port == f.udp_port && g.id_len == f.id_len &&
             memcmp(g.id, f.id, f.id_len) == 0 && g.addr_len == f.addr_len &&
             memcmp(g.addr, f.addr, f.addr_len) == 0);
}

/* Input: byte 0 picks max and the escape buffer's size; the rest is the frame or stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = PROTO_MIN_FRAME + data[0] % 64;
    size_t cap = 1 + (size_t)(data[0] >> 2) % 32;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    /* parsers: on an exact-size heap copy, so ASan sees any read past the end */
    char *frame = malloc(len ? len : 1);
    FZ_CHECK(frame != NULL);
    memcpy(frame, buf, len);
    struct proto_frame f;
    enum proto_err e = proto_parse_server(frame, len, &f);
    FZ_CHECK(e == PROTO_OK || e == PROTO_E_BAD_FRAME);
    check_relay(frame, len);
    check_token(frame, len);
    check_next_line(frame, len, max);
    check_escape(frame, len, cap);
    check_escape(frame, len, 4 * len + 1);
    free(frame);
    return 0;
}
