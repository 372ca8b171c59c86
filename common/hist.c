/* hist: HdrHistogram's log-linear bucketing, fixed memory, O(1) record (see hist.h). */
#include "hist.h"

#include "parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* --- bucketing, after HdrHistogram_c --- */

/* Bucket b holds sub_bucket_count slots of width 2^(b + unit_magnitude); every bucket but
 * the first shares its lower half with the previous one, so the counts array keeps only
 * upper halves after bucket 0. */
static int count_leading_zeros_u64(uint64_t v)
{
    return v ? __builtin_clzll(v) : 64;
}

static int32_t bucket_index_of(const struct hist *h, uint64_t v)
{
    /* Or-ing the mask sends every value below the first bucket's top into bucket 0. */
    int pow2ceiling = 64 - count_leading_zeros_u64(v | (uint64_t)h->sub_bucket_mask);
    return pow2ceiling - h->unit_magnitude - (h->sub_bucket_half_count_magnitude + 1);
}

static int32_t sub_bucket_index_of(const struct hist *h, uint64_t v, int32_t bucket)
{
    return (int32_t)(v >> (bucket + h->unit_magnitude));
}

static int32_t counts_index(const struct hist *h, int32_t bucket, int32_t sub)
{
    int32_t base = (bucket + 1) << h->sub_bucket_half_count_magnitude;
    return base + (sub - h->sub_bucket_half_count);
}

static int32_t counts_index_for(const struct hist *h, uint64_t v)
{
    int32_t bucket = bucket_index_of(h, v);
    return counts_index(h, bucket, sub_bucket_index_of(h, v, bucket));
}

static uint64_t value_from(const struct hist *h, int32_t bucket, int32_t sub)
{
    return (uint64_t)sub << (bucket + h->unit_magnitude);
}

static uint64_t value_at_index(const struct hist *h, int32_t index)
{
    int32_t bucket = (index >> h->sub_bucket_half_count_magnitude) - 1;
    int32_t sub = (index & (h->sub_bucket_half_count - 1)) + h->sub_bucket_half_count;
    if (bucket < 0) {
        sub -= h->sub_bucket_half_count;
        bucket = 0;
    }
    return value_from(h, bucket, sub);
}

static uint64_t equivalent_range(const struct hist *h, uint64_t v)
{
    int32_t bucket = bucket_index_of(h, v);
    int32_t sub = sub_bucket_index_of(h, v, bucket);
    int32_t adjusted = sub >= h->sub_bucket_count ? bucket + 1 : bucket;
    return (uint64_t)1 << (h->unit_magnitude + adjusted);
}

static uint64_t lowest_equivalent(const struct hist *h, uint64_t v)
{
    int32_t bucket = bucket_index_of(h, v);
    return value_from(h, bucket, sub_bucket_index_of(h, v, bucket));
}

static uint64_t highest_equivalent(const struct hist *h, uint64_t v)
{
    return lowest_equivalent(h, v) + equivalent_range(h, v) - 1;
}

static uint64_t median_equivalent(const struct hist *h, uint64_t v)
{
    return lowest_equivalent(h, v) + (equivalent_range(h, v) >> 1);
}

static int32_t buckets_to_cover(uint64_t value, int32_t sub_bucket_count, int unit_magnitude)
{
    uint64_t smallest_untrackable = (uint64_t)sub_bucket_count << unit_magnitude;
    int32_t buckets = 1;
    while (smallest_untrackable <= value) {
        if (smallest_untrackable > (uint64_t)INT64_MAX / 2)
            return buckets + 1;
        smallest_untrackable <<= 1;
        buckets++;
    }
    return buckets;
}

int32_t hist_index_of(const struct hist *h, uint64_t v)
{
    return counts_index_for(h, v > h->highest ? h->highest : v);
}

uint64_t hist_lowest_equivalent(const struct hist *h, uint64_t v)
{
    return lowest_equivalent(h, v);
}

uint64_t hist_highest_equivalent(const struct hist *h, uint64_t v)
{
    return highest_equivalent(h, v);
}

uint64_t hist_value_at_index(const struct hist *h, int32_t i)
{
    return value_at_index(h, i);
}

/* --- lifecycle --- */

int hist_init(struct hist *h, uint64_t lowest, uint64_t highest, int sigfigs)
{
    memset(h, 0, sizeof(*h));
    if (lowest < 1 || sigfigs < 1 || sigfigs > 5 || highest > (uint64_t)INT64_MAX ||
        highest / 2 < lowest)
        return -EINVAL;

    int64_t single_unit = 2;
    for (int i = 0; i < sigfigs; i++)
        single_unit *= 10;
    int sub_bucket_count_magnitude = 0;
    while (((int64_t)1 << sub_bucket_count_magnitude) < single_unit)
        sub_bucket_count_magnitude++;
    int half_magnitude = (sub_bucket_count_magnitude > 1 ? sub_bucket_count_magnitude : 1) - 1;
    int unit_magnitude = 63 - count_leading_zeros_u64(lowest);
    if (unit_magnitude + half_magnitude > 61)
        return -EINVAL;

    h->lowest = lowest;
    h->highest = highest;
    h->sigfigs = sigfigs;
    h->sub_bucket_half_count_magnitude = half_magnitude;
    h->unit_magnitude = unit_magnitude;
    h->sub_bucket_count = (int32_t)1 << (half_magnitude + 1);
    h->sub_bucket_half_count = h->sub_bucket_count / 2;
    h->sub_bucket_mask = ((int64_t)h->sub_bucket_count - 1) << unit_magnitude;
    h->bucket_count = buckets_to_cover(highest, h->sub_bucket_count, unit_magnitude);
    h->counts_len = (h->bucket_count + 1) * h->sub_bucket_half_count;
    h->counts = calloc((size_t)h->counts_len, sizeof(*h->counts));
    if (!h->counts) {
        memset(h, 0, sizeof(*h));
        return -ENOMEM;
    }
    return 0;
}

void hist_destroy(struct hist *h)
{
    if (!h)
        return;
    free(h->counts);
    h->counts = NULL;
    h->counts_len = 0;
}

void hist_reset(struct hist *h)
{
    if (h->counts)
        memset(h->counts, 0, (size_t)h->counts_len * sizeof(*h->counts));
    h->total = 0;
    h->clamped = 0;
    h->min = 0;
    h->max = 0;
    h->sum = 0;
}

/* --- recording --- */

void hist_record_n(struct hist *h, uint64_t v, uint64_t count)
{
    if (count == 0)
        return;
    if (v > h->highest) {
        v = h->highest;
        h->clamped += count;
    }
    h->counts[counts_index_for(h, v)] += count;
    if (h->total == 0 || v < h->min)
        h->min = v;
    if (h->total == 0 || v > h->max)
        h->max = v;
    h->total += count;
    h->sum += (long double)v * (long double)count;
}

void hist_record(struct hist *h, uint64_t v)
{
    hist_record_n(h, v, 1);
}

static bool same_params(const struct hist *a, const struct hist *b)
{
    return a->lowest == b->lowest && a->highest == b->highest && a->sigfigs == b->sigfigs &&
           a->counts_len == b->counts_len;
}

int hist_add(struct hist *dst, const struct hist *src)
{
    if (!dst->counts || !src->counts || !same_params(dst, src))
        return -EINVAL;
    if (src->total == 0)
        return 0;
    for (int32_t i = 0; i < src->counts_len; i++)
        dst->counts[i] += src->counts[i];
    if (dst->total == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->total == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    return 0;
}

int hist_add_counts(struct hist *h, const uint64_t *counts, int32_t n)
{
    if (!h->counts || n < 0 || n > h->counts_len)
        return -EINVAL;
    uint64_t total = 0, lo = 0, hi = 0;
    long double sum = 0;
    bool first = true;
    for (int32_t i = 0; i < n; i++) {
        if (!counts[i])
            continue;
        if (total > UINT64_MAX - counts[i])
            return -EINVAL;
        total += counts[i];
        uint64_t base = value_at_index(h, i);
        if (first)
            lo = lowest_equivalent(h, base);
        first = false;
        hi = highest_equivalent(h, base);
        sum += (long double)median_equivalent(h, base) * (long double)counts[i];
    }
    if (total == 0)
        return 0;
    if (h->total > UINT64_MAX - total)
        return -EINVAL;
    if (hi > h->highest)
        hi = h->highest;
    for (int32_t i = 0; i < n; i++)
        h->counts[i] += counts[i];
    if (h->total == 0 || lo < h->min)
        h->min = lo;
    if (h->total == 0 || hi > h->max)
        h->max = hi;
    h->total += total;
    h->sum += sum;
    return 0;
}

/* --- queries --- */

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (!(p > 0))
        p = 0;
    if (p > 100)
        p = 100;
    /* ceil(p% of total), less a relative 1e-12 so that 99% of 100 is 99 and not 100 when
     * 0.99 * 100 rounds up to 99.00000000000001. */
    double x = p / 100.0 * (double)h->total;
    x -= x * 1e-12;
    uint64_t want = (uint64_t)x;
    if ((double)want < x)
        want++; /* ceil without libm: common/ links into programs without -lm */
    if (want < 1)
        want = 1;
    if (want > h->total)
        want = h->total;
    uint64_t cum = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        cum += h->counts[i];
        if (cum >= want)
            return highest_equivalent(h, value_at_index(h, i));
    }
    return 0; /* not reached: the counts add up to total */
}

double hist_mean(const struct hist *h)
{
    return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}

uint64_t hist_min(const struct hist *h)
{
    return h->total ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
    return h->total ? h->max : 0;
}

/* --- output --- */

static int stream_status(FILE *f)
{
    if (fflush(f) != 0 || ferror(f))
        return errno ? -errno : -EIO;
    return 0;
}

static void spectrum_row(FILE *f, double pct, uint64_t v, double scale, uint64_t cum,
                         uint64_t total)
{
    fprintf(f, "%.6f,%.3f,%" PRIu64 ",%.9f\n", pct, (double)v / scale, cum,
            (double)cum / (double)total);
}

int hist_write_spectrum(const struct hist *h, FILE *f, double scale, int ticks_per_half)
{
    if (!(scale > 0) || ticks_per_half < 1)
        return -EINVAL;
    errno = 0;
    fprintf(f, "percentile,value,count,cumulative_share\n");
    if (h->total == 0)
        return stream_status(f);

    /* HdrHistogram's percentile iterator: ticks_per_half rows for each halving of the
     * distance to 100%, so the tail gets as many rows as the body. */
    double next = 0.0;
    uint64_t cum = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        if (h->counts[i] == 0)
            continue;
        cum += h->counts[i];
        uint64_t v = highest_equivalent(h, value_at_index(h, i));
        double cur = 100.0 * (double)cum / (double)h->total;
        if (cum >= h->total) {
            if (next <= cur)
                spectrum_row(f, next, v, scale, cum, h->total);
            spectrum_row(f, 100.0, v, scale, cum, h->total);
            break;
        }
        while (next <= cur) {
            spectrum_row(f, next, v, scale, cum, h->total);
            /* half_distance = 2^(floor(log2(100 / (100 - next))) + 1), without libm */
            double ratio = 100.0 / (100.0 - next);
            double half_distance = 2.0;
            while (ratio >= 2.0) {
                ratio /= 2.0;
                half_distance *= 2.0;
            }
            next += 100.0 / ((double)ticks_per_half * half_distance);
        }
    }
    return stream_status(f);
}

/* Format, one item per line:
 *   hist v1 <lowest> <highest> <sigfigs>
 *   <index> <count>                      non-zero counts, index increasing
 *   stats <clamped> <min> <max> <sum>    optional: the exact extras
 *   end */
int hist_save(const struct hist *h, FILE *f)
{
    errno = 0;
    fprintf(f, "hist v1 %" PRIu64 " %" PRIu64 " %d\n", h->lowest, h->highest, h->sigfigs);
    for (int32_t i = 0; i < h->counts_len; i++) {
        if (h->counts[i])
            fprintf(f, "%" PRId32 " %" PRIu64 "\n", i, h->counts[i]);
    }
    fprintf(f, "stats %" PRIu64 " %" PRIu64 " %" PRIu64 " %.0Lf\n", h->clamped, hist_min(h),
            hist_max(h), h->sum);
    fprintf(f, "end\n");
    return stream_status(f);
}

/* --- input --- */

/* Strict decimal: digits only, no sign, no overflow. Advances *p past the digits. */
static bool take_u64(const char **p, uint64_t *out)
{
    size_t n = strspn(*p, "0123456789");
    if (parse_u64_span(*p, n, UINT64_MAX, out) < 0)
        return false;
    *p += n;
    return true;
}

static bool parse_space(const char **p)
{
    if (**p != ' ')
        return false;
    (*p)++;
    return true;
}

/* Parses "<u64> <u64> ... " into out[n]; the line must end right after the last number. */
static bool parse_fields(const char *s, uint64_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        if (i > 0 && !parse_space(&s))
            return false;
        if (!take_u64(&s, &out[i]))
            return false;
    }
    return *s == '\0';
}

static bool starts_with(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

/* Reads one line without its newline; a last line without newline is accepted.
 * Returns false at EOF or on error (*err set to -errno, 0 at clean EOF). */
static bool read_line(FILE *f, char **line, size_t *cap, int *err)
{
    errno = 0;
    ssize_t n = getline(line, cap, f);
    if (n < 0) {
        *err = ferror(f) ? (errno ? -errno : -EIO) : 0;
        return false;
    }
    if (n > 0 && (*line)[n - 1] == '\n')
        (*line)[--n] = '\0';
    if ((size_t)n != strlen(*line)) {
        *err = -EINVAL; /* embedded NUL */
        return false;
    }
    return true;
}

int hist_load(struct hist *h, FILE *f)
{
    int rc = -EINVAL;
    char *line = NULL;
    size_t cap = 0;
    uint64_t *add = NULL;
    const char *rest;
    uint64_t v[4];
    int err = 0;

    if (!h->counts)
        return -EINVAL;
    if (!read_line(f, &line, &cap, &err)) {
        rc = err ? err : -EINVAL;
        goto out;
    }
    if (!starts_with(line, "hist v1 ", &rest) || !parse_fields(rest, v, 3))
        goto out;
    if (v[0] != h->lowest || v[1] != h->highest || v[2] != (uint64_t)h->sigfigs)
        goto out;

    /* Parse everything before touching h, so that bad input leaves it as it was. */
    add = calloc((size_t)h->counts_len, sizeof(*add));
    if (!add) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t total = 0;
    int64_t first_index = -1, last_index = -1;
    bool have_stats = false, ended = false;
    uint64_t stats[3] = {0, 0, 0};
    long double sum = 0;
    while (read_line(f, &line, &cap, &err)) {
        if (strcmp(line, "end") == 0) {
            ended = true;
            break;
        }
        if (have_stats)
            goto out; /* nothing but "end" after the stats line */
        if (starts_with(line, "stats ", &rest)) {
            const char *s = rest;
            for (int i = 0; i < 3; i++) {
                if (!take_u64(&s, &stats[i]) || !parse_space(&s))
                    goto out;
            }
            char *endp;
            if (*s < '0' || *s > '9')
                goto out;
            errno = 0;
            sum = strtold(s, &endp);
            if (*endp != '\0' || errno)
                goto out;
            have_stats = true;
            continue;
        }
        if (!parse_fields(line, v, 2) || (int64_t)v[0] <= last_index ||
            v[0] >= (uint64_t)h->counts_len || v[1] == 0 || total > UINT64_MAX - v[1])
            goto out;
        add[v[0]] = v[1];
        total += v[1];
        if (first_index < 0)
            first_index = (int64_t)v[0];
        last_index = (int64_t)v[0];
    }
    if (!ended) {
        rc = err ? err : -EINVAL;
        goto out;
    }
    if (h->total > UINT64_MAX - total)
        goto out;
    if (total == 0) {
        /* An empty histogram's extras are all zero. */
        if (!have_stats || (stats[0] == 0 && stats[1] == 0 && stats[2] == 0 && sum == 0))
            rc = 0;
        goto out;
    }

    if (!have_stats) {
        rc = hist_add_counts(h, add, h->counts_len);
        goto out;
    }
    /* The extras must agree with the counts they describe. */
    uint64_t lo = stats[1], hi = stats[2];
    if (lo > hi || hi > h->highest || stats[0] > total || counts_index_for(h, lo) != first_index ||
        counts_index_for(h, hi) != last_index)
        goto out;
    /* Loose bounds: a sum past 2^64 is rounded to the long double's 64 bits. */
    long double n = (long double)total;
    if (sum < (long double)lo * n * (1 - 1e-15L) || sum > (long double)hi * n * (1 + 1e-15L))
        goto out;
    for (int32_t i = 0; i < h->counts_len; i++)
        h->counts[i] += add[i];
    if (h->total == 0 || lo < h->min)
        h->min = lo;
    if (h->total == 0 || hi > h->max)
        h->max = hi;
    h->total += total;
    h->clamped += stats[0];
    h->sum += sum;
    rc = 0;
out:
    free(add);
    free(line);
    return rc;
}
