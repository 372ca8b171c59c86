/* tcp_server.h: what the TCP server's two halves share: the client record, the server's
 * state and the per-client thread (tcp_conn.c) that tcp_server.c starts, wakes and joins.
 * Locking rules are in tcp_server.c's opening comment; each field names its lock. */
#ifndef CHATBENCH_TCP_SERVER_H
#define CHATBENCH_TCP_SERVER_H

#include "net.h"
#include "outq.h"
#include "registry.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TCP_STACK_SIZE (128u * 1024) /* 10,000 threads: 1.25 GiB of address space, little RSS */
#define TCP_FRAME_EXTRA 160          /* room for verb, id and seq around max-frame bytes of text */
#define TCP_FINAL_FLUSH_MS 500       /* how long a leaving client's last frames may take */
#define TCP_ACCEPT_BATCH 64

struct tcp_config {
    const char *host;
    uint16_t port;
    long max_clients;
    size_t max_frame;
    size_t max_queue;
    int hello_timeout_s;
};

enum out_state {
    OUT_OPEN,   /* frames are sent and queued */
    OUT_DEAD,   /* slow or broken: frames are dropped; the fd is still open */
    OUT_CLOSED, /* the owner is closing the fd: nobody may touch fd or thread any more */
};

struct tcp_client {
    /* immutable once the thread runs */
    int fd;
    char addr[NET_ADDRSTRLEN];
    uint64_t connect_ns;
    pthread_t tid;            /* written by pthread_create, read by the main thread only */
    atomic_int refs;          /* the owner thread's, plus one per sender holding it */
    atomic_int close_reason;  /* -1, or why another thread ended this client */
    struct reg_member member; /* guarded by reg_lock; written only by the owner thread */
    /* guarded by conn_lock */
    struct tcp_client *conn_prev, *conn_next, *dead_next;
    /* guarded by out_lock */
    pthread_mutex_t out_lock;
    struct outq outq;
    enum out_state out_state;
    bool want_pollout; /* the owner waits for POLLOUT; true whenever outq is not empty */
    bool have_self;
    pthread_t self;      /* the owner thread, for pthread_kill */
    uint64_t frames_out; /* frames handed to this client */
    uint64_t chat_in;    /* owner thread only: chat frames received, for ACK */
};

struct tcp_srv {
    struct tcp_config cfg;
    pthread_rwlock_t reg_lock;
    struct registry reg; /* guarded by reg_lock */
    pthread_mutex_t conn_lock;
    struct tcp_client *conns; /* guarded by conn_lock: every connection with a thread */
    struct tcp_client *dead;  /* guarded by conn_lock: finished threads to join */
    long nconns;              /* guarded by conn_lock */
    int reap_fd;              /* eventfd: a client thread finished */
    atomic_bool stopping;
    sigset_t wait_mask; /* ppoll's mask in client threads: all blocked but SIGUSR1 */
    pthread_attr_t attr;
    atomic_ulong stat_conns, stat_chat, stat_slow, stat_refused;
};

/* The one server of this process. */
extern struct tcp_srv tcp_srv;

/* A client record for an accepted fd, holding one reference (the thread's). NULL when out
 * of memory. The fd is closed by the client's thread, not by tcp_conn_unref. */
struct tcp_client *tcp_conn_new(int fd, const struct sockaddr_in *sa);

/* References: senders take one under reg_lock before they unlock and send. The last
 * unref frees the record. Thread-safe. */
void tcp_conn_ref(struct tcp_client *c);
void tcp_conn_unref(struct tcp_client *c);

/* Interrupts the client thread's ppoll() so it looks at its flags again. Caller holds
 * c->out_lock (which guarantees the thread has not exited). */
void tcp_conn_wake_locked(struct tcp_client *c);

/* The client's thread (pthread_create's start routine; arg is the client). It serves the
 * client until it leaves, then unlinks itself from tcp_srv.conns, queues itself on
 * tcp_srv.dead and signals tcp_srv.reap_fd; the main thread joins it and drops its
 * reference. */
void *tcp_conn_main(void *arg);

#endif
