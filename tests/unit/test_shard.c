/* test_shard: which shard a process is, from --shard and the launchers' environments (a fake
 * environment here), and the slice of clients each shard runs: disjoint, complete, whole
 * rooms, the same client index whatever the shard count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/shard.h"

#include <stdlib.h>
#include <string.h>

/* --- a fake environment: NAME=VALUE strings --- */

static const char *const *fake;

static const char *fake_env(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; fake != NULL && fake[i] != NULL; i++)
        if (strncmp(fake[i], name, n) == 0 && fake[i][n] == '=')
            return fake[i] + n + 1;
    return NULL;
}

static int resolve(const char *const *env, const char *shard, uint32_t shards, const char *launcher,
                   struct lg_shard *out, char *why)
{
    fake = env;
    struct lg_shard_opts o = {.shard = shard, .shards = shards, .launcher = launcher};
    why[0] = '\0';
    return lg_shard_resolve(&o, fake_env, out, why, 256);
}

static void expect(const char *const *env, const char *shard, uint32_t shards, const char *launcher,
                   uint32_t index, uint32_t count, const char *source)
{
    struct lg_shard s;
    char why[256];
    assert_int_equal(resolve(env, shard, shards, launcher, &s, why), 0);
    assert_int_equal(s.index, index);
    assert_int_equal(s.count, count);
    assert_string_equal(s.source, source);
}

/* The error, and a message naming the culprit. */
static void refuse(const char *const *env, const char *shard, uint32_t shards, const char *launcher,
                   const char *says)
{
    struct lg_shard s;
    char why[256];
    assert_int_equal(resolve(env, shard, shards, launcher, &s, why), -22);
    if (strstr(why, says) == NULL)
        fail_msg("'%s' does not say '%s'", why, says);
}

static void test_sources(void **state)
{
    (void)state;
    const char *none[] = {"PATH=/bin", NULL};
    const char *ompi[] = {"OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3", NULL};
    const char *pmi[] = {"PMI_RANK=1", "PMI_SIZE=4", NULL};
    const char *slurm[] = {"SLURM_PROCID=0", "SLURM_NTASKS=2", NULL};
    const char *k8s[] = {"JOB_COMPLETION_INDEX=5", NULL};
    /* srun --mpi=pmi2 sets both pairs, and they agree */
    const char *both[] = {"SLURM_PROCID=3", "SLURM_NTASKS=8", "PMI_RANK=3", "PMI_SIZE=8", NULL};
    expect(none, NULL, 0, NULL, 0, 1, "none");
    expect(none, "1/4", 0, NULL, 1, 4, "--shard");
    expect(ompi, NULL, 0, NULL, 2, 3, "OMPI_COMM_WORLD_RANK/SIZE");
    expect(pmi, NULL, 0, NULL, 1, 4, "PMI_RANK/SIZE");
    expect(slurm, NULL, 0, NULL, 0, 2, "SLURM_PROCID/NTASKS");
    expect(k8s, NULL, 6, NULL, 5, 6, "JOB_COMPLETION_INDEX");
    expect(both, NULL, 0, NULL, 3, 8, "PMI_RANK/SIZE");
    expect(ompi, "2/3", 0, NULL, 2, 3, "--shard"); /* agrees with the environment */
    expect(ompi, NULL, 3, NULL, 2, 3, "OMPI_COMM_WORLD_RANK/SIZE");
}

static void test_refusals(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    const char *half[] = {"OMPI_COMM_WORLD_RANK=1", NULL};
    const char *half2[] = {"PMI_SIZE=4", NULL};
    const char *past[] = {"SLURM_PROCID=4", "SLURM_NTASKS=4", NULL};
    const char *junk[] = {"PMI_RANK=one", "PMI_SIZE=4", NULL};
    const char *zero[] = {"PMI_RANK=0", "PMI_SIZE=0", NULL};
    const char *k8s[] = {"JOB_COMPLETION_INDEX=5", NULL};
    /* mpirun inside a Slurm allocation: both set, different */
    const char *nested[] = {"OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3", "SLURM_PROCID=0",
                            "SLURM_NTASKS=1", NULL};
    const char *ompi[] = {"OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3", NULL};
    refuse(half, NULL, 0, NULL, "OMPI_COMM_WORLD_SIZE is not");
    refuse(half2, NULL, 0, NULL, "PMI_RANK is not");
    refuse(past, NULL, 0, NULL, "not below the shard count 4");
    refuse(junk, NULL, 0, NULL, "PMI_RANK='one'");
    refuse(zero, NULL, 0, NULL, "PMI_SIZE='0'");
    refuse(k8s, NULL, 0, NULL, "give --shards N");
    refuse(k8s, NULL, 5, NULL, "not below the shard count 5");
    refuse(nested, NULL, 0, NULL, "--launcher ompi or --launcher slurm");
    refuse(ompi, "0/3", 0, NULL, "every process would run the same shard");
    refuse(ompi, NULL, 4, NULL, "--shards 4 disagrees");
    refuse(none, "3/3", 0, NULL, "--shard '3/3'");
    refuse(none, "1/", 0, NULL, "--shard '1/'");
    refuse(none, "-1/2", 0, NULL, "--shard '-1/2'");
    refuse(none, "1/2", 3, NULL, "--shards 3 disagree");
    refuse(none, NULL, 3, NULL, "--shards 3 needs");
    refuse(none, NULL, 0, "mpich", "--launcher 'mpich'");
    refuse(none, NULL, 0, "slurm", "SLURM_PROCID is not set");
    /* the way out of the nested case */
    expect(nested, NULL, 0, "ompi", 2, 3, "OMPI_COMM_WORLD_RANK/SIZE");
    expect(nested, NULL, 0, "slurm", 0, 1, "SLURM_PROCID/NTASKS");
}

/* Every client in exactly one shard, rooms whole, local numbering a bijection. */
static void check_slices(uint32_t clients, uint32_t room, uint32_t count)
{
    uint32_t *owner = calloc(clients, sizeof(*owner));
    assert_non_null(owner);
    uint32_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct lg_shard s = {.index = i, .count = count, .source = "--shard"};
        uint32_t n = lg_shard_clients(&s, clients, room);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t k = lg_shard_global(&s, room, j);
            assert_true(k < clients);
            assert_int_equal(owner[k], 0);
            owner[k] = i + 1;
            assert_int_equal(lg_shard_local(&s, room, k), j);
            assert_int_equal((k / room) % count, i); /* its room's shard */
        }
        total += n;
    }
    assert_int_equal(total, clients);
    for (uint32_t k = 0; k < clients; k++)
        assert_int_equal(owner[k], owner[k - k % room]); /* a room never spans shards */
    free(owner);
}

static void test_slices(void **state)
{
    (void)state;
    check_slices(10, 1, 1);
    check_slices(10, 1, 3);
    check_slices(100, 7, 3); /* the last room has 2 clients */
    check_slices(19000, 1, 2);
    check_slices(100000, 10, 6);
    check_slices(12, 4, 5); /* 3 rooms for 5 shards: two shards get none */
    struct lg_shard s = {.index = 4, .count = 5, .source = "--shard"};
    assert_int_equal(lg_shard_clients(&s, 12, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
