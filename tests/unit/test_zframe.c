/* test_zframe: round trips, the inflate cap, refusals, and what the dictionary buys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"
#include "zframe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* --- fixtures --- */

struct fx {
    struct zframe dict;   /* defaults: with the dictionary */
    struct zframe nodict; /* same parameters, no dictionary */
    char *in, *z, *out;
    size_t cap;
};

#define BIG 70000

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct zframe_params p = ZFRAME_PARAMS_DEFAULT;
    assert_int_equal(zframe_init(&f->dict, &p), 0);
    p.dict = false;
    assert_int_equal(zframe_init(&f->nodict, &p), 0);
    f->cap = zframe_bound(BIG);
    f->in = malloc(BIG);
    f->z = malloc(f->cap);
    f->out = malloc(BIG);
    assert_non_null(f->in);
    assert_non_null(f->z);
    assert_non_null(f->out);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    zframe_destroy(&f->dict);
    zframe_destroy(&f->nodict);
    zframe_destroy(&f->dict); /* twice is harmless */
    free(f->in);
    free(f->z);
    free(f->out);
    free(f);
    return 0;
}

/* --- payloads like loadgen's (--payload hex|text|random) --- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

enum kind { K_HEX, K_TEXT, K_RANDOM };

static void fill(enum kind k, uint64_t seed, char *buf, size_t len)
{
    static const char *const words[] = {"hello", "the",   "a",      "is",    "you",     "we",
                                        "ok",    "see",   "there",  "about", "meeting", "today",
                                        "lunch", "later", "thanks", "sure",  "what",    "time",
                                        "room",  "now",   "and",    "but",   "maybe",   "yes"};
    static const char *const keys[] = {"id", "t", "temp", "hum", "v", "seq", "rssi", "st"};
    uint64_t s = seed * 2654435761u + 1;
    size_t at = 0;
    while (at < len) {
        uint64_t v = rng_next(&s);
        const char *w;
        char tmp[32];
        if (k == K_HEX) {
            int digits = 4 + (int)(v % 5);
            int n = snprintf(tmp, sizeof(tmp), "%s=", keys[v % 8]);
            for (int i = 0; i < digits; i++)
                tmp[n++] = "0123456789abcdef"[(v >> (8 + 4 * i)) & 15];
            tmp[n++] = ';';
            tmp[n] = '\0';
            w = tmp;
        } else if (k == K_TEXT) {
            snprintf(tmp, sizeof(tmp), "%s ", words[v % (sizeof(words) / sizeof(words[0]))]);
            w = tmp;
        } else {
            buf[at++] = (char)(0x21 + v % (0xFE - 0x21 + 1));
            continue;
        }
        while (*w != '\0' && at < len)
            buf[at++] = *w++;
    }
}

/* "MSG <seq> <t_ns> <payload>" as loadgen sends it; returns its length */
static size_t loadgen_frame(enum kind k, uint64_t seq, char *buf, size_t payload)
{
    int n = snprintf(buf, 64, "MSG %llu %llu ", (unsigned long long)seq,
                     (unsigned long long)(1234567890123ULL + seq * 997));
    fill(k, seq, buf + n, payload);
    return (size_t)n + payload;
}

/* --- round trips --- */

static void round_trip(struct fx *f, struct zframe *z, size_t len)
{
    int n = zframe_compress(z, f->in, len, f->z, f->cap);
    assert_true(n > 1);
    assert_int_equal((unsigned char)f->z[0], PROTO_ZMARK);
    assert_true((size_t)n <= zframe_bound(len));
    /* either side decodes either kind: the dictionary is announced in the header */
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, len), (int)len);
    assert_memory_equal(f->out, f->in, len);
    assert_int_equal(zframe_decompress(&f->nodict, f->z, (size_t)n, f->out, len + 10), (int)len);
    if (len > 0)
        assert_memory_equal(f->out, f->in, len);
}

static void test_round_trip_sizes(void **state)
{
    struct fx *f = *state;
    static const size_t sizes[] = {0, 1, 2, 3, 17, 100, 1000, 4096, 16384, 16385, 65507};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int k = K_HEX; k <= K_RANDOM; k++) {
            fill((enum kind)k, i, f->in, sizes[i]);
            round_trip(f, &f->dict, sizes[i]);
            round_trip(f, &f->nodict, sizes[i]);
        }
    }
}

static void test_dictionary_announced(void **state)
{
    struct fx *f = *state;
    /* the dictionary is part of the protocol: PROTOCOL.md gives its size and id, peers in
     * other processes must agree, so a change must be deliberate (and renamed) */
    size_t dlen;
    assert_non_null(zframe_dict(&dlen));
    assert_int_equal(dlen, 1108);
    assert_int_equal(zframe_dict_id(), 0x9b7a7608u);
    memcpy(f->in, "FROM alice 1 hello", 18);
    int n = zframe_compress(&f->dict, f->in, 18, f->z, f->cap);
    assert_true(n > 7);
    /* RFC 1950: FDICT is bit 5 of FLG, then DICTID big-endian */
    assert_true((unsigned char)f->z[2] & 0x20);
    uint32_t id = (uint32_t)(unsigned char)f->z[3] << 24 | (uint32_t)(unsigned char)f->z[4] << 16 |
                  (uint32_t)(unsigned char)f->z[5] << 8 | (uint32_t)(unsigned char)f->z[6];
    assert_int_equal(id, zframe_dict_id());
    n = zframe_compress(&f->nodict, f->in, 18, f->z, f->cap);
    assert_false((unsigned char)f->z[2] & 0x20);
}

static void test_reuse_many(void **state)
{
    struct fx *f = *state;
    /* the streams are reset, not re-created: a thousand frames on one state */
    for (uint64_t i = 0; i < 1000; i++) {
        size_t len = loadgen_frame((enum kind)(i % 3), i, f->in, i % 300);
        round_trip(f, &f->dict, len);
    }
}

/* --- the cap and refusals --- */

/* A raw zlib stream with the marker in front, without our dictionary. */
static int raw_deflate(const char *in, size_t len, char *out, size_t cap, int level)
{
    uLongf zl = (uLongf)(cap - 1);
    assert_int_equal(compress2((Bytef *)out + 1, &zl, (const Bytef *)in, (uLong)len, level), Z_OK);
    out[0] = (char)PROTO_ZMARK;
    return (int)zl + 1;
}

static void test_bomb(void **state)
{
    struct fx *f = *state;
    size_t big = 1 << 20;
    char *zeros = calloc(1, big);
    char *z = malloc(big);
    assert_non_null(zeros);
    assert_non_null(z);
    int n = raw_deflate(zeros, big, z, big, 9);
    assert_true(n < 2000); /* a megabyte in about a kilobyte */
    assert_int_equal(zframe_decompress(&f->dict, z, (size_t)n, f->out, 4096), -EMSGSIZE);
    assert_int_equal(zframe_decompress(&f->dict, z, (size_t)n, f->out, 0), -EMSGSIZE);
    /* the state is still usable afterwards */
    memcpy(f->in, "PING 1", 6);
    round_trip(f, &f->dict, 6);
    free(zeros);
    free(z);
}

static void test_cap_exact(void **state)
{
    struct fx *f = *state;
    fill(K_TEXT, 7, f->in, 4096);
    int n = zframe_compress(&f->dict, f->in, 4096, f->z, f->cap);
    assert_true(n > 0);
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 4096), 4096);
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 4095), -EMSGSIZE);
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 1), -EMSGSIZE);
    n = zframe_compress(&f->dict, f->in, 0, f->z, f->cap);
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 0), 0);
}

static void test_truncated(void **state)
{
    struct fx *f = *state;
    size_t len = loadgen_frame(K_TEXT, 5, f->in, 200);
    int n = zframe_compress(&f->dict, f->in, len, f->z, f->cap);
    assert_true(n > 12);
    for (int cut = 1; cut < n; cut++) /* every proper prefix, the marker alone included */
        assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)cut, f->out, 4096), -EBADMSG);
}

static void test_corrupt(void **state)
{
    struct fx *f = *state;
    size_t len = loadgen_frame(K_HEX, 9, f->in, 100);
    int n = zframe_compress(&f->dict, f->in, len, f->z, f->cap);
    /* flip every bit after the marker: never a crash, never a silent wrong frame */
    for (int i = 1; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            f->z[i] ^= (char)(1 << b);
            int rc = zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 4096);
            if (rc >= 0) /* only a flip that zlib cannot see and changes nothing */
                assert_memory_equal(f->out, f->in, len);
            else
                assert_true(rc == -EBADMSG || rc == -EMSGSIZE);
            f->z[i] ^= (char)(1 << b);
        }
    }
    /* trailing garbage after a complete stream */
    f->z[n] = 'x';
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n + 1, f->out, 4096), -EBADMSG);
    /* random bytes behind a marker */
    uint64_t s = 42;
    for (int t = 0; t < 1000; t++) {
        f->z[0] = (char)PROTO_ZMARK;
        for (int i = 1; i < 64; i++)
            f->z[i] = (char)rng_next(&s);
        int rc = zframe_decompress(&f->dict, f->z, 64, f->out, 4096);
        assert_true(rc == -EBADMSG || rc == -EMSGSIZE);
    }
}

static void test_missing_marker(void **state)
{
    struct fx *f = *state;
    int n = raw_deflate("HELLO bob", 9, f->z, f->cap, 6);
    assert_int_equal(zframe_decompress(&f->dict, f->z + 1, (size_t)n - 1, f->out, 4096), -EBADMSG);
    assert_int_equal(zframe_decompress(&f->dict, "HELLO bob", 9, f->out, 4096), -EBADMSG);
    assert_int_equal(zframe_decompress(&f->dict, f->z, 0, f->out, 4096), -EBADMSG);
    /* a plain zlib stream (no dictionary) from any peer is accepted */
    assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, 4096), 9);
    assert_memory_equal(f->out, "HELLO bob", 9);
}

static void test_wrong_dictionary(void **state)
{
    struct fx *f = *state;
    z_stream s = {0};
    assert_int_equal(deflateInit(&s, 9), Z_OK);
    static const char other[] = "some other dictionary HELLO MSG FROM";
    assert_int_equal(deflateSetDictionary(&s, (const Bytef *)other, sizeof(other) - 1), Z_OK);
    s.next_in = (Bytef *)(uintptr_t) "MSG 1 hello";
    s.avail_in = 11;
    f->z[0] = (char)PROTO_ZMARK;
    s.next_out = (Bytef *)f->z + 1;
    s.avail_out = (uInt)(f->cap - 1);
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t n = 1 + s.total_out;
    deflateEnd(&s);
    assert_int_equal(zframe_decompress(&f->dict, f->z, n, f->out, 4096), -EBADMSG);
}

static void test_compress_no_room(void **state)
{
    struct fx *f = *state;
    fill(K_RANDOM, 3, f->in, 1000);
    assert_int_equal(zframe_compress(&f->dict, f->in, 1000, f->z, 500), -ENOBUFS);
    assert_int_equal(zframe_compress(&f->dict, f->in, 1000, f->z, 1), -ENOBUFS);
    round_trip(f, &f->dict, 1000); /* and the state recovers */
}

static void test_bad_params(void **state)
{
    (void)state;
    struct zframe z;
    struct zframe_params p = ZFRAME_PARAMS_DEFAULT;
    p.window_bits = 8;
    assert_int_equal(zframe_init(&z, &p), -EINVAL);
    zframe_destroy(&z); /* safe after a failed init */
    p = ZFRAME_PARAMS_DEFAULT;
    p.mem_level = 10;
    assert_int_equal(zframe_init(&z, &p), -EINVAL);
    assert_int_equal(zframe_init(&z, NULL), 0);
    zframe_destroy(&z);
}

/* --- what the dictionary and the parameters buy (printed; asserts only the robust part) --- */

static double mean_size(struct fx *f, const struct zframe_params *p, enum kind k, size_t payload,
                        int frames)
{
    struct zframe z;
    assert_int_equal(zframe_init(&z, p), 0);
    double total = 0;
    for (int i = 0; i < frames; i++) {
        size_t len = loadgen_frame(k, (uint64_t)i + 1000, f->in, payload);
        int n = zframe_compress(&z, f->in, len, f->z, f->cap);
        assert_true(n > 0);
        assert_int_equal(zframe_decompress(&f->dict, f->z, (size_t)n, f->out, len), (int)len);
        total += n;
    }
    zframe_destroy(&z);
    return total / frames;
}

static void test_measure(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *name;
        struct zframe_params p;
    } sets[] = {
        {"no dict, level 6, default", {6, 15, 8, Z_DEFAULT_STRATEGY, false}},
        {"no dict, level 9, default", {9, 15, 9, Z_DEFAULT_STRATEGY, false}},
        {"dict, level 1, default", {1, 15, 9, Z_DEFAULT_STRATEGY, true}},
        {"dict, level 6, default", {6, 15, 8, Z_DEFAULT_STRATEGY, true}},
        {"dict, level 9, default", {9, 15, 9, Z_DEFAULT_STRATEGY, true}},
        {"dict, level 9, Z_FIXED", {9, 15, 9, Z_FIXED, true}},
        {"dict, level 9, wbits 10, mem 1", {9, 10, 1, Z_DEFAULT_STRATEGY, true}},
        {"dict, level 9, Z_RLE", {9, 15, 9, Z_RLE, true}},
    };
    static const size_t payloads[] = {100, 1000};
    size_t nsets = sizeof(sets) / sizeof(sets[0]);
    printf("# mean compressed datagram (marker included) over 200 loadgen-like frames\n");
    printf("# frame = \"MSG <seq> <t_ns> <payload>\"; plain size = frame bytes\n");
    for (size_t pi = 0; pi < 2; pi++) {
        size_t plain = loadgen_frame(K_HEX, 1000, f->in, payloads[pi]);
        printf("%-32s %9s %9s %9s   (payload %zu, plain frame %zu bytes)\n", "params", "hex",
               "text", "random", payloads[pi], plain);
        for (size_t i = 0; i < nsets; i++) {
            double h = mean_size(f, &sets[i].p, K_HEX, payloads[pi], 200);
            double t = mean_size(f, &sets[i].p, K_TEXT, payloads[pi], 200);
            double r = mean_size(f, &sets[i].p, K_RANDOM, payloads[pi], 200);
            printf("%-32s %9.1f %9.1f %9.1f\n", sets[i].name, h, t, r);
        }
    }
    /* the robust claims: the dictionary helps chat text, and the defaults are the best row */
    struct zframe_params nd = ZFRAME_PARAMS_DEFAULT, d = ZFRAME_PARAMS_DEFAULT;
    nd.dict = false;
    assert_true(mean_size(f, &d, K_TEXT, 100, 200) < mean_size(f, &nd, K_TEXT, 100, 200));
    assert_true(mean_size(f, &d, K_HEX, 100, 200) < mean_size(f, &nd, K_HEX, 100, 200));
    /* and a short server frame gains most */
    static const char ack[] = "FROM client-17 123 hello there";
    int a = zframe_compress(&f->dict, ack, sizeof(ack) - 1, f->z, f->cap);
    int b = zframe_compress(&f->nodict, ack, sizeof(ack) - 1, f->z, f->cap);
    printf("%s: plain %zu, dict %d, no dict %d\n", ack, sizeof(ack) - 1, a, b);
    assert_true(a < b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_announced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_dictionary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compress_no_room, setup, teardown),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test_setup_teardown(test_measure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
