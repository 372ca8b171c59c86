/* client_common: what tcp_client and udp_client share: options, the input loop (GNU readline
 * on a terminal, plain lines otherwise), printing of server frames, commands and the
 * reconnect backoff. Each transport plugs in through struct cli_transport (iperf style).
 *
 * Threads: the main thread owns stdin, the terminal and the exit path; each transport runs
 * one receiver thread that reads the network, calls cli_handle_frame and reconnects. */
#ifndef CHATBENCH_CLIENT_COMMON_H
#define CHATBENCH_CLIENT_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define CLI_MAX_FRAME PROTO_MAX_FRAME_DEFAULT     /* the largest frame this client sends */
#define CLI_RECV_MAX (PROTO_MAX_FRAME_LIMIT + 64) /* the largest frame it accepts */
#define CLI_BACKOFF_MIN_MS 100u
#define CLI_BACKOFF_MAX_MS 5000u
#define CLI_DRAIN_MS 2000u    /* after EOF on stdin: how long to wait for missing ACKs */
#define CLI_BYE_WAIT_MS 1000u /* after BYE: how long to wait for the server's BYE */

struct cli_session;

/* One transport behind the shared client. Every function gets the session. */
struct cli_transport {
    const char *prog;      /* "tcp_client" */
    const char *name;      /* "TCP" */
    uint16_t default_port; /* 5000 / 5001 */
    bool has_ping;         /* accepts --ping-interval */
    bool has_compress;     /* accepts --compress */
    bool has_hybrid;       /* accepts --hybrid and --control-port (udp_client) */
    /* Starts the receiver thread (signals are already blocked for it). 0 or -errno. */
    int (*start)(struct cli_session *s);
    /* Sends one frame (no terminator); thread-safe. 0, -ENOTCONN, or another -errno. */
    int (*send)(struct cli_session *s, const char *frame, size_t len);
    /* Makes the receiver thread notice s->quit promptly. Main thread, once, at exit. */
    void (*wake)(struct cli_session *s);
    /* Joins the receiver thread and frees what start allocated. Main thread, once. */
    void (*stop)(struct cli_session *s);
};

struct cli_opts {
    const char *host;
    uint16_t port;
    char id[PROTO_ID_MAX + 1];
    double ping_interval_s;    /* udp only */
    bool compress;             /* udp only */
    bool hybrid;               /* udp only: TCP control connection + tokened datagrams */
    bool port_set;             /* --port was given */
    uint16_t control_port;     /* hybrid: the server's TCP control port (default 5002) */
    unsigned long max_retries; /* 0: retry forever */
};

/* Exponential backoff with +-50% jitter; owned by one thread. */
struct cli_backoff {
    uint32_t next_ms;       /* the next delay before jitter */
    unsigned long failures; /* consecutive failed attempts since the last success */
    unsigned int rng;       /* rand_r state */
};

/* One WHO row being collected until USERS arrives (receiver thread only). */
struct cli_who_row {
    char id[4 * PROTO_ID_MAX + 1];
    char addr[4 * 24 + 1];
    char room[4 * PROTO_ID_MAX + 1];
};

struct cli_session {
    struct cli_opts opt;
    const struct cli_transport *tp;
    void *tp_data; /* the transport's own state */
    bool tty;      /* stdin is a terminal: readline mode */

    pthread_mutex_t lock;
    bool registered;             /* guarded by lock: WELCOME seen on this connection */
    bool bye_seen;               /* guarded by lock: the server said BYE quit */
    bool told_in_use;            /* guarded by lock: "id in use" shown since last WELCOME */
    char room[PROTO_ID_MAX + 1]; /* guarded by lock: the room to be in (rejoined) */
    uint64_t next_seq;           /* guarded by lock */
    uint64_t outstanding;        /* guarded by lock: chat frames sent, not yet ACKed */

    atomic_bool quit;     /* everyone stops: main thread, cli_fatal, or BYE quit */
    atomic_int exit_code; /* what main returns once quit is set */

    int wake_fd[2];           /* receiver threads and signal handlers -> main thread */
    int out_fd[2];            /* readline mode: receiver thread's lines -> main thread */
    pthread_mutex_t out_lock; /* line mode: keeps stdout lines whole */
    pthread_t main_thread;

    struct cli_who_row *who; /* receiver thread only */
    size_t who_n, who_cap;
    char *esc; /* receiver thread only: proto_escape scratch, 4 * CLI_RECV_MAX + 1 */
};

/* The whole client: parses options, connects through tp, runs the input loop, exits.
 * Returns the process exit code (0 ok, 1 gave up, 2 bad usage). */
int cli_main(int argc, char **argv, const struct cli_transport *tp);

/* client_opts.c: parses the command line into *o (defaults from tp). Returns -1 to go on,
 * or the exit code: 0 after --help/--version, 2 on bad usage (message on stderr). */
int cli_parse_args(int argc, char **argv, const struct cli_transport *tp, struct cli_opts *o);

/* client_opts.c: asks for the id on the terminal until a valid one; false at EOF. */
bool cli_ask_id(struct cli_opts *o);

/* Prints one line for the user; any thread. Never blocks on the network. */
void cli_printf(struct cli_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses and shows one server frame (without terminator) and updates the session: WELCOME
 * marks it registered and rejoins its room, ACK settles an outstanding message, JOINED of
 * itself records the room. *f gets the parsed frame so the transport can react too.
 * Returns PROTO_OK or PROTO_E_BAD_FRAME (shown to the user too). Receiver thread only. */
enum proto_err cli_handle_frame(struct cli_session *s, const char *buf, size_t len,
                                struct proto_frame *f);

/* The connection or registration is gone: outstanding messages are forgotten and the main
 * thread holds chat until the next WELCOME. Thread-safe. */
void cli_lost(struct cli_session *s);

bool cli_registered(struct cli_session *s);
bool cli_bye_seen(struct cli_session *s);

/* Gives up (e.g. --max-retries exhausted): prints msg to stderr, makes main exit with code. */
void cli_fatal(struct cli_session *s, int code, const char *msg);

/* Sleeps ms milliseconds unless the session is quitting; returns false when quitting. */
bool cli_sleep(struct cli_session *s, uint32_t ms);

/* Backoff: init, reset after a success, and fail: counts a failed attempt and returns the
 * delay before the next one (ms, jittered), or 0 when --max-retries is exhausted. */
void cli_backoff_init(struct cli_backoff *b);
void cli_backoff_reset(struct cli_backoff *b);
uint32_t cli_backoff_fail(struct cli_session *s, struct cli_backoff *b);

/* After a lost or failed connection to port (rc: 0 = it closed, else -errno of the failed
 * attempt): counts the failure, tells the user ("lost" when it had been connected, with
 * what, e.g. "conexão" or "conexão de controle"), and sleeps the backoff. Returns false when
 * the client must stop (quitting, or --max-retries exhausted: cli_fatal was called). */
bool cli_retry_wait(struct cli_session *s, struct cli_backoff *b, int rc, bool *was_connected,
                    uint16_t port, const char *what);

/* Sends HELLO <id>. 0 or -errno. */
int cli_send_hello(struct cli_session *s);

/* hybrid_link.c: udp_client --hybrid (TCP control connection, tokened UDP datagrams). */
extern const struct cli_transport cli_hybrid_transport;

#endif
