/* linkem_report: bin/linkem's packet log (--log), its exit report and the same as JSON. */
#include "linkem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

static const char *const dir_names[IMPAIR__DIRS] = {"up", "down"};

/* --- the packet log --- */

void lk_log_open(struct linkem *lk)
{
    if (!lk->cfg.log_path)
        return;
    lk->log = fopen(lk->cfg.log_path, "we");
    if (!lk->log)
        lk_die(1, "--log %s: %s", lk->cfg.log_path, strerror(errno));
    /* full buffering: a line per packet must not cost a write(2) */
    (void)setvbuf(lk->log, NULL, _IOFBF, 1 << 20); /* best effort */
    fprintf(lk->log, "# linkem %s: t_s dir n proto len src dst event data\n", CHATBENCH_VERSION);
}

static void proto_name(const struct lk_ipinfo *in, char *out, size_t cap)
{
    if (in->version == 0) {
        snprintf(out, cap, "non-ip");
        return;
    }
    switch (in->proto) {
    case 6:
        snprintf(out, cap, "tcp");
        break;
    case 17:
        snprintf(out, cap, "udp");
        break;
    case 1:
        snprintf(out, cap, "icmp");
        break;
    case 58:
        snprintf(out, cap, "icmp6");
        break;
    default:
        snprintf(out, cap, "ip%d:%u", in->version, in->proto);
        break;
    }
}

static void endpoint(const char *addr, bool ports, uint16_t port, char *out, size_t cap)
{
    if (ports)
        snprintf(out, cap, "%s:%u", addr, port);
    else
        snprintf(out, cap, "%s", addr);
}

void lk_log(struct linkem *lk, uint64_t now, enum impair_dir dir, uint64_t idx,
            const unsigned char *pkt, size_t len, const char *event)
{
    if (!lk->log)
        return;
    struct lk_ipinfo in;
    lk_ip_parse(pkt, len < LK_SLOT ? len : LK_SLOT, &in); /* an oversize one: its first slot */
    char proto[16], src[56], dst[56], data[33] = "-";
    proto_name(&in, proto, sizeof proto);
    endpoint(in.src, in.ports, in.sport, src, sizeof src);
    endpoint(in.dst, in.ports, in.dport, dst, sizeof dst);
    if (in.payload_len > 0) {
        size_t n = in.payload_len < 16 ? in.payload_len : 16;
        for (size_t i = 0; i < n; i++)
            snprintf(data + 2 * i, 3, "%02x", in.payload[i]);
    }
    uint64_t t = now - lk->start_ns;
    fprintf(lk->log, "%" PRIu64 ".%06" PRIu64 " %s %" PRIu64 " %s %zu %s %s %s %s\n",
            t / 1000000000u, t % 1000000000u / 1000u, dir_names[dir], idx, proto, len, src, dst,
            event, data);
}

void lk_log_close(struct linkem *lk)
{
    if (lk->log && fclose(lk->log) != 0)
        fprintf(stderr, "linkem: --log %s: %s\n", lk->cfg.log_path, strerror(errno));
    lk->log = NULL;
}

/* --- the report --- */

/* The counters of one direction, in report order. */
struct lk_row {
    const char *name;
    uint64_t v;
};

enum { LK_ROW_N = 15 };

static void rows(const struct linkem *lk, int d, struct lk_row r[LK_ROW_N])
{
    const struct impair_link_counts *m = &lk->link[d].n;
    const struct lk_counts *c = &lk->cnt[d];
    const struct lk_row all[LK_ROW_N] = {
        {"pkts_in", m->pkts_in},
        {"bytes_in", m->bytes_in},
        {"pkts_out", c->pkts_out},
        {"bytes_out", c->bytes_out},
        {"lost", m->lost},
        {"queue_drops", m->queue_drops},
        {"duplicated", m->duplicated},
        {"reordered", c->reordered},
        {"max_queue", m->max_queue},
        {"max_queue_bytes", m->max_queue_bytes},
        {"errors", c->errors},
        {"unsent", c->unsent},
        {"kernel_drops_in", c->kdrops_in},
        {"kernel_drops_out", c->kdrops_out},
        {"reorder_untracked", lk->flows[d].untracked},
    };
    memcpy(r, all, sizeof all);
}

static void status_str(int st, char *out, size_t cap)
{
    if (WIFSIGNALED(st))
        snprintf(out, cap, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(out, cap, "exited with %d", WEXITSTATUS(st));
}

static void describe(const struct impair_link_cfg *c, char *out, size_t cap)
{
    int n = snprintf(out, cap, "delay %.3f ms, jitter %.3f ms%s", (double)c->delay_ns / 1e6,
                     (double)c->jitter_ns / 1e6, c->reorder ? " (may reorder)" : "");
    if (c->rate_bps && n >= 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, ", rate %.3f Mbit/s, queue ",
                      (double)c->rate_bps / 1e6);
        if (c->queue_pkts && (size_t)n < cap)
            n += snprintf(out + n, cap - (size_t)n, "%u packets%s", c->queue_pkts,
                          c->queue_bytes ? " and " : "");
        if (c->queue_bytes && (size_t)n < cap)
            n += snprintf(out + n, cap - (size_t)n, "%" PRIu64 " bytes", c->queue_bytes);
    }
    if (c->ge_r > 0.0 && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, ", burst loss %.3f %% in bursts of %.2f",
                      100.0 * c->ge_p / (c->ge_p + c->ge_r), 1.0 / c->ge_r);
    else if (c->loss > 0.0 && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, ", loss %.3f %%", 100.0 * c->loss);
    if (c->dup > 0.0 && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ", dup %.3f %%", 100.0 * c->dup);
}

void lk_report_text(const struct linkem *lk, FILE *f)
{
    char outer[INET_ADDRSTRLEN], inner[INET_ADDRSTRLEN], st[48];
    inet_ntop(AF_INET, &lk->cfg.outer, outer, sizeof outer);
    inet_ntop(AF_INET, &lk->cfg.inner, inner, sizeof inner);
    status_str(lk->net.status, st, sizeof st);
    fprintf(f, "linkem: %.3f s, seed %" PRIu64 ", %s (outside) <-> %s (inside); COMMAND %s\n",
            (double)(lk->end_ns - lk->start_ns) / 1e9, lk->cfg.seed, outer, inner, st);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        char desc[256];
        describe(&lk->cfg.dir[d], desc, sizeof desc);
        fprintf(f, "linkem: %-4s %s\n", dir_names[d], desc);
    }
    uint64_t pkts = lk->link[0].n.pkts_in + lk->link[1].n.pkts_in;
    fprintf(f, "linkem: cpu %.3f s (user + system, its own), %.2f us per packet carried\n",
            lk->cpu_s, pkts ? lk->cpu_s * 1e6 / (double)pkts : 0.0);
    struct lk_row r[LK_ROW_N];
    rows(lk, 0, r);
    fprintf(f, "linkem: %-4s", "dir");
    for (int i = 0; i < LK_ROW_N; i++)
        fprintf(f, " %s", r[i].name);
    fputc('\n', f);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        rows(lk, d, r);
        fprintf(f, "linkem: %-4s", dir_names[d]);
        for (int i = 0; i < LK_ROW_N; i++)
            fprintf(f, " %*" PRIu64, (int)strlen(r[i].name), r[i].v);
        fputc('\n', f);
    }
}

int lk_report_json(const struct linkem *lk, const char *path)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    char outer[INET_ADDRSTRLEN], inner[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &lk->cfg.outer, outer, sizeof outer);
    inet_ntop(AF_INET, &lk->cfg.inner, inner, sizeof inner);
    int st = lk->net.status;
    fprintf(f,
            "{\n  \"duration_s\": %.6f,\n  \"seed\": %" PRIu64 ",\n  \"outer\": \"%s\",\n"
            "  \"inner\": \"%s\",\n  \"command_exit\": %d,\n  \"command_signal\": %d,\n"
            "  \"cpu_s\": %.6f,\n  \"config\": {",
            (double)(lk->end_ns - lk->start_ns) / 1e9, lk->cfg.seed, outer, inner,
            WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0, lk->cpu_s);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        const struct impair_link_cfg *c = &lk->cfg.dir[d];
        bool ge = c->ge_r > 0.0;
        fprintf(f,
                "%s\"%s\": {\"delay_ms\": %.6f, \"jitter_ms\": %.6f, \"reorder\": %s, "
                "\"rate_bps\": %" PRIu64 ", \"queue_pkts\": %u, \"queue_bytes\": %" PRIu64
                ", \"loss\": %.6f, \"burst_loss\": %.6f, \"burst_len\": %.6f, \"dup\": %.6f}",
                d ? ", " : "", dir_names[d], (double)c->delay_ns / 1e6, (double)c->jitter_ns / 1e6,
                c->reorder ? "true" : "false", c->rate_bps, c->queue_pkts, c->queue_bytes, c->loss,
                ge ? c->ge_p / (c->ge_p + c->ge_r) : 0.0, ge ? 1.0 / c->ge_r : 0.0, c->dup);
    }
    fputs("}", f);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        struct lk_row r[LK_ROW_N];
        rows(lk, d, r);
        fprintf(f, ",\n  \"%s\": {", dir_names[d]);
        for (int i = 0; i < LK_ROW_N; i++)
            fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", r[i].name, r[i].v);
        fputc('}', f);
    }
    fputs("\n}\n", f);
    if (fclose(f) != 0)
        return -errno;
    return 0;
}
