/* test_bucket: the token bucket that meters udp_server's replies to unregistered addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../servers/bucket.h"

#define MS 1000000ull
#define S 1000000000ull

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct bucket b;
    bucket_init(&b, 1000, 100, 5 * S); /* 1,000 a second, 100 at once */
    assert_true(bucket_take(&b, 60, 5 * S));
    assert_true(bucket_take(&b, 40, 5 * S));
    assert_false(bucket_take(&b, 1, 5 * S)); /* the burst is spent */
    assert_false(bucket_has(&b, 1, 5 * S + MS - 1));
    assert_true(bucket_take(&b, 1, 5 * S + MS)); /* one per millisecond */
    assert_false(bucket_take(&b, 1, 5 * S + MS));
    assert_true(bucket_has(&b, 10, 5 * S + 11 * MS));
    assert_false(bucket_has(&b, 11, 5 * S + 11 * MS)); /* has takes nothing, but knows */
    assert_true(bucket_take(&b, 10, 5 * S + 11 * MS));
}

static void test_never_more_than_burst(void **state)
{
    (void)state;
    struct bucket b;
    bucket_init(&b, 1000, 100, 0);
    assert_false(bucket_take(&b, 101, 0)); /* more than it can ever hold */
    assert_false(bucket_take(&b, 101, 3600 * S));
    assert_true(bucket_take(&b, 100, 3600 * S)); /* an hour later: full, not 3.6 million */
    assert_false(bucket_take(&b, 1, 3600 * S));
    /* a clock read by another thread a little earlier earns nothing, and loses nothing */
    assert_false(bucket_take(&b, 1, 3600 * S - MS));
    assert_true(bucket_take(&b, 1, 3600 * S + MS));
}

/* Taking as fast as it allows, in uneven steps, for 10 s: exactly burst + rate x 10 s. */
static void test_bound_is_exact(void **state)
{
    (void)state;
    struct bucket b;
    bucket_init(&b, 262144, 65536, 7);
    uint64_t got = 0, t = 7;
    for (uint64_t i = 0; t <= 7 + 10 * S; i++) {
        uint64_t n = 1 + i % 97;
        while (bucket_take(&b, n, t))
            got += n;
        t += 1 + (i * 7919) % 300000; /* 0 to 0.3 ms, uneven */
    }
    assert_true((double)got <= bucket_bound(&b, 10.0));
    assert_true((double)got >= bucket_bound(&b, 10.0) - 2 * 97); /* and it really allowed it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_never_more_than_burst),
        cmocka_unit_test(test_bound_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
