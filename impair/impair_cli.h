/* impair_cli: the command-line helpers of bin/udp_impair and bin/linkem: a start-up error that
 * names the program, and option values (common/parse's strict rules) whose error names the
 * option. Start-up only: these print on stderr and exit (with 2 for a bad value). */
#ifndef CHATBENCH_IMPAIR_CLI_H
#define CHATBENCH_IMPAIR_CLI_H

#include <stdint.h>

/* Prints "<prog>: <message>" on stderr and exits with code. */
void impair_fatal(const char *prog, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* The decimal integer s of option opt, in lo..hi; else exits 2 saying so. */
uint64_t impair_opt_u64(const char *prog, const char *opt, const char *s, uint64_t lo, uint64_t hi);

/* Milliseconds s (fractions allowed) of option opt, in 0..max_ms, as nanoseconds; else exits 2
 * saying so. */
uint64_t impair_opt_ms(const char *prog, const char *opt, const char *s, double max_ms);

/* A probability s of option opt: "0.3" or "30%"; else exits 2 saying so. */
double impair_opt_prob(const char *prog, const char *opt, const char *s);

#endif
