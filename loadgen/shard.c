/* shard: which shard this process is, and its slice of the clients (see shard.h). */
#include "shard.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "why.h"

struct launcher {
    const char *name;   /* --launcher */
    const char *rank;   /* its rank variable */
    const char *size;   /* its size variable; NULL: --shards */
    const char *source; /* shard_source in the summary */
};

static const struct launcher launchers[] = {
    {"ompi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK/SIZE"},
    {"pmi", "PMI_RANK", "PMI_SIZE", "PMI_RANK/SIZE"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_PROCID/NTASKS"},
    {"k8s", "JOB_COMPLETION_INDEX", NULL, "JOB_COMPLETION_INDEX"},
};
#define NLAUNCHERS (sizeof(launchers) / sizeof(launchers[0]))

/* "I/N" into index and count. */
static bool parse_pair(const char *s, uint32_t *index, uint32_t *count)
{
    const char *slash = strchr(s, '/');
    uint64_t i, n;
    if (slash == NULL || parse_u64_span(s, (size_t)(slash - s), UINT32_MAX, &i) < 0 ||
        parse_u64(slash + 1, 1, LG_SHARDS_MAX, &n) < 0 || i >= n)
        return false;
    *index = (uint32_t)i;
    *count = (uint32_t)n;
    return true;
}

/* Reads one launcher's variables: 1 and *got when set, 0 when absent, -EINVAL (why) when
 * malformed. */
static int read_launcher(const struct launcher *l, uint32_t shards,
                         const char *(*env)(const char *), struct lg_shard *got, char *why,
                         size_t cap)
{
    const char *rank = env(l->rank), *size = l->size != NULL ? env(l->size) : NULL;
    if (rank == NULL && size == NULL)
        return 0;
    if (rank == NULL)
        return lg_why(why, cap, "%s is set but %s is not: half a launcher's pair is no shard",
                      l->size, l->rank);
    uint64_t i, n = shards;
    if (l->size != NULL && size == NULL)
        return lg_why(why, cap, "%s is set but %s is not: half a launcher's pair is no shard",
                      l->rank, l->size);
    if (l->size == NULL && shards == 0)
        return lg_why(why, cap,
                      "%s is set (a Kubernetes Indexed Job): give --shards N, the Job's "
                      "completions",
                      l->rank);
    if (parse_u64(rank, 0, UINT32_MAX, &i) < 0)
        return lg_why(why, cap, "%s='%s' is not a number", l->rank, rank);
    if (size != NULL && parse_u64(size, 1, LG_SHARDS_MAX, &n) < 0)
        return lg_why(why, cap, "%s='%s' is not a number of processes", l->size, size);
    if (i >= n)
        return lg_why(why, cap, "%s='%s' is not below the shard count %" PRIu64, l->rank, rank, n);
    got->index = (uint32_t)i;
    got->count = (uint32_t)n;
    got->source = l->source;
    return 1;
}

int lg_shard_resolve(const struct lg_shard_opts *o, const char *(*env)(const char *),
                     struct lg_shard *out, char *why, size_t cap)
{
    *out = (struct lg_shard){.index = 0, .count = 1, .source = "none"};
    const struct launcher *only = NULL;
    if (o->launcher != NULL) {
        for (size_t i = 0; i < NLAUNCHERS && only == NULL; i++)
            if (strcmp(launchers[i].name, o->launcher) == 0)
                only = &launchers[i];
        if (only == NULL)
            return lg_why(why, cap, "--launcher '%s': use ompi, pmi, slurm or k8s", o->launcher);
    }
    /* the environment: every launcher present must say the same */
    struct lg_shard found = {0}, got = {0};
    const struct launcher *first = NULL;
    for (size_t i = 0; i < NLAUNCHERS; i++) {
        const struct launcher *l = &launchers[i];
        if (only != NULL && l != only)
            continue;
        int rc = read_launcher(l, o->shards, env, &got, why, cap);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        if (first == NULL) {
            first = l;
            found = got;
        } else if (got.index != found.index || got.count != found.count) {
            return lg_why(why, cap,
                          "the launchers disagree: %s says shard %" PRIu32 "/%" PRIu32
                          ", %s says %" PRIu32 "/%" PRIu32 "; say which one started this "
                          "process with --launcher %s or --launcher %s",
                          first->source, found.index, found.count, l->source, got.index, got.count,
                          first->name, l->name);
        }
    }
    if (only != NULL && first == NULL)
        return lg_why(why, cap, "--launcher %s, but %s is not set", only->name, only->rank);
    if (first != NULL && o->shards != 0 && found.count != o->shards)
        return lg_why(why, cap, "--shards %" PRIu32 " disagrees with %s, which says %" PRIu32,
                      o->shards, first->source, found.count);
    if (o->shard != NULL) {
        struct lg_shard opt = {.source = "--shard"};
        if (!parse_pair(o->shard, &opt.index, &opt.count))
            return lg_why(why, cap, "--shard '%s': give I/N with 0 <= I < N <= %d", o->shard,
                          LG_SHARDS_MAX);
        if (o->shards != 0 && o->shards != opt.count)
            return lg_why(why, cap, "--shard %s and --shards %" PRIu32 " disagree", o->shard,
                          o->shards);
        if (first != NULL && (opt.index != found.index || opt.count != found.count))
            return lg_why(why, cap,
                          "--shard %s disagrees with %s, which says %" PRIu32 "/%" PRIu32
                          ": every process would run the same shard; drop --shard",
                          o->shard, first->source, found.index, found.count);
        *out = opt;
        return 0;
    }
    if (first == NULL) {
        if (o->shards != 0)
            return lg_why(why, cap,
                          "--shards %" PRIu32 " needs --shard I/N or JOB_COMPLETION_INDEX (an "
                          "Indexed Job)",
                          o->shards);
        return 0;
    }
    *out = found;
    return 0;
}

int lg_shard_is_part(const struct lg_shard *s)
{
    return strcmp(s->source, "none") != 0 && strcmp(s->source, LG_SHARD_MERGED) != 0;
}

const char *lg_shard_name(const struct lg_shard *s, char *buf, size_t cap)
{
    if (strcmp(s->source, LG_SHARD_MERGED) == 0)
        snprintf(buf, cap, "all");
    else
        snprintf(buf, cap, "%" PRIu32, s->index);
    return buf;
}

/* --- the slice: room r belongs to shard r mod count --- */

uint32_t lg_shard_clients(const struct lg_shard *s, uint32_t clients, uint32_t room_size)
{
    uint32_t rooms = (clients + room_size - 1) / room_size;
    if (s->index >= rooms)
        return 0;
    uint32_t mine = (rooms - 1 - s->index) / s->count + 1; /* rooms index, index + count, ... */
    uint32_t last = (rooms - 1) % s->count == s->index;    /* the last room may be short */
    uint32_t short_by = last ? rooms * room_size - clients : 0;
    return mine * room_size - short_by;
}

uint32_t lg_shard_global(const struct lg_shard *s, uint32_t room_size, uint32_t local)
{
    uint32_t room = (local / room_size) * s->count + s->index;
    return room * room_size + local % room_size;
}

uint32_t lg_shard_local(const struct lg_shard *s, uint32_t room_size, uint32_t global)
{
    return (global / room_size / s->count) * room_size + global % room_size;
}
