/* test_payload: payload kinds: exact sizes, forbidden bytes, determinism by seed,
 * compressibility (hex and text compress, random does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/payload.h"

#include <string.h>
#include <zlib.h>

static const enum lg_payload kinds[] = {LG_PAYLOAD_HEX, LG_PAYLOAD_TEXT, LG_PAYLOAD_RANDOM};

static void test_parse_names(void **state)
{
    (void)state;
    enum lg_payload k;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_payload_parse(lg_payload_name(kinds[i]), &k), 0);
        assert_int_equal(k, kinds[i]);
    }
    assert_int_equal(lg_payload_parse("HEX", &k), -1);
    assert_int_equal(lg_payload_parse("", &k), -1);
    assert_int_equal(lg_payload_parse("binary", &k), -1);
}

static void test_sizes_and_bytes(void **state)
{
    (void)state;
    static char buf[5000];
    const size_t sizes[] = {0, 1, 2, 7, 100, 1000, 3900};
    for (int i = 0; i < 3; i++) {
        for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
            memset(buf, 0, sizeof(buf));
            buf[sizes[j]] = 'Z'; /* guard: nothing written past len */
            lg_payload_fill(kinds[i], 11, buf, sizes[j]);
            assert_int_equal(buf[sizes[j]], 'Z');
            for (size_t b = 0; b < sizes[j]; b++) {
                unsigned char ch = (unsigned char)buf[b];
                assert_true(ch != 0 && ch != '\n' && ch != '\r');
                if (kinds[i] == LG_PAYLOAD_RANDOM)
                    assert_true(ch >= 0x21 && ch <= 0xFE);
                else
                    assert_true(ch >= 0x20 && ch < 0x7F);
            }
        }
    }
}

static void test_deterministic_by_seed(void **state)
{
    (void)state;
    static char a[2000], b[2000];
    for (int i = 0; i < 3; i++) {
        lg_payload_fill(kinds[i], 5, a, sizeof(a));
        lg_payload_fill(kinds[i], 5, b, sizeof(b));
        assert_memory_equal(a, b, sizeof(a));
        lg_payload_fill(kinds[i], 6, b, sizeof(b));
        assert_memory_not_equal(a, b, sizeof(a));
    }
}

static double zratio(enum lg_payload k)
{
    static char in[4000];
    static unsigned char out[8000];
    lg_payload_fill(k, 1, in, sizeof(in));
    uLongf olen = sizeof(out);
    assert_int_equal(compress2(out, &olen, (const Bytef *)in, sizeof(in), 9), Z_OK);
    return (double)olen / sizeof(in);
}

static void test_compressibility(void **state)
{
    (void)state;
    assert_true(zratio(LG_PAYLOAD_HEX) < 0.75);
    assert_true(zratio(LG_PAYLOAD_TEXT) < 0.5);
    assert_true(zratio(LG_PAYLOAD_RANDOM) > 0.95);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_sizes_and_bytes),
        cmocka_unit_test(test_deterministic_by_seed),
        cmocka_unit_test(test_compressibility),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
