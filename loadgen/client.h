/* client: one simulated chat client: its set-up (HELLO, WELCOME, JOIN, JOINED), the frames
 * it sends and how it reads the server's answers, over whichever transport the run uses
 * (transport.h). What its messages measure lives in measure.h. Everything here runs on the
 * client's worker thread, without a lock. */
#ifndef CHATBENCH_LG_CLIENT_H
#define CHATBENCH_LG_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "measure.h"
#include "proto.h"

#define LG_CONNECT_TIMEOUT_NS 20000000000ull /* set-up of one client, after its ramp slot */
#define LG_HELLO_RETRY_NS 1000000000ull      /* resend a lost set-up step after 1 s */

enum lg_state {
    LG_IDLE,       /* not launched yet */
    LG_CONNECTING, /* TCP connect in progress */
    LG_HELLO,      /* HELLO sent, waiting for WELCOME */
    LG_JOINING,    /* JOIN sent, waiting for JOINED (hybrid: PING sent on UDP, wait for PONG) */
    LG_READY,      /* in its room, waiting for t0 or sending */
    LG_FAILED,     /* set-up failed or the connection died */
};

struct lg_worker;

struct lg_client {
    uint32_t index;
    uint32_t room;
    enum lg_state state;
    uint64_t launch_ns, retry_ns, last_tx_ns;
    struct lg_meas m;
    struct lg_worker *w;
    /* transport state (tcp.c, udp.c, hybrid.c) */
    int fd;           /* TCP: the connection; UDP: the socket; hybrid: the control connection */
    struct event *ev; /* reads fd (and, TCP, writes while output is queued) */
    char *rbuf;       /* TCP: a partial line (heap, only while one is pending) */
    size_t rlen;
    char *wbuf; /* TCP: bytes the socket refused (heap, only while needed) */
    size_t wlen, wcap;
    int ufd;                        /* hybrid: the connected UDP data socket, -1 until WELCOME */
    struct event *uev;              /* hybrid: reads ufd */
    char token[PROTO_TOKEN_PREFIX]; /* hybrid: "<token> " in front of every datagram */
};

/* Prepares a client of the run (index, room) for worker w; no socket yet. Returns 0 or
 * -ENOMEM; pair with lg_client_destroy. */
int lg_client_init(struct lg_client *c, struct lg_worker *w, uint32_t index, uint32_t room);
void lg_client_destroy(struct lg_client *c);

/* Starts the set-up (opens the socket, connects; HELLO follows). */
void lg_client_launch(struct lg_worker *w, struct lg_client *c);
/* The transport's path is open: sends HELLO (straight into the room). */
void lg_client_connected(struct lg_worker *w, struct lg_client *c, uint64_t now);
/* The default answer to WELCOME: records the set-up time and sends JOIN. */
void lg_client_join(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                    uint64_t now);
/* The set-up step in progress again (HELLO or JOIN), after a lost datagram. */
void lg_client_retry(struct lg_worker *w, struct lg_client *c, uint64_t now);
/* The set-up is complete: the client is in its room and counted as connected. */
void lg_client_ready(struct lg_worker *w, struct lg_client *c);
/* One frame from the server (terminator stripped), received at now. Returns whether it was
 * an ACK or FROM of a measured message (its bytes then count as measured). */
bool lg_client_frame(struct lg_worker *w, struct lg_client *c, const char *buf, size_t len,
                     uint64_t now);
/* Sends the client's next scheduled MSG. */
void lg_client_send_msg(struct lg_worker *w, struct lg_client *c);
/* Housekeeping: set-up timeouts and retries, keep-alives, expiry. Returns the client's
 * messages still in flight. */
uint64_t lg_client_tick(struct lg_worker *w, struct lg_client *c, uint64_t now);
/* Closes a client after an error and counts it (set-up failure or lost connection). A
 * client's error affects that client only. */
void lg_client_fail(struct lg_worker *w, struct lg_client *c);
/* End of the run: the client's final accounting, then BYE (best effort). */
void lg_client_finish(struct lg_worker *w, struct lg_client *c);

#endif
