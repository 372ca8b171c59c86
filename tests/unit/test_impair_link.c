/* test_impair_link: bin/linkem's model of one direction of a link (impair/impair_core.c): loss
 * models, duplication, the drop-tail queue and bottleneck, delay, jitter and reordering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../impair/impair_core.h"

#include <errno.h>
#include <string.h>

#define MS 1000000ull

static void link_init(struct impair_link *l, const struct impair_link_cfg *c)
{
    assert_int_equal(impair_link_init(l, c, 12345, IMPAIR_UP), 0);
}

static void test_ge_params(void **state)
{
    (void)state;
    double p = 0, r = 0;
    assert_int_equal(impair_ge_params(0.05, 4, &p, &r), 0);
    assert_true(r == 0.25);
    assert_true(p > 0.01315 && p < 0.01316); /* 0.05 * 0.25 / 0.95 */
    assert_int_equal(impair_ge_params(0.5, 1, &p, &r), 0);
    assert_true(p == 1.0 && r == 1.0); /* alternating: the edge that still exists */
    double bad[][2] = {{0.6, 1}, {0, 4}, {1, 4}, {0.05, 0.5}, {-0.1, 2}, {0.05, 1.0 / 0.0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(impair_ge_params(bad[i][0], bad[i][1], &p, &r), -EINVAL);
}

static void test_init_rejects_contradictions(void **state)
{
    (void)state;
    struct impair_link l;
    struct impair_link_cfg both = {.loss = 0.1, .ge_p = 0.1, .ge_r = 0.5};
    assert_int_equal(impair_link_init(&l, &both, 1, IMPAIR_UP), -EINVAL);
    struct impair_link_cfg big = {.dup = 1.5};
    assert_int_equal(impair_link_init(&l, &big, 1, IMPAIR_UP), -EINVAL);
}

/* Runs of consecutive losses over n packets: returns the number of runs, *lost the losses. */
static uint64_t loss_runs(struct impair_link *l, uint64_t n, uint64_t *lost)
{
    struct impair_link_verdict v;
    uint64_t runs = 0;
    bool prev = false;
    *lost = 0;
    for (uint64_t i = 0; i < n; i++) {
        impair_link_arrive(l, i * 1000, 100, &v);
        assert_true(v.idx == i);
        if (v.lost && !prev)
            runs++;
        *lost += v.lost;
        prev = v.lost;
    }
    return runs;
}

static void test_gilbert_elliott_mean_burst_and_average(void **state)
{
    (void)state;
    /* 5 % in bursts of 4 over 10^6 packets: about 12,500 bursts. The burst length is
     * geometric (sd 3.46), so its mean is 4 +- 0.03 (1 sigma); the loss count's sd is about
     * sqrt(bursts * E[len^2]) = 590, i.e. 0.06 %. Bounds at 4 sigma; the seed fixes the draw. */
    struct impair_link_cfg c = {0};
    assert_int_equal(impair_ge_params(0.05, 4, &c.ge_p, &c.ge_r), 0);
    struct impair_link l;
    link_init(&l, &c);
    uint64_t lost = 0;
    uint64_t runs = loss_runs(&l, 1000000, &lost);
    double mean = (double)lost / (double)runs;
    assert_true(mean > 3.88 && mean < 4.12);
    assert_true(lost > 47600 && lost < 52400);
    assert_int_equal(l.n.lost, lost);
    assert_int_equal(l.n.pkts_in, 1000000);
    assert_int_equal(l.n.bytes_in, 100000000);
    impair_link_destroy(&l);

    /* independent loss at the same average: bursts of 1/(1-p) = 1.05 */
    struct impair_link_cfg b = {.loss = 0.05};
    link_init(&l, &b);
    runs = loss_runs(&l, 1000000, &lost);
    assert_true(lost > 49100 && lost < 50900); /* sd 218 */
    mean = (double)lost / (double)runs;
    assert_true(mean > 1.04 && mean < 1.065);
    impair_link_destroy(&l);
}

static void test_four_draws_per_packet_whatever_happens(void **state)
{
    (void)state;
    /* the fate of packet n depends on the seed and n only: a config that drops everything
     * and one that drops nothing consume the same numbers */
    struct impair_link_cfg all = {.loss = 1.0, .dup = 1.0, .jitter_ns = 7};
    struct impair_link_cfg none = {.rate_bps = 1000, .queue_pkts = 1};
    struct impair_link a, b;
    link_init(&a, &all);
    link_init(&b, &none);
    struct impair_link_verdict v;
    for (int i = 0; i < 1000; i++) {
        impair_link_arrive(&a, (uint64_t)i, 1500, &v);
        assert_true(v.lost && v.copies == 0);
        impair_link_arrive(&b, (uint64_t)i, 1500, &v);
    }
    assert_memory_equal(&a.rng, &b.rng, sizeof a.rng);
    struct impair_rng ref;
    impair_rng_seed_dir(&ref, 12345, IMPAIR_UP);
    for (int i = 0; i < 4000; i++)
        impair_rng_next(&ref);
    assert_memory_equal(&a.rng, &ref, sizeof ref);
    /* the two directions draw from different streams */
    impair_rng_seed_dir(&ref, 12345, IMPAIR_DOWN);
    struct impair_rng up;
    impair_rng_seed_dir(&up, 12345, IMPAIR_UP);
    assert_true(impair_rng_next(&ref) != impair_rng_next(&up));
    impair_link_destroy(&a);
    impair_link_destroy(&b);
}

static void test_serialisation_times(void **state)
{
    (void)state;
    assert_int_equal(impair_link_tx_ns(10000000, 1500), 1200000); /* 1500 B at 10 Mbit/s */
    assert_int_equal(impair_link_tx_ns(1000000000, 1500), 12000);
    assert_int_equal(impair_link_tx_ns(3000000000ull, 1), 3); /* 2.67 rounded up */
    assert_int_equal(impair_link_tx_ns(0, 1500), 0);
    /* back to back, the remainders add up: 3000 bytes at 3 Gbit/s take 8 us exactly, not the
     * 9 us that per-packet rounding would give */
    struct impair_link_cfg c = {.rate_bps = 3000000000ull, .queue_pkts = 5000};
    struct impair_link l;
    link_init(&l, &c);
    struct impair_link_verdict v;
    for (int i = 0; i < 3000; i++)
        impair_link_arrive(&l, 0, 1, &v);
    assert_int_equal(v.copies, 1);
    assert_int_equal(v.depart[0], 8000);
    assert_int_equal(l.n.max_queue, 2999); /* all but the first waited */
    impair_link_destroy(&l);
}

static void test_drop_tail_queue_accounting(void **state)
{
    (void)state;
    /* 1000-byte packets at 8 Mbit/s: 1 ms each. Ten arrive at once into a queue of 3: the
     * first goes on the wire, three wait, six are dropped. */
    struct impair_link_cfg c = {.rate_bps = 8000000, .queue_pkts = 3, .delay_ns = 10 * MS};
    struct impair_link l;
    link_init(&l, &c);
    struct impair_link_verdict v;
    uint64_t departs[10];
    int sent = 0;
    for (int i = 0; i < 10; i++) {
        impair_link_arrive(&l, 0, 1000, &v);
        assert_int_equal(v.copies + v.queue_drops, 1);
        if (v.copies)
            departs[sent++] = v.depart[0];
    }
    assert_int_equal(sent, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(departs[i], (uint64_t)(i + 1) * MS + 10 * MS);
    assert_int_equal(l.n.queue_drops, 6);
    assert_int_equal(l.n.max_queue, 3);
    assert_int_equal(l.n.max_queue_bytes, 3000);
    /* at 2.5 ms the copies starting at 1 and 2 ms are on the wire or gone: one waits, so two
     * more fit, a third does not */
    for (int i = 0; i < 3; i++) {
        impair_link_arrive(&l, 2500000, 1000, &v);
        assert_int_equal(v.copies, i < 2);
        if (v.copies)
            assert_int_equal(v.depart[0], (uint64_t)(5 + i) * MS + 10 * MS);
    }
    assert_int_equal(l.n.queue_drops, 7);
    assert_int_equal(l.n.pkts_in, 13);
    /* an idle link: a packet goes straight on the wire, the queue stays empty */
    impair_link_arrive(&l, 100 * MS, 1000, &v);
    assert_int_equal(v.depart[0], 101 * MS + 10 * MS);
    impair_link_destroy(&l);

    /* a byte limit: 2500 bytes hold two 1000-byte packets, not three */
    struct impair_link_cfg b = {.rate_bps = 8000000, .queue_bytes = 2500};
    link_init(&l, &b);
    int drops = 0;
    for (int i = 0; i < 4; i++) {
        impair_link_arrive(&l, 0, 1000, &v);
        drops += v.queue_drops;
    }
    assert_int_equal(drops, 1);
    assert_int_equal(l.n.max_queue, 2);
    impair_link_destroy(&l);
}

static void test_duplicates_are_packets_like_any_other(void **state)
{
    (void)state;
    /* both copies queue and serialise: with room for one waiting packet, the second copy
     * of the second packet is dropped by the queue */
    struct impair_link_cfg c = {.dup = 1.0, .rate_bps = 8000000, .queue_pkts = 1};
    struct impair_link l;
    link_init(&l, &c);
    struct impair_link_verdict v;
    impair_link_arrive(&l, 0, 1000, &v);
    assert_true(v.duplicated);
    assert_int_equal(v.copies, 2);
    assert_int_equal(v.depart[0], 1 * MS);
    assert_int_equal(v.depart[1], 2 * MS);
    impair_link_arrive(&l, 0, 1000, &v);
    assert_int_equal(v.copies, 0);
    assert_int_equal(v.queue_drops, 2);
    assert_int_equal(l.n.duplicated, 2);
    assert_int_equal(l.n.queue_drops, 2);
    impair_link_destroy(&l);
}

static void test_jitter_in_order_and_reordered(void **state)
{
    (void)state;
    /* a packet every 0.1 ms, 10 ms + up to 5 ms of jitter */
    struct impair_link_cfg c = {.delay_ns = 10 * MS, .jitter_ns = 5 * MS};
    struct impair_link l;
    link_init(&l, &c);
    struct impair_link_verdict v;
    uint64_t last = 0, held = 0;
    enum { N_IN_ORDER = 20000 };
    for (uint64_t i = 0; i < N_IN_ORDER; i++) {
        uint64_t t = i * 100000;
        impair_link_arrive(&l, t, 200, &v);
        assert_int_equal(v.copies, 1);
        assert_true(v.depart[0] >= last); /* one wire: never before the packet ahead */
        assert_true(v.depart[0] >= t + 10 * MS && v.depart[0] <= t + 15 * MS);
        held += v.depart[0] == last; /* waited for a packet ahead with more jitter */
        last = v.depart[0];
    }
    /* 50 packets within one jitter span: most wait for a slower one ahead */
    assert_true(held > N_IN_ORDER / 2);
    impair_link_destroy(&l);

    /* --reorder: each packet its own jitter, uniform in [10, 15] ms; overtakes happen and a
     * flow table sees them as a receiver would */
    c.reorder = true;
    link_init(&l, &c);
    struct impair_heap h;
    impair_heap_init(&h);
    double sum = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++) {
        uint64_t t = i * 100000;
        impair_link_arrive(&l, t, 200, &v);
        uint64_t d = v.depart[0] - t;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += (double)d;
        assert_int_equal(impair_heap_push(&h, v.depart[0], (void *)(uintptr_t)i, 0), 0);
    }
    assert_true(lo >= 10 * MS && hi <= 15 * MS);
    assert_true(lo < 10 * MS + 50000 && hi > 15 * MS - 50000);
    double mean = sum / N; /* 12.5 ms; sd of the mean 1.44 ms / sqrt(N) = 10 us */
    assert_true(mean > 12.46 * MS && mean < 12.54 * MS);
    /* send in departure order: late ones are those below the highest index sent so far */
    struct impair_flows f;
    impair_flows_init(&f);
    struct impair_timer t;
    uint64_t late = 0, top = 0, reordered = 0;
    while (impair_heap_pop(&h, &t)) {
        uint64_t i = (uint64_t)(uintptr_t)t.ptr;
        if (i + 1 < top)
            late++;
        else
            top = i + 1;
        reordered += impair_flows_sent(&f, 42, i);
    }
    assert_true(late > 1000);
    assert_int_equal(reordered, late);
    assert_int_equal(f.untracked, 0);
    impair_flows_destroy(&f);
    impair_heap_destroy(&h);
    impair_link_destroy(&l);
}

static void test_flows_judge_each_flow_apart(void **state)
{
    (void)state;
    struct impair_flows f;
    impair_flows_init(&f);
    assert_false(impair_flows_sent(&f, 7, 0));
    assert_false(impair_flows_sent(&f, 7, 2));
    assert_true(impair_flows_sent(&f, 7, 1)); /* 1 after 2: late */
    assert_false(impair_flows_sent(&f, 7, 3));
    assert_false(impair_flows_sent(&f, 9, 1)); /* another flow: its own order */
    assert_true(impair_flows_sent(&f, 7, 2));  /* a copy of 2 after 3 */
    assert_false(impair_flows_sent(&f, 0, 5)); /* 0 is a flow like any other */
    assert_true(impair_flows_sent(&f, 0, 4));
    /* many flows: the table grows and remembers each */
    for (uint64_t k = 100; k < 20100; k++)
        assert_false(impair_flows_sent(&f, k * 0x10001, 10));
    for (uint64_t k = 100; k < 20100; k++)
        assert_true(impair_flows_sent(&f, k * 0x10001, 9));
    assert_true(impair_flows_sent(&f, 7, 0));
    assert_int_equal(f.untracked, 0);
    impair_flows_destroy(&f);
    impair_flows_destroy(&f); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ge_params),
        cmocka_unit_test(test_init_rejects_contradictions),
        cmocka_unit_test(test_gilbert_elliott_mean_burst_and_average),
        cmocka_unit_test(test_four_draws_per_packet_whatever_happens),
        cmocka_unit_test(test_serialisation_times),
        cmocka_unit_test(test_drop_tail_queue_accounting),
        cmocka_unit_test(test_duplicates_are_packets_like_any_other),
        cmocka_unit_test(test_jitter_in_order_and_reordered),
        cmocka_unit_test(test_flows_judge_each_flow_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
