/* impair_cli: start-up errors and option values of bin/udp_impair and bin/linkem. */
#include "impair_cli.h"

#include "impair_core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void impair_fatal(const char *prog, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

uint64_t impair_opt_u64(const char *prog, const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || s[0] == '-' || v < lo || v > hi)
        impair_fatal(prog, 2, "%s: expected an integer in %" PRIu64 "..%" PRIu64 ", got '%s'", opt,
                     lo, hi, s);
    return v;
}

uint64_t impair_opt_ms(const char *prog, const char *opt, const char *s, double max_ms)
{
    uint64_t ns;
    if (impair_parse_ms(s, max_ms, &ns) < 0)
        impair_fatal(prog, 2, "%s: expected milliseconds in 0..%.0f, got '%s'", opt, max_ms, s);
    return ns;
}
