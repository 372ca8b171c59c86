/* merge: `loadgen merge DIR... --out DIR`: the shards of a run, added up into what one
 * process running every client would have written (summary.csv, latency.csv, LABEL.KIND.hist,
 * LABEL.hlog). Histograms are added bucket by bucket (exact, never averaged percentiles),
 * every counter is summed, rates are recomputed over the span of the shards' measured
 * windows. Shards whose settings differ are refused. */
#ifndef CHATBENCH_LG_MERGE_H
#define CHATBENCH_LG_MERGE_H

#include <stddef.h>

#include "csv.h"

/* The command: argv[0] is "merge". Returns the exit status (0, 1 failed, 2 bad options). */
int lg_merge_main(int argc, char **argv);

/* Whether n summary rows (one per shard, in shard order) are parts of one run: the same
 * label, shard count and settings, shard i at row i. Returns 0, or -EINVAL with the first
 * difference, as a sentence, in why. */
int lg_merge_check(const struct lg_row *const *rows, size_t n, char *why, size_t cap);

#endif
