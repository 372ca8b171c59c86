/* impair_cli: start-up errors and option values of bin/udp_impair and bin/linkem. */
#include "impair_cli.h"

#include "parse.h"

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
    uint64_t v;
    if (parse_u64(s, lo, hi, &v) < 0)
        impair_fatal(prog, 2, "%s: expected an integer in %" PRIu64 "..%" PRIu64 ", got '%s'", opt,
                     lo, hi, s);
    return v;
}

uint64_t impair_opt_ms(const char *prog, const char *opt, const char *s, double max_ms)
{
    double ms;
    if (parse_double(s, 0.0, max_ms, &ms) < 0)
        impair_fatal(prog, 2, "%s: expected milliseconds in 0..%.0f, got '%s'", opt, max_ms, s);
    return (uint64_t)(ms * 1e6 + 0.5);
}

double impair_opt_prob(const char *prog, const char *opt, const char *s)
{
    double v;
    if (parse_prob(s, &v) < 0)
        impair_fatal(prog, 2, "%s: expected a probability 0..1 or 0..100%%, got '%s'", opt, s);
    return v;
}
