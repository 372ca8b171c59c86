/* test_stats: the load generator's per-thread statistics: merging, resolution, intervals,
 * and the loss split's clamping (test_measure derives the split from real sequences). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../loadgen/stats.h"

static int setup(void **state)
{
    static struct lg_stats st[2];
    if (lg_stats_init(&st[0]) < 0 || lg_stats_init(&st[1]) < 0)
        return -1;
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    struct lg_stats *st = *state;
    lg_stats_destroy(&st[0]);
    lg_stats_destroy(&st[1]);
    return 0;
}

/* The split never exceeds lost. */
static void test_split_clamped_to_lost(void **state)
{
    struct lg_stats *s = *state;
    s->uplink_est = 10;
    s->tail = 10;
    s->lost = 12;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.unknown, 10);
    assert_int_equal(x.uplink, 2);
    assert_int_equal(x.downlink, 0);
}

static void test_merge(void **state)
{
    struct lg_stats *st = *state;
    st[0].sent = 10;
    st[0].acked = 9;
    st[0].lost = 1;
    st[1].sent = 5;
    st[1].acked = 5;
    st[1].jitter_sum_ns = 1000;
    st[1].jitter_n = 2;
    st[1].sent_all = 5;
    for (uint64_t v = 1; v <= 100; v++) {
        hist_record(&st[0].h[LG_ACK], v * 1000000);
        hist_record(&st[1].h[LG_ACK], (v + 100) * 1000000);
    }
    assert_int_equal(lg_stats_add(&st[0], &st[1]), 0);
    assert_int_equal(st[0].sent, 15);
    assert_int_equal(st[0].acked, 14);
    assert_int_equal(st[0].lost, 1);
    assert_int_equal(st[0].sent_all, 5);
    assert_int_equal(st[0].jitter_n, 2);
    assert_int_equal(st[0].h[LG_ACK].total, 200);
    /* the merged median is the 100th of 1..200 ms, to the histogram's 3 digits */
    uint64_t p50 = hist_percentile(&st[0].h[LG_ACK], 50);
    assert_true(p50 >= 100000000 && p50 <= 100100000);
    assert_int_equal(hist_max(&st[0].h[LG_ACK]), hist_max(&st[1].h[LG_ACK]));
}

/* Resolution: 1 ns up to 2047 ns (LG_HIST_LOW_NS 1), 3 significant digits above. With a
 * 1 us lowest the unit was 512 ns and 700 ns read as 1023 ns. */
static void test_resolution_from_1_ns(void **state)
{
    struct lg_stats *s = *state;
    hist_record(&s->h[LG_ACK], 700);
    assert_int_equal(hist_percentile(&s->h[LG_ACK], 50), 700);
    hist_reset(&s->h[LG_ACK]);
    hist_record(&s->h[LG_LAG], 1234567);
    uint64_t v = hist_percentile(&s->h[LG_LAG], 50);
    assert_true(v >= 1234567 && v <= 1234567 + 1234567 / 1000);
}

static void test_ival_add_and_reset(void **state)
{
    (void)state;
    struct lg_ival a, b;
    assert_int_equal(lg_ival_init(&a), 0);
    assert_int_equal(lg_ival_init(&b), 0);
    b.sent = 3;
    b.acked = 2;
    b.lost = 1;
    hist_record(&b.ack, 5000);
    hist_record(&b.fanout, 7000);
    lg_ival_add(&a, &b);
    lg_ival_add(&a, &b);
    assert_int_equal(a.sent, 6);
    assert_int_equal(a.acked, 4);
    assert_int_equal(a.lost, 2);
    assert_int_equal(a.ack.total, 2);
    assert_int_equal(a.fanout.total, 2);
    lg_ival_reset(&a);
    assert_int_equal(a.sent + a.acked + a.lost + a.ack.total + a.fanout.total, 0);
    lg_ival_destroy(&a);
    lg_ival_destroy(&b);
}

/* lg_stats_add adds every counter: one past the histograms with all its bytes set must come
 * out equal in a zeroed one (a counter missing from lg_counter_defs would stay 0). */
static void test_add_covers_every_counter(void **state)
{
    struct lg_stats *st = *state;
    size_t from = offsetof(struct lg_stats, h) + sizeof(st[0].h);
    size_t to = offsetof(struct lg_stats, jitter_n) + sizeof(st[0].jitter_n); /* the last */
    memset((char *)&st[1] + from, 0x01, to - from);
    assert_int_equal(lg_stats_add(&st[0], &st[1]), 0);
    assert_memory_equal((char *)&st[0] + from, (char *)&st[1] + from, to - from);
    for (size_t i = 0; i < LG_COUNTERS; i++)
        for (size_t j = 0; j < i; j++)
            assert_true(lg_counter_defs[i].offset != lg_counter_defs[j].offset);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolution_from_1_ns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_clamped_to_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_covers_every_counter, setup, teardown),
        cmocka_unit_test(test_ival_add_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
