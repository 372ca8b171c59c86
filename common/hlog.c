/* hlog: HdrHistogram interval logs and the V2 compressed histogram encoding (see hlog.h). */
#include "hlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "parse.h"

/* HdrHistogram's cookies: the base identifies the format, bits 4..7 the word size (1: the
 * ZigZag LEB128 counts of V2). */
#define HLOG_V2_ENCODING 0x1c849313u   /* 0x1c849303 | 0x10 */
#define HLOG_V2_COMPRESSED 0x1c849314u /* 0x1c849304 | 0x10 */
#define HLOG_HEAD 40                   /* the V2 encoding's header */
#define HLOG_ZHEAD 8                   /* cookie and compressed length */
#define HLOG_LEB_MAX 9                 /* bytes of one ZigZag LEB128-64b9B number */

/* --- big-endian fields --- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* --- ZigZag LEB128-64b9B: 7 bits per byte with a continuation bit, the 9th byte whole --- */

static size_t zz_put(uint8_t *p, int64_t signed_v)
{
    uint64_t u = (uint64_t)signed_v;
    uint64_t v = (u << 1) ^ (0 - (u >> 63)); /* ZigZag: the sign to bit 0, all ones if < 0 */
    size_t n = 0;
    while (n < HLOG_LEB_MAX - 1 && v >> 7 != 0) {
        p[n++] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v; /* the 9th byte carries the last 8 bits */
    return n;
}

/* Reads one number from p[0..len); returns the bytes used, or 0 when it is cut short. */
static size_t zz_get(const uint8_t *p, size_t len, int64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (;;) {
        if (n == len)
            return 0;
        uint8_t b = p[n];
        if (n == HLOG_LEB_MAX - 1) {
            v |= (uint64_t)b << 56;
            n++;
            break;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * n);
        n++;
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
    return n;
}

/* --- base64 (RFC 4648, padded) --- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const uint8_t *p, size_t n, size_t *out_len)
{
    size_t len = (n + 2) / 3 * 4;
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            w |= p[i + 2];
        s[o++] = b64_alphabet[w >> 18];
        s[o++] = b64_alphabet[(w >> 12) & 63];
        s[o++] = i + 1 < n ? b64_alphabet[(w >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? b64_alphabet[w & 63] : '=';
    }
    s[o] = '\0';
    *out_len = o;
    return s;
}

static int b64_value(char c)
{
    const char *at = c != '\0' ? strchr(b64_alphabet, c) : NULL;
    return at != NULL ? (int)(at - b64_alphabet) : -1;
}

/* Decodes into a heap buffer; NULL with *err -EINVAL (not base64) or -ENOMEM. */
static uint8_t *b64_decode(const char *s, size_t len, size_t *out_len, int *err)
{
    *err = -EINVAL;
    if (len == 0 || len % 4 != 0)
        return NULL;
    size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    uint8_t *p = malloc(len / 4 * 3);
    if (p == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t w = 0;
        for (size_t j = 0; j < 4; j++) {
            bool padding = i + j >= len - pad;
            int v = padding ? 0 : b64_value(s[i + j]);
            if (v < 0 || (padding && s[i + j] != '=')) {
                free(p);
                return NULL;
            }
            w = w << 6 | (uint32_t)v;
        }
        p[o++] = (uint8_t)(w >> 16);
        p[o++] = (uint8_t)(w >> 8);
        p[o++] = (uint8_t)w;
    }
    *out_len = o - pad;
    return p;
}

/* --- the V2 encoding --- */

int hlog_encode(const struct hist *h, char **out, size_t *len)
{
    int rc = -ENOMEM;
    /* counts up to the last non-zero one: the maximum's index, as HdrHistogram encodes */
    int32_t limit = h->counts_len;
    while (limit > 1 && h->counts[limit - 1] == 0)
        limit--;
    size_t raw_cap = HLOG_HEAD + (size_t)HLOG_LEB_MAX * (size_t)limit;
    uint8_t *raw = malloc(raw_cap), *z = NULL;
    if (raw == NULL)
        goto out;
    size_t n = HLOG_HEAD;
    for (int32_t i = 0; i < limit;) {
        uint64_t c = h->counts[i++];
        if (c != 0) {
            n += zz_put(raw + n, (int64_t)c);
            continue;
        }
        int64_t zeros = 1; /* a run of zeros is one negative number */
        while (i < limit && h->counts[i] == 0) {
            zeros++;
            i++;
        }
        n += zz_put(raw + n, zeros > 1 ? -zeros : 0);
    }
    put32(raw, HLOG_V2_ENCODING);
    put32(raw + 4, (uint32_t)(n - HLOG_HEAD));
    put32(raw + 8, 0); /* normalizing index offset */
    put32(raw + 12, (uint32_t)h->sigfigs);
    put64(raw + 16, h->lowest);
    put64(raw + 24, h->highest);
    double ratio = 1.0; /* integer to double value conversion ratio */
    uint64_t bits;
    memcpy(&bits, &ratio, sizeof(bits));
    put64(raw + 32, bits);

    uLongf zlen = compressBound((uLong)n);
    z = malloc(HLOG_ZHEAD + zlen);
    if (z == NULL)
        goto out;
    /* level 9, as HistogramLogWriter's Deflater.BEST_COMPRESSION */
    if (compress2(z + HLOG_ZHEAD, &zlen, raw, (uLong)n, 9) != Z_OK) {
        rc = -EIO;
        goto out;
    }
    put32(z, HLOG_V2_COMPRESSED);
    put32(z + 4, (uint32_t)zlen);
    *out = b64_encode(z, HLOG_ZHEAD + zlen, len);
    rc = *out != NULL ? 0 : -ENOMEM;
out:
    free(raw);
    free(z);
    return rc;
}

/* The counts of a V2 payload, into counts[0..cap); returns how many or -EINVAL. */
static int32_t decode_counts(const uint8_t *p, size_t len, uint64_t *counts, int32_t cap)
{
    int32_t idx = 0;
    size_t at = 0;
    while (at < len) {
        int64_t v;
        size_t used = zz_get(p + at, len - at, &v);
        if (used == 0)
            return -EINVAL;
        at += used;
        if (v < 0) {
            if (v < -(int64_t)cap || idx > cap + v) /* -v zeros must fit */
                return -EINVAL;
            idx += (int32_t)-v;
        } else {
            if (idx >= cap)
                return -EINVAL;
            counts[idx++] = (uint64_t)v;
        }
    }
    return idx;
}

int hlog_decode(struct hist *h, const char *b64, size_t len)
{
    int rc = -EINVAL;
    size_t zn = 0;
    uint8_t *z = b64_decode(b64, len, &zn, &rc), *raw = NULL;
    uint64_t *counts = NULL;
    if (z == NULL)
        goto out;
    rc = -EINVAL;
    if (zn < HLOG_ZHEAD || get32(z) != HLOG_V2_COMPRESSED || get32(z + 4) > zn - HLOG_ZHEAD)
        goto out;
    uLongf cap = HLOG_HEAD + (uLongf)HLOG_LEB_MAX * (uLongf)h->counts_len, n = cap;
    raw = malloc(cap);
    counts = calloc((size_t)h->counts_len, sizeof(*counts));
    if (raw == NULL || counts == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (uncompress(raw, &n, z + HLOG_ZHEAD, get32(z + 4)) != Z_OK || n < HLOG_HEAD)
        goto out;
    if (get32(raw) != HLOG_V2_ENCODING || get32(raw + 4) != n - HLOG_HEAD || get32(raw + 8) != 0 ||
        get32(raw + 12) != (uint32_t)h->sigfigs || get64(raw + 16) != h->lowest ||
        get64(raw + 24) != h->highest)
        goto out; /* another layout: its counts would mean other values */
    int32_t got = decode_counts(raw + HLOG_HEAD, n - HLOG_HEAD, counts, h->counts_len);
    if (got < 0)
        goto out;
    /* counts past the highest trackable value's: values h cannot hold (recording clamps them) */
    for (int32_t i = hist_index_of(h, h->highest) + 1; i < got; i++)
        if (counts[i] != 0)
            goto out;
    rc = hist_add_counts(h, counts, got);
out:
    free(z);
    free(raw);
    free(counts);
    return rc;
}

/* --- the log --- */

static int stream_status(FILE *f)
{
    if (fflush(f) != 0 || ferror(f))
        return errno ? -errno : -EIO;
    return 0;
}

int hlog_write_head(FILE *f, const char *comment, double start_unix)
{
    char date[64] = "";
    time_t t = (time_t)start_unix;
    struct tm tm;
    if (gmtime_r(&t, &tm) != NULL)
        (void)strftime(date, sizeof(date), "%a %b %d %H:%M:%S UTC %Y", &tm); /* 0: left empty */
    errno = 0;
    fprintf(f, "#%s\n", comment);
    fprintf(f, "#[Histogram log format version 1.3]\n");
    fprintf(f, "#[StartTime: %.3f (seconds since epoch), %s]\n", start_unix, date);
    fprintf(f, "#[BaseTime: %.3f (seconds since epoch)]\n", start_unix);
    fprintf(f, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
               "\"Interval_Compressed_Histogram\"\n");
    return stream_status(f);
}

static bool valid_tag(const char *tag)
{
    size_t n = strlen(tag);
    return n > 0 && n < HLOG_TAG_MAX && strcspn(tag, ", \r\n") == n;
}

int hlog_write_interval(FILE *f, const char *tag, double start_s, double length_s,
                        const struct hist *h, double max_ratio)
{
    if (!valid_tag(tag) || !(max_ratio > 0))
        return -EINVAL;
    char *b64 = NULL;
    size_t len = 0;
    int rc = hlog_encode(h, &b64, &len);
    if (rc < 0)
        return rc;
    errno = 0;
    fprintf(f, "Tag=%s,%.3f,%.3f,%.3f,%s\n", tag, start_s, length_s,
            (double)hist_max(h) / max_ratio, b64);
    free(b64);
    return stream_status(f);
}

/* The next comma-separated field of *p as a double; false when missing or not a number. */
static bool take_double(const char **p, double *out)
{
    size_t n = strcspn(*p, ",");
    char buf[64];
    if (n == 0 || n >= sizeof(buf) || (*p)[n] != ',')
        return false;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p += n + 1;
    return parse_double(buf, -1e18, 1e18, out) == 0;
}

int hlog_parse_line(const char *line, struct hlog_interval *out, double *start_unix)
{
    static const char start_key[] = "#[StartTime: ";
    if (line[0] == '\0' || line[0] == '"')
        return 0; /* blank, or the legend */
    if (line[0] == '#') {
        if (strncmp(line, start_key, sizeof(start_key) - 1) == 0) {
            const char *p = line + sizeof(start_key) - 1;
            char buf[64];
            size_t n = strcspn(p, " ]");
            if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
            memcpy(buf, p, n);
            buf[n] = '\0';
            if (parse_double(buf, 0, 1e12, start_unix) < 0)
                return -EINVAL;
        }
        return 0;
    }
    const char *p = line;
    out->tag[0] = '\0';
    if (strncmp(p, "Tag=", 4) == 0) {
        size_t n = strcspn(p + 4, ",");
        if (n == 0 || n >= sizeof(out->tag) || p[4 + n] != ',')
            return -EINVAL;
        memcpy(out->tag, p + 4, n);
        out->tag[n] = '\0';
        p += 4 + n + 1;
    }
    if (!take_double(&p, &out->start_s) || !take_double(&p, &out->length_s) ||
        !take_double(&p, &out->max))
        return -EINVAL;
    out->b64 = p;
    out->b64_len = strlen(p);
    return out->b64_len > 0 ? 1 : -EINVAL;
}
