/* test_parse: strict number parsing, the one implementation behind every option parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse.h"

#include <errno.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static void test_span(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(parse_u64_span(S("0"), 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u64_span(S("18446744073709551615"), UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(parse_u64_span(S("18446744073709551616"), UINT64_MAX, &v), -EINVAL);
    assert_int_equal(parse_u64_span(S("100000000000000000000"), UINT64_MAX, &v), -EINVAL);
    assert_int_equal(v, 7); /* untouched on failure */
    assert_int_equal(parse_u64_span(S("11"), 10, &v), -ERANGE);
    assert_int_equal(parse_u64_span(S(""), 10, &v), -EINVAL);
    assert_int_equal(parse_u64_span(S("+1"), 10, &v), -EINVAL);
    assert_int_equal(parse_u64_span(S("-1"), 10, &v), -EINVAL);
    assert_int_equal(parse_u64_span(S("1 "), 10, &v), -EINVAL);
    assert_int_equal(parse_u64_span(S(" 1"), 10, &v), -EINVAL);
    /* the span ends where it says, whatever follows it */
    assert_int_equal(parse_u64_span("12x", 2, 100, &v), 0);
    assert_int_equal(v, 12);
    /* leading zeros are digits like any other */
    assert_int_equal(parse_u64_span(S("007"), 10, &v), 0);
    assert_int_equal(v, 7);
}

static void test_prefix(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(parse_u64_prefix(S("123 abc"), &v), 3);
    assert_int_equal(v, 123);
    assert_int_equal(parse_u64_prefix(S("abc"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u64_prefix(S(""), &v), 0);
    /* stops before the digit that would overflow */
    assert_int_equal(parse_u64_prefix(S("184467440737095516159"), &v), 20);
    assert_true(v == UINT64_MAX);
    assert_int_equal(parse_u64_prefix(S("18446744073709551616"), &v), 19);
    assert_true(v == 1844674407370955161ull);
}

static void test_u64(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(parse_u64("65535", 0, 65535, &v), 0);
    assert_int_equal(v, 65535);
    assert_int_equal(parse_u64("65536", 0, 65535, &v), -ERANGE);
    assert_int_equal(parse_u64("0", 1, 10, &v), -ERANGE);
    assert_int_equal(parse_u64("", 0, 10, &v), -EINVAL);
    assert_int_equal(parse_u64("-0", 0, 10, &v), -EINVAL);
    assert_int_equal(parse_u64("1e3", 0, 10000, &v), -EINVAL);
    assert_int_equal(parse_u64("0x10", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_u64("5\n", 0, 10, &v), -EINVAL);
}

static void test_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(parse_double("0.25", 0, 1, &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(parse_double("1e3", 0, 1e6, &d), 0);
    assert_true(d == 1000.0);
    assert_int_equal(parse_double("-2.5", -3, 0, &d), 0);
    assert_true(d == -2.5);
    assert_int_equal(parse_double("2", 0, 1, &d), -ERANGE);
    assert_int_equal(parse_double("", 0, 1, &d), -EINVAL);
    assert_int_equal(parse_double(" 1", 0, 1, &d), -EINVAL);
    assert_int_equal(parse_double("+1", 0, 1, &d), -EINVAL);
    assert_int_equal(parse_prob("+0.5", &d), -EINVAL);
    assert_int_equal(parse_double("1 ", 0, 1, &d), -EINVAL);
    assert_int_equal(parse_double("1s", 0, 10, &d), -EINVAL);
    assert_int_equal(parse_double("nan", -1e9, 1e9, &d), -EINVAL);
    assert_int_equal(parse_double("inf", 0, 1e308, &d), -EINVAL);
    assert_int_equal(parse_double("0x1p3", 0, 100, &d), -EINVAL);
    assert_int_equal(parse_double("1e999", 0, 1e308, &d), -EINVAL);
}

static void test_prob(void **state)
{
    (void)state;
    double p = -1;
    assert_int_equal(parse_prob("0.3", &p), 0);
    assert_true(p == 0.3);
    assert_int_equal(parse_prob("30%", &p), 0);
    assert_true(p > 0.2999999 && p < 0.3000001);
    assert_int_equal(parse_prob("100%", &p), 0);
    assert_true(p == 1.0);
    assert_int_equal(parse_prob("0", &p), 0);
    assert_true(p == 0.0);
    assert_int_equal(parse_prob("101%", &p), -ERANGE);
    assert_int_equal(parse_prob("1.5", &p), -ERANGE);
    assert_int_equal(parse_prob("-1%", &p), -ERANGE);
    assert_int_equal(parse_prob("5%%", &p), -EINVAL);
    assert_int_equal(parse_prob("%", &p), -EINVAL);
    assert_int_equal(parse_prob("five", &p), -EINVAL);
}

static void test_cpulist(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(parse_cpulist("3", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 1);
    assert_true(CPU_ISSET(3, &set));
    assert_int_equal(parse_cpulist("0,2-4,7", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 5);
    assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) && CPU_ISSET(4, &set));
    assert_false(CPU_ISSET(1, &set) || CPU_ISSET(5, &set));
    assert_int_equal(parse_cpulist("1-1", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 1);
    const char *bad[] = {"",   ",",    "1,",    ",1", "2-1",  "1-",
                         "-1", "1--2", "1-2-3", "a",  "1 ,2", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_cpulist(bad[i], &set), -EINVAL);
    assert_int_equal(parse_cpulist("0-99999", &set), -ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span), cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_u64),  cmocka_unit_test(test_double),
        cmocka_unit_test(test_prob), cmocka_unit_test(test_cpulist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
