/* fuzz_hlog: libFuzzer harness for common/hlog.c, the reader of HdrHistogram logs that
 * loadgen merge runs over files it did not write itself.
 *
 * Input: byte 0 picks the layer the rest is fed to, so that the fuzzer need not find base64
 * and zlib before it reaches the counts decoder:
 *   0  text: an interval log line (hlog_parse_line) and, as base64, a histogram
 *   1  the compressed V2 bytes (with their 8-byte header): base64-encoded here first
 *   2  the uncompressed V2 encoding (40-byte header and counts): deflated and wrapped here
 * A histogram that decodes must be consistent (its counts add up to its total) and survive
 * an encode/decode round trip unchanged; one that does not must leave the target untouched. */
#include "fuzz_util.h"
#include "hlog.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *to_base64(const uint8_t *p, size_t n, size_t *len)
{
    char *s = malloc((n + 2) / 3 * 4 + 1);
    FZ_CHECK(s != NULL);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        s[o++] = b64[w >> 18];
        s[o++] = b64[(w >> 12) & 63];
        s[o++] = i + 1 < n ? b64[(w >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? b64[w & 63] : '=';
    }
    s[o] = '\0';
    *len = o;
    return s;
}

/* The compressed V2 wrapper around raw (cookie 0x1c849314, length, zlib stream). */
static uint8_t *wrap(const uint8_t *raw, size_t n, size_t *out_len)
{
    uLongf zlen = compressBound((uLong)n);
    uint8_t *z = malloc(8 + zlen);
    FZ_CHECK(z != NULL);
    FZ_CHECK(compress2(z + 8, &zlen, raw, (uLong)n, 1) == Z_OK);
    const uint32_t cookie = 0x1c849314u;
    for (int i = 0; i < 4; i++) {
        z[i] = (uint8_t)(cookie >> (24 - 8 * i));
        z[4 + i] = (uint8_t)(zlen >> (24 - 8 * i));
    }
    *out_len = 8 + zlen;
    return z;
}

static void check_decode(const char *text, size_t len)
{
    static struct hist h, back;
    if (h.counts == NULL) {
        FZ_CHECK(hist_init(&h, 1, 60000000000ull, 3) == 0);
        FZ_CHECK(hist_init(&back, 1, 60000000000ull, 3) == 0);
    }
    hist_reset(&h);
    hist_record(&h, 12345); /* what a failed decode must leave alone */
    int rc = hlog_decode(&h, text, len);
    if (rc < 0) {
        FZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
        FZ_CHECK(h.total == 1 && hist_min(&h) == 12345);
        return;
    }
    uint64_t sum = 0;
    for (int32_t i = 0; i < h.counts_len; i++)
        sum += h.counts[i];
    FZ_CHECK(sum == h.total && h.total >= 1);
    FZ_CHECK(hist_min(&h) <= hist_max(&h) && hist_max(&h) <= h.highest);
    char *again = NULL;
    size_t alen = 0;
    FZ_CHECK(hlog_encode(&h, &again, &alen) == 0);
    hist_reset(&back);
    FZ_CHECK(hlog_decode(&back, again, alen) == 0);
    FZ_CHECK(back.total == h.total);
    FZ_CHECK(memcmp(back.counts, h.counts, (size_t)h.counts_len * sizeof(*h.counts)) == 0);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (data[0] % 3 == 0) {
        char *line = malloc(n + 1);
        FZ_CHECK(line != NULL);
        memcpy(line, p, n);
        line[n] = '\0';
        struct hlog_interval iv;
        double start = -1;
        int rc = hlog_parse_line(line, &iv, &start);
        FZ_CHECK(rc == 0 || rc == 1 || rc == -EINVAL);
        if (rc == 1)
            FZ_CHECK(iv.b64 >= line && iv.b64 + iv.b64_len == line + strlen(line));
        check_decode(line, strlen(line));
        free(line);
    } else if (data[0] % 3 == 1) {
        size_t len = 0;
        char *s = to_base64(p, n, &len);
        check_decode(s, len);
        free(s);
    } else {
        size_t zn = 0, len = 0;
        uint8_t *z = wrap(p, n, &zn);
        char *s = to_base64(z, zn, &len);
        check_decode(s, len);
        free(s);
        free(z);
    }
    return 0;
}
