/* shard: this process as one of N identical load generators started together by a launcher
 * that already exists (mpirun, srun, a Kubernetes Indexed Job, pdsh): which shard it is, and
 * which clients that gives it. No coordinator: every shard works its slice out alone, and
 * `loadgen merge` adds their results afterwards.
 *
 * The contract (README "More than one process or machine"): --shard I/N, else the launcher's
 * environment: OMPI_COMM_WORLD_RANK/SIZE (Open MPI), PMI_RANK/SIZE (MPICH, Hydra),
 * SLURM_PROCID/NTASKS (srun), JOB_COMPLETION_INDEX with --shards N (an Indexed Job). Half a
 * pair, a rank outside its size, launchers that disagree, or --shard against the
 * environment are errors, never guesses; --launcher NAME says which environment to read
 * when several are set (mpirun inside a Slurm allocation).
 *
 * The slice: rooms (K consecutive clients) go to shards round-robin, room r to shard r mod N,
 * so a room never spans shards and client k keeps its index, id and room whatever N is. A
 * shard's clients are numbered locally room after room. Pure: no I/O; env lookups go through
 * the function given. */
#ifndef CHATBENCH_LG_SHARD_H
#define CHATBENCH_LG_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define LG_SHARDS_MAX 65536

struct lg_shard {
    uint32_t index, count; /* 0/1 when not sharded */
    const char *source;    /* where index and count came from: "none", "--shard", or the
                            * environment, e.g. "OMPI_COMM_WORLD_RANK/SIZE" (static) */
};

/* What the command line said; all absent: NULL, 0, NULL. */
struct lg_shard_opts {
    const char *shard;    /* --shard I/N */
    uint32_t shards;      /* --shards N */
    const char *launcher; /* --launcher ompi|pmi|slurm|k8s */
};

/* Decides *out from the options and the environment (env: getenv or a test's lookup).
 * Returns 0, or -EINVAL with a sentence for the user in why. */
int lg_shard_resolve(const struct lg_shard_opts *o, const char *(*env)(const char *),
                     struct lg_shard *out, char *why, size_t cap);

/* The source of a result merged from every shard (loadgen merge): shard "all". */
#define LG_SHARD_MERGED "merge"

/* Whether this is one shard's part of a run (its files are LABEL.shardI.*): a source other
 * than "none" and LG_SHARD_MERGED. */
int lg_shard_is_part(const struct lg_shard *s);

/* The shard column: "I", or "all" for a merged result. Returns buf. */
const char *lg_shard_name(const struct lg_shard *s, char *buf, size_t cap);

/* The clients of shard s in a run of `clients` in rooms of room_size. */
uint32_t lg_shard_clients(const struct lg_shard *s, uint32_t clients, uint32_t room_size);
/* A shard's local client number to the run's client index, and back (global must be one of
 * the shard's). */
uint32_t lg_shard_global(const struct lg_shard *s, uint32_t room_size, uint32_t local);
uint32_t lg_shard_local(const struct lg_shard *s, uint32_t room_size, uint32_t global);

#endif
