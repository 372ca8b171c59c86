/* test_seqstats: loss, reordering, duplicates and jitter on hand-computed sequences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/seqstats.h"

#include <stdlib.h>
#include <string.h>

/* Arrival with a constant transit of 1000 ns: jitter stays out of the way. */
static enum seq_kind arrive(struct seqstats *s, uint64_t seq)
{
    return seqstats_arrive(s, seq, seq * 10000, seq * 10000 + 1000);
}

static void test_in_order(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    for (uint64_t i = 0; i < 10; i++)
        assert_int_equal(arrive(&s, i), SEQ_IN_ORDER);
    assert_int_equal(s.received, 10);
    assert_int_equal(s.distinct, 10);
    assert_int_equal(s.reordered, 0);
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(s.too_old, 0);
    assert_int_equal(s.highest, 9);
    assert_int_equal(seqstats_lost(&s, 10), 0);
    assert_int_equal(seqstats_lost(&s, 12), 2);
}

static void test_one_swap(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    assert_int_equal(arrive(&s, 0), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 2), SEQ_IN_ORDER); /* a gap is not reordering */
    assert_int_equal(arrive(&s, 1), SEQ_REORDERED);
    assert_int_equal(arrive(&s, 3), SEQ_IN_ORDER);
    assert_int_equal(s.reordered, 1);
    assert_int_equal(s.distinct, 4);
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(seqstats_lost(&s, 4), 0);
}

static void test_duplicate(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    assert_int_equal(arrive(&s, 0), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 1), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 1), SEQ_DUPLICATE); /* the highest itself */
    assert_int_equal(arrive(&s, 0), SEQ_DUPLICATE); /* below the highest */
    assert_int_equal(arrive(&s, 2), SEQ_IN_ORDER);
    assert_int_equal(s.received, 5);
    assert_int_equal(s.distinct, 3);
    assert_int_equal(s.duplicates, 2);
    assert_int_equal(s.reordered, 0);
    assert_int_equal(seqstats_lost(&s, 3), 0);
}

static void test_late_then_duplicate(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    assert_int_equal(arrive(&s, 0), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 2), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 1), SEQ_REORDERED); /* first copy of 1: late */
    assert_int_equal(arrive(&s, 1), SEQ_DUPLICATE); /* second copy of 1 */
    assert_int_equal(s.reordered, 1);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.distinct, 3);
    assert_int_equal(s.received, 4);
}

static void test_gap_loss(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    arrive(&s, 0);
    arrive(&s, 1);
    arrive(&s, 4);
    arrive(&s, 5);
    assert_int_equal(seqstats_lost(&s, 6), 2); /* 2 and 3 */
    assert_int_equal(arrive(&s, 2), SEQ_REORDERED);
    assert_int_equal(seqstats_lost(&s, 6), 1);
    arrive(&s, 2); /* a duplicate does not reduce loss */
    assert_int_equal(seqstats_lost(&s, 6), 1);
    assert_int_equal(seqstats_lost(&s, 8), 3); /* 6 and 7 never came either */
    assert_int_equal(seqstats_lost(&s, 3), 0); /* never negative */
}

static void test_first_arrival_not_zero(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    assert_int_equal(arrive(&s, 5), SEQ_IN_ORDER);
    assert_int_equal(arrive(&s, 3), SEQ_REORDERED);
    assert_int_equal(arrive(&s, 0), SEQ_REORDERED);
    assert_int_equal(arrive(&s, 0), SEQ_DUPLICATE);
    assert_int_equal(seqstats_lost(&s, 6), 3);
}

static void test_window_edge(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    const uint64_t h = 5000;
    assert_int_equal(arrive(&s, h), SEQ_IN_ORDER);
    /* SEQ_WINDOW - 1 below the highest: still in the window. */
    assert_int_equal(arrive(&s, h - (SEQ_WINDOW - 1)), SEQ_REORDERED);
    assert_int_equal(arrive(&s, h - (SEQ_WINDOW - 1)), SEQ_DUPLICATE);
    /* SEQ_WINDOW below: beyond it, counted late and flagged, every time. */
    assert_int_equal(arrive(&s, h - SEQ_WINDOW), SEQ_TOO_OLD);
    assert_int_equal(arrive(&s, h - SEQ_WINDOW), SEQ_TOO_OLD);
    assert_int_equal(s.too_old, 2);
    assert_int_equal(s.reordered, 3);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.distinct, 4);
    assert_int_equal(s.received, 5);
}

static void test_window_slides(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    for (uint64_t i = 0; i < SEQ_WINDOW; i++)
        assert_int_equal(arrive(&s, i), SEQ_IN_ORDER);
    /* Highest 1023: seq 0 is SEQ_WINDOW - 1 below, remembered. */
    assert_int_equal(arrive(&s, 0), SEQ_DUPLICATE);
    assert_int_equal(arrive(&s, SEQ_WINDOW), SEQ_IN_ORDER);
    /* Highest 1024: seq 0 slid out, seq 1 is still remembered. */
    assert_int_equal(arrive(&s, 0), SEQ_TOO_OLD);
    assert_int_equal(arrive(&s, 1), SEQ_DUPLICATE);
    /* Jumps that are not multiples of 64 move the bits across word boundaries. */
    assert_int_equal(arrive(&s, SEQ_WINDOW + 70), SEQ_IN_ORDER); /* 1094 */
    assert_int_equal(arrive(&s, 71), SEQ_DUPLICATE);             /* 1023 below */
    assert_int_equal(arrive(&s, 70), SEQ_TOO_OLD);
    assert_int_equal(arrive(&s, SEQ_WINDOW + 3), SEQ_REORDERED); /* 1027: in a gap */
    assert_int_equal(arrive(&s, SEQ_WINDOW + 3), SEQ_DUPLICATE);
    assert_int_equal(arrive(&s, SEQ_WINDOW), SEQ_DUPLICATE);
    assert_int_equal(arrive(&s, SEQ_WINDOW + 69), SEQ_REORDERED);
}

static void test_large_jump(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    arrive(&s, 0);
    arrive(&s, 1);
    arrive(&s, 2);
    assert_int_equal(arrive(&s, 100000), SEQ_IN_ORDER);
    assert_int_equal(s.highest, 100000);
    assert_int_equal(arrive(&s, 2), SEQ_TOO_OLD); /* history cleared by the jump */
    assert_int_equal(arrive(&s, 5), SEQ_TOO_OLD);
    assert_int_equal(arrive(&s, 99999), SEQ_REORDERED);
    assert_int_equal(arrive(&s, 99000), SEQ_REORDERED); /* 1000 below */
    assert_int_equal(arrive(&s, 99000), SEQ_DUPLICATE);
    assert_int_equal(arrive(&s, 100000), SEQ_DUPLICATE);
    assert_int_equal(s.too_old, 2);
    assert_int_equal(s.reordered, 4);
    assert_int_equal(s.duplicates, 2);
    /* 0,1,2,100000,2(too old, counted distinct),5,99999,99000 */
    assert_int_equal(s.distinct, 8);
    assert_int_equal(seqstats_lost(&s, 100001), 100001 - 8);
}

/* A naive model with unbounded memory, applied to random streams with local disorder,
 * duplicates and jumps, must agree arrival by arrival. */
static void test_against_model(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t rng = 12345;
    bool *seen = calloc(N + 4096, sizeof(*seen));
    assert_non_null(seen);
    struct seqstats s;
    seqstats_init(&s);
    uint64_t hi = 0, dup = 0, reo = 0, old = 0;
    bool any = false;
    uint64_t next = 0;
    for (int i = 0; i < 4 * N && next < N; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = rng >> 33;
        uint64_t seq;
        if (r % 10 < 6)
            seq = next++; /* mostly forward */
        else if (r % 10 < 9)
            seq = next > 0 ? next - 1 - (r / 16) % (next < 1500 ? next : 1500) : 0;
        else
            seq = next += (r / 16) % 200; /* forward jump */
        bool in_order = !any || seq > hi;
        enum seq_kind want;
        if (in_order)
            want = SEQ_IN_ORDER;
        else if (hi - seq >= SEQ_WINDOW)
            want = SEQ_TOO_OLD;
        else if (seen[seq])
            want = SEQ_DUPLICATE;
        else
            want = SEQ_REORDERED;
        enum seq_kind got = arrive(&s, seq);
        if (got != want)
            fail_msg("arrival %d seq %llu: got %d want %d", i, (unsigned long long)seq, got, want);
        if (want != SEQ_DUPLICATE)
            seen[seq] = true;
        if (in_order) {
            hi = seq;
            any = true;
        }
        dup += want == SEQ_DUPLICATE;
        reo += want == SEQ_REORDERED || want == SEQ_TOO_OLD;
        old += want == SEQ_TOO_OLD;
    }
    assert_int_equal(s.duplicates, dup);
    assert_int_equal(s.reordered, reo);
    assert_int_equal(s.too_old, old);
    assert_true(dup > 100 && reo > 100 && old > 100); /* the stream exercised every path */
    free(seen);
}

static void test_jitter_constant_transit(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    for (uint64_t i = 0; i < 100; i++)
        seqstats_arrive(&s, i, 1000000000u + i * 20000000u, 1000000000u + i * 20000000u + 777);
    assert_true(s.jitter_ns == 0.0);
}

static void test_jitter_hand_computed(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    /* Sent every 1000 ns; transits 100, 132, 100, 148 ns. RFC 3550: J += (|D| - J) / 16
     *   #0: first transit, J = 0
     *   #1: D = 132 - 100 = 32   J = 0 + (32 - 0) / 16          = 2
     *   #2: D = 100 - 132 = -32  J = 2 + (32 - 2) / 16          = 3.875
     *   #3: D = 148 - 100 = 48   J = 3.875 + (48 - 3.875) / 16  = 6.6328125
     * (all exact in binary floating point). */
    seqstats_arrive(&s, 0, 0, 100);
    assert_true(s.jitter_ns == 0.0);
    seqstats_arrive(&s, 1, 1000, 1132);
    assert_true(s.jitter_ns == 2.0);
    seqstats_arrive(&s, 2, 2000, 2100);
    assert_true(s.jitter_ns == 3.875);
    /* A duplicate of #2 arriving very late is no transit sample: J unchanged. */
    assert_int_equal(seqstats_arrive(&s, 2, 2000, 900000), SEQ_DUPLICATE);
    assert_true(s.jitter_ns == 3.875);
    seqstats_arrive(&s, 3, 3000, 3148);
    assert_true(s.jitter_ns == 6.6328125);
}

static void test_jitter_reordered_and_negative(void **state)
{
    (void)state;
    struct seqstats s;
    seqstats_init(&s);
    /* Arrival order counts, not seq order: #1 (transit 50) before #0 (transit 10).
     * D = 10 - 50 = -40, J = 40 / 16 = 2.5. */
    seqstats_arrive(&s, 1, 1000, 1050);
    seqstats_arrive(&s, 0, 0, 10);
    assert_true(s.jitter_ns == 2.5);
    /* A receive time before the send time (clock skew) is a negative transit, not 2^64:
     * D = -30 - 10 = -40, J = 2.5 + (40 - 2.5) / 16 = 4.84375. */
    seqstats_arrive(&s, 2, 2030, 2000);
    assert_true(s.jitter_ns == 4.84375);
}

static void test_merge_counts(void **state)
{
    (void)state;
    struct seqstats a, b;
    seqstats_init(&a);
    seqstats_init(&b);
    arrive(&a, 0);
    arrive(&a, 2);
    arrive(&a, 1);
    arrive(&a, 1);
    arrive(&b, 5000);
    arrive(&b, 1);
    seqstats_merge_counts(&a, &b);
    assert_int_equal(a.received, 6);
    assert_int_equal(a.distinct, 5);
    assert_int_equal(a.reordered, 2);
    assert_int_equal(a.duplicates, 1);
    assert_int_equal(a.too_old, 1);
    assert_int_equal(a.highest, 2); /* stream state is not merged */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_one_swap),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_late_then_duplicate),
        cmocka_unit_test(test_gap_loss),
        cmocka_unit_test(test_first_arrival_not_zero),
        cmocka_unit_test(test_window_edge),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_large_jump),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_jitter_constant_transit),
        cmocka_unit_test(test_jitter_hand_computed),
        cmocka_unit_test(test_jitter_reordered_and_negative),
        cmocka_unit_test(test_merge_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
