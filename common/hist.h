/* hist: a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are unsigned 64-bit integers (the load generator records nanoseconds) from
 * lowest to highest, kept to sigfigs significant decimal digits (1..5). Memory is fixed at
 * init; recording is O(1) and allocation-free. Not thread-safe: each thread records into
 * its own histogram and the owner merges them (hist_add) after joining or at intervals. */
#ifndef CHATBENCH_HIST_H
#define CHATBENCH_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct hist {
    uint64_t lowest;  /* smallest value distinguishable from 0 (>= 1) */
    uint64_t highest; /* largest trackable value; larger ones are clamped and counted */
    int sigfigs;
    int sub_bucket_half_count_magnitude;
    int unit_magnitude;
    int32_t sub_bucket_count;
    int32_t sub_bucket_half_count;
    int64_t sub_bucket_mask;
    int32_t bucket_count;
    int32_t counts_len;
    uint64_t total;   /* values recorded */
    uint64_t clamped; /* values above highest, recorded as highest */
    uint64_t min, max;
    long double sum; /* for the mean */
    uint64_t *counts;
};

/* Prepares h for values in [lowest, highest] with sigfigs digits. Returns 0, -EINVAL
 * for bad bounds, or -ENOMEM. Pair with hist_destroy. */
int hist_init(struct hist *h, uint64_t lowest, uint64_t highest, int sigfigs);
void hist_destroy(struct hist *h);
void hist_reset(struct hist *h);

/* Records one value (count times for hist_record_n). Values above highest are clamped. */
void hist_record(struct hist *h, uint64_t v);
void hist_record_n(struct hist *h, uint64_t v, uint64_t count);

/* Adds every count of src into dst. Both must have been initialised with the same
 * lowest, highest and sigfigs; returns 0 or -EINVAL. */
int hist_add(struct hist *dst, const struct hist *src);

/* The value at percentile p (0..100): the smallest recorded value v (to the histogram's
 * precision, reported as the highest value equivalent to it) such that at least p% of
 * recorded values are <= v. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
uint64_t hist_min(const struct hist *h); /* 0 when empty */
uint64_t hist_max(const struct hist *h);

/* The bucket layout, HdrHistogram's (lowest discernible value, significant figures and the
 * sub-bucket count they give): the counts index of value v (clamped to highest), and the
 * lowest and highest values equivalent to v (those sharing its count). */
int32_t hist_index_of(const struct hist *h, uint64_t v);
uint64_t hist_lowest_equivalent(const struct hist *h, uint64_t v);
uint64_t hist_highest_equivalent(const struct hist *h, uint64_t v);
/* The lowest value counted at index i (0 <= i < counts_len). */
uint64_t hist_value_at_index(const struct hist *h, int32_t i);

/* Adds n raw counts (counts[i] to index i) into h, as a decoded HdrHistogram gives them: min
 * and max become the lowest and highest equivalent values of the first and last non-zero
 * index, the sum counts each value at the middle of its range. Returns 0, or -EINVAL when n
 * exceeds h's counts or the total would overflow (h unchanged). */
int hist_add_counts(struct hist *h, const uint64_t *counts, int32_t n);

/* Writes the percentile spectrum as CSV rows "percentile,value,count,cumulative_share"
 * with a header, ticks per half-distance as HdrHistogram's output does. scale divides
 * values (1000 turns ns into us). Returns 0 or -errno. */
int hist_write_spectrum(const struct hist *h, FILE *f, double scale, int ticks_per_half);

/* Serialises the non-zero counts as text ("hist v1 lowest highest sigfigs\n" then
 * "index count" lines, then "end"), and reads that back into an initialised histogram
 * with the same parameters (adding to what it holds). Returns 0 or -errno/-EINVAL.
 * hist_save also writes "stats clamped min max sum" just before "end" so that a round trip
 * is exact; hist_load accepts files without it (min, max and mean then hold to the
 * histogram's precision, clamped stays 0). hist_load stops after "end", so saves
 * concatenated in one file merge by repeated loads; bad input leaves h unchanged. */
int hist_save(const struct hist *h, FILE *f);
int hist_load(struct hist *h, FILE *f);

#endif
