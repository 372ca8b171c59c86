/* log: the servers' log lines through a bounded buffer and one writer thread (see log.h). */
#include "log.h"

#include "net.h"
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* After a quiet spell the writer gathers lines this long before it writes: at a high rate
 * one write(2) and one wake-up carry many lines; an operator sees a line 5 ms late. */
#define LOG_GATHER_MS 5
/* At most this much per write(2), so that room comes back while a slow reader reads. */
#define LOG_WRITE_CHUNK 65536
#define LOG_MIN_CAPACITY 256
#define LOG_WARN_MAX 64 /* "[WARN] <20 digits> linhas de log descartadas\n" */

enum log_writer_state {
    LOG_W_BUSY,   /* writing, or about to: nobody needs to wake it */
    LOG_W_IDLE,   /* waiting for a line: the next line wakes it */
    LOG_W_GATHER, /* woken, gathering more: only a half-full buffer wakes it early */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* the writer waits here: lines, stop, or a buffer filling up */
    pthread_cond_t done;         /* log_stop waits here for the writer to leave its loop */
    int fd;                      /* guarded by lock; constant while running */
    bool running;                /* guarded by lock: lines go to the buffer, not to write(2) */
    bool stopping;               /* guarded by lock: log_stop asked the writer to finish */
    bool exited;                 /* guarded by lock: the writer has left its loop */
    enum log_writer_state state; /* guarded by lock */
    /* The queued lines are buf[head .. head+len) modulo cap. Producers copy only into the
     * free part, so the writer writes its chunk from the buffer without holding the lock. */
    char *buf;        /* guarded by lock */
    size_t cap;       /* guarded by lock */
    size_t head, len; /* guarded by lock */
    uint64_t gap;     /* guarded by lock: lines dropped since the last warning was queued */
    uint64_t dropped; /* guarded by lock: lines dropped since log_start */
    pthread_t thread; /* log_start and log_stop only (one thread, the main one) */
} log_st = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = STDOUT_FILENO};

static atomic_bool quiet_mode;
static atomic_bool abandon; /* log_stop stopped waiting: the writer drops what is left */

void log_set_quiet(bool quiet)
{
    atomic_store(&quiet_mode, quiet);
}

bool log_quiet(void)
{
    return atomic_load(&quiet_mode);
}

/* --- the buffer (all under log_st.lock) --- */

static size_t room(void)
{
    return log_st.cap - log_st.len;
}

/* Copies n bytes behind the queued ones; the caller checked room(). */
static void put(const char *p, size_t n)
{
    size_t tail = (log_st.head + log_st.len) % log_st.cap;
    size_t first = n < log_st.cap - tail ? n : log_st.cap - tail;
    memcpy(log_st.buf + tail, p, first);
    memcpy(log_st.buf, p + first, n - first);
    log_st.len += n;
}

static size_t fmt_warning(char *out, uint64_t gap)
{
    int n = snprintf(out, LOG_WARN_MAX, "[WARN] %" PRIu64 " linhas de log descartadas\n", gap);
    return n < 0 ? 0 : (size_t)n;
}

/* Queues the warning for the lines dropped so far, if it fits; it stands where they
 * would have been, and the lines after it are later events. */
static void queue_gap(void)
{
    char warn[LOG_WARN_MAX];
    size_t n = log_st.gap > 0 ? fmt_warning(warn, log_st.gap) : 0;
    if (n == 0 || room() < n)
        return;
    put(warn, n);
    log_st.gap = 0;
}

static void wake_writer(void)
{
    if (log_st.state == LOG_W_IDLE ||
        (log_st.state == LOG_W_GATHER && log_st.len >= log_st.cap / 2)) {
        log_st.state = LOG_W_BUSY;
        pthread_cond_signal(&log_st.wake);
    }
}

/* Queues one whole line, or drops it and counts it: a line never waits for the output. */
static void enqueue(const char *line, size_t len)
{
    char warn[LOG_WARN_MAX];
    size_t wn = log_st.gap > 0 ? fmt_warning(warn, log_st.gap) : 0;
    if (room() < wn + len) {
        log_st.gap++;
        log_st.dropped++;
        return;
    }
    if (wn > 0) {
        put(warn, wn);
        log_st.gap = 0;
    }
    put(line, len);
    wake_writer();
}

static void emit(const char *line, size_t len)
{
    pthread_mutex_lock(&log_st.lock);
    if (log_st.running)
        enqueue(line, len);
    else /* best effort: a closed or full stdout must not stop the server */
        (void)net_write_all(log_st.fd, line, len);
    pthread_mutex_unlock(&log_st.lock);
}

/* --- the writer thread --- */

static struct timespec deadline_in(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Woken by a first line: lets a few more arrive so that one write carries them all. */
static void gather(void)
{
    if (log_st.stopping || log_st.len >= log_st.cap / 2)
        return;
    struct timespec end = deadline_in(LOG_GATHER_MS);
    log_st.state = LOG_W_GATHER;
    while (log_st.state == LOG_W_GATHER && !log_st.stopping) {
        if (pthread_cond_timedwait(&log_st.wake, &log_st.lock, &end) == ETIMEDOUT)
            break;
    }
    log_st.state = LOG_W_BUSY;
}

static bool writer_gives_up(void *arg)
{
    (void)arg;
    return atomic_load(&abandon);
}

static void *log_writer(void *arg)
{
    (void)arg;
    /* cancellable only inside its write: log_stop's way out of an output that never drains */
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_mutex_lock(&log_st.lock);
    for (;;) {
        queue_gap();
        if (log_st.len == 0) {
            if (log_st.stopping)
                break;
            log_st.state = LOG_W_IDLE;
            while (log_st.state == LOG_W_IDLE && !log_st.stopping)
                pthread_cond_wait(&log_st.wake, &log_st.lock);
            gather();
            continue;
        }
        size_t n = log_st.cap - log_st.head;
        n = n < log_st.len ? n : log_st.len;
        n = n < LOG_WRITE_CHUNK ? n : LOG_WRITE_CHUNK;
        const char *p = log_st.buf + log_st.head;
        int fd = log_st.fd;
        pthread_mutex_unlock(&log_st.lock);
        (void)pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        /* best effort: an output that fails (closed, EPIPE, a full disk) loses these lines
         * as a direct write would; the chat goes on */
        (void)net_write_until(fd, p, n, writer_gives_up, NULL);
        (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_mutex_lock(&log_st.lock);
        log_st.head = (log_st.head + n) % log_st.cap;
        log_st.len -= n;
    }
    log_st.exited = true;
    pthread_cond_broadcast(&log_st.done);
    pthread_mutex_unlock(&log_st.lock);
    return NULL;
}

/* --- start and stop --- */

static int init_conds(void)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return -rc;
    if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0 &&
        (rc = pthread_cond_init(&log_st.wake, &ca)) == 0 &&
        (rc = pthread_cond_init(&log_st.done, &ca)) != 0)
        pthread_cond_destroy(&log_st.wake);
    pthread_condattr_destroy(&ca);
    return -rc;
}

int log_start(int fd, size_t capacity)
{
    if (capacity == 0)
        capacity = LOG_BUFFER_DEFAULT;
    if (capacity < LOG_MIN_CAPACITY || fd < 0)
        return -EINVAL;
    char *buf = malloc(capacity);
    if (buf == NULL)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&log_st.lock);
    if (log_st.running) {
        rc = -EALREADY;
        goto out;
    }
    if ((rc = init_conds()) < 0)
        goto out;
    /* the writer takes no signal: the servers handle theirs in chosen threads */
    sigset_t all, old;
    sigfillset(&all);
    if ((rc = -pthread_sigmask(SIG_SETMASK, &all, &old)) == 0) {
        rc = -pthread_create(&log_st.thread, NULL, log_writer, NULL);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL); /* restores what it replaced */
    }
    if (rc < 0) {
        pthread_cond_destroy(&log_st.wake);
        pthread_cond_destroy(&log_st.done);
        goto out;
    }
    log_st.fd = fd;
    log_st.buf = buf;
    buf = NULL;
    log_st.cap = capacity;
    log_st.head = log_st.len = 0;
    log_st.gap = log_st.dropped = 0;
    log_st.state = LOG_W_BUSY;
    log_st.stopping = log_st.exited = false;
    log_st.running = true;
out:
    pthread_mutex_unlock(&log_st.lock);
    free(buf);
    return rc;
}

int log_stop(void)
{
    pthread_mutex_lock(&log_st.lock);
    if (!log_st.running) {
        pthread_mutex_unlock(&log_st.lock);
        return 0;
    }
    log_st.stopping = true;
    pthread_cond_signal(&log_st.wake);
    struct timespec end = deadline_in(LOG_STOP_WAIT_MS);
    while (!log_st.exited) {
        if (pthread_cond_timedwait(&log_st.done, &log_st.lock, &end) == ETIMEDOUT)
            break;
    }
    bool stuck = !log_st.exited;
    pthread_mutex_unlock(&log_st.lock);
    if (stuck) {
        /* it is inside its write: a socket or a non-blocking fd lets it give up by itself,
         * a blocking pipe or terminal only lets it be cancelled (the one place it may be) */
        atomic_store(&abandon, true);
        (void)pthread_cancel(log_st.thread);
    }
    pthread_join(log_st.thread, NULL);
    atomic_store(&abandon, false);

    pthread_mutex_lock(&log_st.lock);
    int rc = log_st.len > 0 || log_st.gap > 0 ? -ETIMEDOUT : 0;
    free(log_st.buf);
    log_st.buf = NULL;
    log_st.cap = log_st.head = log_st.len = 0;
    log_st.gap = 0;
    log_st.running = false;
    log_st.fd = STDOUT_FILENO;
    pthread_cond_destroy(&log_st.wake);
    pthread_cond_destroy(&log_st.done);
    pthread_mutex_unlock(&log_st.lock);
    return rc;
}

uint64_t log_dropped(void)
{
    pthread_mutex_lock(&log_st.lock);
    uint64_t n = log_st.dropped;
    pthread_mutex_unlock(&log_st.lock);
    return n;
}

/* --- the lines --- */

void log_line(const char *tag, const char *fmt, ...)
{
    char line[LOG_LINE_MAX + 8];
    int head = snprintf(line, sizeof(line), "[%s] ", tag);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)head + (n < 0 ? 0 : (size_t)n);
    if (len > LOG_LINE_MAX) {
        memcpy(line + LOG_LINE_MAX - 3, "...", 3);
        len = LOG_LINE_MAX;
    }
    line[len++] = '\n';
    emit(line, len);
}

void log_message(const char *id, const char *text, size_t len)
{
    if (log_quiet())
        return;
    char esc[LOG_LINE_MAX - 64];
    proto_escape(text, len, esc, sizeof(esc));
    log_line("MESSAGE", "%s : \"%s\"", id, esc);
}
