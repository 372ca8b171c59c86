/* udp_server: shared definitions of the UDP chat server's modules (udp_server.c: start-up,
 * threads and shutdown; udp_handle.c: one datagram's handling and the client table;
 * udp_hybrid.c: the hybrid mode's TCP control connections, see PROTOCOL.md "Hybrid mode").
 *
 * Locking: one mutex, tab_lock, guards the client table, the rooms and the activity list.
 * The outbound queue has its own lock (udp_outq.h). Order: ctl_lock (hybrid: the control
 * threads' shared context) before tab_lock; tab_lock may be held while pushing to the queue;
 * the queue's lock is never held while taking tab_lock. A control connection's wlock is
 * taken last and only around a write. */
#ifndef CHATBENCH_UDP_SERVER_H
#define CHATBENCH_UDP_SERVER_H

#include "net.h"
#include "proto.h"
#include "udp_outq.h"
#include "zframe.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

struct udp_room;

/* Hybrid mode: one TCP control connection (udp_hybrid.c owns it and its thread). */
struct udp_ctl {
    struct udp_server *srv;    /* immutable */
    pthread_t tid;             /* written by the acceptor; read by whoever joins it */
    int fd;                    /* immutable while the thread runs */
    pthread_mutex_t wlock;     /* serialises writes to fd (its thread, main at shutdown) */
    char addr[NET_ADDRSTRLEN]; /* the TCP peer "ip:port"; immutable */
    struct udp_client *client; /* its registered client or NULL; owner thread only */
    bool bye;                  /* owner thread only: it said BYE */
    int dead;                  /* guarded by wlock: 0, or -errno of a failed write */
    /* replies gathered under ctl_lock, written after it is released (udp_ctl_flush); owner
     * thread only */
    char *pend;
    size_t pend_len, pend_cap;
    struct udp_ctl *prev, *next; /* the server's list; guarded by ctls_lock */
};

struct udp_client {
    uint64_t key;                           /* ip << 16 | port: the by-address key; immutable */
    struct sockaddr_in addr;                /* immutable (hybrid: set once, under tab_lock) */
    char addr_str[NET_ADDRSTRLEN];          /* "ip:port"; as addr */
    char id[PROTO_ID_MAX + 1];              /* immutable */
    struct udp_room *room;                  /* guarded by tab_lock */
    struct udp_client *prev, *next;         /* room members; guarded by tab_lock */
    struct udp_client *lru_prev, *lru_next; /* activity order, oldest first; tab_lock */
    uint64_t last_ms; /* CLOCK_MONOTONIC ms of its last datagram; guarded by tab_lock */
    uint64_t chats;   /* chat frames received since HELLO; guarded by tab_lock */
    bool zip;         /* its last datagram was compressed; guarded by tab_lock */
    uint64_t who_ms;  /* CLOCK_MONOTONIC ms of its last WHO answered; guarded by tab_lock */
    /* hybrid mode only */
    struct udp_ctl *ctl; /* its control connection; immutable; NULL in plain UDP mode */
    uint64_t token;      /* session token; immutable */
    bool bound;          /* addr is known (first datagram with the token); tab_lock */
    UT_hash_handle hh_addr, hh_id, hh_tok; /* guarded by tab_lock (hh_addr: once bound) */
};

struct udp_room {
    char name[PROTO_ID_MAX + 1]; /* immutable */
    struct udp_client *members;  /* guarded by tab_lock */
    size_t count;                /* guarded by tab_lock */
    UT_hash_handle hh;           /* guarded by tab_lock */
};

struct udp_config {
    const char *host;
    uint16_t port;
    unsigned timeout_s;
    size_t max_clients;
    size_t max_frame;
    bool quiet;
    bool hybrid;              /* TCP control connections + tokened datagrams */
    uint16_t control_port;    /* hybrid: TCP port of the control connections */
    unsigned hello_timeout_s; /* hybrid: a control connection must say HELLO within this */
};

/* Per-thread working storage: a zlib state, frame buffers and recipient lists. */
struct udp_ctx {
    struct udp_server *s;
    struct zframe z;
    char *frame; /* an inflated datagram: max_frame + 2 bytes */
    size_t frame_cap;
    char *out; /* one outgoing frame, room left for its LF */
    size_t out_cap;
    char *zout; /* its compressed form */
    size_t zout_cap;
    struct sockaddr_in *to_plain, *to_zip; /* recipients by form, max_clients each */
    size_t n_plain, n_zip;
    struct udp_ctl *ctl; /* hybrid: when set, replies (send_one) are queued for this connection */
};

struct udp_server {
    struct udp_config cfg; /* read-only once the threads run */
    int fd;                /* the one UDP socket, shared by receiver and sender */
    int wake_fd;           /* eventfd, readable once shutdown begins */
    atomic_bool stopping;

    pthread_mutex_t tab_lock;
    struct udp_client *by_addr; /* guarded by tab_lock */
    struct udp_client *by_id;   /* guarded by tab_lock */
    struct udp_client *lru;     /* guarded by tab_lock: least recently active first */
    struct udp_room *rooms;     /* guarded by tab_lock */
    size_t nclients;            /* guarded by tab_lock */
    struct udp_client *by_tok;  /* hybrid: by session token; guarded by tab_lock */

    struct udp_outq outq;

    /* owned by one thread each, allocated by main before the threads start */
    struct udp_ctx rx_ctx;   /* receiver */
    struct udp_ctx ka_ctx;   /* keep-alive */
    struct udp_ctx main_ctx; /* main, at shutdown */
    char *rx_bufs;           /* receiver: UDP_BATCH slots */

    /* receiver only (read after it is joined) */
    uint64_t dgrams_in, bytes_in, zbytes_in, zdgrams_in, rejected_in;
    /* sender only (read after it is joined) */
    uint64_t dgrams_out, bytes_out, zbytes_out, zdgrams_out, send_errors;
    /* keep-alive */
    atomic_uint_fast64_t timeouts;

    /* hybrid mode (udp_hybrid.c) */
    int ctl_fd;                /* listening TCP socket, -1 when not hybrid */
    pthread_mutex_t ctl_lock;  /* guards ctl_ctx: control traffic is rare, one context will do */
    struct udp_ctx ctl_ctx;    /* guarded by ctl_lock */
    pthread_mutex_t ctls_lock; /* guards ctls and nctls */
    pthread_cond_t ctls_gone;  /* signalled when nctls drops to 0 */
    struct udp_ctl *ctls;      /* live connections; guarded by ctls_lock */
    struct udp_ctl *ctls_dead; /* finished threads to join and free; guarded by ctls_lock */
    size_t nctls;              /* live control threads; guarded by ctls_lock */
    uint64_t token_refused;    /* receiver only: datagrams with a missing/unknown token */
    uint64_t token_warned_ms;  /* receiver only: last [WARN] about refused tokens */
    uint64_t token_unwarned;   /* receiver only: refusals not yet in a [WARN] line */
};

int udp_ctx_init(struct udp_ctx *cx, struct udp_server *s);
void udp_ctx_destroy(struct udp_ctx *cx);

/* Handles one received datagram of len bytes (truncated: it was larger than the buffer).
 * buf may be modified. Called by the receiver thread only. */
void udp_handle_datagram(struct udp_ctx *cx, const struct sockaddr_in *from, char *buf, size_t len,
                         bool truncated);

/* Removes clients silent for longer than the timeout, telling them and their rooms.
 * Called by the keep-alive thread. */
void udp_expire(struct udp_ctx *cx, uint64_t now_ms);

/* Sends BYE shutdown to every client and frees the table. Called once every thread but
 * the sender has been joined. Returns the number of clients told. */
size_t udp_farewell(struct udp_ctx *cx);

/* --- hybrid mode: table operations for the control threads (udp_handle.c) --- */

/* Registers a hybrid client for connection ctl from a parsed HELLO: a fresh token, no UDP
 * address yet, JOINED to its room (over UDP). Returns PROTO_OK (ctl->client set) or the
 * refusal. Caller holds ctl_lock (cx is the shared control context), not tab_lock. */
enum proto_err udp_hyb_register(struct udp_ctx *cx, struct udp_ctl *ctl,
                                const struct proto_frame *f);

/* Handles WHO or JOIN for ctl's client; replies go to cx->ctl. Caller holds ctl_lock. */
void udp_hyb_command(struct udp_ctx *cx, struct udp_client *c, const struct proto_frame *f);

/* Ends ctl's client's session: its token dies at once; its room hears LEFT <id> <room> why
 * unless why is PROTO_R_SHUTDOWN. Caller holds ctl_lock. */
void udp_hyb_remove(struct udp_ctx *cx, struct udp_ctl *ctl, enum proto_reason why);

/* Writes one frame plus LF to a control connection under its wlock (blocking, bounded by
 * the socket's send timeout). Returns 0 or -errno; after a failure the connection is shut
 * down and every later write fails at once. */
int udp_ctl_write(struct udp_ctl *ctl, const char *frame, size_t len);

/* Writes the replies queued for ctl (see pend) and empties the queue. Its owner thread,
 * without ctl_lock. Returns 0 or -errno. */
int udp_ctl_flush(struct udp_ctl *ctl);

/* Starts the hybrid control listener's thread; stops it and every control connection
 * (each hears BYE shutdown) and waits for their threads. udp_hybrid.c. */
int udp_hybrid_start(struct udp_server *s, pthread_t *acceptor);
size_t udp_hybrid_stop(struct udp_server *s, pthread_t acceptor);

#endif
