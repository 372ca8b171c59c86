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

/* One client's figures without a warm-up: no baseline, every seq measured. */
static void account(struct lg_stats *s, uint64_t sent_all, bool have_hi, uint64_t hi_seq,
                    uint64_t hi_n)
{
    struct lg_acct a = {.sent_all = sent_all,
                        .first_measured = 0,
                        .have_hi = have_hi,
                        .hi_seq = hi_seq,
                        .hi_n = hi_n};
    lg_stats_account_client(s, &a);
}

/* A client sent seqs 0..9. Uplink drops: 2, 5, 8. Downlink drops (ACK lost): 7, 9. ACKs
 * received, with the server's count n: 0/1 1/2 3/3 4/4 6/5. The last ACK (seq 6, n 5) says
 * 7 - 5 = 2 of seqs 0..6 never reached the server (2 and 5); seqs 7, 8, 9 come after it,
 * so nothing tells which way they were lost. */
static void test_split_hand_computed(void **state)
{
    struct lg_stats *s = *state;
    account(s, 10, true, 6, 5);
    s->lost = 5;
    assert_int_equal(s->sent_all, 10);
    assert_int_equal(s->uplink_est, 2);
    assert_int_equal(s->tail, 3);
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
    account(s, 10, true, 9, 7);
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
    account(s, 4, false, 0, 0);
    s->lost = 4;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.unknown, 4);
    assert_int_equal(x.uplink + x.downlink, 0);
}

/* Uplink duplicates make the server count more frames than were sent: never negative. */
static void test_split_server_counted_more(void **state)
{
    struct lg_stats *s = *state;
    account(s, 5, true, 4, 7);
    s->lost = 0;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(s->uplink_est, 0);
    assert_int_equal(x.uplink + x.downlink + x.unknown, 0);
}

/* The review's case: a warm-up. Seqs 0..19, 0..9 warm-up (first measured 10). Warm-up:
 * uplink drops 1, 3, 4; downlink drop 6; the ACK of 9 arrives with n 7 (the baseline).
 * Measured: uplink drops 12, 15; downlink drops 11, 13, 14; the ACK of 17 (n 13) is the
 * last; 18 and 19 are lost after it (say 18 up, 19 down). lost counts the measured window:
 * 2 + 3 + 2 = 7. Uplink = (17 - 9) - (13 - 7) = 2, unknown 2, downlink 3. The whole-run
 * count the review found wrong would say 18 - 13 = 5 uplink. */
static void test_split_with_warmup(void **state)
{
    struct lg_stats *s = *state;
    struct lg_acct a = {.sent_all = 20,
                        .first_measured = 10,
                        .have_base = true,
                        .have_hi = true,
                        .base_seq = 9,
                        .base_n = 7,
                        .hi_seq = 17,
                        .hi_n = 13};
    lg_stats_account_client(s, &a);
    s->lost = 7;
    struct lg_loss_split x = lg_stats_loss_split(s);
    assert_int_equal(x.uplink, 2);
    assert_int_equal(x.downlink, 3);
    assert_int_equal(x.unknown, 2);
}

/* No ACK of a measured seq: every measured loss is of unknown direction, and the warm-up's
 * seqs are not part of the tail. */
static void test_split_warmup_no_measured_ack(void **state)
{
    struct lg_stats *s = *state;
    struct lg_acct a = {.sent_all = 20,
                        .first_measured = 10,
                        .have_base = true,
                        .have_hi = true,
                        .base_seq = 8,
                        .base_n = 9,
                        .hi_seq = 8,
                        .hi_n = 9};
    lg_stats_account_client(s, &a);
    assert_int_equal(s->tail, 10);
    assert_int_equal(s->uplink_est, 0);
}

/* A client that sent only warm-up messages adds nothing to the measured split. */
static void test_split_nothing_measured(void **state)
{
    struct lg_stats *s = *state;
    struct lg_acct a = {
        .sent_all = 5, .first_measured = UINT64_MAX, .have_hi = true, .hi_seq = 2, .hi_n = 1};
    lg_stats_account_client(s, &a);
    assert_int_equal(s->sent_all, 5);
    assert_int_equal(s->tail + s->uplink_est, 0);
}

/* The split never exceeds lost. */
static void test_split_clamped_to_lost(void **state)
{
    struct lg_stats *s = *state;
    account(s, 100, true, 89, 80); /* 10 uplink, tail 10 */
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
    account(&st[1], 5, true, 4, 5);
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

/* Resolution: 1 ns up to 2047 ns (LG_HIST_LOW_NS 1), 3 significant digits above. With a
 * 1 us lowest the unit was 512 ns and 700 ns read as 1023 ns. */
static void test_resolution_from_1_ns(void **state)
{
    struct lg_stats *s = *state;
    hist_record(&s->ack, 700);
    assert_int_equal(hist_percentile(&s->ack, 50), 700);
    hist_reset(&s->ack);
    hist_record(&s->lag, 1234567);
    uint64_t v = hist_percentile(&s->lag, 50);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_hand_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_no_ack_at_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolution_from_1_ns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_with_warmup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_warmup_no_measured_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_nothing_measured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_server_counted_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_clamped_to_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test(test_ival_add_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
