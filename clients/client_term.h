/* client_term: the clients' terminal side, main thread: signals, GNU readline on a terminal
 * (plain lines otherwise), output that never garbles the line being typed, the input loop
 * and the waits that keep showing output. */
#ifndef CHATBENCH_CLIENT_TERM_H
#define CHATBENCH_CLIENT_TERM_H

#include <stdbool.h>

#include "client_common.h"

/* Installs the handlers of SIGINT, SIGTERM and SIGHUP (they end the session and wake the
 * main thread through s->wake_fd) and ignores SIGPIPE. Main thread, at start. 0 or -errno. */
int cli_term_start(struct cli_session *s);

/* A signal asked the client to stop. Any thread. */
bool cli_term_signalled(void);

/* Prints one line for the user; any thread. Never blocks on the network. */
void cli_printf(struct cli_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes the main thread look at the session again (a frame arrived, the link changed).
 * Any thread; never blocks. */
void cli_wake_main(struct cli_session *s);

/* Main thread: waits (showing output) until done(s) is true, the session stops, or
 * timeout_ms passes (negative: no limit). Returns done(s). */
bool cli_term_wait(struct cli_session *s, bool (*done)(struct cli_session *), int timeout_ms);

/* Main thread: reads lines (readline on a terminal) and hands them to cli_handle_line until
 * EOF, /quit or a stop. Returns true when input ended (EOF) with the session still on. */
bool cli_input_loop(struct cli_session *s);

/* Main thread, at exit, after the receiver stopped: shows what it left and gives the
 * terminal back as it was. */
void cli_term_finish(struct cli_session *s);

#endif
