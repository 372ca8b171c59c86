/* test_impair: the pure parts of bin/udp_impair (impair/impair_core.c, impair_classify.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../impair/impair_classify.h"
#include "../../impair/impair_cli.h"

#include <errno.h>
#include <string.h>

static struct impair_info classify(const char *s)
{
    struct impair_info in;
    impair_classify(s, strlen(s), &in);
    return in;
}

static void test_classify_verbs_and_seqs(void **state)
{
    (void)state;
    struct impair_info in = classify("MSG 17 hello there");
    assert_int_equal(in.verb, IV_MSG);
    assert_int_equal(in.seq, 17);
    in = classify("ACK 18446744073709551614 3\n");
    assert_int_equal(in.verb, IV_ACK);
    assert_true(in.seq == 18446744073709551614ull);
    in = classify("FROM alice 5 hi");
    assert_int_equal(in.verb, IV_FROM);
    assert_int_equal(in.seq, 5);
    in = classify("PRIV bob 6 psst");
    assert_int_equal(in.verb, IV_PRIV);
    assert_int_equal(in.seq, 6);
    in = classify("TO bob 7 psst");
    assert_int_equal(in.verb, IV_TO);
    assert_int_equal(in.seq, 7);
    in = classify("MSG - no seq");
    assert_int_equal(in.verb, IV_MSG);
    assert_true(in.seq == IMPAIR_NO_SEQ);
    in = classify("MSG 18446744073709551616 overflow");
    assert_true(in.seq == IMPAIR_NO_SEQ);
    in = classify("ACK 9\r\n");
    assert_int_equal(in.seq, 9);
    in = classify("HELLO carol");
    assert_int_equal(in.verb, IV_HELLO);
    assert_true(in.seq == IMPAIR_NO_SEQ);
    assert_int_equal(classify("WELCOME c 127.0.0.1:1").verb, IV_WELCOME);
    assert_int_equal(classify("PING").verb, IV_PING);
    assert_int_equal(classify("USERS 3").verb, IV_USERS);
    assert_int_equal(classify("USER a 1.2.3.4:5 lobby").verb, IV_USER);
    assert_int_equal(classify("msg 1 lower case is text").verb, IV_OTHER);
    assert_int_equal(classify("MSGX 1 y").verb, IV_OTHER);
    assert_int_equal(classify("").verb, IV_OTHER);
    assert_int_equal(classify("just text").verb, IV_OTHER);
    assert_int_equal(classify("\xff\x78\x9c").verb, IV_ZLIB);
    assert_string_equal(impair_verb_name(IV_ZLIB), "ZLIB");
    assert_string_equal(impair_verb_name(IV_PRIV), "PRIV");
}

static void test_streams_split_by_verb_and_sender(void **state)
{
    (void)state;
    assert_true(classify("MSG 1 a").stream == classify("MSG 2 b").stream);
    assert_true(classify("ACK 1 1").stream != classify("MSG 1 1").stream);
    assert_true(classify("FROM a 1 x").stream == classify("FROM a 9 y").stream);
    assert_true(classify("FROM a 1 x").stream != classify("FROM b 1 x").stream);
    assert_true(classify("FROM a 1 x").stream != classify("PRIV a 1 x").stream);
}

static void test_match_lists(void **state)
{
    (void)state;
    uint32_t m = 0;
    assert_int_equal(impair_parse_match(IMPAIR_DEFAULT_MATCH, &m), 0);
    assert_true(impair_matched(m, IV_MSG, IMPAIR_UP));
    assert_true(impair_matched(m, IV_ACK, IMPAIR_DOWN));
    assert_false(impair_matched(m, IV_HELLO, IMPAIR_UP));
    assert_false(impair_matched(m, IV_WELCOME, IMPAIR_DOWN));
    assert_false(impair_matched(m, IV_PING, IMPAIR_UP));
    assert_true(impair_matched(m, IV_ZLIB, IMPAIR_UP));
    assert_true(impair_matched(m, IV_ZLIB, IMPAIR_DOWN));
    assert_int_equal(impair_parse_match("ping,Pong", &m), 0);
    assert_true(impair_matched(m, IV_PING, IMPAIR_UP));
    assert_true(impair_matched(m, IV_PONG, IMPAIR_DOWN));
    assert_false(impair_matched(m, IV_ZLIB, IMPAIR_UP));
    assert_int_equal(impair_parse_match("ACK", &m), 0);
    assert_false(impair_matched(m, IV_ZLIB, IMPAIR_UP));
    assert_true(impair_matched(m, IV_ZLIB, IMPAIR_DOWN));
    uint32_t before = m;
    assert_int_equal(impair_parse_match("", &m), -EINVAL);
    assert_int_equal(impair_parse_match("MSG,", &m), -EINVAL);
    assert_int_equal(impair_parse_match(",MSG", &m), -EINVAL);
    assert_int_equal(impair_parse_match("MSG,NOPE", &m), -EINVAL);
    assert_int_equal(m, before);
}

static void test_rng_is_deterministic_and_uniform(void **state)
{
    (void)state;
    struct impair_rng a, b, c;
    impair_rng_seed(&a, 42);
    impair_rng_seed(&b, 42);
    impair_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = impair_rng_next(&a);
        assert_true(x == impair_rng_next(&b));
        differ += x != impair_rng_next(&c);
    }
    assert_true(differ > 90);
    /* 100,000 draws: every tenth of [0,1) gets 10% +- 0.6% (6 sigma) */
    unsigned bins[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = impair_rng_unit(&a);
        assert_true(u >= 0.0 && u < 1.0);
        bins[(int)(u * 10)]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(bins[i] > 9400 && bins[i] < 10600);
}

static void test_decide_fixed_order_and_four_draws(void **state)
{
    (void)state;
    struct impair_rng r, ref;
    uint64_t jit = 99;
    struct impair_probs all = {.drop = 1, .dup = 1, .reorder = 1};
    impair_rng_seed(&r, 1);
    assert_int_equal(impair_decide(&all, &r, &jit), IA_DROP);
    assert_int_equal(jit, 0);
    struct impair_probs dup = {.dup = 1, .reorder = 1};
    assert_int_equal(impair_decide(&dup, &r, &jit), IA_DUP);
    struct impair_probs re = {.reorder = 1};
    assert_int_equal(impair_decide(&re, &r, &jit), IA_HOLD);
    struct impair_probs none = {0};
    assert_int_equal(impair_decide(&none, &r, &jit), IA_FORWARD);
    /* four decisions consumed exactly sixteen numbers, whatever the outcomes */
    impair_rng_seed(&ref, 1);
    for (int i = 0; i < 16; i++)
        impair_rng_next(&ref);
    assert_memory_equal(&r, &ref, sizeof r);

    struct impair_probs j = {.jitter_ns = 1000};
    uint64_t max = 0, min = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        impair_decide(&j, &r, &jit);
        max = jit > max ? jit : max;
        min = jit < min ? jit : min;
    }
    assert_true(max <= 1000 && max > 900);
    assert_true(min < 100);

    /* drop at 0.3 over 100,000: about 30,000 */
    struct impair_probs d = {.drop = 0.3};
    unsigned drops = 0;
    for (int i = 0; i < 100000; i++)
        drops += impair_decide(&d, &r, &jit) == IA_DROP;
    assert_true(drops > 29000 && drops < 31000);
}

static void test_heap_orders_by_time_then_insertion(void **state)
{
    (void)state;
    struct impair_heap h;
    impair_heap_init(&h);
    struct impair_timer t;
    assert_false(impair_heap_peek(&h, &t));
    assert_false(impair_heap_pop(&h, &t));
    /* pseudo-random times with many ties; ptr carries the insertion number */
    struct impair_rng r;
    impair_rng_seed(&r, 7);
    enum { N = 5000 };
    for (uintptr_t i = 0; i < N; i++)
        assert_int_equal(impair_heap_push(&h, impair_rng_next(&r) % 50, (void *)i, i * 3), 0);
    uint64_t last_at = 0;
    uintptr_t last_i = 0;
    for (int k = 0; k < N; k++) {
        struct impair_timer p;
        assert_true(impair_heap_peek(&h, &p));
        assert_true(impair_heap_pop(&h, &t));
        assert_true(p.at == t.at && p.ptr == t.ptr);
        uintptr_t i = (uintptr_t)t.ptr;
        assert_int_equal(t.gen, i * 3);
        assert_true(t.at >= last_at);
        if (k > 0 && t.at == last_at)
            assert_true(i > last_i); /* FIFO among ties */
        last_at = t.at;
        last_i = i;
    }
    assert_false(impair_heap_pop(&h, &t));
    impair_heap_destroy(&h);
    impair_heap_destroy(&h); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_verbs_and_seqs),
        cmocka_unit_test(test_streams_split_by_verb_and_sender),
        cmocka_unit_test(test_match_lists),
        cmocka_unit_test(test_rng_is_deterministic_and_uniform),
        cmocka_unit_test(test_decide_fixed_order_and_four_draws),
        cmocka_unit_test(test_heap_orders_by_time_then_insertion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
