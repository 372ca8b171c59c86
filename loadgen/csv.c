/* csv: rows of named columns, CSV with a header written once, JSON (see csv.h). */
#include "csv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void lg_row_init(struct lg_row *r)
{
    memset(r, 0, sizeof(*r));
}

void lg_row_destroy(struct lg_row *r)
{
    free(r->cols);
    lg_row_init(r);
}

void lg_row_clear(struct lg_row *r)
{
    r->n = 0;
}

static struct lg_col *add(struct lg_row *r, const char *name)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct lg_col *c = realloc(r->cols, cap * sizeof(*c));
        if (c == NULL) {
            r->err = -ENOMEM;
            return NULL;
        }
        r->cols = c;
        r->cap = cap;
    }
    struct lg_col *c = &r->cols[r->n++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->is_str = false;
    return c;
}

void lg_row_u64(struct lg_row *r, const char *name, uint64_t v)
{
    struct lg_col *c = add(r, name);
    if (c != NULL)
        snprintf(c->value, sizeof(c->value), "%" PRIu64, v);
}

void lg_row_i64(struct lg_row *r, const char *name, int64_t v)
{
    struct lg_col *c = add(r, name);
    if (c != NULL)
        snprintf(c->value, sizeof(c->value), "%" PRId64, v);
}

void lg_row_dbl(struct lg_row *r, const char *name, double v)
{
    struct lg_col *c = add(r, name);
    if (c == NULL)
        return;
    if (v != v) { /* NaN: an undefined ratio; empty in CSV, null in JSON */
        c->value[0] = '\0';
        return;
    }
    snprintf(c->value, sizeof(c->value), "%.6f", v);
    /* trim trailing zeros: 5.000000 -> 5, 0.250000 -> 0.25 */
    char *dot = strchr(c->value, '.');
    if (dot != NULL) {
        char *end = c->value + strlen(c->value) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
}

void lg_row_str(struct lg_row *r, const char *name, const char *s)
{
    struct lg_col *c = add(r, name);
    if (c == NULL)
        return;
    snprintf(c->value, sizeof(c->value), "%s", s);
    c->is_str = true;
}

const char *lg_row_get(const struct lg_row *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            return r->cols[i].value;
    return NULL;
}

/* The header line (with LF) in a heap string, or NULL. */
static char *header_line(const struct lg_row *r)
{
    size_t len = 2;
    for (size_t i = 0; i < r->n; i++)
        len += strlen(r->cols[i].name) + 1;
    char *h = malloc(len);
    if (h == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t l = strlen(r->cols[i].name);
        if (i > 0)
            h[at++] = ',';
        memcpy(h + at, r->cols[i].name, l);
        at += l;
    }
    h[at++] = '\n';
    h[at] = '\0';
    return h;
}

int lg_csv_append(const char *path, const struct lg_row *r)
{
    if (r->err != 0)
        return r->err;
    int rc = 0;
    char *hdr = header_line(r);
    char *line = NULL;
    size_t cap = 0;
    FILE *f = NULL;
    if (hdr == NULL)
        return -ENOMEM;
    f = fopen(path, "a+");
    if (f == NULL) {
        rc = -errno;
        goto out;
    }
    if (fseek(f, 0, SEEK_SET) < 0) {
        rc = -errno;
        goto out;
    }
    ssize_t got = getline(&line, &cap, f);
    if (got > 0) {
        if (strcmp(line, hdr) != 0) {
            rc = -EPROTO;
            goto out;
        }
    } else if (fputs(hdr, f) == EOF) {
        rc = -EIO;
        goto out;
    }
    /* "a+" appends every write at the end, whatever the read position */
    for (size_t i = 0; i < r->n; i++) {
        if ((i > 0 && fputc(',', f) == EOF) || fputs(r->cols[i].value, f) == EOF) {
            rc = -EIO;
            goto out;
        }
    }
    if (fputc('\n', f) == EOF)
        rc = -EIO;
out:
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = -errno;
    free(line);
    free(hdr);
    return rc;
}

int lg_row_write_json(const struct lg_row *r, FILE *f)
{
    if (r->err != 0)
        return r->err;
    int bad = fputc('{', f) == EOF;
    for (size_t i = 0; i < r->n && !bad; i++) {
        const struct lg_col *c = &r->cols[i];
        const char *v = c->value[0] == '\0' && !c->is_str ? "null" : c->value;
        bad = fprintf(f, "%s\"%s\": %s%s%s", i ? ", " : "", c->name, c->is_str ? "\"" : "", v,
                      c->is_str ? "\"" : "") < 0;
    }
    if (bad || fputs("}\n", f) == EOF)
        return -EIO;
    return 0;
}
