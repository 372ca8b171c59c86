/* client_term: signals, readline, output and the input loop of the clients (see
 * client_term.h). */
#include "client_term.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "client_cmds.h"
#include "clock.h"
#include "net.h"

/* --- process-wide state: readline callbacks and signal handlers take no user pointer --- */

static atomic_int g_signal;              /* the signal that asked us to stop (lock-free) */
static atomic_int g_wake_wr = -1;        /* write end of the session's wake pipe */
static struct cli_session *g_rl_session; /* main thread only */
static bool g_rl_installed;              /* main thread only: callback handler active */
static bool g_in_rl_handler;             /* main thread only: inside on_rl_line */
static bool g_input_eof;                 /* main thread only */
static bool g_want_quit;                 /* main thread only: /quit typed */

static void on_signal(int sig)
{
    int saved = errno;
    atomic_store(&g_signal, sig);
    int fd = atomic_load(&g_wake_wr);
    if (fd >= 0) {
        char c = 's';
        /* best effort: a full pipe already wakes the main thread */
        (void)!write(fd, &c, 1);
    }
    errno = saved;
}

int cli_term_start(struct cli_session *s)
{
    atomic_store(&g_wake_wr, s->wake_fd[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a blocked poll(2) or send(2) of the main thread returns EINTR, and
     * the main thread's waits (net_write_until, cli_term_wait) then see the signal */
    sa.sa_handler = on_signal;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) < 0 ? -errno : 0;
}

bool cli_term_signalled(void)
{
    return atomic_load(&g_signal) != 0;
}

void cli_wake_main(struct cli_session *s)
{
    char c = 'w';
    /* best effort: a full pipe already wakes the main thread */
    (void)!write(s->wake_fd[1], &c, 1);
}

/* --- output --- */

/* Main thread, readline mode: prints above the prompt and redraws the partial input. */
static void tty_show(const char *line)
{
    if (g_rl_installed && !g_in_rl_handler) {
        rl_clear_visible_line();
        printf("%s\n", line);
        fflush(stdout);
        rl_on_new_line();
        rl_redisplay();
    } else {
        printf("%s\n", line);
        fflush(stdout);
    }
}

void cli_printf(struct cli_session *s, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return; /* out of memory: the line is lost, the chat goes on */
    if (s->tty && pthread_equal(pthread_self(), s->main_thread)) {
        tty_show(line);
    } else if (s->tty) {
        /* only the receiver thread writes here, so lines never interleave */
        line[n] = '\n';
        char *grown = realloc(line, (size_t)n + 2);
        if (grown != NULL) {
            line = grown;
            line[n + 1] = '\0';
            /* the main thread reads it; best effort once the session ends */
            (void)net_write_until(s->out_fd[1], line, (size_t)n + 1, cli_stop_writes, s);
        }
    } else {
        pthread_mutex_lock(&s->out_lock);
        /* best effort: a closed stdout must not stop the chat */
        (void)fputs(line, stdout);
        (void)fputc('\n', stdout);
        (void)fflush(stdout);
        pthread_mutex_unlock(&s->out_lock);
    }
    free(line);
}

static void drain_fd(int fd)
{
    char tmp[256];
    while (read(fd, tmp, sizeof(tmp)) > 0)
        ;
}

/* Readline mode: shows the complete lines the receiver thread wrote to out_fd. */
static void show_pending_output(struct cli_session *s)
{
    static char buf[4 * CLI_RECV_MAX + 256];
    static size_t len;
    for (;;) {
        ssize_t n = read(s->out_fd[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break; /* EAGAIN: all read; EOF cannot happen while we hold the write end */
        len += (size_t)n;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', len - (size_t)(start - buf))) != NULL) {
            *nl = '\0';
            tty_show(start);
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
        if (len == sizeof(buf) - 1) { /* cannot happen: cli_printf lines are shorter */
            buf[len] = '\0';
            tty_show(buf);
            len = 0;
        }
    }
}

bool cli_term_wait(struct cli_session *s, bool (*done)(struct cli_session *), int timeout_ms)
{
    uint64_t end = clock_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    while (!done(s)) {
        if (cli_stopping(s))
            return false;
        int left = 100;
        if (timeout_ms >= 0) {
            uint64_t now = clock_now_ms();
            if (now >= end)
                return false;
            left = end - now < 100 ? (int)(end - now) : 100;
        }
        struct pollfd p[2] = {{s->wake_fd[0], POLLIN, 0}, {s->out_fd[0], POLLIN, 0}};
        int n = poll(p, s->tty ? 2 : 1, left);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && (p[0].revents & POLLIN))
            drain_fd(s->wake_fd[0]);
        if (n > 0 && s->tty && (p[1].revents & POLLIN))
            show_pending_output(s);
    }
    return true;
}

/* --- input --- */

static void on_rl_line(char *line)
{
    struct cli_session *s = g_rl_session;
    if (line == NULL) {
        g_input_eof = true;
        return;
    }
    if (*line != '\0')
        add_history(line);
    g_in_rl_handler = true;
    if (!cli_handle_line(s, line, strlen(line)))
        g_want_quit = true;
    g_in_rl_handler = false;
    free(line);
}

/* Line mode: feeds complete stdin lines to cli_handle_line. Returns false on /quit. */
static bool feed_lines(struct cli_session *s, char *buf, size_t *len, bool *skipping, bool eof)
{
    size_t line_len, used;
    for (;;) {
        int r = proto_next_line(buf, *len, CLI_MAX_FRAME, &line_len, &used);
        if (r == 0 && eof && *len > 0) { /* a last line without LF */
            line_len = used = *len;
            r = 1;
        }
        if (r == 0)
            return true;
        if (r < 0) { /* longer than any frame: drop it up to its LF */
            if (!*skipping)
                cli_printf(s, "* linha longa demais, descartada");
            *skipping = true;
            *len = 0;
            return true;
        }
        bool keep = *skipping || cli_handle_line(s, buf, line_len);
        *skipping = false;
        memmove(buf, buf + used, *len - used);
        *len -= used;
        if (!keep)
            return false;
        if (cli_stopping(s))
            return true;
    }
}

bool cli_input_loop(struct cli_session *s)
{
    static char buf[2 * CLI_MAX_FRAME + 2];
    size_t len = 0;
    bool skipping = false;
    if (s->tty) {
        g_rl_session = s;
        rl_catch_signals = 0; /* our handlers stop cleanly; readline restores the tty */
        rl_callback_handler_install("> ", on_rl_line);
        g_rl_installed = true;
    }
    while (!cli_stopping(s) && !g_want_quit && !g_input_eof) {
        struct pollfd p[3] = {
            {STDIN_FILENO, POLLIN, 0}, {s->wake_fd[0], POLLIN, 0}, {s->out_fd[0], POLLIN, 0}};
        int n = poll(p, s->tty ? 3 : 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_fatal(s, 1, strerror(errno));
            break;
        }
        if (p[1].revents & POLLIN)
            drain_fd(s->wake_fd[0]);
        if (s->tty && (p[2].revents & POLLIN))
            show_pending_output(s);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (s->tty) {
            rl_callback_read_char();
            continue;
        }
        ssize_t r = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            g_input_eof = true;
            (void)feed_lines(s, buf, &len, &skipping, true);
            break;
        }
        len += (size_t)r;
        if (!feed_lines(s, buf, &len, &skipping, false))
            g_want_quit = true;
    }
    return g_input_eof && !cli_stopping(s);
}

void cli_term_finish(struct cli_session *s)
{
    if (s->tty) {
        show_pending_output(s);
        if (g_rl_installed) {
            rl_clear_visible_line();
            rl_callback_handler_remove(); /* restores the terminal */
            g_rl_installed = false;
        }
    }
    atomic_store(&g_wake_wr, -1);
}
