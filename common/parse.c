/* parse: strict number parsing (see parse.h). */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t parse_u64_prefix(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            break;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}

int parse_u64_span(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (len == 0 || len > 20 || parse_u64_prefix(s, len, &v) != len)
        return -EINVAL;
    if (v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    int rc = parse_u64_span(s, strlen(s), hi, &v);
    if (rc < 0)
        return rc;
    if (v < lo)
        return -ERANGE;
    *out = v;
    return 0;
}

/* strtod over the whole string, refusing what strtod takes but an option should not:
 * leading spaces, a '+', hexadecimal floats, inf and nan. */
static int whole_double(const char *s, double *v, const char **end)
{
    if (s[0] == '\0' || s[0] == ' ' || s[0] == '\t' || s[0] == '+' || strpbrk(s, "xXiInN") != NULL)
        return -EINVAL;
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    if (e == s || errno == ERANGE || !isfinite(*v))
        return -EINVAL;
    *end = e;
    return 0;
}

int parse_double(const char *s, double lo, double hi, double *out)
{
    double v;
    const char *end;
    if (whole_double(s, &v, &end) < 0 || *end != '\0')
        return -EINVAL;
    if (!(v >= lo && v <= hi))
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_prob(const char *s, double *out)
{
    double v;
    const char *end;
    if (whole_double(s, &v, &end) < 0)
        return -EINVAL;
    if (*end == '%') {
        v /= 100.0;
        end++;
    }
    if (*end != '\0')
        return -EINVAL;
    if (!(v >= 0.0 && v <= 1.0))
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_cpulist(const char *s, cpu_set_t *out)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    const char *p = s;
    do {
        size_t n = strcspn(p, ",-");
        uint64_t lo, hi;
        int rc = parse_u64_span(p, n, CPU_SETSIZE - 1, &lo);
        if (rc < 0)
            return rc;
        p += n;
        hi = lo;
        if (*p == '-') {
            n = strcspn(++p, ",-");
            if ((rc = parse_u64_span(p, n, CPU_SETSIZE - 1, &hi)) < 0)
                return rc;
            if (hi < lo)
                return -EINVAL;
            p += n;
        }
        if (*p == '-')
            return -EINVAL;
        for (uint64_t c = lo; c <= hi; c++)
            CPU_SET((size_t)c, &set);
    } while (*p++ == ',');
    *out = set;
    return 0;
}
