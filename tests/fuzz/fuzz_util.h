/* fuzz_util: helpers shared by the server harnesses (header-only, static inline).
 *
 * FZ_CHECK aborts with the failed condition, which libFuzzer reports as a crash and keeps
 * the input. The log capture puts the servers' stdout into a memfd so that each input's
 * log lines can be checked: one line per record and no raw control byte in any of them
 * (a client's text reaches the operator's terminal only escaped). */
#ifndef CHATBENCH_FUZZ_UTIL_H
#define CHATBENCH_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Sends stdout (the servers' log) to a memfd; FUZZ_VERBOSE=1 keeps it on the terminal. */
static inline int fz_log_capture(void)
{
    if (getenv("FUZZ_VERBOSE") != NULL)
        return -1;
    int fd = memfd_create("fuzz-log", 0);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
    return fd;
}

/* Checks what was logged since the last call; empties the capture now and then. */
static inline void fz_log_check(int fd)
{
    static off_t checked; /* bytes of the capture already checked */
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    FZ_CHECK(end >= checked);
    if (end == checked)
        return;
    size_t n = (size_t)(end - checked);
    unsigned char *buf = malloc(n);
    FZ_CHECK(buf != NULL);
    FZ_CHECK(pread(fd, buf, n, checked) == (ssize_t)n);
    FZ_CHECK(buf[0] == '[' && buf[n - 1] == '\n'); /* whole lines only */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = buf[i];
        if (ch == '\n') {
            FZ_CHECK(i + 1 == n || buf[i + 1] == '['); /* every line is "[TAG] ..." */
            continue;
        }
        if (ch < 0x20 || ch == 0x7F) {
            fprintf(stderr, "raw control byte 0x%02x in a log line: %.*s\n", ch, (int)n,
                    (const char *)buf);
            abort();
        }
    }
    free(buf);
    checked = end;
    if (end > (1 << 20)) { /* truncating costs page faults: only once it is large */
        FZ_CHECK(ftruncate(fd, 0) == 0);
        FZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
        checked = 0;
    }
}

/* A little-endian reader over the fuzzer's input. */
struct fz_in {
    const unsigned char *p;
    size_t left;
};

static inline unsigned fz_byte(struct fz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

/* Up to n bytes of payload; *got says how many there were. */
static inline const char *fz_bytes(struct fz_in *in, size_t n, size_t *got)
{
    const char *p = (const char *)in->p;
    *got = n < in->left ? n : in->left;
    in->p += *got;
    in->left -= *got;
    return p;
}

#endif
