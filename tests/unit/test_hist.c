/* test_hist: the latency histogram against exact sorted references, merge, save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define N_VALUES 100000
#define LOWEST 1
#define HIGHEST 60000000000ull /* 60 s in ns, as the load generator uses */
#define SIGFIGS 3

/* --- helpers --- */

/* splitmix64: a seeded, reproducible stream. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void init_default(struct hist *h)
{
    assert_int_equal(hist_init(h, LOWEST, HIGHEST, SIGFIGS), 0);
}

static void assert_same_hist(const struct hist *a, const struct hist *b)
{
    assert_int_equal(a->counts_len, b->counts_len);
    assert_memory_equal(a->counts, b->counts, (size_t)a->counts_len * sizeof(*a->counts));
    assert_int_equal(a->total, b->total);
    assert_int_equal(a->clamped, b->clamped);
    assert_int_equal(hist_min(a), hist_min(b));
    assert_int_equal(hist_max(a), hist_max(b));
    assert_true(a->sum == b->sum);
}

/* Percentiles in units of 0.0001 so the reference rank is exact integer arithmetic. */
static const uint64_t pct_e4[] = {0,      10000,  100000, 250000, 500000, 750000,
                                  900000, 990000, 999000, 999900, 999990, 1000000};

/* The histogram's answer must be the highest value equivalent to the reference: never
 * below it, and above it by at most 10^-sigfigs of it. */
static void check_against_reference(const struct hist *h, uint64_t *vals, size_t n)
{
    qsort(vals, n, sizeof(*vals), cmp_u64);
    assert_int_equal(h->total, n);
    assert_int_equal(hist_min(h), vals[0]);
    assert_int_equal(hist_max(h), vals[n - 1]);
    long double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (long double)vals[i];
    double mean = (double)(sum / (long double)n);
    double got_mean = hist_mean(h);
    assert_true(got_mean >= mean * (1 - 1e-12) && got_mean <= mean * (1 + 1e-12));

    for (size_t k = 0; k < sizeof(pct_e4) / sizeof(pct_e4[0]); k++) {
        uint64_t rank = (pct_e4[k] * n + 999999) / 1000000; /* ceil(p/100 * n) */
        if (rank < 1)
            rank = 1;
        uint64_t want = vals[rank - 1];
        uint64_t got = hist_percentile(h, (double)pct_e4[k] / 10000.0);
        if (got < want || (double)(got - want) > (double)want * 1e-3)
            fail_msg("p%.4f: got %llu, reference %llu", (double)pct_e4[k] / 10000.0,
                     (unsigned long long)got, (unsigned long long)want);
    }
}

static void run_distribution(uint64_t (*gen)(uint64_t *), uint64_t seed)
{
    struct hist h;
    init_default(&h);
    uint64_t *vals = malloc(N_VALUES * sizeof(*vals));
    assert_non_null(vals);
    uint64_t state = seed;
    for (size_t i = 0; i < N_VALUES; i++) {
        vals[i] = gen(&state);
        hist_record(&h, vals[i]);
    }
    assert_int_equal(h.clamped, 0);
    check_against_reference(&h, vals, N_VALUES);
    free(vals);
    hist_destroy(&h);
}

static uint64_t gen_uniform(uint64_t *s)
{
    return 1 + rng_next(s) % 1000000000u; /* 1 ns .. 1 s */
}

/* Exponential-ish: a geometric exponent (trailing zero bits) times a uniform mantissa, so
 * every decade from microseconds to seconds is populated with a long tail. */
static uint64_t gen_exponential(uint64_t *s)
{
    uint64_t r = rng_next(s);
    int e = r ? __builtin_ctzll(r) : 0;
    if (e > 20)
        e = 20;
    uint64_t base = (uint64_t)1000 << e;
    return base + rng_next(s) % base;
}

/* Bimodal: a fast mode near 50 us and a slow one near 5 ms, plus a few values below
 * 2048 ns, where the histogram is exact. */
static uint64_t gen_bimodal(uint64_t *s)
{
    uint64_t r = rng_next(s);
    if (r % 100 == 0)
        return 1 + rng_next(s) % 2047;
    if (r % 2)
        return 45000 + rng_next(s) % 10000;
    return 4000000 + rng_next(s) % 2000000;
}

/* --- tests --- */

static void test_uniform(void **state)
{
    (void)state;
    run_distribution(gen_uniform, 1);
}

static void test_exponential(void **state)
{
    (void)state;
    run_distribution(gen_exponential, 2);
}

static void test_bimodal(void **state)
{
    (void)state;
    run_distribution(gen_bimodal, 3);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    struct hist h;
    init_default(&h);
    /* Below sub_bucket_count every value has its own slot. */
    for (uint64_t v = 1; v <= 2000; v++)
        hist_record(&h, v);
    assert_int_equal(hist_percentile(&h, 50), 1000);
    assert_int_equal(hist_percentile(&h, 99), 1980);
    assert_int_equal(hist_percentile(&h, 100), 2000);
    assert_int_equal(hist_percentile(&h, 0), 1);
    assert_true(hist_mean(&h) == 1000.5);
    hist_destroy(&h);
}

static void test_record_n(void **state)
{
    (void)state;
    struct hist a, b;
    init_default(&a);
    init_default(&b);
    hist_record_n(&a, 123456, 5);
    hist_record_n(&a, 7, 0); /* no-op */
    for (int i = 0; i < 5; i++)
        hist_record(&b, 123456);
    assert_same_hist(&a, &b);
    assert_int_equal(hist_min(&a), 123456);
    hist_destroy(&a);
    hist_destroy(&b);
}

static void test_empty(void **state)
{
    (void)state;
    struct hist h;
    init_default(&h);
    assert_int_equal(hist_percentile(&h, 50), 0);
    assert_int_equal(hist_percentile(&h, 100), 0);
    assert_int_equal(hist_min(&h), 0);
    assert_int_equal(hist_max(&h), 0);
    assert_true(hist_mean(&h) == 0.0);
    hist_record(&h, 42);
    hist_reset(&h);
    assert_int_equal(h.total, 0);
    assert_int_equal(hist_percentile(&h, 50), 0);
    assert_int_equal(hist_max(&h), 0);
    hist_destroy(&h);
    hist_destroy(&h); /* idempotent */
}

static void test_clamping(void **state)
{
    (void)state;
    struct hist h;
    init_default(&h);
    hist_record(&h, 1000);
    hist_record(&h, HIGHEST);
    hist_record(&h, HIGHEST + 1);
    hist_record(&h, UINT64_MAX);
    hist_record_n(&h, HIGHEST + 7, 3);
    assert_int_equal(h.total, 7);
    assert_int_equal(h.clamped, 5);
    assert_int_equal(hist_max(&h), HIGHEST);
    uint64_t p100 = hist_percentile(&h, 100);
    assert_true(p100 >= HIGHEST && p100 - HIGHEST <= HIGHEST / 1000);
    assert_int_equal(hist_percentile(&h, 14), 1000);
    assert_true(hist_percentile(&h, 15) >= HIGHEST);
    hist_destroy(&h);
}

static void fill(struct hist *h, uint64_t seed, int n, uint64_t (*gen)(uint64_t *))
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++)
        hist_record(h, gen(&s));
}

static void test_merge(void **state)
{
    (void)state;
    struct hist a, b, both, other;
    init_default(&a);
    init_default(&b);
    init_default(&both);
    fill(&a, 10, 5000, gen_uniform);
    fill(&b, 11, 7000, gen_bimodal);
    hist_record(&b, HIGHEST * 2);
    fill(&both, 10, 5000, gen_uniform);
    fill(&both, 11, 7000, gen_bimodal);
    hist_record(&both, HIGHEST * 2);
    assert_int_equal(hist_add(&a, &b), 0);
    assert_same_hist(&a, &both);
    assert_int_equal(a.clamped, 1);

    /* Different parameters: refused, destination untouched. */
    assert_int_equal(hist_init(&other, LOWEST, HIGHEST, 2), 0);
    hist_record(&other, 5);
    assert_int_equal(hist_add(&a, &other), -EINVAL);
    assert_int_equal(hist_add(&other, &a), -EINVAL);
    assert_same_hist(&a, &both);
    hist_destroy(&other);
    assert_int_equal(hist_init(&other, LOWEST, HIGHEST / 2, SIGFIGS), 0);
    assert_int_equal(hist_add(&a, &other), -EINVAL);
    hist_destroy(&other);

    /* Adding an empty histogram changes nothing, even min. */
    init_default(&other);
    assert_int_equal(hist_add(&a, &other), 0);
    assert_same_hist(&a, &both);
    /* Into an empty one: a copy. */
    assert_int_equal(hist_add(&other, &both), 0);
    assert_same_hist(&other, &both);
    hist_destroy(&other);

    hist_destroy(&a);
    hist_destroy(&b);
    hist_destroy(&both);
}

static void test_save_load(void **state)
{
    (void)state;
    struct hist h, l;
    init_default(&h);
    init_default(&l);
    fill(&h, 20, 20000, gen_exponential);
    hist_record(&h, HIGHEST + 5);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hist_save(&h, f), 0);
    rewind(f);
    assert_int_equal(hist_load(&l, f), 0);
    assert_same_hist(&h, &l);
    /* Load adds: a second load doubles every count. */
    rewind(f);
    assert_int_equal(hist_load(&l, f), 0);
    assert_int_equal(l.total, 2 * h.total);
    assert_int_equal(l.clamped, 2);
    assert_int_equal(hist_percentile(&l, 90), hist_percentile(&h, 90));
    fclose(f);

    /* Empty round trip. */
    hist_reset(&h);
    hist_reset(&l);
    f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hist_save(&h, f), 0);
    rewind(f);
    assert_int_equal(hist_load(&l, f), 0);
    assert_same_hist(&h, &l);
    fclose(f);

    /* A hand-written file without the optional stats line: extremes to precision. */
    hist_reset(&h);
    hist_reset(&l);
    hist_record(&h, 3000); /* index = 2048 + 3000/2 - 1024 = 2524, slot 3000..3001 */
    hist_record(&h, 10);   /* index 10 */
    static const char text[] = "hist v1 1 60000000000 3\n10 1\n2524 1\nend\n";
    f = fmemopen((void *)text, sizeof(text) - 1, "r");
    assert_non_null(f);
    assert_int_equal(hist_load(&l, f), 0);
    fclose(f);
    assert_memory_equal(l.counts, h.counts, (size_t)h.counts_len * sizeof(*h.counts));
    assert_int_equal(hist_min(&l), 10);
    assert_int_equal(hist_max(&l), 3001);
    assert_int_equal(hist_percentile(&l, 100), hist_percentile(&h, 100));
    hist_destroy(&h);
    hist_destroy(&l);
}

static void test_load_concatenated(void **state)
{
    (void)state;
    /* Saves of several hosts, one after the other in one file, merge by repeated loads. */
    struct hist a, b, all, l;
    init_default(&a);
    init_default(&b);
    init_default(&all);
    init_default(&l);
    fill(&a, 30, 1000, gen_bimodal);
    fill(&b, 31, 1000, gen_uniform);
    assert_int_equal(hist_add(&all, &a), 0);
    assert_int_equal(hist_add(&all, &b), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hist_save(&a, f), 0);
    assert_int_equal(hist_save(&b, f), 0);
    rewind(f);
    assert_int_equal(hist_load(&l, f), 0);
    assert_int_equal(hist_load(&l, f), 0);
    assert_same_hist(&l, &all);
    assert_int_equal(hist_load(&l, f), -EINVAL); /* nothing left */
    fclose(f);
    hist_destroy(&a);
    hist_destroy(&b);
    hist_destroy(&all);
    hist_destroy(&l);
}

static void test_load_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "hist v1 1 60000000000 3\n",                                     /* no end */
        "hist v1 1 60000000000 3\n10 1\n",                               /* no end */
        "hist v2 1 60000000000 3\nend\n",                                /* version */
        "hist v1 1 60000000000 2\nend\n",                                /* sigfigs differ */
        "hist v1 2 60000000000 3\nend\n",                                /* lowest differs */
        "hist v1 1 6000000000 3\nend\n",                                 /* highest differs */
        "hist v1 1 60000000000 3 \nend\n",                               /* trailing space */
        "hist  v1 1 60000000000 3\nend\n",                               /* double space */
        "hist v1 1 60000000000\nend\n",                                  /* missing field */
        "hist v1 1 60000000000 3\n10 -1\nend\n",                         /* negative */
        "hist v1 1 60000000000 3\n10 +1\nend\n",                         /* sign */
        "hist v1 1 60000000000 3\n10 0\nend\n",                          /* zero count */
        "hist v1 1 60000000000 3\n10 1x\nend\n",                         /* junk */
        "hist v1 1 60000000000 3\n10\nend\n",                            /* one field */
        "hist v1 1 60000000000 3\n10 1 2\nend\n",                        /* three fields */
        "hist v1 1 60000000000 3\n99999999 1\nend\n",                    /* index out of range */
        "hist v1 1 60000000000 3\n20 1\n10 1\nend\n",                    /* decreasing index */
        "hist v1 1 60000000000 3\n10 1\n10 1\nend\n",                    /* repeated index */
        "hist v1 1 60000000000 3\n10 99999999999999999999\nend\n",       /* overflow */
        "hist v1 1 60000000000 3\n10 18446744073709551615\n11 1\nend\n", /* total overflow */
        "hist v1 1 60000000000 3\n10 1\nstats 0 11 10 10\nend\n",        /* min above max */
        "hist v1 1 60000000000 3\n10 1\nstats 0 9 9 9\nend\n",           /* min not in its slot */
        "hist v1 1 60000000000 3\n10 1\nstats 2 10 10 10\nend\n",        /* more clamped than all */
        "hist v1 1 60000000000 3\n10 1\nstats 0 10 10 x\nend\n",         /* bad sum */
        "hist v1 1 60000000000 3\n10 1\nstats 0 10 10 10\n11 1\nend\n",  /* counts after stats */
        "hist v1 1 60000000000 3\n10 1\nEND\n",
        "hist v1 1 60000000000 3\n10 2\nstats 0 10 10 25\nend\n", /* sum above 2 * max */
        "hist v1 1 60000000000 3\n10 2\nstats 0 10 10 19\nend\n", /* sum below 2 * min */
        "hist v1 1 60000000000 3\nstats 1 0 0 0\nend\n",          /* clamped in an empty one */
    };
    struct hist h;
    init_default(&h);
    hist_record(&h, 77);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        /* fmemopen of size 0 is refused by old glibc: an empty tmpfile instead. */
        FILE *f = len ? fmemopen((void *)bad[i], len, "r") : tmpfile();
        assert_non_null(f);
        int rc = hist_load(&h, f);
        if (rc != -EINVAL)
            fail_msg("case %zu accepted (rc %d): %s", i, rc, bad[i]);
        fclose(f);
        /* Bad input leaves the histogram as it was. */
        assert_int_equal(h.total, 1);
        assert_int_equal(hist_max(&h), 77);
        assert_int_equal(hist_min(&h), 77);
    }
    /* The well-formed twin of the cases above is accepted. */
    static const char good[] = "hist v1 1 60000000000 3\n10 1\nstats 0 10 10 10\nend\n";
    FILE *f = fmemopen((void *)good, sizeof(good) - 1, "r");
    assert_non_null(f);
    assert_int_equal(hist_load(&h, f), 0);
    fclose(f);
    assert_int_equal(h.total, 2);
    assert_int_equal(hist_min(&h), 10);
    hist_destroy(&h);
}

static void test_init_bounds(void **state)
{
    (void)state;
    struct hist h;
    assert_int_equal(hist_init(&h, 0, 1000, 3), -EINVAL);
    assert_int_equal(hist_init(&h, 1, 1, 3), -EINVAL);
    assert_int_equal(hist_init(&h, 10, 19, 3), -EINVAL);
    assert_int_equal(hist_init(&h, 1, 1000, 0), -EINVAL);
    assert_int_equal(hist_init(&h, 1, 1000, 6), -EINVAL);
    assert_int_equal(hist_init(&h, 1, UINT64_MAX, 3), -EINVAL);
    assert_null(h.counts);
    hist_destroy(&h); /* safe after a failed init */

    /* sub_bucket_count = 2^ceil(log2(2 * 10^sigfigs)) */
    static const int32_t want_sub[] = {0, 32, 256, 2048, 32768, 262144};
    for (int s = 1; s <= 5; s++) {
        assert_int_equal(hist_init(&h, 1, HIGHEST, s), 0);
        assert_int_equal(h.sub_bucket_count, want_sub[s]);
        assert_int_equal(h.sub_bucket_half_count, want_sub[s] / 2);
        hist_record(&h, HIGHEST);
        assert_int_equal(h.clamped, 0);
        hist_destroy(&h);
    }
    /* 1 ns .. 60 s, 3 digits: 2048 * 2^25 > 60e9 needs 26 buckets. */
    assert_int_equal(hist_init(&h, 1, HIGHEST, 3), 0);
    assert_int_equal(h.bucket_count, 26);
    assert_int_equal(h.counts_len, 27 * 1024);
    hist_destroy(&h);
    /* lowest > 1: a unit of 2^floor(log2(lowest)). */
    assert_int_equal(hist_init(&h, 1000, HIGHEST, 3), 0);
    assert_int_equal(h.unit_magnitude, 9);
    hist_record(&h, 1000);
    hist_record(&h, 5);
    assert_int_equal(hist_percentile(&h, 100), 1023);
    assert_int_equal(hist_percentile(&h, 50), 511);
    hist_destroy(&h);
}

static void test_spectrum(void **state)
{
    (void)state;
    struct hist h;
    init_default(&h);
    fill(&h, 40, N_VALUES, gen_uniform);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hist_write_spectrum(&h, f, 1000.0, 5), 0);
    assert_int_equal(hist_write_spectrum(&h, f, 0.0, 5), -EINVAL);
    assert_int_equal(hist_write_spectrum(&h, f, 1000.0, 0), -EINVAL);
    rewind(f);
    char line[256];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "percentile,value,count,cumulative_share\n");
    /* HdrHistogram's ticks with 5 per half: steps of 10 to 50, 5 to 75, 2.5 to 87.5. */
    static const double want_pct[] = {0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5, 80};
    size_t rows = 0;
    double pct = 0, val = 0, share = 0, last_pct = -1, last_val = -1;
    unsigned long long cnt = 0, last_cnt = 0;
    while (fgets(line, sizeof(line), f)) {
        assert_int_equal(sscanf(line, "%lf,%lf,%llu,%lf", &pct, &val, &cnt, &share), 4);
        if (rows < sizeof(want_pct) / sizeof(want_pct[0]))
            assert_true(pct == want_pct[rows]);
        assert_true(pct >= last_pct && val >= last_val && cnt >= last_cnt);
        if (pct < 100) {
            /* The row's value is the histogram's own percentile, scaled. */
            uint64_t p = hist_percentile(&h, pct);
            assert_true(val * 1000.0 >= (double)p - 1 && val * 1000.0 <= (double)p + 1);
            assert_true(share * 100 >= pct - 1e-6);
        }
        last_pct = pct;
        last_val = val;
        last_cnt = cnt;
        rows++;
    }
    assert_true(rows > 40);
    assert_true(pct == 100.0);
    assert_int_equal(cnt, N_VALUES);
    assert_true(share == 1.0);
    assert_true(val * 1000.0 >= (double)hist_max(&h) - 1);
    fclose(f);

    /* Empty: only the header. */
    hist_reset(&h);
    f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hist_write_spectrum(&h, f, 1.0, 5), 0);
    assert_int_equal(ftell(f), (long)strlen("percentile,value,count,cumulative_share\n"));
    fclose(f);
    hist_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_bimodal),        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_record_n),       cmocka_unit_test(test_empty),
        cmocka_unit_test(test_clamping),       cmocka_unit_test(test_merge),
        cmocka_unit_test(test_save_load),      cmocka_unit_test(test_load_concatenated),
        cmocka_unit_test(test_load_malformed), cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_spectrum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
