/* impair_report: bin/udp_impair's action log, its final report (text) and the same as JSON. */
#include "udp_impair.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stat_names[IS__COUNT] = {
    "received",     "forwarded", "dropped",          "duplicated",  "held",       "reordered",
    "held_flushed", "delayed",   "jitter_reordered", "send_errors", "compressed",
};

static const char *const dir_names[IMPAIR__DIRS] = {"up", "down"};

/* --- log --- */
/* "t_ns dir verb action seq client": seq is "-" when the frame has none; client is the
 * mapping's source address, so that a test can follow each client's sequence space. */
void imp_log_action(const struct imp_relay *r, const struct imp_map *m, enum impair_dir dir,
                    enum impair_verb verb, const char *action, uint64_t seq)
{
    if (!r->log)
        return;
    char seqs[24] = "-";
    if (seq != IMPAIR_NO_SEQ)
        snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
    fprintf(r->log, "%" PRIu64 " %s %s %s %s %s\n", r->now, dir_names[dir], impair_verb_name(verb),
            action, seqs, m->name);
}

/* --- report --- */
static uint64_t kdrops_down(const struct imp_relay *r)
{
    uint64_t d = r->kdrops_down_closed;
    for (const struct imp_map *m = r->maps; m; m = m->hh.next)
        d += m->ovfl;
    return d;
}

static void dir_total(const struct imp_relay *r, enum impair_dir dir, uint64_t *tot)
{
    memset(tot, 0, sizeof(uint64_t) * IS__COUNT);
    for (int v = 0; v < IV__COUNT; v++)
        for (int s = 0; s < IS__COUNT; s++)
            tot[s] += r->st[dir][v][s];
}

static void print_row(FILE *f, const char *dir, const char *verb, const uint64_t *row)
{
    fprintf(f, "%-5s %-8s", dir, verb);
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, " %*" PRIu64, (int)strlen(stat_names[s]) > 9 ? (int)strlen(stat_names[s]) : 9,
                row[s]);
    fputc('\n', f);
}

/* The host's UDP RcvbufErrors (every socket of every process), or -1. A hint for runs that
 * do not add up: datagrams the kernel dropped at some receiver other than the relay. */
int64_t imp_host_rcvbuf_errors(void)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f)
        return -1;
    char names[1024], vals[1024];
    int64_t v = -1;
    while (fgets(names, sizeof names, f)) {
        if (strncmp(names, "Udp: ", 5) != 0 || !fgets(vals, sizeof vals, f))
            continue;
        int col = 0, want = -1;
        for (char *save = NULL, *t = strtok_r(names, " \n", &save); t;
             t = strtok_r(NULL, " \n", &save), col++)
            if (strcmp(t, "RcvbufErrors") == 0)
                want = col;
        col = 0;
        for (char *save = NULL, *t = strtok_r(vals, " \n", &save); t;
             t = strtok_r(NULL, " \n", &save), col++)
            if (col == want)
                v = strtoll(t, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

static int64_t host_drops_delta(const struct imp_relay *r)
{
    int64_t now = imp_host_rcvbuf_errors();
    return (now < 0 || r->host_rcvbuf_errors < 0) ? -1 : now - r->host_rcvbuf_errors;
}

void imp_print_report(const struct imp_relay *r, FILE *f, double secs)
{
    fprintf(f, "udp_impair report: %.3f s, seed %" PRIu64 ", match %s, scope %s\n", secs,
            r->cfg.seed, r->cfg.match_str, r->cfg.scope_mapping ? "mapping" : "stream");
    fprintf(f,
            "mappings: created %" PRIu64 ", expired %" PRIu64 ", peak %" PRIu64
            ", unmapped datagrams %" PRIu64 ", queue full %" PRIu64 "; kernel drops: up %" PRIu32
            ", down %" PRIu64 " (host-wide UDP RcvbufErrors during the run: %" PRId64 ")\n",
            r->maps_created, r->maps_expired, r->maps_peak, r->unmapped, r->queue_full,
            r->ovfl_listen, kdrops_down(r), host_drops_delta(r));
    fprintf(f, "%-5s %-8s", "dir", "verb");
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, " %9s", stat_names[s]);
    fputc('\n', f);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        for (int v = 0; v < IV__COUNT; v++)
            if (r->st[d][v][IS_RECEIVED])
                print_row(f, dir_names[d], impair_verb_name((enum impair_verb)v), r->st[d][v]);
        uint64_t tot[IS__COUNT];
        dir_total(r, (enum impair_dir)d, tot);
        print_row(f, dir_names[d], "total", tot);
    }
}

static void json_counts(FILE *f, const uint64_t *row)
{
    fputc('{', f);
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, "%s\"%s\": %" PRIu64, s ? ", " : "", stat_names[s], row[s]);
    fputc('}', f);
}

int imp_write_json(const struct imp_relay *r, const char *path, double secs)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const struct impair_config *c = &r->cfg;
    fprintf(f, "{\n  \"duration_s\": %.6f,\n  \"seed\": %" PRIu64 ",\n  \"match\": \"%s\",\n", secs,
            c->seed, c->match_str);
    fprintf(f, "  \"reorder_scope\": \"%s\",\n", c->scope_mapping ? "mapping" : "stream");
    fprintf(f, "  \"config\": {");
    for (int d = 0; d < IMPAIR__DIRS; d++)
        fprintf(f,
                "%s\"%s\": {\"drop\": %.6f, \"dup\": %.6f, \"reorder\": %.6f, "
                "\"delay_ms\": %.3f, \"jitter_ms\": %.3f}",
                d ? ", " : "", dir_names[d], c->probs[d].drop, c->probs[d].dup, c->probs[d].reorder,
                (double)c->delay_ns[d] / 1e6, (double)c->probs[d].jitter_ns / 1e6);
    fprintf(f, ", \"reorder_hold_ms\": %.3f},\n", (double)c->hold_ns / 1e6);
    fprintf(f,
            "  \"mappings\": {\"created\": %" PRIu64 ", \"expired\": %" PRIu64
            ", \"peak\": %" PRIu64 ", \"unmapped_datagrams\": %" PRIu64 "},\n"
            "  \"queue_full\": %" PRIu64 ",\n",
            r->maps_created, r->maps_expired, r->maps_peak, r->unmapped, r->queue_full);
    fprintf(f,
            "  \"kernel_drops\": {\"up\": %" PRIu32 ", \"down\": %" PRIu64 "},\n"
            "  \"host_udp_rcvbuf_errors\": %" PRId64,
            r->ovfl_listen, kdrops_down(r), host_drops_delta(r));
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        uint64_t tot[IS__COUNT];
        dir_total(r, (enum impair_dir)d, tot);
        fprintf(f, ",\n  \"%s\": {\n    \"total\": ", dir_names[d]);
        json_counts(f, tot);
        fprintf(f, ",\n    \"verbs\": {");
        bool first = true;
        for (int v = 0; v < IV__COUNT; v++) {
            if (!r->st[d][v][IS_RECEIVED])
                continue;
            fprintf(f, "%s\n      \"%s\": ", first ? "" : ",",
                    impair_verb_name((enum impair_verb)v));
            json_counts(f, r->st[d][v]);
            first = false;
        }
        fprintf(f, "\n    }\n  }");
    }
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        return -errno;
    return 0;
}
