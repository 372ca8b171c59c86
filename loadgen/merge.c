/* merge: adds the shards of a run into one result (see merge.h). Each shard's summary.csv row
 * gives its settings and counters, its LABEL.shardI.KIND.hist files its exact histograms and
 * its LABEL.shardI.hlog its interval histograms; the merged result goes through the same
 * report code as a single process's. */
#include "merge.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"
#include "parse.h"
#include "why.h"
#include "report.h"
#include "transport.h"

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

/* The columns that must be equal in every shard of one run. */
static const char *const same[] = {
    "label",      "proto",    "clients",    "shards",   "rate_per_client",
    "size_bytes", "payload",  "room_size",  "compress", "timeout_ms",
    "duration_s", "warmup_s", "poisson",    "seed",     "ramp_s",
    "host",       "port",     "interval_s", "version",  "ping_interval_s",
    "busy_poll",
};

/* One shard's row and the directory it came from. */
struct part {
    const char *dir;
    const struct lg_row *row;
    uint32_t shard;
};

static const char *col(const struct lg_row *r, const char *name)
{
    const char *v = lg_row_get(r, name);
    return v != NULL ? v : "";
}

int lg_merge_check(const struct lg_row *const *rows, size_t n, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *src = lg_row_get(rows[i], "shard_source"), *shard = col(rows[i], "shard");
        uint64_t k;
        if (src == NULL || lg_row_get(rows[i], "shard_clients") == NULL)
            return lg_why(why, cap,
                          "a summary.csv row without shard columns (from a loadgen "
                          "older than shards)");
        if (strcmp(src, "none") == 0 || strcmp(src, LG_SHARD_MERGED) == 0)
            return lg_why(why, cap, "a row that is not a shard (shard_source %s)", src);
        if (parse_u64(shard, 0, UINT32_MAX, &k) < 0 || k != i)
            return lg_why(why, cap,
                          "shard %zu of label %s is missing (found shard '%s' in its place)", i,
                          col(rows[0], "label"), shard);
        for (size_t j = 0; j < sizeof(same) / sizeof(same[0]); j++) {
            const char *a = lg_row_get(rows[0], same[j]), *b = lg_row_get(rows[i], same[j]);
            if (a == NULL || b == NULL)
                return lg_why(why, cap, "shard %zu's row has no %s column", i, same[j]);
            if (strcmp(a, b) != 0)
                return lg_why(why, cap,
                              "these are not shards of one run: shard %zu has %s %s, shard 0 has "
                              "%s",
                              i, same[j], b, a);
        }
    }
    uint64_t shards;
    if (n == 0 || parse_u64(col(rows[0], "shards"), 1, LG_SHARDS_MAX, &shards) < 0)
        return lg_why(why, cap, "no shard to merge");
    if (shards != n)
        return lg_why(why, cap, "label %s has %zu of its %" PRIu64 " shards", col(rows[0], "label"),
                      n, shards);
    return 0;
}

/* --- one run from its shards --- */

static int col_u64(const struct lg_row *r, const char *name, uint64_t *v, char *why, size_t cap)
{
    if (parse_u64(col(r, name), 0, UINT64_MAX, v) < 0)
        return lg_why(why, cap, "column %s is missing or not a count", name);
    return 0;
}

static int col_dbl(const struct lg_row *r, const char *name, double *v, char *why, size_t cap)
{
    if (parse_double(col(r, name), -1e300, 1e300, v) < 0)
        return lg_why(why, cap, "column %s is missing or not a number", name);
    return 0;
}

/* The run's settings, from shard 0's row (lg_merge_check made sure the others agree). */
static int config_of(const struct part *p, size_t n, struct lg_config *cfg, char *why, size_t cap)
{
    const struct lg_row *r = p[0].row;
    uint64_t v;
    double d;
    memset(cfg, 0, sizeof(*cfg));
    cfg->transport = lg_transport_find(col(r, "proto"));
    if (cfg->transport == NULL || lg_payload_parse(col(r, "payload"), &cfg->payload) < 0)
        return lg_why(why, cap, "unknown proto or payload in the rows");
    snprintf(cfg->label, sizeof(cfg->label), "%s", col(r, "label"));
    snprintf(cfg->host, sizeof(cfg->host), "%s", col(r, "host"));
#define U(name, field, max)                                                                        \
    do {                                                                                           \
        if (col_u64(r, name, &v, why, cap) < 0 || v > (max))                                       \
            return lg_why(why, cap, "column %s is missing or out of range", name);                 \
        cfg->field = v;                                                                            \
    } while (0)
#define D(name, field)                                                                             \
    do {                                                                                           \
        if (col_dbl(r, name, &d, why, cap) < 0)                                                    \
            return -EINVAL;                                                                        \
        cfg->field = d;                                                                            \
    } while (0)
    U("clients", clients, UINT32_MAX);
    U("port", port, 65535);
    U("size_bytes", size, LG_MAX_SIZE);
    U("room_size", room_size, UINT32_MAX);
    U("compress", compress, 1);
    U("timeout_ms", timeout_ms, UINT32_MAX);
    U("poisson", poisson, 1);
    U("busy_poll", busy_poll, 1);
    U("seed", seed, UINT64_MAX);
    D("rate_per_client", rate);
    D("duration_s", duration_s);
    D("warmup_s", warmup_s);
    D("ramp_s", ramp_s);
    D("interval_s", interval_s);
    D("start_at", start_at);
    D("ping_interval_s", ping_interval_s);
#undef U
#undef D
    cfg->shard = (struct lg_shard){.index = 0, .count = (uint32_t)n, .source = LG_SHARD_MERGED};
    cfg->shard_clients = cfg->clients;
    snprintf(cfg->cpus_text, sizeof(cfg->cpus_text), "%s", col(r, "loadgen_cpus"));
    for (size_t i = 0; i < n; i++) {
        if (col_u64(p[i].row, "threads", &v, why, cap) < 0)
            return -EINVAL;
        cfg->threads += (uint32_t)v;
        if (col_u64(p[i].row, "source_addrs", &v, why, cap) < 0)
            return -EINVAL;
        cfg->nsources += (uint32_t)v;
        if (strcmp(col(p[i].row, "loadgen_cpus"), cfg->cpus_text) != 0)
            snprintf(cfg->cpus_text, sizeof(cfg->cpus_text), "mixed");
    }
    return 0;
}

/* Adds one shard's counters, exact histograms and process figures into res. */
static int add_part(const struct part *p, struct lg_result *res, double *win_lo, double *win_hi,
                    double *longest, char *why, size_t cap)
{
    const struct lg_row *r = p->row;
    struct lg_stats *st = &res->st;
    uint64_t v;
    double d, t0, warm, measured;
    for (size_t i = 0; i < LG_COUNTERS; i++) {
        if (col_u64(r, lg_counter_defs[i].column, &v, why, cap) < 0)
            return -EINVAL;
        *lg_counter(st, i) += v;
    }
    if (col_dbl(r, "jitter_sum_ns", &d, why, cap) < 0)
        return -EINVAL;
    st->jitter_sum_ns += d;
    for (int k = 0; k < LG_KINDS; k++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s.shard%" PRIu32 ".%s.hist", p->dir, res->cfg->label,
                 p->shard, lg_kind_names[k]);
        FILE *f = fopen(path, "r");
        int rc = f != NULL ? hist_load(&st->h[k], f) : -errno;
        if (f != NULL)
            (void)fclose(f); /* read-only */
        if (rc < 0)
            return lg_why(why, cap, "%s: %s", path, strerror(-rc));
    }
    if (col_dbl(r, "cpu_user_s", &d, why, cap) < 0)
        return -EINVAL;
    res->cpu_user_s += d;
    if (col_dbl(r, "cpu_sys_s", &d, why, cap) < 0)
        return -EINVAL;
    res->cpu_sys_s += d;
    uint64_t nofile, interrupted;
    if (col_u64(r, "nofile_limit", &nofile, why, cap) < 0 ||
        col_u64(r, "interrupted", &interrupted, why, cap) < 0)
        return -EINVAL;
    res->interrupted |= interrupted != 0;
    if (res->nofile == 0 || (long)nofile < res->nofile)
        res->nofile = (long)nofile; /* the tightest shard's */
    if (col_dbl(r, "t0_unix", &t0, why, cap) < 0 || col_dbl(r, "warmup_s", &warm, why, cap) < 0 ||
        col_dbl(r, "measured_s", &measured, why, cap) < 0)
        return -EINVAL;
    if (col_dbl(r, "setup_s", &d, why, cap) < 0)
        return -EINVAL;
    if (d > res->setup_s)
        res->setup_s = d; /* the shards set up side by side: the run took the longest */
    if (res->t0_unix == 0 || t0 < res->t0_unix)
        res->t0_unix = t0;
    if (*win_lo == 0 || t0 + warm < *win_lo)
        *win_lo = t0 + warm;
    if (t0 + warm + measured > *win_hi)
        *win_hi = t0 + warm + measured;
    if (measured > *longest)
        *longest = measured;
    return 0;
}

/* --- the interval logs --- */

struct ival {
    long key; /* the interval's number: its start over --interval */
    int kind;
    double start, end; /* Unix time */
    char *b64;
};

static int by_key_kind(const void *a, const void *b)
{
    const struct ival *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->kind - y->kind;
}

/* Reads one shard's .hlog into *iv (appending). */
static int read_hlog(const char *path, double interval, struct ival **iv, size_t *n, size_t *cap_iv,
                     char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return lg_why(why, cap, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0, lineno = 0;
    ssize_t got;
    double start_unix = -1;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (got > 0 && line[got - 1] == '\n')
            line[got - 1] = '\0';
        struct hlog_interval h;
        int k = hlog_parse_line(line, &h, &start_unix);
        if (k == 0)
            continue;
        int kind = -1;
        for (int j = 0; k == 1 && j < LG_KINDS; j++)
            if (strcmp(h.tag, lg_kind_names[j]) == 0)
                kind = j;
        if (k < 0 || kind < 0 || start_unix < 0) {
            rc = lg_why(why, cap, "%s:%zu: not an interval line of a loadgen .hlog", path, lineno);
            break;
        }
        if (*n == *cap_iv) {
            *cap_iv = *cap_iv ? *cap_iv * 2 : 256;
            struct ival *m = realloc(*iv, *cap_iv * sizeof(**iv));
            if (m == NULL) {
                rc = lg_why(why, cap, "out of memory");
                break;
            }
            *iv = m;
        }
        struct ival *e = &(*iv)[(*n)++];
        e->key = lround(h.start_s / interval);
        e->kind = kind;
        e->start = start_unix + h.start_s;
        e->end = e->start + h.length_s;
        e->b64 = strndup(h.b64, h.b64_len);
        if (e->b64 == NULL)
            rc = lg_why(why, cap, "out of memory");
    }
    free(line);
    (void)fclose(f); /* read-only */
    return rc;
}

/* LABEL.hlog in out: the shards' intervals of one number and kind added, on the wall clock of
 * the earliest shard. */
static int merge_hlogs(const struct part *p, size_t n, const struct lg_config *cfg, double base,
                       char *why, size_t cap)
{
    struct ival *iv = NULL;
    size_t niv = 0, cap_iv = 0;
    struct hist h;
    FILE *out = NULL;
    int rc = hist_init(&h, LG_HIST_LOW_NS, LG_HIST_HIGH_NS, LG_HIST_SIGFIGS);
    char path[4200];
    for (size_t i = 0; i < n && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/%s.shard%" PRIu32 ".hlog", p[i].dir, cfg->label,
                 p[i].shard);
        rc = read_hlog(path, cfg->interval_s, &iv, &niv, &cap_iv, why, cap);
    }
    if (rc == 0) {
        if (niv > 0)
            qsort(iv, niv, sizeof(*iv), by_key_kind);
        snprintf(path, sizeof(path), "%s/%s.hlog", cfg->out_dir, cfg->label);
        char comment[200];
        snprintf(comment, sizeof(comment),
                 "[chatbench loadgen %s, label %s: merged from %zu shards; values in nanoseconds, "
                 "Interval_Max in milliseconds, measured samples only]",
                 CHATBENCH_VERSION, cfg->label, n);
        if ((out = fopen(path, "w")) == NULL)
            rc = lg_why(why, cap, "%s: %s", path, strerror(errno));
        else if (hlog_write_head(out, comment, base) < 0)
            rc = lg_why(why, cap, "%s: cannot write", path);
    }
    for (size_t i = 0; i < niv && rc == 0;) {
        hist_reset(&h);
        double start = iv[i].start, end = iv[i].end;
        size_t j = i;
        for (; j < niv && iv[j].key == iv[i].key && iv[j].kind == iv[i].kind && rc == 0; j++) {
            if (hlog_decode(&h, iv[j].b64, strlen(iv[j].b64)) < 0)
                rc = lg_why(why, cap, "a shard's .hlog holds a histogram that does not decode");
            start = iv[j].start < start ? iv[j].start : start;
            end = iv[j].end > end ? iv[j].end : end;
        }
        if (rc == 0 && hlog_write_interval(out, lg_kind_names[iv[i].kind], start - base,
                                           end - start, &h, 1e6) < 0)
            rc = lg_why(why, cap, "%s: cannot write", path);
        i = j;
    }
    if (out != NULL && fclose(out) != 0 && rc == 0)
        rc = lg_why(why, cap, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < niv; i++)
        free(iv[i].b64);
    free(iv);
    hist_destroy(&h);
    return rc;
}

/* --- the command --- */

static void usage(FILE *f)
{
    fprintf(f, "Usage: loadgen merge DIR... --out DIR [--label NAME] [--json | --quiet]\n"
               "Adds the shards of a run (loadgen --shard, or under mpirun, srun or an Indexed\n"
               "Job, each with --out) into the result one process with every client would have\n"
               "written: summary.csv (appended), latency.csv, LABEL.KIND.hist and LABEL.hlog in\n"
               "--out. Histograms are added bucket by bucket, counters summed, rates taken over\n"
               "the span of the shards' measured windows (--start-at makes them one window).\n"
               "\n"
               "  DIR...          the shards' --out directories (one shared directory is fine)\n"
               "  --out DIR       where the merged result goes\n"
               "  --label NAME    merge this run only (default: every run found, one by one)\n"
               "  --json          print each merged summary as JSON instead of text\n"
               "  --quiet         print nothing but errors\n"
               "\n"
               "Shards of one run have the same label and settings and one row each; rows that\n"
               "differ (rate, size, transport, ...), a shard missing or twice, are refused.\n"
               "Exit status: 0 ok, 1 nothing merged or a refusal, 2 bad options.\n");
}

/* Every shard row of the directories, in order. */
static int gather(char **dirs, int ndirs, const char *label, struct lg_row ***rows_out,
                  struct part **parts, size_t *nparts, struct lg_row **all, size_t *nall)
{
    size_t cap = 0;
    for (int i = 0; i < ndirs; i++) {
        char path[4200];
        struct lg_row *rows = NULL;
        size_t n = 0, bad = 0;
        snprintf(path, sizeof(path), "%s/summary.csv", dirs[i]);
        int rc = lg_csv_read(path, &rows, &n, &bad);
        if (rc < 0) {
            fprintf(stderr, "loadgen merge: %s: %s", path, strerror(-rc));
            if (rc == -EPROTO)
                fprintf(stderr, " (line %zu is not a row of its header)", bad);
            fputc('\n', stderr);
            return -1;
        }
        all[i] = rows;
        nall[i] = n;
        for (size_t j = 0; j < n; j++) {
            const char *src = lg_row_get(&rows[j], "shard_source");
            if (src == NULL || strcmp(src, "none") == 0 || strcmp(src, LG_SHARD_MERGED) == 0 ||
                (label != NULL && strcmp(col(&rows[j], "label"), label) != 0))
                continue;
            uint64_t k;
            if (parse_u64(col(&rows[j], "shard"), 0, LG_SHARDS_MAX - 1, &k) < 0)
                continue;
            if (*nparts == cap) {
                cap = cap ? cap * 2 : 16;
                struct part *m = realloc(*parts, cap * sizeof(*m));
                if (m == NULL)
                    return -1;
                *parts = m;
            }
            (*parts)[(*nparts)++] = (struct part){dirs[i], &rows[j], (uint32_t)k};
        }
    }
    *rows_out = calloc(*nparts + 1, sizeof(**rows_out));
    return *rows_out != NULL ? 0 : -1;
}

/* Merges the run called label (its parts among p[0..n)): 0, or 1 after saying why. */
static int merge_run(const char *label, const struct part *p, size_t n, const char *out_dir,
                     bool json, bool quiet, const struct lg_row **rows)
{
    char why[512];
    size_t shards = 0;
    struct part *mine = calloc(n, sizeof(*mine));
    if (mine == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) /* by shard, and each once */
        if (strcmp(col(p[i].row, "label"), label) == 0) {
            size_t at = 0;
            while (at < shards && mine[at].shard < p[i].shard)
                at++;
            if (at < shards && mine[at].shard == p[i].shard) {
                fprintf(stderr,
                        "loadgen merge: label %s: shard %" PRIu32 " appears twice (in %s and "
                        "%s): merge one run at a time (a fresh --out per run, or --label)\n",
                        label, p[i].shard, mine[at].dir, p[i].dir);
                free(mine);
                return 1;
            }
            memmove(&mine[at + 1], &mine[at], (shards - at) * sizeof(*mine));
            mine[at] = p[i];
            shards++;
        }
    for (size_t i = 0; i < shards; i++)
        rows[i] = mine[i].row;
    struct lg_config cfg;
    struct lg_result res = {.cfg = &cfg};
    double win_lo = 0, win_hi = 0, longest = 0;
    int rc = lg_merge_check(rows, shards, why, sizeof(why));
    if (rc == 0)
        rc = config_of(mine, shards, &cfg, why, sizeof(why));
    cfg.out_dir = out_dir;
    cfg.json = json;
    cfg.quiet = quiet;
    if (rc == 0 && (rc = lg_stats_init(&res.st)) < 0)
        snprintf(why, sizeof(why), "out of memory");
    for (size_t i = 0; i < shards && rc == 0; i++)
        rc = add_part(&mine[i], &res, &win_lo, &win_hi, &longest, why, sizeof(why));
    res.measured_s = win_hi > win_lo ? win_hi - win_lo : 0;
    if (rc == 0 && res.measured_s > longest + (longest * 0.01 > 0.05 ? longest * 0.01 : 0.05))
        fprintf(stderr,
                "loadgen merge: warning: label %s: the shards' measured windows span %.3f s, "
                "each lasts at most %.3f s: rates are over the span (start the shards with "
                "--start-at so that they line up)\n",
                label, res.measured_s, longest);
    if (rc == 0) {
        struct lg_row row;
        lg_row_init(&row);
        lg_report_row(&res, &row);
        if (json)
            rc = lg_row_write_json(&row, stdout);
        else if (!quiet)
            lg_report_text(&res, stdout);
        fflush(stdout);
        if (rc == 0 && lg_report_files(&res, &row, NULL, 0) < 0)
            rc = -EIO; /* said on stderr */
        else if (rc == 0)
            rc = merge_hlogs(mine, shards, &cfg, res.t0_unix, why, sizeof(why));
        lg_row_destroy(&row);
    }
    if (rc < 0 && rc != -EIO)
        fprintf(stderr, "loadgen merge: label %s: %s\n", label, why);
    if (rc == 0 && !quiet && !json)
        fprintf(stderr, "loadgen merge: %zu shards of %s merged into %s\n", shards, label, out_dir);
    lg_stats_destroy(&res.st);
    free(mine);
    return rc < 0 ? 1 : 0;
}

int lg_merge_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"label", required_argument, 0, 'l'},
        {"json", no_argument, 0, 'j'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    const char *out = NULL, *label = NULL;
    bool json = false, quiet = false;
    int o;
    opterr = 0;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case 'o':
            out = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("loadgen (chatbench) %s\n", CHATBENCH_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "loadgen merge: option %s needs a value (see --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "loadgen merge: unknown option %s (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    int ndirs = argc - optind;
    if (out == NULL || out[0] == '\0' || ndirs < 1) {
        fprintf(stderr, "loadgen merge: give the shards' directories and --out DIR (see "
                        "--help)\n");
        return 2;
    }
    char **dirs = argv + optind;
    struct lg_row **all = calloc((size_t)ndirs, sizeof(*all)), **rows = NULL;
    size_t *nall = calloc((size_t)ndirs, sizeof(*nall)), nparts = 0;
    struct part *parts = NULL;
    int status = 1;
    if (all == NULL || nall == NULL)
        goto out;
    if (gather(dirs, ndirs, label, &rows, &parts, &nparts, all, nall) < 0)
        goto out;
    if (nparts == 0) {
        fprintf(stderr,
                "loadgen merge: no shard rows%s%s in the summary.csv of %s%s (run "
                "loadgen with --shard, or under a launcher, and --out)\n",
                label != NULL ? " of label " : "", label != NULL ? label : "", dirs[0],
                ndirs > 1 ? " and the others" : "");
        goto out;
    }
    status = 0;
    for (size_t i = 0; i < nparts; i++) { /* each label once, in order of appearance */
        const char *l = col(parts[i].row, "label");
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(col(parts[j].row, "label"), l) == 0;
        if (!seen)
            status |= merge_run(l, parts, nparts, out, json, quiet, (const struct lg_row **)rows);
    }
out:
    for (int i = 0; all != NULL && nall != NULL && i < ndirs; i++) {
        for (size_t j = 0; j < nall[i]; j++)
            lg_row_destroy(&all[i][j]);
        free(all[i]);
    }
    free(all);
    free(nall);
    free(parts);
    free(rows);
    return status;
}
