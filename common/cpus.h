/* cpus: the CPUs a program is told to run on (--cpus LIST, taskset -c's syntax). */
#ifndef CHATBENCH_CPUS_H
#define CHATBENCH_CPUS_H

#include <sched.h>

/* Parses list ("1", "0-1", "0,2-3") into *set and checks that this process may run on each
 * of its CPUs. Returns 0; -EINVAL when list is not a CPU list; -EPERM when it names a CPU
 * outside this process's affinity (taskset, a container's cpuset); or the -errno of
 * sched_getaffinity. *set is written only on success. */
int cpus_parse_allowed(const char *list, cpu_set_t *set);

/* A line for a program's error message about cpus_parse_allowed's result rc. Never NULL. */
const char *cpus_why(int rc);

#endif
