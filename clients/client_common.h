/* client_common: the session tcp_client and udp_client share: its state, the transport
 * table each client plugs in (iperf style), options, start and the polite exit. The
 * terminal (client_term), server frames (client_frames), commands (client_cmds) and the
 * reconnect backoff (client_backoff) have their own files.
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
#define CLI_DRAIN_MS 2000u         /* after EOF on stdin: how long to wait for missing ACKs */
#define CLI_BYE_WAIT_MS 1000u      /* after BYE: how long to wait for the server's BYE */
#define CLI_CONNECT_TIMEOUT_S 10.0 /* --connect-timeout default */

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
    /* Sends one frame (no terminator); thread-safe. 0, -ENOTCONN, -ECANCELED when the
     * session stops while the peer does not read, or another -errno. */
    int (*send)(struct cli_session *s, const char *frame, size_t len);
    /* Optional: makes a receiver blocked where the quit pipe cannot reach notice s->quit
     * (tcp_client: shutdown(2) under its recv). Main thread, once, at exit. */
    void (*wake)(struct cli_session *s);
    /* Joins the receiver thread and frees what start allocated. Main thread, once. */
    void (*stop)(struct cli_session *s);
};

struct cli_opts {
    const char *host;
    uint16_t port;
    char id[PROTO_ID_MAX + 1];
    double ping_interval_s;      /* udp only */
    bool compress;               /* udp only */
    bool hybrid;                 /* udp only: TCP control connection + tokened datagrams */
    bool port_set;               /* --port was given */
    uint16_t control_port;       /* hybrid: the server's TCP control port (default 5002) */
    unsigned long max_retries;   /* 0: retry forever */
    unsigned connect_timeout_ms; /* TCP connects (tcp_client, hybrid control) give up then */
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
    int quit_fd[2];           /* main thread -> receiver: quit; transports poll the read end */
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

/* The connection or registration is gone: outstanding messages are forgotten and the main
 * thread holds chat until the next WELCOME. Thread-safe. */
void cli_lost(struct cli_session *s);

bool cli_registered(struct cli_session *s);
bool cli_bye_seen(struct cli_session *s);

/* A chat frame was answered (ACK) or will never be (refused, not sent): one fewer
 * outstanding. Thread-safe. */
void cli_settled(struct cli_session *s);

/* Gives up (e.g. --max-retries exhausted): prints msg to stderr, makes main exit with code. */
void cli_fatal(struct cli_session *s, int code, const char *msg);

/* The session is ending (a signal, /quit, cli_fatal, BYE quit). Any thread. */
bool cli_stopping(struct cli_session *s);

/* cli_stopping for net_write_until (arg: the session): a write to a peer that does not
 * read gives up as soon as the session ends. */
bool cli_stop_writes(void *session);

/* Sends HELLO <id>. 0 or -errno. */
int cli_send_hello(struct cli_session *s);

/* hybrid_link.c: udp_client --hybrid (TCP control connection, tokened UDP datagrams). */
extern const struct cli_transport cli_hybrid_transport;

#endif
