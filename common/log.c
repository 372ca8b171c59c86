/* log: whole-line logging on stdout for the servers (see log.h). */
#include "log.h"

#include "proto.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool quiet_mode;

void log_set_quiet(bool quiet)
{
    atomic_store(&quiet_mode, quiet);
}

bool log_quiet(void)
{
    return atomic_load(&quiet_mode);
}

static void emit(const char *line, size_t len)
{
    pthread_mutex_lock(&log_lock);
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, line, len);
        if (n <= 0)
            break; /* best effort: a closed or full stdout must not stop the server */
        line += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&log_lock);
}

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
