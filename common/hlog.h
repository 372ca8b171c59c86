/* hlog: HdrHistogram's interval log (format version 1.3, as HistogramLogWriter writes it) and
 * its "V2 compressed" histogram encoding, for struct hist, whose bucket layout is
 * HdrHistogram's own: what we write, HistogramLogReader, HistogramLogAnalyzer and the
 * HdrHistogram libraries read, and the reverse.
 *
 * A histogram is encoded as HdrHistogram's V2 encoding (a 40-byte big-endian header, then the
 * counts up to the maximum's index as ZigZag LEB128 numbers, a run of zeros as one negative
 * number), zlib-compressed behind an 8-byte header, then base64. A log is text: "#" comment
 * lines (the format version, "#[StartTime: <unix s> ...]", "#[BaseTime: ...]"), a legend, and
 * one line per interval and tag: "Tag=<tag>,<start s>,<length s>,<max>,<base64>", start
 * relative to BaseTime.
 *
 * Pure apart from the FILE given to the writers: no global state, thread-safe. Returns 0 or a
 * negative errno, never prints or exits. */
#ifndef CHATBENCH_HLOG_H
#define CHATBENCH_HLOG_H

#include <stddef.h>
#include <stdio.h>

#include "hist.h"

#define HLOG_TAG_MAX 64 /* bytes of a tag, NUL included */

/* Encodes h (base64 of the compressed V2 encoding) into a NUL-terminated heap string in *out
 * (the caller frees it), its length in *len. Returns 0, -ENOMEM, or -EIO when zlib fails. */
int hlog_encode(const struct hist *h, char **out, size_t *len);

/* Decodes len bytes of base64 (a compressed V2 histogram) and adds its counts into h
 * (hist_add_counts: min, max and mean to the histogram's precision). The encoded layout must
 * be h's (lowest, highest, significant figures), else -EINVAL; malformed input: -EINVAL,
 * and h is unchanged. */
int hlog_decode(struct hist *h, const char *b64, size_t len);

/* Writes the log's head: a comment line, the format version, StartTime and BaseTime (both
 * start_unix: interval start times are relative to it) and the legend. */
int hlog_write_head(FILE *f, const char *comment, double start_unix);

/* Writes one interval line for tag (1..HLOG_TAG_MAX-1 bytes, no comma, space or line break),
 * starting start_s seconds after BaseTime and lasting length_s, its maximum divided by
 * max_ratio (HistogramLogWriter's default is 1e6: nanoseconds shown as milliseconds). */
int hlog_write_interval(FILE *f, const char *tag, double start_s, double length_s,
                        const struct hist *h, double max_ratio);

/* One interval line, parsed in place: tag ("" when absent) and the base64 point into the
 * caller's line. */
struct hlog_interval {
    char tag[HLOG_TAG_MAX];
    double start_s, length_s, max;
    const char *b64;
    size_t b64_len;
};

/* Parses one line (without its newline). Returns 1 for an interval line, 0 for a comment,
 * legend or blank line (*start_unix set when it is "#[StartTime: ..."), -EINVAL otherwise. */
int hlog_parse_line(const char *line, struct hlog_interval *out, double *start_unix);

#endif
