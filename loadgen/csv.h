/* csv: named columns for one row, and appending rows to a CSV file whose header is written
 * once (when the file is new or empty) and checked afterwards.
 *
 * A struct lg_row is an ordered list of (name, value) pairs; the same row feeds the CSV and
 * the JSON summary. Values are formatted when added. Not thread-safe; one owner. */
#ifndef CHATBENCH_LG_CSV_H
#define CHATBENCH_LG_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LG_COL_NAME 40
#define LG_COL_VALUE 80

struct lg_col {
    char name[LG_COL_NAME];
    char value[LG_COL_VALUE];
    bool is_str; /* JSON: quote it */
};

struct lg_row {
    struct lg_col *cols;
    size_t n, cap;
    int err; /* first allocation failure, reported by lg_row_* users at write time */
};

void lg_row_init(struct lg_row *r);
void lg_row_destroy(struct lg_row *r);
void lg_row_clear(struct lg_row *r);
void lg_row_u64(struct lg_row *r, const char *name, uint64_t v);
void lg_row_i64(struct lg_row *r, const char *name, int64_t v);
/* Doubles are written with up to 6 significant decimals after the point ("%.6g" would
 * switch to exponents for large values, which spreadsheets read badly). */
void lg_row_dbl(struct lg_row *r, const char *name, double v);
/* s must not contain newlines; a value with commas or quotes is quoted in the CSV. */
void lg_row_str(struct lg_row *r, const char *name, const char *s);
/* The value of column name, or NULL. */
const char *lg_row_get(const struct lg_row *r, const char *name);

/* Appends the row's values to path. Writes the header first when the file does not exist
 * or is empty; when it exists with a different header, writes nothing and returns
 * -EPROTO. Several processes may append to one file at once (the shards of a run sharing a
 * directory): each append holds an exclusive flock on it. Returns 0 or -errno. */
int lg_csv_append(const char *path, const struct lg_row *r);

/* Reads every row of a CSV file written by lg_csv_append (RFC 4180 quoting, one line per
 * row) into *rows (*n of them; free each with lg_row_destroy, then the array). A row whose
 * field count differs from the header's is refused. Returns 0, -ENOENT, -EPROTO (not such a
 * file, with the line number in *bad_line) or -ENOMEM. */
int lg_csv_read(const char *path, struct lg_row **rows, size_t *n, size_t *bad_line);

/* Writes the row as one JSON object on f, with a trailing newline. Returns 0 or -errno. */
int lg_row_write_json(const struct lg_row *r, FILE *f);

#endif
