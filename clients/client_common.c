/* client_common: the clients' session: its state, start-up and the polite exit (see
 * client_common.h). */
#include "client_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_term.h"

/* --- session state --- */

bool cli_registered(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->registered;
    pthread_mutex_unlock(&s->lock);
    return r;
}

bool cli_bye_seen(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->bye_seen;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void cli_lost(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    s->registered = false;
    s->outstanding = 0; /* their ACKs will never come */
    pthread_mutex_unlock(&s->lock);
    cli_wake_main(s);
}

void cli_settled(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->outstanding > 0)
        s->outstanding--;
    pthread_mutex_unlock(&s->lock);
    cli_wake_main(s);
}

void cli_fatal(struct cli_session *s, int code, const char *msg)
{
    fprintf(stderr, "%s: %s\n", s->tp->prog, msg);
    atomic_store(&s->exit_code, code);
    atomic_store(&s->quit, true);
    cli_wake_main(s);
}

bool cli_stopping(struct cli_session *s)
{
    return cli_term_signalled() || atomic_load(&s->quit);
}

bool cli_stop_writes(void *session)
{
    return cli_stopping(session);
}

int cli_send_hello(struct cli_session *s)
{
    char frame[64];
    int n = proto_fmt_hello(frame, sizeof(frame), s->opt.id);
    return n < 0 ? -EINVAL : s->tp->send(s, frame, (size_t)n);
}

/* --- the exit --- */

static bool no_outstanding(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->outstanding == 0;
    pthread_mutex_unlock(&s->lock);
    return r;
}

static bool bye_or_lost(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->bye_seen || !s->registered;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Leaves politely: waits for ACKs (after EOF), says BYE, stops the receiver thread. After a
 * signal nothing here waits on the network: the BYE goes out only if the socket takes it
 * at once, and the receiver is told through the quit pipe (and tp->wake) where it blocks. */
static int finish(struct cli_session *s, bool drain)
{
    if (!cli_stopping(s)) {
        if (drain)
            (void)cli_term_wait(s, no_outstanding, CLI_DRAIN_MS);
        if (cli_registered(s) && s->tp->send(s, "BYE", 3) == 0)
            (void)cli_term_wait(s, bye_or_lost, CLI_BYE_WAIT_MS);
    } else if (cli_term_signalled() && cli_registered(s)) {
        (void)s->tp->send(s, "BYE", 3); /* best effort: the server times us out anyway */
    }
    atomic_store(&s->quit, true);
    char c = 'q';
    /* best effort: a full pipe is readable already */
    (void)!write(s->quit_fd[1], &c, 1);
    if (s->tp->wake != NULL)
        s->tp->wake(s);
    s->tp->stop(s);
    cli_term_finish(s);
    return atomic_load(&s->exit_code);
}

/* --- start-up --- */

/* A pipe whose read end never blocks (it is polled and drained) and whose write end does
 * not either when nonblock_wr: a signal handler or a receiver must never wait on it. */
static int make_pipe(int fds[2], bool nonblock_wr)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ||
        (nonblock_wr && fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0))
        return -errno;
    return 0;
}

/* Starts the receiver thread with our signals blocked, so they reach the main thread. */
static int start_transport(struct cli_session *s)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGWINCH);
    int rc = pthread_sigmask(SIG_BLOCK, &block, &old);
    if (rc != 0)
        return -rc;
    rc = s->tp->start(s);
    int rc2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc < 0 ? rc : -rc2;
}

int cli_main(int argc, char **argv, const struct cli_transport *tp)
{
    static struct cli_session sess; /* static: the receiver's scratch is large */
    struct cli_session *s = &sess;
    s->tp = tp;
    for (int i = 0; i < 2; i++)
        s->wake_fd[i] = s->out_fd[i] = s->quit_fd[i] = -1;
    int rc = cli_parse_args(argc, argv, tp, &s->opt);
    if (rc >= 0)
        return rc;
    s->tty = isatty(STDIN_FILENO) == 1;
    if (s->opt.id[0] == '\0') {
        if (!s->tty) {
            fprintf(stderr, "%s: --id is required when stdin is not a terminal (e.g. --id alice)\n",
                    tp->prog);
            return 2;
        }
        if (!cli_ask_id(&s->opt))
            return 2;
    }
    snprintf(s->room, sizeof(s->room), "%s", PROTO_DEFAULT_ROOM);
    s->next_seq = 1;
    s->main_thread = pthread_self();
    s->esc = malloc(4 * CLI_RECV_MAX + 1);
    if (s->esc == NULL || (rc = -pthread_mutex_init(&s->lock, NULL)) < 0 ||
        (rc = -pthread_mutex_init(&s->out_lock, NULL)) < 0 ||
        (rc = make_pipe(s->wake_fd, true)) < 0 || (rc = make_pipe(s->out_fd, true)) < 0 ||
        (rc = make_pipe(s->quit_fd, true)) < 0 || (rc = cli_term_start(s)) < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", tp->prog, strerror(rc < 0 ? -rc : ENOMEM));
        return 1;
    }

    cli_printf(s, "Cliente: %s", s->opt.id);
    rc = start_transport(s);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start the receiver: %s\n", tp->prog, strerror(-rc));
        return 1;
    }
    bool eof = cli_input_loop(s);
    rc = finish(s, eof);

    for (int i = 0; i < 2; i++) {
        close(s->wake_fd[i]);
        close(s->out_fd[i]);
        close(s->quit_fd[i]);
    }
    free(s->who);
    free(s->esc);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->out_lock);
    return rc;
}
