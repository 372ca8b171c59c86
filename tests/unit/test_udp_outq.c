/* test_udp_outq: udp_server's outbound ring: order, sharing, wrap-around, drops, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../servers/udp_outq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct sockaddr_in addr(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static void expect_ent(struct udp_outq *q, const struct udp_outq_ent *e, uint16_t port,
                       const char *payload)
{
    assert_int_equal(ntohs(e->to.sin_port), port);
    assert_int_equal(e->len, strlen(payload));
    assert_memory_equal(q->data + e->off, payload, e->len);
}

static void test_fifo_and_sharing(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 1024, 64), 0);
    struct sockaddr_in to[5];
    for (int i = 0; i < 5; i++)
        to[i] = addr((uint16_t)(1000 + i));
    assert_int_equal(udp_outq_push(&q, "FROM a 1 hi", 11, to, 5, UDP_OUTQ_REPLY), 5);
    assert_int_equal(q.data_used, 11); /* one copy for five recipients */
    assert_int_equal(udp_outq_push(&q, "ACK 1 1", 7, to, 1, UDP_OUTQ_REPLY), 1);
    struct udp_outq_ent e[16];
    size_t k = udp_outq_take(&q, e, 3);
    assert_int_equal(k, 3);
    for (int i = 0; i < 3; i++)
        expect_ent(&q, &e[i], (uint16_t)(1000 + i), "FROM a 1 hi");
    udp_outq_release(&q, e, k);
    assert_int_equal(q.data_used, 18); /* still referenced by the last two */
    k = udp_outq_take(&q, e, 16);
    assert_int_equal(k, 3);
    expect_ent(&q, &e[0], 1003, "FROM a 1 hi");
    expect_ent(&q, &e[1], 1004, "FROM a 1 hi");
    expect_ent(&q, &e[2], 1000, "ACK 1 1");
    udp_outq_release(&q, e, k);
    assert_int_equal(q.data_used, 0);
    assert_int_equal(udp_outq_dropped(&q), 0);
    udp_outq_destroy(&q);
    udp_outq_destroy(&q); /* twice is harmless */
}

static void test_full_drops_and_counts(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 100, 4), 0);
    struct sockaddr_in to[6];
    for (int i = 0; i < 6; i++)
        to[i] = addr((uint16_t)(2000 + i));
    /* entries run out: four queued, two dropped */
    assert_int_equal(udp_outq_push(&q, "x", 1, to, 6, UDP_OUTQ_REPLY), 4);
    assert_int_equal(udp_outq_dropped(&q), 2);
    struct udp_outq_ent e[8];
    size_t k = udp_outq_take(&q, e, 8);
    assert_int_equal(k, 4);
    udp_outq_release(&q, e, k);
    /* bytes run out */
    char big[80];
    memset(big, 'b', sizeof(big));
    assert_int_equal(udp_outq_push(&q, big, 80, to, 1, UDP_OUTQ_REPLY), 1);
    assert_int_equal(udp_outq_push(&q, big, 30, to, 1, UDP_OUTQ_REPLY), 0);
    assert_int_equal(udp_outq_dropped(&q), 3);
    assert_int_equal(udp_outq_push(&q, big, 20, to, 1, UDP_OUTQ_REPLY), 1); /* exactly fits */
    k = udp_outq_take(&q, e, 8);
    assert_int_equal(k, 2);
    udp_outq_release(&q, e, k);
    assert_int_equal(q.data_used, 0);
    udp_outq_destroy(&q);
}

static void test_fanout_leaves_room_for_replies(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 100, 8), 0);
    struct sockaddr_in to[10];
    for (int i = 0; i < 10; i++)
        to[i] = addr((uint16_t)(4000 + i));
    /* a room notice fills three quarters of the entries, no more */
    assert_int_equal(udp_outq_push(&q, "JOINED x lobby", 14, to, 10, UDP_OUTQ_FANOUT), 6);
    assert_int_equal(udp_outq_push(&q, "JOINED y lobby", 14, to, 1, UDP_OUTQ_FANOUT), 0);
    assert_int_equal(udp_outq_dropped(&q), 5);
    /* the last quarter is for direct replies */
    assert_int_equal(udp_outq_push(&q, "WELCOME y", 9, to, 1, UDP_OUTQ_REPLY), 1);
    assert_int_equal(udp_outq_push(&q, "ACK 1 1", 7, to, 1, UDP_OUTQ_REPLY), 1);
    assert_int_equal(udp_outq_push(&q, "ACK 2 2", 7, to, 1, UDP_OUTQ_REPLY), 0);
    struct udp_outq_ent e[8];
    size_t k = udp_outq_take(&q, e, 8);
    assert_int_equal(k, 8);
    expect_ent(&q, &e[6], 4000, "WELCOME y");
    udp_outq_release(&q, e, k);
    /* bytes too: 80 of 100 is past three quarters for fan-out, fine for a reply */
    char big[80];
    memset(big, 'f', sizeof(big));
    assert_int_equal(udp_outq_push(&q, big, 80, to, 1, UDP_OUTQ_FANOUT), 0);
    assert_int_equal(udp_outq_push(&q, big, 80, to, 1, UDP_OUTQ_REPLY), 1);
    udp_outq_destroy(&q);
}

/* A model check: random pushes, takes and releases against a plain FIFO of expectations,
 * in a small ring so that wrapping and padding happen constantly. */
static void test_random_against_model(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 257, 32), 0);
    enum { MODEL = 4096 };
    struct {
        char text[64];
        size_t len;
        uint16_t port;
    } *model = calloc(MODEL, sizeof(*model));
    assert_non_null(model);
    size_t m_head = 0, m_tail = 0;
    uint64_t rnd = 88172645463325252ULL;
    struct udp_outq_ent held[32];
    size_t nheld = 0;
    uint64_t dropped = 0;
    for (int step = 0; step < 200000; step++) {
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        if (rnd % 3 != 0) { /* push to 1..3 recipients */
            char text[64];
            size_t len = (size_t)(rnd >> 8) % 60;
            for (size_t i = 0; i < len; i++)
                text[i] = (char)('a' + (step + (int)i) % 26);
            size_t n = 1 + (size_t)(rnd >> 20) % 3;
            struct sockaddr_in to[3];
            for (size_t i = 0; i < n; i++)
                to[i] = addr((uint16_t)(step % 60000 + i));
            size_t got = udp_outq_push(&q, text, len, to, n,
                                       (rnd >> 40) % 2 ? UDP_OUTQ_REPLY : UDP_OUTQ_FANOUT);
            dropped += n - got;
            for (size_t i = 0; i < got; i++) {
                memcpy(model[m_tail % MODEL].text, text, len);
                model[m_tail % MODEL].len = len;
                model[m_tail % MODEL].port = (uint16_t)(step % 60000 + i);
                m_tail++;
            }
        } else if (nheld == 0 && m_head != m_tail) { /* take some, check, hold them */
            nheld = udp_outq_take(&q, held, 1 + (size_t)(rnd >> 30) % 8);
            for (size_t i = 0; i < nheld; i++, m_head++) {
                assert_int_equal(ntohs(held[i].to.sin_port), model[m_head % MODEL].port);
                assert_int_equal(held[i].len, model[m_head % MODEL].len);
                assert_memory_equal(q.data + held[i].off, model[m_head % MODEL].text, held[i].len);
            }
        } else if (nheld > 0) { /* the held payloads were not overwritten meanwhile */
            udp_outq_release(&q, held, nheld);
            nheld = 0;
        }
        assert_true(m_tail - m_head <= 32);
        assert_true(q.data_used <= q.data_cap);
    }
    assert_int_equal(udp_outq_dropped(&q), dropped);
    assert_true(dropped > 0); /* the ring was really full at times */
    free(model);
    udp_outq_destroy(&q);
}

struct drain_arg {
    struct udp_outq *q;
    size_t taken;
};

static void *drain(void *p)
{
    struct drain_arg *a = p;
    struct udp_outq_ent e[4];
    size_t k;
    while ((k = udp_outq_take(a->q, e, 4)) > 0) {
        a->taken += k;
        udp_outq_release(a->q, e, k);
    }
    return NULL;
}

static void test_wait_and_stop(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 64, 8), 0);
    struct drain_arg a = {.q = &q};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain, &a), 0);
    struct sockaddr_in to[100];
    for (int i = 0; i < 100; i++)
        to[i] = addr((uint16_t)(3000 + i));
    /* more recipients than entries: a waiting push hands them over in turns, none lost */
    for (int r = 0; r < 50; r++)
        assert_int_equal(udp_outq_push(&q, "BYE shutdown", 12, to, 100, UDP_OUTQ_WAIT), 100);
    udp_outq_stop(&q);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.taken, 5000);
    assert_int_equal(udp_outq_dropped(&q), 0);
    /* after stop, take returns 0 at once and pushes that would wait drop instead */
    struct udp_outq_ent e[1];
    assert_int_equal(udp_outq_take(&q, e, 1), 0);
    udp_outq_destroy(&q);
}

/* Polls cond (under q's lock) for up to 10 s. */
static bool wait_for(struct udp_outq *q, bool (*cond)(struct udp_outq *q))
{
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&q->lock);
        bool ok = cond(q);
        pthread_mutex_unlock(&q->lock);
        if (ok)
            return true;
        struct timespec ms = {.tv_nsec = 1000000};
        nanosleep(&ms, NULL);
    }
    return false;
}

static bool asleep(struct udp_outq *q)
{
    return q->sleeping;
}

static bool emptied(struct udp_outq *q)
{
    return q->ent_count == 0 && q->sleeping;
}

/* push_later queues without waking a sleeping sender; kick wakes it once for the batch;
 * push wakes it by itself. */
static void test_later_and_kick(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 1024, 64), 0);
    struct drain_arg a = {.q = &q};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain, &a), 0);
    assert_true(wait_for(&q, asleep));
    struct sockaddr_in to = addr(4000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(udp_outq_push_later(&q, "ACK 1 1\n", 8, &to, 1, UDP_OUTQ_REPLY), 1);
    pthread_mutex_lock(&q.lock);
    assert_true(q.sleeping); /* nobody told it */
    assert_int_equal(q.ent_count, 3);
    pthread_mutex_unlock(&q.lock);
    udp_outq_kick(&q);
    assert_true(wait_for(&q, emptied)); /* woken, took all three, asleep again */
    assert_int_equal(a.taken, 3);
    udp_outq_kick(&q); /* nothing queued: no wake-up needed, none harmful */
    assert_int_equal(udp_outq_push(&q, "ACK 2 2\n", 8, &to, 1, UDP_OUTQ_REPLY), 1);
    assert_true(wait_for(&q, emptied));
    assert_int_equal(a.taken, 4);
    udp_outq_stop(&q);
    assert_int_equal(pthread_join(t, NULL), 0);
    udp_outq_destroy(&q);
}

/* A batch that reaches UDP_OUTQ_EARLY_WAKE entries wakes the sender without a kick (a big
 * room's fan-out must not wait for the end of the receive batch), and so does a push that
 * finds the queue full. */
static void test_early_wake(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 64 * 1024, 4 * UDP_OUTQ_EARLY_WAKE), 0);
    struct drain_arg a = {.q = &q};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain, &a), 0);
    assert_true(wait_for(&q, asleep));
    struct sockaddr_in to[UDP_OUTQ_EARLY_WAKE];
    for (int i = 0; i < UDP_OUTQ_EARLY_WAKE; i++)
        to[i] = addr((uint16_t)(4000 + i));
    assert_int_equal(
        udp_outq_push_later(&q, "FROM 1 hi\n", 10, to, UDP_OUTQ_EARLY_WAKE - 1, UDP_OUTQ_FANOUT),
        UDP_OUTQ_EARLY_WAKE - 1);
    pthread_mutex_lock(&q.lock);
    assert_true(q.sleeping); /* one short of the threshold: left for the kick */
    pthread_mutex_unlock(&q.lock);
    assert_int_equal(udp_outq_push_later(&q, "ACK 1 1\n", 8, to, 1, UDP_OUTQ_REPLY), 1);
    assert_true(wait_for(&q, emptied)); /* no kick */
    assert_int_equal(a.taken, UDP_OUTQ_EARLY_WAKE);
    udp_outq_stop(&q);
    assert_int_equal(pthread_join(t, NULL), 0);
    udp_outq_destroy(&q);
}

static void test_bad_init(void **state)
{
    (void)state;
    struct udp_outq q;
    assert_int_equal(udp_outq_init(&q, 0, 8), -EINVAL);
    assert_int_equal(udp_outq_init(&q, 8, 0), -EINVAL);
    udp_outq_destroy(&q); /* safe after a failed init */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_sharing),
        cmocka_unit_test(test_full_drops_and_counts),
        cmocka_unit_test(test_fanout_leaves_room_for_replies),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_wait_and_stop),
        cmocka_unit_test(test_later_and_kick),
        cmocka_unit_test(test_early_wake),
        cmocka_unit_test(test_bad_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
