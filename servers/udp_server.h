/* udp_server: shared definitions of the UDP chat server's modules (udp_server.c: start-up,
 * threads and shutdown; udp_handle.c: one datagram's handling and the client table).
 *
 * Locking: one mutex, tab_lock, guards the client table, the rooms and the activity list.
 * The outbound queue has its own lock (udp_outq.h). Order: tab_lock may be held while
 * pushing to the queue; the queue's lock is never held while taking tab_lock. */
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

struct udp_client {
    uint64_t key;                           /* ip << 16 | port: the by-address key; immutable */
    struct sockaddr_in addr;                /* immutable */
    char addr_str[NET_ADDRSTRLEN];          /* "ip:port"; immutable */
    char id[PROTO_ID_MAX + 1];              /* immutable */
    struct udp_room *room;                  /* guarded by tab_lock */
    struct udp_client *prev, *next;         /* room members; guarded by tab_lock */
    struct udp_client *lru_prev, *lru_next; /* activity order, oldest first; tab_lock */
    uint64_t last_ms; /* CLOCK_MONOTONIC ms of its last datagram; guarded by tab_lock */
    uint64_t chats;   /* chat frames received since HELLO; guarded by tab_lock */
    bool zip;         /* its last datagram was compressed; guarded by tab_lock */
    UT_hash_handle hh_addr, hh_id; /* guarded by tab_lock */
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

#endif
