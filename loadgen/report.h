/* report: the load generator's results: the summary row (CSV and JSON), the text summary,
 * and the files under --out. Called by main after every worker has been joined. */
#ifndef CHATBENCH_LG_REPORT_H
#define CHATBENCH_LG_REPORT_H

#include <stdio.h>

#include "config.h"
#include "csv.h"
#include "stats.h"

/* LOADGEN-BOUND: ack latency ~= raw latency + send lag, so a lag p99 that is a sizeable part
 * of the ack p99 means the figures measure the load generator. The floor keeps scheduler
 * noise (tens of us) on an idle loopback from tripping it. */
#define LG_LAG_BOUND_MIN_NS 100000ull /* lag p99 above max(100 us, */
#define LG_LAG_BOUND_SHARE 0.25       /* 25 % of the ack p99) */
#define LG_RATE_BOUND 0.95            /* achieved below 95 % of offered: likewise */

struct lg_result {
    const struct lg_config *cfg;
    struct lg_stats st; /* merged over the workers */
    double cpu_user_s, cpu_sys_s;
    long nofile; /* RLIMIT_NOFILE in force */
    bool interrupted;
    double measured_s; /* the measured window: duration_s, or less when interrupted */
    double t0_unix;    /* the warm-up's start (t0) in Unix time */
    double setup_s;    /* first launch to the last client set up or failed (merged: the
                        * longest shard's) */
};

/* Fills row with every parameter and figure (summary.csv's columns, units in names). */
void lg_report_row(const struct lg_result *r, struct lg_row *row);

/* The text summary, in the manner of wrk and iperf3. */
void lg_report_text(const struct lg_result *r, FILE *f);

/* Writes summary.csv (appended), latency.csv (appended) and LABEL.KIND.hist into
 * cfg->out_dir, creating the directory if needed. timeseries rows are appended too.
 * Returns 0, or -errno after printing what failed on stderr. */
int lg_report_files(const struct lg_result *r, const struct lg_row *row,
                    const struct lg_row *series, size_t nseries);

/* The stem of the run's file names in --out: LABEL, or LABEL.shardI for a shard. */
#define LG_STEM 96
const char *lg_report_stem(const struct lg_config *cfg, char *buf, size_t cap);

/* The run's interval log, STEM.hlog in cfg->out_dir (HdrHistogram's format, hlog.h): the
 * directory is created and the head written, start_unix being t0 (the warm-up's start) in
 * Unix time. Returns 0 with *out open, or -errno after printing what failed on stderr. */
int lg_report_hlog_open(const struct lg_config *cfg, double start_unix, FILE **out);

/* One interval of the log: a line per kind with samples, from start_s to end_s after t0. */
int lg_report_hlog_interval(FILE *f, const struct lg_ival *v, double start_s, double end_s);

/* The send lag p99 above which the run is LOADGEN-BOUND: max(LG_LAG_BOUND_MIN_NS,
 * LG_LAG_BOUND_SHARE x ack p99). Since ack ~= raw + lag, a larger lag is a large part of
 * what the ack latency shows. */
uint64_t lg_report_lag_limit(const struct lg_stats *s);

/* 1 when the load generator was the bottleneck: the send lag p99 above lg_report_lag_limit,
 * or under LG_RATE_BOUND of the messages due were sent. */
int lg_report_bound(const struct lg_result *r);

#endif
