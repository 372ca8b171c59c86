/* test_csv: summary rows: header written once, checked on append, column counts, number
 * formatting, quoting, JSON, reading back, and appends from several processes at once.
 * Files live in a fresh temporary directory. */
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
#include <sys/wait.h>
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

/* A value with a comma (a CPU list) is quoted, and reads back whole. */
static void test_quoting_and_reading_back(void **state)
{
    struct fx *f = *state;
    struct lg_row r;
    lg_row_init(&r);
    fill(&r, 10);
    lg_row_str(&r, "cpus", "0,2-3");
    lg_row_str(&r, "said", "a \"quote\"");
    assert_int_equal(lg_csv_append(f->path, &r), 0);
    char lines[8][256];
    assert_int_equal(read_lines(f->path, lines, 8), 2);
    assert_string_equal(lines[1], "run-1,10,-3,1.25,5,,\"0,2-3\",\"a \"\"quote\"\"\"\n");
    struct lg_row *rows = NULL;
    size_t n = 0, bad = 0;
    assert_int_equal(lg_csv_read(f->path, &rows, &n, &bad), 0);
    assert_int_equal(n, 1);
    assert_string_equal(lg_row_get(&rows[0], "cpus"), "0,2-3");
    assert_string_equal(lg_row_get(&rows[0], "said"), "a \"quote\"");
    assert_string_equal(lg_row_get(&rows[0], "sent"), "10");
    assert_string_equal(lg_row_get(&rows[0], "undefined"), "");
    lg_row_destroy(&rows[0]);
    free(rows);
    lg_row_destroy(&r);
    /* a row with a field too many, or a stray quote: refused, with its line */
    FILE *fp = fopen(f->path, "a");
    assert_non_null(fp);
    fputs("run-2,1,2,3,4,5,6,7,8\n", fp);
    fclose(fp);
    assert_int_equal(lg_csv_read(f->path, &rows, &n, &bad), -EPROTO);
    assert_int_equal(bad, 3);
    assert_int_equal(lg_csv_read("/nonexistent/summary.csv", &rows, &n, &bad), -ENOENT);
}

/* Shards sharing a directory append at once: one header, every row whole. */
static void test_concurrent_appends(void **state)
{
    struct fx *f = *state;
    enum { PROCS = 4, ROWS = 200 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct lg_row r;
            lg_row_init(&r);
            char name[16];
            int rc = 0;
            for (int i = 0; i < ROWS && rc == 0; i++) {
                lg_row_clear(&r);
                lg_row_u64(&r, "proc", (uint64_t)p);
                for (int c = 0; c < 400; c++) { /* past stdio's 4 KiB: several writes */
                    snprintf(name, sizeof(name), "col%d", c);
                    lg_row_u64(&r, name, 1000000000000ull + (uint64_t)i);
                }
                rc = lg_csv_append(f->path, &r);
            }
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        assert_true(wait(&st) > 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct lg_row *rows = NULL;
    size_t n = 0, bad = 0;
    assert_int_equal(lg_csv_read(f->path, &rows, &n, &bad), 0);
    assert_int_equal(n, PROCS * ROWS);
    int per[PROCS] = {0};
    for (size_t i = 0; i < n; i++) {
        per[atoi(lg_row_get(&rows[i], "proc"))]++;
        assert_int_equal(strlen(lg_row_get(&rows[i], "col399")), 13);
        lg_row_destroy(&rows[i]);
    }
    free(rows);
    for (int p = 0; p < PROCS; p++)
        assert_int_equal(per[p], ROWS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_header_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_gets_header, setup, teardown),
        cmocka_unit_test(test_many_columns_and_get),
        cmocka_unit_test(test_json),
        cmocka_unit_test_setup_teardown(test_quoting_and_reading_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
