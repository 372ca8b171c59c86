/* test_csv: summary rows: header written once, checked on append, column counts, number
 * formatting, JSON. Files live in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../loadgen/csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_csv.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/summary.csv", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void fill(struct lg_row *r, uint64_t sent)
{
    lg_row_clear(r);
    lg_row_str(r, "label", "run-1");
    lg_row_u64(r, "sent", sent);
    lg_row_i64(r, "delta", -3);
    lg_row_dbl(r, "ratio", 1.25);
    lg_row_dbl(r, "whole", 5.0);
    lg_row_dbl(r, "undefined", NAN);
}

static int read_lines(const char *path, char lines[][256], int max)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int n = 0;
    while (n < max && fgets(lines[n], 256, fp) != NULL)
        n++;
    fclose(fp);
    return n;
}

static int commas(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

static void test_header_once(void **state)
{
    struct fx *f = *state;
    struct lg_row r;
    lg_row_init(&r);
    fill(&r, 10);
    assert_int_equal(lg_csv_append(f->path, &r), 0);
    fill(&r, 20);
    assert_int_equal(lg_csv_append(f->path, &r), 0);
    char lines[8][256];
    int n = read_lines(f->path, lines, 8);
    assert_int_equal(n, 3);
    assert_string_equal(lines[0], "label,sent,delta,ratio,whole,undefined\n");
    assert_string_equal(lines[1], "run-1,10,-3,1.25,5,\n");
    assert_string_equal(lines[2], "run-1,20,-3,1.25,5,\n");
    for (int i = 1; i < n; i++)
        assert_int_equal(commas(lines[i]), commas(lines[0]));
    lg_row_destroy(&r);
}

static void test_other_header_refused(void **state)
{
    struct fx *f = *state;
    struct lg_row r;
    lg_row_init(&r);
    fill(&r, 1);
    assert_int_equal(lg_csv_append(f->path, &r), 0);
    lg_row_u64(&r, "extra", 9);
    assert_int_equal(lg_csv_append(f->path, &r), -EPROTO);
    char lines[8][256];
    assert_int_equal(read_lines(f->path, lines, 8), 2); /* nothing appended */
    lg_row_destroy(&r);
}

static void test_empty_file_gets_header(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fclose(fp);
    struct lg_row r;
    lg_row_init(&r);
    fill(&r, 7);
    assert_int_equal(lg_csv_append(f->path, &r), 0);
    char lines[8][256];
    assert_int_equal(read_lines(f->path, lines, 8), 2);
    assert_string_equal(lines[0], "label,sent,delta,ratio,whole,undefined\n");
    lg_row_destroy(&r);
}

static void test_many_columns_and_get(void **state)
{
    (void)state;
    struct lg_row r;
    lg_row_init(&r);
    char name[32];
    for (int i = 0; i < 300; i++) { /* past the first growth of the column array */
        snprintf(name, sizeof(name), "c%d", i);
        lg_row_u64(&r, name, (uint64_t)i * 3);
    }
    assert_int_equal(r.n, 300);
    assert_string_equal(lg_row_get(&r, "c299"), "897");
    assert_null(lg_row_get(&r, "nope"));
    lg_row_destroy(&r);
}

static void test_json(void **state)
{
    (void)state;
    struct lg_row r;
    lg_row_init(&r);
    fill(&r, 3);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    assert_int_equal(lg_row_write_json(&r, fp), 0);
    fclose(fp);
    assert_string_equal(buf, "{\"label\": \"run-1\", \"sent\": 3, \"delta\": -3, \"ratio\": 1.25, "
                             "\"whole\": 5, \"undefined\": null}\n");
    free(buf);
    lg_row_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_header_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_gets_header, setup, teardown),
        cmocka_unit_test(test_many_columns_and_get),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
