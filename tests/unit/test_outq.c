/* test_outq: the bounded outbound queue: append, wrap, limit, partial flushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../servers/outq.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Copies the queued bytes into out (as a reader would see them); returns their count. */
static size_t drain_copy(const struct outq *q, char *out)
{
    struct iovec iov[2];
    int cnt = outq_peek(q, iov);
    size_t off = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    return off;
}

static void test_empty(void **state)
{
    (void)state;
    struct outq q;
    struct iovec iov[2];
    outq_init(&q, 100);
    assert_int_equal(outq_len(&q), 0);
    assert_int_equal(outq_peek(&q, iov), 0);
    assert_null(q.buf); /* nothing allocated until used */
    assert_int_equal(outq_append(&q, "", 0), 0);
    assert_int_equal(outq_len(&q), 0);
    outq_consume(&q, 0);
    outq_destroy(&q);
    outq_destroy(&q); /* twice is harmless */
}

static void test_append_consume(void **state)
{
    (void)state;
    struct outq q;
    char out[64];
    outq_init(&q, 1000);
    assert_int_equal(outq_append(&q, "hello ", 6), 0);
    assert_int_equal(outq_append(&q, "world\n", 6), 0);
    assert_int_equal(outq_len(&q), 12);
    assert_int_equal(drain_copy(&q, out), 12);
    assert_memory_equal(out, "hello world\n", 12);
    outq_consume(&q, 4); /* partial consumption keeps the rest in order */
    assert_int_equal(outq_len(&q), 8);
    assert_int_equal(drain_copy(&q, out), 8);
    assert_memory_equal(out, "o world\n", 8);
    outq_consume(&q, 8);
    assert_int_equal(outq_len(&q), 0);
    outq_destroy(&q);
}

static void test_limit(void **state)
{
    (void)state;
    struct outq q;
    char big[300];
    memset(big, 'x', sizeof(big));
    outq_init(&q, 250);
    assert_int_equal(outq_append(&q, big, 251), -ENOBUFS); /* alone too big */
    assert_int_equal(outq_len(&q), 0);
    assert_int_equal(outq_append(&q, big, 200), 0);
    assert_int_equal(outq_append(&q, big, 51), -ENOBUFS); /* refused whole */
    assert_int_equal(outq_len(&q), 200);
    assert_int_equal(outq_append(&q, big, 50), 0); /* exactly the limit fits */
    assert_int_equal(outq_len(&q), 250);
    assert_int_equal(outq_append(&q, big, 1), -ENOBUFS);
    outq_consume(&q, 100); /* room again after the reader took some */
    assert_int_equal(outq_append(&q, big, 100), 0);
    assert_int_equal(outq_len(&q), 250);
    outq_destroy(&q);
}

/* Data that wraps around the end of the ring comes out in order, in two pieces. */
static void test_wrap(void **state)
{
    (void)state;
    struct outq q;
    char chunk[1000], out[8192], want[8192];
    outq_init(&q, 1 << 20);
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 4; i++) /* 4000 bytes in the first 4096-byte allocation */
        assert_int_equal(outq_append(&q, chunk, sizeof(chunk)), 0);
    size_t cap = q.cap;
    assert_int_equal(cap, 4096);
    outq_consume(&q, 3500);
    assert_int_equal(outq_append(&q, chunk, 1000), 0); /* tail wraps to the start */
    assert_int_equal(q.cap, cap);                      /* no growth needed */
    struct iovec iov[2];
    assert_int_equal(outq_peek(&q, iov), 2);
    assert_int_equal(iov[0].iov_len + iov[1].iov_len, 1500);
    memcpy(want, chunk + 500, 500);
    memcpy(want + 500, chunk, 1000);
    assert_int_equal(drain_copy(&q, out), 1500);
    assert_memory_equal(out, want, 1500);
    /* growing while wrapped linearises and keeps the order */
    for (int i = 0; i < 5; i++)
        assert_int_equal(outq_append(&q, chunk, 1000), 0);
    assert_true(q.cap > cap);
    assert_int_equal(outq_peek(&q, iov), 1);
    for (int i = 0; i < 5; i++)
        memcpy(want + 1500 + i * 1000, chunk, 1000);
    assert_int_equal(drain_copy(&q, out), 6500);
    assert_memory_equal(out, want, 6500);
    outq_destroy(&q);
}

/* A large drained queue gives its memory back. */
static void test_release(void **state)
{
    (void)state;
    struct outq q;
    static char big[200000];
    outq_init(&q, sizeof(big));
    assert_int_equal(outq_append(&q, big, sizeof(big)), 0);
    assert_non_null(q.buf);
    outq_consume(&q, sizeof(big));
    assert_null(q.buf);
    assert_int_equal(outq_append(&q, "x", 1), 0); /* and works again */
    assert_int_equal(outq_len(&q), 1);
    outq_destroy(&q);
}

static int small_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    int sz = 4096; /* the kernel doubles and rounds it; still far below what we queue */
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    return 0;
}

/* Flushing into a socket that takes only part of the data leaves the rest queued, in
 * order; the reader gets every byte once. */
static void test_flush_partial(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(small_pair(sv), 0);
    struct outq q;
    enum { TOTAL = 300000 };
    static char data[TOTAL], got[TOTAL];
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (char)(i * 7 + i / 251);
    outq_init(&q, TOTAL);
    assert_int_equal(outq_append(&q, data, TOTAL), 0);
    ssize_t n = outq_flush(&q, sv[0]);
    assert_true(n > 0);
    assert_true(n < TOTAL); /* the socket is full: a partial send */
    assert_int_equal(outq_len(&q), TOTAL - (size_t)n);
    assert_int_equal(outq_flush(&q, sv[0]), 0); /* full: nothing more, not an error */
    size_t have = 0;
    while (have < TOTAL) {
        ssize_t r = read(sv[1], got + have, TOTAL - have);
        assert_true(r > 0);
        have += (size_t)r;
        assert_true(outq_flush(&q, sv[0]) >= 0);
    }
    assert_int_equal(outq_len(&q), 0);
    assert_memory_equal(got, data, TOTAL);
    outq_destroy(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_flush_error(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(small_pair(sv), 0);
    struct outq q;
    outq_init(&q, 100);
    assert_int_equal(outq_flush(&q, sv[0]), 0); /* empty: no system call, no error */
    assert_int_equal(outq_append(&q, "ping\n", 5), 0);
    close(sv[1]);
    assert_int_equal(outq_flush(&q, sv[0]), -EPIPE); /* and no SIGPIPE */
    assert_int_equal(outq_len(&q), 5);
    outq_destroy(&q);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),       cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_limit),       cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_release),     cmocka_unit_test(test_flush_partial),
        cmocka_unit_test(test_flush_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
