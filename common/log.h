/* log: the servers' log lines, "[TAG] text", one whole line per write(2) on stdout.
 *
 * The wording of each line follows the challenge (Portuguese, word for word); callers
 * pass the text. Thread-safe: a mutex keeps lines whole even past PIPE_BUF. */
#ifndef CHATBENCH_LOG_H
#define CHATBENCH_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Writes "[tag] <formatted text>\n" to stdout. Lines longer than LOG_LINE_MAX are cut
 * (and end with "..."). Errors writing the log are ignored: logging never stops a server. */
void log_line(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* [MESSAGE] <id> : "<escaped text>" unless quiet mode is on. */
void log_message(const char *id, const char *text, size_t len);

/* -q: drop the per-message lines (benchmarks need that). Set once at start-up. */
void log_set_quiet(bool quiet);
bool log_quiet(void);

#define LOG_LINE_MAX 20000

#endif
