/* csv: rows of named columns, CSV with a header written once, JSON (see csv.h). */
#include "csv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

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

/* A value, quoted (its quotes doubled) when it holds a comma or a quote. */
static int put_field(FILE *f, const char *v)
{
    if (strpbrk(v, ",\"") == NULL)
        return fputs(v, f) == EOF ? -EIO : 0;
    if (fputc('"', f) == EOF)
        return -EIO;
    for (const char *p = v; *p != '\0'; p++)
        if ((*p == '"' && fputc('"', f) == EOF) || fputc(*p, f) == EOF)
            return -EIO;
    return fputc('"', f) == EOF ? -EIO : 0;
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
    /* released by fclose; the header check and the row happen as one step */
    if (flock(fileno(f), LOCK_EX) < 0) {
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
        if ((i > 0 && fputc(',', f) == EOF) || put_field(f, r->cols[i].value) < 0) {
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

/* --- reading --- */

/* Splits one line (no newline) into fields in place: *fields[i] point into line. Returns
 * the count, or -1 for a quote out of place. */
static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        if (*p == '"') { /* quoted: "" is a quote, the field ends at a lone quote */
            char *out = ++p;
            fields[n++] = out;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            *out = '\0';
            if (*p != ',' && *p != '\0')
                return -1;
        } else {
            fields[n++] = p;
            p += strcspn(p, ",\"");
            if (*p == '"')
                return -1;
        }
        if (*p == '\0')
            return n;
        *p++ = '\0';
    }
}

int lg_csv_read(const char *path, struct lg_row **rows, size_t *n, size_t *bad_line)
{
    int rc = 0;
    char *line = NULL, **names = NULL, **fields = NULL;
    char *header = NULL;
    size_t cap = 0, nrows = 0, caprows = 0, lineno = 0;
    int ncols = 0;
    struct lg_row *out = NULL;
    *rows = NULL;
    *n = 0;
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (got > 0 && line[got - 1] == '\n')
            line[--got] = '\0';
        if (lineno == 1) {
            ncols = 1;
            for (char *p = line; *p != '\0'; p++)
                ncols += *p == ',';
            header = strdup(line);
            names = calloc((size_t)ncols, sizeof(*names));
            fields = calloc((size_t)ncols + 1, sizeof(*fields));
            if (header == NULL || names == NULL || fields == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            if (split_fields(header, names, ncols) != ncols) {
                rc = -EPROTO;
                break;
            }
            continue;
        }
        if (split_fields(line, fields, ncols + 1) != ncols) {
            rc = -EPROTO;
            break;
        }
        if (nrows == caprows) {
            caprows = caprows ? caprows * 2 : 8;
            struct lg_row *r = realloc(out, caprows * sizeof(*r));
            if (r == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            out = r;
        }
        struct lg_row *r = &out[nrows++];
        lg_row_init(r);
        for (int i = 0; i < ncols; i++)
            lg_row_str(r, names[i], fields[i]);
        if (r->err != 0) {
            rc = r->err;
            goto out;
        }
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    if (rc == 0 && lineno == 0)
        rc = -EPROTO; /* not even a header */
out:
    if (rc < 0) {
        *bad_line = lineno;
        for (size_t i = 0; i < nrows; i++)
            lg_row_destroy(&out[i]);
        free(out);
    } else {
        *rows = out;
        *n = nrows;
    }
    (void)fclose(f); /* read-only: nothing to lose */
    free(line);
    free(header);
    free(names);
    free(fields);
    return rc;
}
