/* parse: strict conversions of numbers in text, shared by every program's option parser and
 * by the frame and file parsers. A value is accepted only when the whole string (or span) is
 * the number: no '+', no spaces, no trailing garbage, no overflow; integers take no sign at
 * all, doubles a leading '-' (their range says whether a negative value is allowed).
 *
 * Pure and thread-safe; each returns 0, or -EINVAL for text that is not such a number and
 * -ERANGE for one outside [lo, hi]. *out is written only on success. */
#ifndef CHATBENCH_PARSE_H
#define CHATBENCH_PARSE_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

/* s[0..len): 1 to 20 decimal digits and nothing else, at most max. */
int parse_u64_span(const char *s, size_t len, uint64_t max, uint64_t *out);

/* The decimal digits at the start of s[0..len): returns how many there were (0: none; then
 * *out is 0). Stops before a digit that would take the value past UINT64_MAX. */
size_t parse_u64_prefix(const char *s, size_t len, uint64_t *out);

/* A NUL-terminated decimal integer in [lo, hi]. */
int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* A NUL-terminated finite decimal number (strtod's syntax, no hex, no inf/nan) in [lo, hi]. */
int parse_double(const char *s, double lo, double hi, double *out);

/* A probability: "0.3" or "30%", in [0, 1]. */
int parse_prob(const char *s, double *out);

/* A CPU list in taskset -c's syntax: "3", "0-1", "0,2-3" (no spaces; a range's end not below
 * its start), every CPU below CPU_SETSIZE. *out holds the set (cleared first). */
int parse_cpulist(const char *s, cpu_set_t *out);

#endif
