/* cpus: a --cpus LIST checked against what the process may use (see cpus.h). */
#include "cpus.h"

#include "parse.h"

#include <errno.h>

int cpus_parse_allowed(const char *list, cpu_set_t *set)
{
    cpu_set_t want, allowed;
    if (parse_cpulist(list, &want) < 0)
        return -EINVAL;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return -errno;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &want) && !CPU_ISSET(c, &allowed))
            return -EPERM;
    *set = want;
    return 0;
}

const char *cpus_why(int rc)
{
    switch (rc) {
    case -EINVAL:
        return "give a CPU list such as 1, 0-1 or 0,2-3";
    case -EPERM:
        return "a CPU this process may not run on (see taskset -p $$)";
    default:
        return "cannot read this process's CPUs";
    }
}
