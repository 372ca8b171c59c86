/* test_log: the log's bounded buffer and writer thread over real pipes: order, whole lines,
 * dropped lines counted and reported in their place, flush and a bounded stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- a pipe and a thread that reads it to EOF --- */

struct sink {
    int fd[2];
    pthread_t reader;
    bool reading;
    char *data;
    size_t len, cap;
};

static void *sink_read(void *arg)
{
    struct sink *k = arg;
    for (;;) {
        if (k->cap - k->len < 65536) {
            k->cap = k->cap * 2 + 65536;
            k->data = realloc(k->data, k->cap + 1);
            if (k->data == NULL)
                abort();
        }
        ssize_t n = read(k->fd[0], k->data + k->len, k->cap - k->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        k->len += (size_t)n;
    }
    k->data[k->len] = '\0';
    return NULL;
}

static void sink_open(struct sink *k, int pipe_bytes)
{
    memset(k, 0, sizeof(*k));
    assert_int_equal(pipe2(k->fd, O_CLOEXEC), 0);
    if (pipe_bytes > 0) /* the smallest pipe fills after a page: drops come soon */
        assert_true(fcntl(k->fd[1], F_SETPIPE_SZ, pipe_bytes) >= pipe_bytes);
}

static void sink_start_reading(struct sink *k)
{
    assert_int_equal(pthread_create(&k->reader, NULL, sink_read, k), 0);
    k->reading = true;
}

/* Closes the write end (after log_stop) and waits for the reader to see EOF. */
static void sink_finish(struct sink *k)
{
    close(k->fd[1]);
    if (!k->reading)
        sink_start_reading(k);
    pthread_join(k->reader, NULL);
    close(k->fd[0]);
}

static void sink_free(struct sink *k)
{
    free(k->data);
}

/* Walks the output: every line whole and "[T] <thread> <seq> ..." or the warning; per
 * thread the seqs increase, and a warning's count is exactly the lines missing where it
 * stands (lines of one thread: the test logs from one thread when it checks that).
 * Returns the lines seen; *warned gets the sum of the warnings' counts. */
static uint64_t walk(const struct sink *k, bool one_thread, uint64_t *warned, unsigned *warnings)
{
    uint64_t next[8] = {0}, lines = 0;
    *warned = 0;
    *warnings = 0;
    const char *p = k->data, *end = k->data + k->len;
    assert_true(k->len == 0 || end[-1] == '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        unsigned t;
        uint64_t seq, n;
        int used = 0;
        if (sscanf(p, "[WARN] %" SCNu64 " linhas de log descartadas%n", &n, &used) == 1 &&
            p + used == nl) {
            assert_true(n > 0);
            *warned += n;
            (*warnings)++;
            if (one_thread)
                next[0] += n;
        } else {
            assert_int_equal(sscanf(p, "[T] %u %" SCNu64 " %n", &t, &seq, &used), 2);
            assert_true(t < 8);
            if (one_thread)
                assert_true(seq == next[t]);
            else
                assert_true(seq >= next[t]);
            next[t] = seq + 1;
            lines++;
        }
        p = nl + 1;
    }
    return lines;
}

static void log_n(unsigned thread, uint64_t from, uint64_t n, const char *pad)
{
    for (uint64_t i = from; i < from + n; i++)
        log_line("T", "%u %" PRIu64 " %s", thread, i, pad);
}

/* Every one of total lines is either in the output or counted by a warning, and the
 * warnings count what log_dropped says. Returns how many warnings there were. */
static unsigned assert_accounted(const struct sink *k, bool one_thread, uint64_t total)
{
    uint64_t warned;
    unsigned warnings;
    uint64_t lines = walk(k, one_thread, &warned, &warnings);
    assert_int_equal(warned, log_dropped());
    assert_int_equal(lines + warned, total);
    return warnings;
}

/* A pipe read as fast as it fills, and the writer on it with a buffer of capacity bytes. */
static void start_drained(struct sink *k, size_t capacity)
{
    sink_open(k, 0);
    sink_start_reading(k);
    assert_int_equal(log_start(k->fd[1], capacity), 0);
}

/* A 4 KiB pipe nobody reads and a 4 KiB buffer, then n lines: most are dropped. */
static void log_into_a_stalled_pipe(struct sink *k, uint64_t n, const char *pad)
{
    sink_open(k, 4096);
    assert_int_equal(log_start(k->fd[1], 4096), 0);
    log_n(0, 0, n, pad);
    assert_true(log_dropped() > 0);
    assert_true(log_dropped() < n);
}

/* --- tests --- */

static void test_start_arguments(void **state)
{
    (void)state;
    assert_int_equal(log_start(-1, 0), -EINVAL);
    assert_int_equal(log_start(STDOUT_FILENO, 10), -EINVAL);
    assert_int_equal(log_stop(), 0); /* not started: nothing to do */
    struct sink k;
    sink_open(&k, 0);
    assert_int_equal(log_start(k.fd[1], 0), 0);
    assert_int_equal(log_start(k.fd[1], 0), -EALREADY);
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    assert_int_equal(k.len, 0);
    sink_free(&k);
}

/* Without log_start a line is written before log_line returns (the fuzzers read it back). */
static void test_direct_before_start(void **state)
{
    (void)state;
    struct sink k;
    sink_open(&k, 0);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(k.fd[1], STDOUT_FILENO), STDOUT_FILENO);
    log_line("INFO", "direto %d", 1);
    char got[64] = {0};
    ssize_t n = read(k.fd[0], got, sizeof(got) - 1);
    assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);
    assert_int_equal(n, (ssize_t)strlen("[INFO] direto 1\n"));
    assert_string_equal(got, "[INFO] direto 1\n");
    sink_finish(&k);
    sink_free(&k);
}

/* A reader that keeps up: every line, whole, in order, and log_stop writes out the rest. */
static void test_order_and_flush(void **state)
{
    (void)state;
    struct sink k;
    start_drained(&k, 0);
    log_n(0, 0, 20000, "linha de teste");
    assert_int_equal(log_stop(), 0); /* right away: the buffer is still full of lines */
    sink_finish(&k);
    assert_int_equal(assert_accounted(&k, true, 20000), 0);
    assert_int_equal(log_dropped(), 0);
    sink_free(&k);
}

/* Nobody reads: log_line still returns, lines are dropped and counted; once the pipe is
 * read the warning says how many, where they are missing, and later lines follow. */
static void test_drops_counted_and_reported_in_place(void **state)
{
    (void)state;
    struct sink k;
    log_into_a_stalled_pipe(&k, 1500, "texto que ninguém lê"); /* 75 KB: far past 8 KiB */
    sink_start_reading(&k);                                    /* the reader comes back */
    log_n(0, 1500, 1500, "texto que ninguém lê");
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    assert_true(assert_accounted(&k, true, 3000) >= 1);
    sink_free(&k);
}

/* The warning for lines dropped just before log_stop is written too. */
static void test_warning_written_at_stop(void **state)
{
    (void)state;
    struct sink k;
    log_into_a_stalled_pipe(&k, 1000, "antes de parar");
    sink_start_reading(&k);
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    assert_true(assert_accounted(&k, true, 1000) >= 1);
    /* the last line of the output is the warning: the drops were the last events */
    const char *tail = " linhas de log descartadas\n";
    assert_true(k.len > strlen(tail));
    assert_string_equal(k.data + k.len - strlen(tail), tail);
    sink_free(&k);
}

/* An output that never drains cannot keep log_stop (and the server) from returning. */
static void test_stop_with_a_stuck_output(void **state)
{
    (void)state;
    struct sink k;
    log_into_a_stalled_pipe(&k, 1000, "presa");
    assert_int_equal(log_stop(), -ETIMEDOUT); /* returns: the writer was cancelled */
    /* the pipe holds what was written before it filled (the writer's last chunk may end
     * inside a line: the buffer wraps anywhere) */
    sink_finish(&k);
    size_t lines = 0;
    for (size_t i = 0; i < k.len; i++)
        lines += k.data[i] == '\n';
    assert_true(lines > 0);
    assert_true(lines < 1000);
    assert_memory_equal(k.data, "[T] 0 0 presa\n", 14);
    sink_free(&k);
}

struct burst {
    unsigned thread;
    uint64_t n;
};

static void *burst_main(void *arg)
{
    const struct burst *b = arg;
    log_n(b->thread, 0, b->n, "de muitas threads ao mesmo tempo");
    return NULL;
}

/* Eight threads at once: lines stay whole, each thread's lines in its order, and every
 * line is either written or counted. */
static void test_many_threads(void **state)
{
    (void)state;
    struct sink k;
    start_drained(&k, 64 * 1024);
    pthread_t t[8];
    struct burst b[8];
    for (unsigned i = 0; i < 8; i++) {
        b[i] = (struct burst){i, 5000};
        assert_int_equal(pthread_create(&t[i], NULL, burst_main, &b[i]), 0);
    }
    for (unsigned i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    (void)assert_accounted(&k, false, 8 * 5000);
    sink_free(&k);
}

/* A line past LOG_LINE_MAX is cut and marked, still one line. */
static void test_long_line_cut(void **state)
{
    (void)state;
    struct sink k;
    start_drained(&k, 0);
    char *big = malloc(LOG_LINE_MAX * 2);
    assert_non_null(big);
    memset(big, 'x', LOG_LINE_MAX * 2 - 1);
    big[LOG_LINE_MAX * 2 - 1] = '\0';
    log_line("INFO", "%s", big);
    log_line("INFO", "depois");
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    assert_int_equal(k.len, LOG_LINE_MAX + 1 + strlen("[INFO] depois\n"));
    assert_memory_equal(k.data + LOG_LINE_MAX - 3, "...\n[INFO] depois\n", 18);
    free(big);
    sink_free(&k);
}

static void test_quiet_drops_messages_only(void **state)
{
    (void)state;
    struct sink k;
    start_drained(&k, 0);
    log_set_quiet(true);
    log_message("ana", "oculta", 6);
    log_line("INFO", "visivel");
    log_set_quiet(false);
    log_message("ana", "a\x1b[31m", 6);
    assert_int_equal(log_stop(), 0);
    sink_finish(&k);
    assert_string_equal(k.data, "[INFO] visivel\n[MESSAGE] ana : \"a\\x1b[31m\"\n");
    sink_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_arguments),
        cmocka_unit_test(test_direct_before_start),
        cmocka_unit_test(test_order_and_flush),
        cmocka_unit_test(test_drops_counted_and_reported_in_place),
        cmocka_unit_test(test_warning_written_at_stop),
        cmocka_unit_test(test_stop_with_a_stuck_output),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_long_line_cut),
        cmocka_unit_test(test_quiet_drops_messages_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
