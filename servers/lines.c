/* lines: LF framing of a TCP byte stream (see lines.h). */
#include "lines.h"

#include "proto.h"

#include <string.h>

enum lines_ev lines_next(struct lines *l, const char *buf, size_t len, size_t max, size_t *off,
                         size_t *start, size_t *line_len)
{
    if (*off >= len)
        return LINES_MORE; /* the common end: every byte of the read was a whole line */
    if (l->discarding) {
        const char *lf = memchr(buf + *off, '\n', len - *off);
        if (lf == NULL) {
            *off = len;
            return LINES_MORE;
        }
        *off = (size_t)(lf - buf) + 1;
        l->discarding = false;
    }
    size_t used = 0;
    int r = proto_next_line(buf + *off, len - *off, max, line_len, &used);
    if (r == 0)
        return LINES_MORE;
    if (r < 0) { /* once per line, then everything up to its LF is dropped */
        const char *lf = memchr(buf + *off, '\n', len - *off);
        if (lf == NULL) {
            l->discarding = true;
            *off = len;
        } else {
            *off = (size_t)(lf - buf) + 1;
        }
        return LINES_TOO_LONG;
    }
    *start = *off;
    *off += used;
    return LINES_LINE;
}
