/* test_merge: what `loadgen merge` accepts as the shards of one run and what it refuses, and
 * the exactness of its histogram path: samples split over k shards' .hist files, loaded back
 * and added, give the histogram (percentiles, min, max, mean) of one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/merge.h"
#include "../../loadgen/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 3

/* A shard's summary row with the columns the check reads. */
static void shard_row(struct lg_row *r, int shard)
{
    char s[8];
    lg_row_init(r);
    lg_row_str(r, "label", "run1");
    lg_row_str(r, "proto", "udp");
    lg_row_u64(r, "clients", 30);
    lg_row_dbl(r, "rate_per_client", 10);
    lg_row_u64(r, "size_bytes", 100);
    lg_row_str(r, "payload", "hex");
    lg_row_u64(r, "room_size", 3);
    lg_row_u64(r, "compress", 0);
    lg_row_u64(r, "timeout_ms", 1000);
    lg_row_dbl(r, "duration_s", 2);
    lg_row_dbl(r, "warmup_s", 0.5);
    lg_row_u64(r, "poisson", 0);
    lg_row_u64(r, "seed", 1);
    lg_row_dbl(r, "ramp_s", 0);
    lg_row_str(r, "host", "127.0.0.1");
    lg_row_u64(r, "port", 5001);
    lg_row_dbl(r, "interval_s", 1);
    lg_row_str(r, "version", "0.1.0");
    lg_row_dbl(r, "ping_interval_s", 5);
    lg_row_u64(r, "busy_poll", 0);
    snprintf(s, sizeof(s), "%d", shard);
    lg_row_str(r, "shard", s);
    lg_row_u64(r, "shards", N);
    lg_row_str(r, "shard_source", "OMPI_COMM_WORLD_RANK/SIZE");
    lg_row_u64(r, "shard_clients", 10);
}

/* Sets column name of r to v (the row keeps its column order). */
static void set(struct lg_row *r, const char *name, const char *v)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            snprintf(r->cols[i].value, sizeof(r->cols[i].value), "%s", v);
}

static int check(struct lg_row *rows, size_t n, char *why)
{
    const struct lg_row *p[N + 1];
    for (size_t i = 0; i < n; i++)
        p[i] = &rows[i];
    why[0] = '\0';
    return lg_merge_check(p, n, why, 256);
}

static void test_one_run_accepted(void **state)
{
    (void)state;
    struct lg_row rows[N];
    char why[256];
    for (int i = 0; i < N; i++)
        shard_row(&rows[i], i);
    set(&rows[1], "shard_clients", "9"); /* shards differ in these: fine */
    set(&rows[2], "shard_source", "--shard");
    assert_int_equal(check(rows, N, why), 0);
    for (int i = 0; i < N; i++)
        lg_row_destroy(&rows[i]);
}

/* Each setting that differs between shards is refused, and the message names it. */
static void test_different_settings_refused(void **state)
{
    (void)state;
    static const struct {
        const char *col, *value;
    } diff[] = {{"rate_per_client", "20"}, {"size_bytes", "200"}, {"proto", "tcp"},
                {"room_size", "1"},        {"compress", "1"},     {"clients", "31"},
                {"duration_s", "3"},       {"seed", "2"},         {"label", "run2"},
                {"payload", "text"},       {"timeout_ms", "500"}, {"interval_s", "0.5"},
                {"ping_interval_s", "15"}, {"busy_poll", "1"}};
    struct lg_row rows[N];
    char why[256];
    for (size_t d = 0; d < sizeof(diff) / sizeof(diff[0]); d++) {
        for (int i = 0; i < N; i++)
            shard_row(&rows[i], i);
        set(&rows[2], diff[d].col, diff[d].value);
        assert_int_equal(check(rows, N, why), -22);
        if (strstr(why, diff[d].col) == NULL || strstr(why, "not shards of one run") == NULL)
            fail_msg("refusal of %s says '%s'", diff[d].col, why);
        for (int i = 0; i < N; i++)
            lg_row_destroy(&rows[i]);
    }
}

static void test_missing_or_foreign_rows_refused(void **state)
{
    (void)state;
    struct lg_row rows[N];
    char why[256];
    for (int i = 0; i < N; i++)
        shard_row(&rows[i], i);
    assert_int_equal(check(rows, N - 1, why), -22); /* shard 2 of 3 absent */
    assert_non_null(strstr(why, "2 of its 3 shards"));
    set(&rows[1], "shard", "2"); /* shard 1 absent, 2 in its place */
    assert_int_equal(check(rows, N, why), -22);
    assert_non_null(strstr(why, "shard 1 of label run1 is missing"));
    set(&rows[1], "shard", "1");
    set(&rows[0], "shard_source", "none"); /* a process that was not a shard */
    assert_int_equal(check(rows, N, why), -22);
    assert_non_null(strstr(why, "not a shard"));
    for (int i = 0; i < N; i++)
        lg_row_destroy(&rows[i]);
    struct lg_row old;
    lg_row_init(&old);
    lg_row_str(&old, "label", "run1"); /* a summary.csv from before shards */
    assert_int_equal(check(&old, 1, why), -22);
    assert_non_null(strstr(why, "without shard columns"));
    lg_row_destroy(&old);
}

/* The merge's histogram path: hist_save per shard, hist_load adding them. */
static void test_split_histograms_add_up_exactly(void **state)
{
    (void)state;
    enum { K = 4, SAMPLES = 40000 };
    struct hist one, shard[K], merged;
    assert_int_equal(hist_init(&one, LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS), 0);
    assert_int_equal(hist_init(&merged, LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS), 0);
    for (int k = 0; k < K; k++)
        assert_int_equal(hist_init(&shard[k], LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS), 0);
    uint64_t x = 7;
    for (int i = 0; i < SAMPLES; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t v = 30000 + (x >> 38) % 5000000 + (i % 211 == 0 ? (x >> 20) % 900000000 : 0);
        hist_record(&one, v);
        hist_record(&shard[(x >> 50) % K], v); /* each shard a different share */
    }
    for (int k = 0; k < K; k++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        assert_int_equal(hist_save(&shard[k], f), 0);
        assert_int_equal(fclose(f), 0);
        f = fmemopen(buf, len, "r");
        assert_non_null(f);
        assert_int_equal(hist_load(&merged, f), 0);
        fclose(f);
        free(buf);
        hist_destroy(&shard[k]);
    }
    assert_int_equal(merged.total, one.total);
    assert_memory_equal(merged.counts, one.counts, (size_t)one.counts_len * sizeof(*one.counts));
    static const double ps[] = {0, 1, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        assert_int_equal(hist_percentile(&merged, ps[i]), hist_percentile(&one, ps[i]));
    assert_int_equal(hist_min(&merged), hist_min(&one)); /* exact, not to the bucket */
    assert_int_equal(hist_max(&merged), hist_max(&one));
    assert_true(hist_mean(&merged) == hist_mean(&one));
    hist_destroy(&one);
    hist_destroy(&merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_run_accepted),
        cmocka_unit_test(test_different_settings_refused),
        cmocka_unit_test(test_missing_or_foreign_rows_refused),
        cmocka_unit_test(test_split_histograms_add_up_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
