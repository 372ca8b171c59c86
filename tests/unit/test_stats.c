/* test_stats: the load generator's per-thread statistics: merging, and the uplink/downlink
 * loss split checked against hand-computed sequences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/lg.h"

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

/* A client sent seqs 0..9. Uplink drops: 2, 5, 8. Downlink drops (ACK lost): 7, 9. ACKs
 * received, with the server's count n: 0/1 1/2 3/3 4/4 6/5. The last ACK (seq 6, n 5) says
 * 7 - 5 = 2 of seqs 0..6 never reached the server (2 and 5); seqs 7, 8, 9 come after it,
 * so nothing tells which way they were lost. */
static void test_split_hand_computed(void **state)
{
    struct lg_stats *s = *state;
    lg_stats_account_client(s, 10, true, 6, 5);
    s->lost = 5;
    assert_int_equal(s->sent_all, 10);
    assert_int_equal(s->uplink_all, 2);
    assert_int_equal(s->tail_all, 3);
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.uplink, 2);
    assert_int_equal(x.downlink, 0);
    assert_int_equal(x.unknown, 3);
}

/* Same losses, but the last message's ACK arrives (seq 9, n 7): 10 - 7 = 3 uplink (2, 5, 8),
 * and the two other losses (7 and, say, 4) lost their ACK. */
static void test_split_downlink(void **state)
{
    struct lg_stats *s = *state;
    lg_stats_account_client(s, 10, true, 9, 7);
    s->lost = 5;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.uplink, 3);
    assert_int_equal(x.downlink, 2);
    assert_int_equal(x.unknown, 0);
    assert_int_equal(x.uplink + x.downlink + x.unknown, s->lost);
}

static void test_split_no_ack_at_all(void **state)
{
    struct lg_stats *s = *state;
    lg_stats_account_client(s, 4, false, 0, 0);
    s->lost = 4;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.unknown, 4);
    assert_int_equal(x.uplink + x.downlink, 0);
}

/* Uplink duplicates make the server count more frames than were sent: never negative. */
static void test_split_server_counted_more(void **state)
{
    struct lg_stats *s = *state;
    lg_stats_account_client(s, 5, true, 4, 7);
    s->lost = 0;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(s->uplink_all, 0);
    assert_int_equal(x.uplink + x.downlink + x.unknown, 0);
}

/* The warm-up excludes some losses from lost: the split never exceeds it. */
static void test_split_clamped_to_lost(void **state)
{
    struct lg_stats *s = *state;
    lg_stats_account_client(s, 100, true, 89, 80); /* 10 uplink over the whole run, tail 10 */
    s->lost = 12;                                  /* measured window only */
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
    lg_stats_account_client(&st[1], 5, true, 4, 5);
    for (uint64_t v = 1; v <= 100; v++) {
        hist_record(&st[0].ack, v * 1000000);
        hist_record(&st[1].ack, (v + 100) * 1000000);
    }
    assert_int_equal(lg_stats_add(&st[0], &st[1]), 0);
    assert_int_equal(st[0].sent, 15);
    assert_int_equal(st[0].acked, 14);
    assert_int_equal(st[0].lost, 1);
    assert_int_equal(st[0].sent_all, 5);
    assert_int_equal(st[0].jitter_n, 2);
    assert_int_equal(st[0].ack.total, 200);
    /* the merged median is the 100th of 1..200 ms, to the histogram's 3 digits */
    uint64_t p50 = hist_percentile(&st[0].ack, 50);
    assert_true(p50 >= 100000000 && p50 <= 100100000);
    assert_int_equal(hist_max(&st[0].ack), hist_max(&st[1].ack));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_hand_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_no_ack_at_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_server_counted_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_clamped_to_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test(test_ival_add_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
