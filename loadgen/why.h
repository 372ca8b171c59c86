/* why: the reason a check refused something, as a sentence for the user in a caller's
 * buffer (shard.c's environment checks, merge.c's run checks). Header-only. */
#ifndef CHATBENCH_LG_WHY_H
#define CHATBENCH_LG_WHY_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Formats the reason into why[0..cap) and returns -EINVAL, so that a check can end with
 * "return lg_why(why, cap, ...);". */
__attribute__((format(printf, 3, 4))) static inline int lg_why(char *why, size_t cap,
                                                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

#endif
