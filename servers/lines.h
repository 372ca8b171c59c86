/* lines: LF-framed input on the servers' TCP connections (tcp_server's clients, the hybrid
 * control connections): one frame per line, CR LF accepted, and a line longer than
 * --max-frame answered once with ERR too_long and skipped up to its LF, however many reads
 * it spans (PROTOCOL.md, "Framing"). No I/O and no allocation here: the caller reads into
 * its buffer and keeps what is left of an unfinished line. */
#ifndef CHATBENCH_LINES_H
#define CHATBENCH_LINES_H

#include <stdbool.h>
#include <stddef.h>

enum lines_ev {
    LINES_MORE,     /* no whole line left: buf[*off..len) is the start of an unfinished one */
    LINES_LINE,     /* a line: buf[*start..*start + *line_len), terminator removed */
    LINES_TOO_LONG, /* a line longer than max: answer it; its bytes are being skipped */
};

/* Framing state of one connection. */
struct lines {
    bool discarding; /* inside a too long line: drop bytes up to the next LF */
};

/* The next event in buf[*off..len), advancing *off past what it consumed. A caller loops
 * until LINES_MORE, then keeps buf[*off..len) (at most max + 1 bytes) for the next read. */
enum lines_ev lines_next(struct lines *l, const char *buf, size_t len, size_t max, size_t *off,
                         size_t *start, size_t *line_len);

#endif
