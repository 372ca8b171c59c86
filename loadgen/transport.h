/* transport: how a simulated client reaches the server, as a small table of functions (the
 * shape of wrk's struct sock and of clients/client_common.h's transport table), so that the
 * protocol logic in client.c never asks which transport it runs on.
 *
 *   tcp.c     one TCP connection: line framing, a write queue for what the socket refuses
 *   udp.c     one connected UDP socket: a frame per datagram, optionally zlib-compressed,
 *             batched reads (recvmmsg) with kernel receive times
 *   hybrid.c  udp_server --hybrid: a TCP control connection (tcp.c's), then chat over a
 *             connected UDP socket (udp.c's reads), each datagram prefixed by the session token
 *
 * Every function runs on the client's worker thread. A transport reads what arrives, hands
 * each frame to lg_client_frame and counts the bytes into the worker's statistics; on a
 * broken connection it calls lg_client_fail. */
#ifndef CHATBENCH_LG_TRANSPORT_H
#define CHATBENCH_LG_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto.h"

struct event;
struct lg_worker;
struct lg_client;

/* What one send did. The transport has already added its bytes to the worker's run totals
 * (bytes_*_total) and counted its local errors; the caller counts a MSG's bytes as measured. */
struct lg_tx {
    int err;        /* < 0: the connection is unusable, the client must be failed */
    uint64_t tx_ns; /* clock just before the send system call (after formatting and
                     * compressing); 0 when nothing was handed to the kernel */
    uint64_t wire;  /* bytes put on the wire (or queued behind earlier ones, TCP) */
    uint64_t plain; /* the frame's bytes before compression */
};

struct lg_transport {
    const char *name;  /* --proto value and CSV column: "tcp" */
    const char *upper; /* in messages: "TCP" */
    uint16_t default_port;
    /* chat frames travel in datagrams: they may be lost (a message not ACKed within
     * --timeout is), duplicated or reordered, and carry kernel receive times */
    bool datagrams;
    /* no connection to lose: the client keeps its server registration alive with PINGs and
     * registers again when the server says it forgot it */
    bool connectionless;
    bool compress; /* --compress applies: zlib datagrams (PROTOCOL.md) */
    /* Opens the client's socket(s) towards cfg->server and starts the set-up; calls
     * lg_client_connected once HELLO may be sent. Returns 0 or -errno (then the caller
     * fails the client). */
    int (*launch)(struct lg_worker *w, struct lg_client *c);
    /* Sends a control frame (HELLO, JOIN, PING, BYE) or a chat frame (MSG). buf holds len
     * bytes without a terminator and has room for one more byte. */
    struct lg_tx (*send_ctl)(struct lg_worker *w, struct lg_client *c, char *buf, size_t len);
    struct lg_tx (*send_msg)(struct lg_worker *w, struct lg_client *c, char *buf, size_t len);
    /* WELCOME in answer to HELLO: the next step of the set-up. */
    void (*welcome)(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                    uint64_t now);
    /* PONG during the set-up (NULL: not part of this transport's set-up). */
    void (*pong)(struct lg_worker *w, struct lg_client *c, uint64_t now);
    /* The set-up step in progress is presumed lost (c->retry_ns has passed): send it again.
     * NULL: this transport loses nothing. */
    void (*retry)(struct lg_worker *w, struct lg_client *c, uint64_t now);
    /* Closes every socket and frees every buffer of the client; safe to call twice. */
    void (*close)(struct lg_client *c);
};

extern const struct lg_transport lg_tcp, lg_udp, lg_hybrid;

/* The transport called name ("tcp", "udp", "hybrid"), or NULL. */
const struct lg_transport *lg_transport_find(const char *name);

/* --- pieces the transports share (tcp.c, udp.c) --- */

/* TCP: starts a non-blocking connect (TCP_NODELAY); lg_client_connected follows when the
 * socket is writable. Returns 0 or -errno. */
int lg_tcp_launch(struct lg_worker *w, struct lg_client *c);
/* TCP: sends buf as one line ('\n' appended in place), queueing what the socket refuses. */
struct lg_tx lg_tcp_send_line(struct lg_worker *w, struct lg_client *c, char *buf, size_t len);
/* TCP: closes the connection and frees its buffers. */
void lg_tcp_close(struct lg_client *c);
/* UDP: a non-blocking datagram socket for client c, bound to its --source address if any,
 * connected to sa, with kernel receive timestamps. Returns the descriptor or -errno. */
int lg_udp_socket(const struct lg_worker *w, const struct lg_client *c,
                  const struct sockaddr_in *sa);
/* UDP: sends one datagram of iovcnt pieces on fd (plain: its bytes before compression). A
 * failure is a lost datagram, counted as a send error; the timeout will say so. */
struct lg_tx lg_udp_sendv(struct lg_worker *w, struct lg_client *c, int fd, const struct iovec *iov,
                          int iovcnt, size_t plain);
/* UDP: reads every datagram queued on fd (level-triggered; a short recvmmsg batch ends it)
 * and hands each frame to lg_client_frame. */
void lg_udp_read(struct lg_worker *w, struct lg_client *c, int fd);
/* Binds fd to client c's --source address (the sources taken round-robin by the client's
 * number in its shard), before connect; nothing without --source. A TCP socket gets
 * IP_BIND_ADDRESS_NO_PORT, so that the port is chosen at connect and only the 4-tuple need
 * be unique. Returns 0 or -errno. */
int lg_sock_bind_source(int fd, const struct lg_worker *w, const struct lg_client *c, bool tcp);
/* Closes *fd and frees *ev (either may be unset: -1, NULL). */
void lg_sock_close(int *fd, struct event **ev);

#endif
