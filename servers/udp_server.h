/* udp_server: shared definitions of the UDP chat server's modules (udp_server.c: start-up,
 * threads and shutdown; udp_handle.c: one datagram's handling, the clients by address and
 * the chat transport over datagrams; udp_hybrid.c: the hybrid mode's TCP control
 * connections and session tokens, see PROTOCOL.md "Hybrid mode"). The chat itself (the
 * registry, rooms, verbs) is the core's, chat.c.
 *
 * Locking: the chat core's lock (chat.h) also guards this server's own lookups: the clients
 * by address and by token, the activity list and each client's mutable fields. A datagram
 * is handled with it held for writing from the lookup to the gathering of recipients. The
 * outbound queue has its own lock (udp_outq.h), taken after the chat lock and never before.
 * ctl_lock (the control threads' shared context) is taken before the chat lock. A control
 * connection's wlock is taken last and only around a write. */
#ifndef CHATBENCH_UDP_SERVER_H
#define CHATBENCH_UDP_SERVER_H

#include "bucket.h"
#include "chat.h"
#include "lines.h"
#include "net.h"
#include "proto.h"
#include "udp_outq.h"
#include "zframe.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

struct udp_ctl;

struct udp_client {
    struct chat_client chat;                  /* id, room, "ip:port" (chat.h) */
    uint64_t key;                             /* ip << 16 | port: the by-address key */
    struct sockaddr_in addr;                  /* plain: immutable; hybrid: set once bound */
    struct udp_client *lru_prev, *lru_next;   /* activity order, oldest first; chat lock */
    struct udp_client *idle_prev, *idle_next; /* --idle-timeout: by chat.active_ms, oldest
                                                 first (plain and hybrid); chat lock */
    bool idle_listed;                         /* on that list; chat lock */
    bool idle_out;    /* hybrid: found idle, its control thread is ending it; chat lock */
    uint64_t last_ms; /* CLOCK_MONOTONIC ms of its last datagram; guarded by the chat lock */
    bool zip;         /* its last datagram was compressed; guarded by the chat lock */
    /* hybrid mode only */
    struct udp_ctl *ctl;            /* its control connection; immutable; NULL in plain UDP mode */
    uint64_t token;                 /* session token; set under the chat lock at HELLO */
    bool bound;                     /* addr is known (first datagram with the token); chat lock */
    UT_hash_handle hh_addr, hh_tok; /* guarded by the chat lock (hh_addr: once bound) */
};

/* Hybrid mode: one TCP control connection (udp_hybrid.c owns it and its thread). */
struct udp_ctl {
    struct udp_server *srv;    /* immutable */
    pthread_t tid;             /* written by the acceptor; read by whoever joins it */
    int fd;                    /* immutable while the thread runs */
    pthread_mutex_t wlock;     /* serialises writes to fd (its thread, main at shutdown) */
    char addr[NET_ADDRSTRLEN]; /* the TCP peer "ip:port"; immutable */
    struct udp_client client;  /* its session: registered from HELLO until the end */
    int dead;                  /* guarded by wlock: 0, or -errno of a failed write */
    atomic_bool idle;          /* the keep-alive found the session idle (--idle-timeout) */
    /* replies gathered while the shared context is held, written after it is released
     * (udp_ctl_flush); owner thread only */
    char *pend;
    size_t pend_len, pend_cap;
    struct udp_ctl *prev, *next; /* the server's list; guarded by ctls_lock */
};

struct udp_config {
    const char *host;
    uint16_t port;
    unsigned timeout_s;
    unsigned idle_timeout_s; /* registered, nothing but PING for this long: dropped; 0: off */
    size_t max_clients;
    size_t max_frame;
    bool quiet;
    bool hybrid;              /* TCP control connections + tokened datagrams */
    uint16_t control_port;    /* hybrid: TCP port of the control connections */
    unsigned hello_timeout_s; /* hybrid: a control connection must say HELLO within this */
    bool pin;                 /* --cpus given: the process runs on cpus */
    cpu_set_t cpus;
};

/* Replies to addresses that have not registered (PROTOCOL.md, "Reflection"): none larger
 * than the datagram it answers, and all of them together within a token bucket of
 * UDP_GUARD_RATE bytes a second, UDP_GUARD_BURST at once (udp_guard.c). */
#define UDP_GUARD_RATE (256u * 1024)
#define UDP_GUARD_BURST (64u * 1024)

/* Receiver only (read after it is joined). */
struct udp_guard {
    struct bucket bucket;
    uint64_t sent, sent_bytes; /* replies that went out, and their bytes on the wire */
    uint64_t too_big;          /* suppressed: larger than the datagram, even as ERR <code> */
    uint64_t over_rate;        /* suppressed: the bucket was empty */
    uint64_t warned_ms;        /* the last [WARN] about the bucket */
    uint64_t unwarned;         /* suppressions by the bucket since that [WARN] */
};

/* Recipients of one fan-out, by the form they get (chat.h: a group). */
struct udp_group {
    struct sockaddr_in *plain, *zip; /* max_clients each */
    size_t n_plain, n_zip;
};

/* Per-thread working storage: the chat context, a zlib state, buffers, recipient lists. */
struct udp_ctx {
    struct chat_ctx chat; /* first: the transport's functions get back here from it */
    struct udp_server *s;
    struct zframe z;
    char *frame; /* an inflated datagram: max_frame + 2 bytes */
    size_t frame_cap;
    char *zout; /* a compressed frame */
    size_t zout_cap;
    struct udp_group group[2];
    bool wait;  /* shutdown: fan-outs wait for room in the queue instead of dropping */
    bool batch; /* receiver: pushes do not wake the sender; it is kicked once per batch */
    /* where replies go (chat_transport.hold_self) */
    struct sockaddr_in self_addr;
    bool self_zip;
    size_t self_budget;       /* bytes self may be sent: the datagram's size while it has not
                                 registered (udp_guard.c), SIZE_MAX once it has */
    size_t req_bytes;         /* receiver: the datagram being handled, as it came on the wire */
    struct udp_ctl *self_ctl; /* hybrid control: its connection */
};

struct udp_server {
    struct udp_config cfg; /* read-only once the threads run */
    int fd;                /* the one UDP socket, shared by receiver and sender */
    int wake_fd;           /* eventfd, readable once shutdown begins */
    atomic_bool stopping;

    struct chat_server chat;    /* the registry, rooms and their lock */
    struct udp_client *by_addr; /* guarded by the chat lock */
    struct udp_client *lru;     /* guarded by the chat lock: least recently active first */
    struct udp_client *idle;    /* guarded by the chat lock: by chat.active_ms, oldest first */
    struct udp_client *by_tok;  /* hybrid: by session token; guarded by the chat lock */

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
    atomic_uint_fast64_t timeouts, idles;
    struct udp_guard guard; /* replies to unregistered addresses */

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

/* The chat over datagrams (udp_handle.c), and over a hybrid control connection with
 * notices still over datagrams (udp_hybrid.c). */
extern const struct chat_transport udp_dgram_transport;
extern const struct chat_transport udp_ctl_transport;

/* A thread's context for transport tp. 0 or -ENOMEM. */
int udp_ctx_init(struct udp_ctx *cx, struct udp_server *s, const struct chat_transport *tp);
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

/* --- the pieces both transports share (udp_handle.c) --- */

static inline struct udp_ctx *udp_ctx_of(struct chat_ctx *cx)
{
    return (struct udp_ctx *)cx; /* chat is its first member */
}

static inline struct udp_client *udp_client_of(struct chat_client *c)
{
    return (struct udp_client *)c; /* chat is its first member */
}

/* The by-address key of a, and the client registered at a (caller holds the chat lock). */
uint64_t udp_addr_key(const struct sockaddr_in *a);
struct udp_client *udp_find_addr(struct udp_server *s, const struct sockaddr_in *a);

/* The frame in cx->chat.out (len bytes, room for a LF) as it goes on the wire: compressed
 * into cx->zout, or plain with its LF. Sets *wire to it and returns its length. */
size_t udp_form(struct udp_ctx *cx, size_t len, bool zip, const char **wire);
/* Queues wire[0..len) for n addresses (waking the sender unless cx batches). */
void udp_queue(struct udp_ctx *cx, const char *wire, size_t len, const struct sockaddr_in *to,
               size_t n, enum udp_outq_mode mode);
/* Queues the frame in cx->chat.out (len bytes, room for a LF) for n addresses, compressed
 * once or plain with its LF. */
void udp_push_form(struct udp_ctx *cx, size_t len, bool zip, const struct sockaddr_in *to, size_t n,
                   enum udp_outq_mode mode);
void udp_gather(struct chat_ctx *cx, struct chat_client *m, int g);
void udp_send(struct chat_ctx *cx, int g, int len);
void udp_detach(struct chat_ctx *cx, struct chat_client *c);
void udp_active(struct chat_ctx *cx, struct chat_client *c);

/* --- replies to unregistered addresses (udp_guard.c) --- */

void udp_guard_init(struct udp_guard *g, uint64_t now_ns);

/* Queues the frame in cx->chat.out (len bytes) for to, an address that has not registered
 * and sent budget bytes: as it is if it fits, as its short form when it is an ERR (ERR
 * <code>) that does not, or not at all; and only while the bucket has the bytes. Counts
 * what it suppresses. Receiver thread only. Returns whether it was queued. */
bool udp_guard_reply(struct udp_ctx *cx, size_t len, bool zip, const struct sockaddr_in *to,
                     size_t budget);

/* HELLO f from an unregistered address: whether its WELCOME may be sent (then the HELLO
 * may register). When not, it has answered (ERR pad, within the budget) or counted the
 * suppression: the address stays unregistered. Receiver thread only. */
bool udp_guard_hello(struct udp_ctx *cx, const struct proto_frame *f, const struct sockaddr_in *to,
                     bool zip, size_t budget);

/* --- hybrid mode (udp_hybrid.c) --- */

/* The session holding token, pinned to from on its first datagram. NULL: no such token,
 * or another address (the datagram is refused). Caller holds the chat lock for writing. */
struct udp_client *udp_hyb_session(struct udp_server *s, uint64_t token,
                                   const struct sockaddr_in *from);

/* The keep-alive found the session of ctl idle: its control thread ends it (LEFT ... idle,
 * BYE idle). Caller holds the chat lock, so the connection is still open. */
void udp_hyb_kick(struct udp_ctl *ctl);

/* Counts a refused datagram (no answer on the wire). Receiver thread only. */
void udp_hyb_refuse(struct udp_server *s, const struct sockaddr_in *from, uint64_t now_ms);

/* Starts the hybrid control listener's thread; stops it and every control connection
 * (each hears BYE shutdown) and waits for their threads. */
int udp_hybrid_start(struct udp_server *s, pthread_t *acceptor);
size_t udp_hybrid_stop(struct udp_server *s, pthread_t acceptor);

#endif
