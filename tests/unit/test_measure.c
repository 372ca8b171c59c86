/* test_measure: one client's message stream as loadgen measures it: sends into the in-flight
 * ring, ACKs with the server's count, FROMs of a room, expiry after the timeout, and the
 * end-of-run accounting (lost, the uplink/downlink split, behind), driven with hand-made
 * sequences whose right answers are worked out in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/measure.h"

#define SEC 1000000000ull
#define TIMEOUT (1 * SEC)

struct fixture {
    struct lg_stats st;
    struct lg_ival iv;
    struct lg_meter mt;
    struct lg_meas m[3];
};

static int setup(void **state)
{
    static struct fixture fx;
    if (lg_stats_init(&fx.st) < 0 || lg_ival_init(&fx.iv) < 0)
        return -1;
    fx.mt = (struct lg_meter){.st = &fx.st,
                              .iv = &fx.iv,
                              .warm_end = 0,
                              .t_end = 0,
                              .timeout_ns = TIMEOUT,
                              .datagrams = true};
    for (int i = 0; i < 3; i++)
        if (lg_meas_init(&fx.m[i], 8, 3) < 0)
            return -1;
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        lg_meas_destroy(&fx->m[i]);
    lg_stats_destroy(&fx->st);
    lg_ival_destroy(&fx->iv);
    return 0;
}

/* Sends n MSGs at 1 msg/s from t0 = 0 (message k is intended at phase + k s), each sent 1 us
 * after it was due; returns the intended time of the last. */
static uint64_t send_n(struct fixture *fx, struct lg_meas *m, uint64_t n, uint32_t fan)
{
    if (!m->scheduled)
        lg_meas_start(m, 0, 1.0, false, 7, fan);
    uint64_t last = 0;
    for (uint64_t k = 0; k < n; k++) {
        struct lg_msg msg;
        assert_int_equal(lg_meas_next(&fx->mt, m, &msg), 0);
        lg_meas_sent(&fx->mt, m, &msg, msg.intended_ns + 1000, 100, 100);
        last = msg.intended_ns;
    }
    return last;
}

/* The ACK of seq with the server's count n, 50 us after the message was sent. */
static bool ack(struct fixture *fx, struct lg_meas *m, uint64_t seq, uint64_t n)
{
    uint64_t sent = m->ring[seq & m->mask].sent_ns;
    return lg_meas_ack(&fx->mt, m, seq, n, sent + 50000);
}

/* A client sent seqs 0..9. Uplink drops: 2, 5, 8. Downlink drops (ACK lost): 7, 9. ACKs
 * received, with the server's count n: 0/1 1/2 3/3 4/4 6/5. The last ACK (seq 6, n 5) says
 * 7 - 5 = 2 of seqs 0..6 never reached the server (2 and 5); seqs 7, 8, 9 come after it,
 * so nothing tells which way they were lost. */
static void test_split_hand_computed(void **state)
{
    struct fixture *fx = *state;
    send_n(fx, &fx->m[0], 10, 0);
    uint64_t acks[][2] = {{0, 1}, {1, 2}, {3, 3}, {4, 4}, {6, 5}};
    for (size_t i = 0; i < 5; i++)
        assert_true(ack(fx, &fx->m[0], acks[i][0], acks[i][1]));
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.sent, 10);
    assert_int_equal(fx->st.sent_all, 10);
    assert_int_equal(fx->st.acked, 5);
    assert_int_equal(fx->st.lost, 5);
    assert_int_equal(fx->st.uplink_est, 2);
    assert_int_equal(fx->st.tail, 3);
    struct lg_loss_split x = lg_stats_loss_split(&fx->st);
    assert_int_equal(x.uplink, 2);
    assert_int_equal(x.downlink, 0);
    assert_int_equal(x.unknown, 3);
    assert_int_equal(fx->st.h[LG_ACK].total, 5);
    assert_int_equal(hist_min(&fx->st.h[LG_ACK]), 51000);     /* from the intended time */
    assert_int_equal(hist_max(&fx->st.h[LG_ACK_RAW]), 50000); /* from the actual send */
    assert_int_equal(fx->st.h[LG_LAG].total, 10);
    assert_int_equal(fx->st.bytes_sent_wire, 1000);
}

/* Same uplink losses, but the last message's ACK arrives (seq 9, n 7): 10 - 7 = 3 uplink
 * (2, 5, 8); 4 and 7 reached the server (its count went on) and lost their ACK. */
static void test_split_downlink(void **state)
{
    struct fixture *fx = *state;
    send_n(fx, &fx->m[0], 10, 0);
    uint64_t acks[][2] = {{0, 1}, {1, 2}, {3, 3}, {6, 5}, {9, 7}};
    for (size_t i = 0; i < 5; i++)
        ack(fx, &fx->m[0], acks[i][0], acks[i][1]);
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.lost, 5);
    struct lg_loss_split x = lg_stats_loss_split(&fx->st);
    assert_int_equal(x.uplink, 3);
    assert_int_equal(x.downlink, 2);
    assert_int_equal(x.unknown, 0);
}

static void test_split_no_ack_at_all(void **state)
{
    struct fixture *fx = *state;
    send_n(fx, &fx->m[0], 4, 0);
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.lost, 4);
    struct lg_loss_split x = lg_stats_loss_split(&fx->st);
    assert_int_equal(x.unknown, 4);
    assert_int_equal(x.uplink + x.downlink, 0);
}

/* Uplink duplicates make the server count more frames than were sent: never negative. */
static void test_split_server_counted_more(void **state)
{
    struct fixture *fx = *state;
    send_n(fx, &fx->m[0], 5, 0);
    for (uint64_t q = 0; q < 5; q++)
        ack(fx, &fx->m[0], q, q + 3);
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.lost, 0);
    assert_int_equal(fx->st.uplink_est, 0);
    struct lg_loss_split x = lg_stats_loss_split(&fx->st);
    assert_int_equal(x.uplink + x.downlink + x.unknown, 0);
}

/* The review's case: a warm-up. Seqs 0..19, 0..9 warm-up (first measured 10). Warm-up:
 * uplink drops 1, 3, 4; downlink drop 6; the ACK of 9 arrives with n 7 (the baseline).
 * Measured: uplink drops 12, 15; downlink drops 11, 13, 14; the ACK of 17 (n 13) is the
 * last; 18 and 19 are lost after it (18 up, 19 down). lost counts the measured window:
 * 2 + 3 + 2 = 7. Uplink = (17 - 9) - (13 - 7) = 2, unknown 2, downlink 3. The whole-run
 * count the review found wrong would say 18 - 13 = 5 uplink. */
static void test_split_with_warmup(void **state)
{
    struct fixture *fx = *state;
    fx->mt.warm_end = 10 * SEC; /* message k is due at phase + k s, phase < 1 s */
    send_n(fx, &fx->m[0], 20, 0);
    assert_int_equal(fx->m[0].first_measured, 10);
    uint64_t acks[][2] = {{0, 1}, {2, 2},  {5, 3},   {7, 5},  {8, 6},
                          {9, 7}, {10, 8}, {16, 12}, {17, 13}};
    for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++)
        assert_int_equal(ack(fx, &fx->m[0], acks[i][0], acks[i][1]), acks[i][0] >= 10);
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.sent, 10);
    assert_int_equal(fx->st.sent_all, 20);
    assert_int_equal(fx->st.acked, 3);
    assert_int_equal(fx->st.lost, 7);
    assert_int_equal(fx->iv.lost, 7 + 4); /* the interval counts the warm-up too */
    struct lg_loss_split x = lg_stats_loss_split(&fx->st);
    assert_int_equal(x.uplink, 2);
    assert_int_equal(x.downlink, 3);
    assert_int_equal(x.unknown, 2);
}

/* No ACK of a measured seq: every measured loss is of unknown direction, and the warm-up's
 * seqs are not part of the tail. */
static void test_split_warmup_no_measured_ack(void **state)
{
    struct fixture *fx = *state;
    fx->mt.warm_end = 10 * SEC;
    send_n(fx, &fx->m[0], 20, 0);
    ack(fx, &fx->m[0], 8, 9);
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.tail, 10);
    assert_int_equal(fx->st.uplink_est, 0);
    assert_int_equal(fx->st.lost, 10);
}

/* A client that sent only warm-up messages adds nothing to the measured split. */
static void test_split_nothing_measured(void **state)
{
    struct fixture *fx = *state;
    fx->mt.warm_end = 100 * SEC;
    send_n(fx, &fx->m[0], 5, 0);
    assert_false(ack(fx, &fx->m[0], 2, 1));
    lg_meas_finish(&fx->mt, &fx->m[0], false);
    assert_int_equal(fx->st.sent_all, 5);
    assert_int_equal(fx->st.sent + fx->st.lost, 0);
    assert_int_equal(fx->st.tail + fx->st.uplink_est, 0);
}

/* Duplicates, late ACKs (after the timeout), reordering and expiry by the sweep. */
static void test_duplicate_late_reordered(void **state)
{
    struct fixture *fx = *state;
    struct lg_meas *m = &fx->m[0];
    send_n(fx, m, 6, 0);
    ack(fx, m, 0, 1);
    ack(fx, m, 0, 1); /* a copy */
    ack(fx, m, 2, 3);
    ack(fx, m, 1, 2); /* below the highest seen: reordered, still acked */
    /* seq 3's ACK 2 s after its send: past the 1 s timeout */
    uint64_t s3 = m->ring[3 & m->mask].sent_ns;
    assert_true(lg_meas_ack(&fx->mt, m, 3, 4, s3 + 2 * SEC));
    assert_int_equal(fx->st.duplicates, 1);
    assert_int_equal(fx->st.reordered, 1);
    assert_int_equal(fx->st.late, 1);
    assert_int_equal(fx->st.acked, 3);
    assert_int_equal(fx->mt.acks, 3);
    /* the sweep at seq 3's send + 2 s: 0..2 done; 3 expired (lost); 4 and 5 (sent 1 and 2 s
     * after 3) still within their timeout */
    assert_int_equal(lg_meas_sweep(&fx->mt, m, s3 + 2 * SEC), 2);
    assert_int_equal(fx->st.lost, 1);
    lg_meas_finish(&fx->mt, m, false);
    assert_int_equal(fx->st.lost, 3);
    assert_int_equal(fx->st.acked + fx->st.lost, fx->st.sent);
    assert_int_equal(fx->st.tcp_disorder, 0);
}

/* Over a reliable transport nothing expires and any disorder is the transport's error. */
static void test_reliable_never_expires(void **state)
{
    struct fixture *fx = *state;
    struct lg_meas *m = &fx->m[0];
    fx->mt.datagrams = false;
    send_n(fx, m, 3, 0);
    assert_int_equal(lg_meas_sweep(&fx->mt, m, 1000 * SEC), 3);
    ack(fx, m, 1, 1);
    ack(fx, m, 0, 2);
    assert_int_equal(fx->st.tcp_disorder, 1);
    assert_int_equal(lg_meas_sweep(&fx->mt, m, 1000 * SEC), 1);
    assert_int_equal(fx->st.lost, 0);
}

/* A room of three: m[0] sends, m[1] and m[2] (positions 1 and 2) receive FROMs. A message
 * counts in fanout_last when every member got it, else in fanout_last_incomplete. */
static void test_fanout(void **state)
{
    struct fixture *fx = *state;
    struct lg_meas *snd = &fx->m[0];
    send_n(fx, snd, 2, 2);
    assert_int_equal(fx->st.fanout_expected, 4);
    uint64_t t0 = snd->ring[0].intended_ns, t1 = snd->ring[1].intended_ns;
    assert_true(lg_meas_from(&fx->mt, &fx->m[1], 0, snd, 0, t0, t0 + 10000));
    assert_true(lg_meas_from(&fx->mt, &fx->m[2], 0, snd, 0, t0, t0 + 30000));
    assert_true(lg_meas_from(&fx->mt, &fx->m[2], 0, snd, 0, t0, t0 + 40000)); /* a copy */
    assert_true(lg_meas_from(&fx->mt, &fx->m[1], 0, snd, 1, t1, t1 + 20000));
    ack(fx, snd, 0, 1);
    ack(fx, snd, 1, 2);
    assert_int_equal(fx->st.fanout_received, 3);
    assert_int_equal(fx->st.fanout_dup, 1);
    assert_int_equal(fx->st.h[LG_FANOUT_LAST].total, 1);
    assert_int_equal(hist_max(&fx->st.h[LG_FANOUT_LAST]), 30000);
    assert_int_equal(hist_max(&fx->st.h[LG_FANOUT]), 30000);
    lg_meas_finish(&fx->mt, snd, false);
    assert_int_equal(fx->st.fanout_last_incomplete, 1);
    assert_int_equal(fx->st.lost, 0);
}

/* The ring grows when more than its 8 slots are in flight, and keeps every message. */
static void test_ring_grows(void **state)
{
    struct fixture *fx = *state;
    struct lg_meas *m = &fx->m[0];
    send_n(fx, m, 50, 0);
    assert_true(m->mask + 1 >= 50);
    for (uint64_t q = 50; q-- > 0;)
        ack(fx, m, q, 50 - q);
    assert_int_equal(fx->st.acked, 50);
    assert_int_equal(lg_meas_sweep(&fx->mt, m, 0), 0);
}

/* What the schedule owed inside the window and never sent is behind, for live clients. */
static void test_behind(void **state)
{
    struct fixture *fx = *state;
    fx->mt.warm_end = 2 * SEC;
    fx->mt.t_end = 10 * SEC;
    send_n(fx, &fx->m[0], 4, 0); /* due at phase + 0..3 s: 2 and 3 measured */
    send_n(fx, &fx->m[1], 4, 0);
    lg_meas_finish(&fx->mt, &fx->m[0], true);  /* 4..9 still due before 10 s */
    lg_meas_finish(&fx->mt, &fx->m[1], false); /* failed: owes nothing */
    assert_int_equal(fx->st.behind, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_hand_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_no_ack_at_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_server_counted_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_with_warmup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_warmup_no_measured_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_nothing_measured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_late_reordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reliable_never_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_behind, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
