/* log: the servers' log lines, "[TAG] text", whole lines on stdout, never blocking a caller.
 *
 * The wording of each line follows the challenge (Portuguese, word for word); callers
 * pass the text. After log_start() one writer thread owns the output: log_line formats
 * the line and copies it into a bounded buffer (a copy under a mutex, no system call), and
 * the writer drains the buffer. When the output cannot keep up (a pipe nobody reads, a
 * terminal stopped with Ctrl-S, `less` not scrolling, a slow disk) and the buffer is full,
 * lines are dropped and counted; the next line that fits is preceded by
 * "[WARN] N linhas de log descartadas", in the place of the missing lines, so the lines
 * written keep the order of the events. Before log_start() and after log_stop() each line
 * is one write(2) of its own (fuzzers and unit tests rely on that).
 * Thread-safe: a mutex keeps lines whole even past PIPE_BUF. */
#ifndef CHATBENCH_LOG_H
#define CHATBENCH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LINE_MAX 20000
#define LOG_BUFFER_DEFAULT (1u << 20) /* bytes of lines waiting for the output */
#define LOG_STOP_WAIT_MS 2000         /* log_stop's longest wait for a stuck output */

/* Writes "[tag] <formatted text>\n". Lines longer than LOG_LINE_MAX are cut (and end with
 * "..."). Errors writing the log are ignored: logging never stops a server. */
void log_line(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* [MESSAGE] <id> : "<escaped text>" unless quiet mode is on. */
void log_message(const char *id, const char *text, size_t len);

/* -q: drop the per-message lines (benchmarks need that). Set once at start-up. */
void log_set_quiet(bool quiet);
bool log_quiet(void);

/* Starts the writer thread on fd (servers: STDOUT_FILENO) with a buffer of capacity bytes
 * (0: LOG_BUFFER_DEFAULT; at least 2 * LOG_LINE_MAX). The thread blocks every signal.
 * Returns 0, -EALREADY when started, or -errno (then lines keep being written directly).
 * Call from one thread (main), paired with log_stop. */
int log_start(int fd, size_t capacity);

/* Writes out what is buffered (with the dropped-lines warning, if one is due) and joins
 * the writer. An output that takes nothing for LOG_STOP_WAIT_MS cannot hold the caller:
 * the writer is cancelled in its write and the rest is dropped. Returns 0 when everything
 * was written, -ETIMEDOUT when lines were left behind; 0 when not started. Call once
 * every thread that logs has stopped or may log directly (the lines then go out as
 * before log_start). */
int log_stop(void);

/* Lines dropped since log_start because the buffer was full (thread-safe). */
uint64_t log_dropped(void);

#endif
