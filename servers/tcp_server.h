/* tcp_server.h: what the TCP server's files share: the configuration, the client record,
 * the chat transport over a client's socket (tcp_conn.c) and the two I/O models that run
 * it, a thread per client (tcp_threads.c) or event loops (tcp_epoll.c); tcp_server.c
 * accepts connections and hands each to the model. Locking rules are in tcp_server.c's
 * opening comment and chat.h; each field names its lock or its owner. */
#ifndef CHATBENCH_TCP_SERVER_H
#define CHATBENCH_TCP_SERVER_H

#include "chat.h"
#include "lines.h"
#include "net.h"
#include "outq.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TCP_STACK_SIZE (128u * 1024) /* 10,000 threads: 1.25 GiB of address space, little RSS */
#define TCP_FINAL_FLUSH_MS 500       /* how long a leaving client's last frames may take */
#define TCP_ACCEPT_BATCH 64
/* Recipient slots a client's thread keeps between fan-outs: one big room must not leave every
 * thread that ever spoke in it holding room-sized memory (10,000 threads x 80 KB). An event
 * loop keeps what it grew to: there are few of them. */
#define TCP_PEERS_KEEP_THREAD 1024

enum tcp_io_model {
    TCP_IO_THREADS, /* one thread per client (the default; the challenge's design) */
    TCP_IO_EPOLL,   /* a few event-loop threads, each owning its connections */
};

struct tcp_config {
    const char *host;
    uint16_t port;
    long max_clients;
    size_t max_frame;
    size_t max_queue;
    int hello_timeout_s;
    int idle_timeout_s; /* registered clients silent (but PING) this long are dropped; 0: off */
    enum tcp_io_model io;
    int loops; /* epoll: event-loop threads */
    bool pin;  /* --cpus given: the process runs on cpus */
    cpu_set_t cpus;
};

enum out_state {
    OUT_OPEN,   /* frames are sent and queued */
    OUT_DEAD,   /* slow or broken: frames are dropped; the fd is still open */
    OUT_CLOSED, /* the owner is closing the fd: nobody may touch fd or owner any more */
};

struct tcp_loop;

/* One connection. Its owner is the thread or the event loop that serves it: only the owner
 * reads the socket, handles its frames and closes it; any thread may send to it. */
struct tcp_client {
    struct chat_client chat; /* see chat.h; the owner is the thread that handles its frames */
    /* immutable once adopted */
    int fd;
    uint64_t connect_ns;
    struct tcp_loop *loop;   /* epoll: the loop that owns it; NULL for a thread */
    atomic_int refs;         /* the owner's, plus one per sender holding it */
    atomic_int close_reason; /* -1, or why another thread ended this client */
    /* owner only */
    struct lines in;
    char *part;      /* the unfinished line, max_frame + 2 bytes (threads: always there) */
    size_t part_len; /* its bytes */
    struct tcp_client *prev, *next;   /* threads: tcp_threads' lists, under its lock; epoll:
                                         the loop's connections */
    pthread_t tid;                    /* threads: written by pthread_create */
    struct tcp_client *tprev, *tnext; /* epoll: the loop's HELLO or lingering timer list */
    uint64_t deadline_ms;             /* epoll: when that timer is due */
    int timer;                        /* epoll: which list (tcp_epoll.c) */
    /* guarded by out_lock */
    pthread_mutex_t out_lock;
    struct outq outq;
    enum out_state out_state;
    bool want_pollout; /* the owner waits for POLLOUT; true whenever outq is not empty */
    bool lingering;    /* epoll: it has left; only its last frames are being sent */
    bool have_self;
    pthread_t self; /* threads: the owner thread, for pthread_kill */
};

/* A thread's or a loop's working state: the chat context and the recipients gathered for
 * the next fan-out (each holding a reference). */
struct tcp_peers {
    struct tcp_client **v;
    size_t n, cap;
};

struct tcp_ctx {
    struct chat_ctx chat;
    struct tcp_client *self; /* where replies go: the client whose frame is handled */
    struct tcp_peers peers[2];
    size_t peers_keep; /* slots kept between fan-outs */
    char *rbuf;        /* a loop's read buffer (NULL: read into the client's part) */
    size_t rbuf_cap;
};

/* An I/O model: how accepted connections are served. */
struct tcp_io {
    int (*start)(void); /* 0 or -errno (start-up: the caller dies) */
    /* A new connection: start serving it. 0, or -errno and c untouched (the caller refuses
     * it and drops its reference). */
    int (*adopt)(struct tcp_client *c);
    int event_fd;           /* read by the accepting thread's poll; -1 when none */
    void (*on_event)(void); /* event_fd is readable */
    /* c's queue became non-empty (on) or empty (off): make its owner wait for POLLOUT, or
     * stop. Caller holds out_lock. 0, or -errno (on: the caller drops c as broken). */
    int (*want_out_locked)(struct tcp_client *c, bool on);
    void (*stop)(void); /* every client hears BYE shutdown and is closed; waits for it */
    /* c registered or sent a frame but PING (chat_transport.active), on its owner's thread:
     * its --idle-timeout deadline moves. NULL when the model needs no telling. */
    void (*active)(struct tcp_client *c);
};

struct tcp_srv {
    struct tcp_config cfg; /* read-only once serving */
    struct chat_server chat;
    const struct tcp_io *io;
    atomic_long nconns; /* connections being served (for --max-clients) */
    atomic_bool stopping;
    atomic_ulong stat_conns, stat_chat, stat_slow, stat_refused, stat_idle;
};

/* The one server of this process. */
extern struct tcp_srv tcp_srv;

extern const struct tcp_io *const tcp_io_threads; /* tcp_threads.c */
extern const struct tcp_io *const tcp_io_epoll;   /* tcp_epoll.c */

/* --- tcp_conn.c --- */

/* A client record for an accepted fd, holding one reference (the owner's). NULL when out
 * of memory. The fd is closed by tcp_conn_close, not by tcp_conn_unref. */
struct tcp_client *tcp_conn_new(int fd, const struct sockaddr_in *sa);

/* References: senders take one under the chat lock before they unlock and send. The last
 * unref frees the record. Thread-safe. */
void tcp_conn_ref(struct tcp_client *c);
void tcp_conn_unref(struct tcp_client *c);

/* A thread's or loop's context; keep: recipient slots kept between fan-outs; rbuf_cap: the
 * read buffer of a loop (0: none). 0 or -ENOMEM. */
int tcp_ctx_init(struct tcp_ctx *t, size_t keep, size_t rbuf_cap);
void tcp_ctx_destroy(struct tcp_ctx *t);

/* Hands one whole frame to c without ever blocking (a direct send, the rest queued).
 * Returns false when c takes no more frames (slow, broken or closing). Thread-safe. */
bool tcp_conn_send(struct tcp_client *c, const char *buf, size_t len);

/* The owner, when the socket is writable: sends what is queued. Returns whether frames are
 * still queued (keep waiting for POLLOUT). */
bool tcp_conn_writable(struct tcp_client *c);

/* Reads what the socket has and hands its frames to the chat core. */
enum tcp_in {
    TCP_IN_OK,    /* go on */
    TCP_IN_EOF,   /* the peer closed */
    TCP_IN_ERROR, /* reset, or no memory for its line */
    TCP_IN_LEFT,  /* it said BYE and has left the chat */
};
enum tcp_in tcp_conn_read(struct tcp_ctx *t, struct tcp_client *c);

/* Why c's owner ends it: a sender's verdict (slow, broken) beats what the owner saw. */
enum proto_reason tcp_conn_reason(struct tcp_client *c, enum proto_reason seen);

/* Everything a leaving client owes the others (chat_leave: LEFT, the log) and its last
 * frames (ERR timeout before HELLO, BYE after BYE or at shutdown). said_bye: it left with
 * BYE already (TCP_IN_LEFT). Returns whether its last frames deserve a flush. */
bool tcp_conn_depart(struct tcp_ctx *t, struct tcp_client *c, enum proto_reason why, bool said_bye);

/* Closes the socket: nobody sends to c any more, what the peer still sent is read (into
 * t's read buffer, or c's line buffer) so that close() sends FIN rather than RST. The
 * caller then drops its reference. */
void tcp_conn_close(struct tcp_ctx *t, struct tcp_client *c);

#endif
