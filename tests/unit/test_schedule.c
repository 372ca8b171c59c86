/* test_schedule: open-loop send times (period, phase, Poisson mean) and the seeded RNG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/schedule.h"

#include <math.h>

static void test_rng_deterministic(void **state)
{
    (void)state;
    struct lg_rng a, b, c;
    lg_rng_seed(&a, 42);
    lg_rng_seed(&b, 42);
    lg_rng_seed(&c, 43);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = lg_rng_next(&a);
        assert_int_equal(x, lg_rng_next(&b));
        same_c += x == lg_rng_next(&c);
    }
    assert_int_equal(same_c, 0);
}

static void test_rng_unit_range_and_mean(void **state)
{
    (void)state;
    struct lg_rng r;
    lg_rng_seed(&r, 7);
    double sum = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = lg_rng_unit(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    /* standard error of the mean is 0.29/sqrt(n) = 0.00065: 0.005 is ~8 sigma */
    assert_true(fabs(sum / n - 0.5) < 0.005);
}

static void test_periodic_times(void **state)
{
    (void)state;
    struct lg_sched s;
    const uint64_t t0 = 1000000000000ull;
    lg_sched_init(&s, t0, 10.0, false, 5); /* period 100 ms */
    uint64_t first = lg_sched_peek(&s);
    assert_true(first >= t0 && first < t0 + 100000000ull); /* phase within one period */
    for (uint64_t n = 0; n < 1000; n++) {
        /* exactly t0 + phase + n * period: no drift accumulates */
        assert_int_equal(lg_sched_peek(&s), first + n * 100000000ull);
        lg_sched_advance(&s);
    }
    assert_int_equal(s.n, 1000);
}

static void test_phases_spread(void **state)
{
    (void)state;
    /* 1000 clients at 1 msg/s: their phases cover [0, 1 s) roughly evenly (10 deciles) */
    int decile[10] = {0};
    for (uint64_t seed = 0; seed < 1000; seed++) {
        struct lg_sched s;
        lg_sched_init(&s, 0, 1.0, false, seed);
        uint64_t ph = lg_sched_peek(&s);
        assert_true(ph < 1000000000ull);
        decile[ph / 100000000ull]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(decile[i] > 50 && decile[i] < 150); /* expected 100 each */
}

static void test_same_seed_same_schedule(void **state)
{
    (void)state;
    struct lg_sched a, b;
    lg_sched_init(&a, 5, 3.0, true, 99);
    lg_sched_init(&b, 5, 3.0, true, 99);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(lg_sched_peek(&a), lg_sched_peek(&b));
        lg_sched_advance(&a);
        lg_sched_advance(&b);
    }
}

static void test_poisson_mean_and_monotone(void **state)
{
    (void)state;
    struct lg_sched s;
    const double rate = 50.0; /* mean gap 20 ms */
    lg_sched_init(&s, 0, rate, true, 3);
    uint64_t prev = lg_sched_peek(&s);
    const int n = 100000;
    double sumsq = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        lg_sched_advance(&s);
        uint64_t t = lg_sched_peek(&s);
        assert_true(t >= prev);
        double gap = (double)(t - prev);
        sum += gap;
        sumsq += gap * gap;
        prev = t;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    /* exponential gaps: mean 20 ms and standard deviation equal to the mean */
    assert_true(fabs(mean - 20e6) < 0.02 * 20e6);
    assert_true(fabs(sqrt(var) - 20e6) < 0.04 * 20e6);
    /* total time after n messages is n / rate within 2 % */
    assert_true(fabs((double)prev - n / rate * 1e9) < 0.02 * n / rate * 1e9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_rng_unit_range_and_mean),
        cmocka_unit_test(test_periodic_times),
        cmocka_unit_test(test_phases_spread),
        cmocka_unit_test(test_same_seed_same_schedule),
        cmocka_unit_test(test_poisson_mean_and_monotone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
