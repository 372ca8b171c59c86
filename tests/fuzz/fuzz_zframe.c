/* fuzz_zframe: libFuzzer harness for common/zframe.c, the zlib datagrams of the UDP path.
 *
 * Arbitrary bytes go to zframe_decompress (bombs, truncation, foreign dictionaries,
 * trailing garbage): it must never write past max, and a frame it returns must compress
 * and decompress back to itself, as must the input taken as a frame. One zframe state
 * serves every input, as one does every datagram in the server, so state left behind by
 * a failed stream would show up in the next one. */
#include "fuzz_util.h"
#include "proto.h"
#include "zframe.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct zframe z;
static struct zframe z_nodict; /* a compressor without the dictionary: also accepted */

static void roundtrip(struct zframe *zc, const char *in, size_t len)
{
    size_t cap = zframe_bound(len);
    char *zbuf = malloc(cap);
    char *back = malloc(len + 1);
    FZ_CHECK(zbuf != NULL && back != NULL);
    int zl = zframe_compress(zc, in, len, zbuf, cap);
    FZ_CHECK(zl > 0 && (size_t)zl <= cap && (unsigned char)zbuf[0] == PROTO_ZMARK);
    int n = zframe_decompress(&z, zbuf, (size_t)zl, back, len);
    FZ_CHECK(n >= 0 && (size_t)n == len && memcmp(back, in, len) == 0);
    if (len > 0) /* one byte short of the frame: a bomb, not a frame */
        FZ_CHECK(zframe_decompress(&z, zbuf, (size_t)zl, back, len - 1) == -EMSGSIZE);
    if (zl > 1) /* every strict prefix is a truncated stream */
        FZ_CHECK(zframe_decompress(&z, zbuf, (size_t)zl - 1, back, len) == -EBADMSG);
    free(zbuf);
    free(back);
}

/* Input: byte 0 picks max (the server's --max-frame); the rest is a datagram. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!z.ready) {
        FZ_CHECK(zframe_init(&z, NULL) == 0);
        struct zframe_params p = ZFRAME_PARAMS_DEFAULT;
        p.dict = false;
        p.level = 1;
        FZ_CHECK(zframe_init(&z_nodict, &p) == 0);
    }
    if (size < 1)
        return 0;
    static const size_t maxes[4] = {PROTO_MIN_FRAME, 512, PROTO_MAX_FRAME_DEFAULT, 16384};
    size_t max = maxes[data[0] & 3];
    const char *dgram = (const char *)data + 1;
    size_t len = size - 1;

    /* an exact-size output buffer: ASan reports any byte written past max */
    char *copy = malloc(len ? len : 1);
    char *out = malloc(max);
    FZ_CHECK(copy != NULL && out != NULL);
    memcpy(copy, dgram, len);
    int n = zframe_decompress(&z, copy, len, out, max);
    FZ_CHECK(n == -EMSGSIZE || n == -EBADMSG || (n >= 0 && (size_t)n <= max));
    if (len == 0 || (unsigned char)copy[0] != PROTO_ZMARK)
        FZ_CHECK(n == -EBADMSG);
    if (n >= 0)
        roundtrip(&z, out, (size_t)n);
    roundtrip((data[0] & 4) ? &z_nodict : &z, copy, len);
    free(copy);
    free(out);
    return 0;
}
