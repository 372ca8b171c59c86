/* chat: what a chat server does with a frame, whatever carries it (PROTOCOL.md): the one
 * table of registered clients and rooms, every verb, the replies and notices, and the log
 * lines of those events. tcp_server (threads or event loops) and udp_server (plain and
 * hybrid) feed it parsed frames and give it a small table of functions, struct
 * chat_transport, to reach their clients; everything about bytes, sockets, queues and
 * threads stays in them. This is the split of redis's ConnectionType or iperf's
 * per-protocol modules: the logic above never asks which transport it runs on.
 *
 * Locking: one read-write lock, chat_server.lock, guards the registry (ids, rooms, member
 * lists) and whatever a transport keeps beside it for its own lookups (udp_server's
 * clients by address and by token, its activity list). Fan-out, TO and WHO read under it;
 * HELLO, JOIN and leaving write. A transport's own locks (a TCP client's out_lock, the UDP
 * outbound queue's lock) are taken after it, never before. The rules every path keeps:
 *   - no blocking I/O under the lock: recipients are gathered under it (the transport
 *     takes a reference or copies an address) and sent to once it is released;
 *   - relayed FROMs go out before the sender's ACK;
 *   - WELCOME, and the JOINED a mover hears, are handed to the transport under the lock,
 *     so no FROM of the new room can overtake them (a non-blocking send or a queue push);
 *   - once the lock is released the core never touches the client again: on UDP another
 *     thread may free it. What it still needs (the id, where replies go) is copied first.
 *
 * Out of memory, one policy for every server and transport (PROTOCOL.md, "Error codes"):
 *   - A request that needs memory the server cannot get is refused, and only that request:
 *     HELLO, JOIN and WHO are answered `ERR server_full <text>: out of memory`, and the
 *     asker stays exactly as it was (unregistered, in its room). Nothing half-made is kept.
 *   - A relay that cannot allocate its recipient list reaches the members it could; the
 *     sender still gets its ACK (the server did receive the frame).
 *   - A connection whose own buffers cannot be allocated is closed (TCP: refused with
 *     `ERR server_full` at accept when even its record cannot be).
 *   - Each case writes one `[ERROR] Memória insuficiente ...` line. The server never
 *     exits, aborts or stalls others because malloc failed. */
#ifndef CHATBENCH_CHAT_H
#define CHATBENCH_CHAT_H

#include "net.h"
#include "proto.h"
#include "registry.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room a formatted frame needs around --max-frame bytes of text: verb, id, seq, spaces. */
#define CHAT_FRAME_EXTRA 160

/* A client as the chat sees it; each transport embeds one in its own client record. */
struct chat_client {
    struct reg_member member;  /* id and room; guarded by chat_server.lock */
    char addr[NET_ADDRSTRLEN]; /* "ip:port" shown by WELCOME and WHO; guarded by the lock
                                  (set before HELLO; hybrid mode rewrites it when the
                                  session's UDP address is bound) */
    uint64_t chat_in;          /* chat frames received since HELLO (ACK's n); written by the
                                  one thread that handles this client's frames */
    uint64_t who_ms;           /* CLOCK_MONOTONIC ms of its last WHO answered; as chat_in */
    uint64_t active_ms;        /* CLOCK_MONOTONIC ms of its registration or its last frame
                                  but PING since (--idle-timeout); written under the lock by
                                  the thread that handles its frames, read by that thread or
                                  under the lock */
};

struct chat_server {
    pthread_rwlock_t lock; /* writers preferred: fan-outs read all the time */
    struct registry reg;   /* guarded by lock */
    size_t max_clients;    /* registered clients at most; immutable */
    unsigned idle_s;       /* --idle-timeout: seconds without a frame but PING (0: never);
                              set before the first client, immutable. The transports
                              enforce it (chat_transport.active), chat_leave logs it. */
};

struct chat_ctx;

/* The log line of a new registration: the challenge words it per server. */
enum chat_hello_words {
    CHAT_WORDS_CONNECT,  /* [CONNECT] Cliente <id> conectado de <addr> (tcp_server) */
    CHAT_WORDS_REGISTER, /* [REGISTER] Novo cliente <id> registrado de <addr> (udp_server) */
};

/* How the core reaches a transport's clients. A frame handed over is in cx->out, len bytes
 * without terminator, with room for one more byte (the LF a stream needs). */
struct chat_transport {
    enum chat_hello_words hello_words;
    /* WHO is answered at most once per this many ms per client (0: always). */
    unsigned who_min_ms;
    /* Remembers where replies to c go (cx's "self"). Called under the lock, or by the
     * thread that owns c, before anything is sent to it. */
    void (*hold_self)(struct chat_ctx *cx, struct chat_client *c);
    /* One frame, and a block of whole LF-terminated frames the client may lose first
     * under load (WHO's USER lines), to self. */
    void (*reply)(struct chat_ctx *cx, int len);
    void (*reply_bulk)(struct chat_ctx *cx, const char *frames, size_t len);
    /* Under the lock: m receives the next send() to group g (0 or 1). Never blocks. */
    void (*gather)(struct chat_ctx *cx, struct chat_client *m, int g);
    /* Sends the frame to every member gathered in group g and forgets them; len < 0
     * only forgets. Called with or without the lock; never blocks. */
    void (*send)(struct chat_ctx *cx, int g, int len);
    /* Under the write lock: c was just added to the registry (attach: index it; 0 or a
     * negative errno, which takes it out again and refuses it) or is leaving it (detach).
     * May be NULL. */
    int (*attach)(struct chat_ctx *cx, struct chat_client *c);
    void (*detach)(struct chat_ctx *cx, struct chat_client *c);
    /* Under the lock: c has just registered or sent a frame but PING, and active_ms says
     * when (--idle-timeout: the transport's timers move). Called by the thread that handles
     * c's frames; with the lock held for writing when exclusive is set. May be NULL. */
    void (*active)(struct chat_ctx *cx, struct chat_client *c);
    /* Every frame is handled under the write lock (its active hook changes shared lists). */
    bool exclusive;
    /* WELCOME for c into buf (hybrid mode adds its token); NULL: proto_fmt_welcome. */
    int (*fmt_welcome)(struct chat_ctx *cx, const struct chat_client *c, char *buf, size_t cap);
};

/* A thread's working state for the core; a transport embeds it in its own context. */
struct chat_ctx {
    struct chat_server *srv;
    const struct chat_transport *tp;
    char *out; /* one outgoing frame: max_frame + CHAT_FRAME_EXTRA bytes */
    size_t out_cap;
};

/* What became of the client a frame came from. */
enum chat_result {
    CHAT_DONE,    /* handled; the client is as registered as before (or now registered) */
    CHAT_REFUSED, /* a HELLO was refused: the client is not registered */
    CHAT_LEFT,    /* it said BYE and has left: it is in no table any more */
};

/* 0, or a negative errno from the lock's initialisation. */
int chat_server_init(struct chat_server *s, size_t max_clients);
/* Frees the rooms; every client must have left. */
void chat_server_destroy(struct chat_server *s);

/* Allocates cx->out for frames of up to max_frame bytes of text. 0 or -ENOMEM. */
int chat_ctx_init(struct chat_ctx *cx, struct chat_server *s, const struct chat_transport *tp,
                  size_t max_frame);
void chat_ctx_destroy(struct chat_ctx *cx);

void chat_lock_read(struct chat_server *s);
void chat_lock_write(struct chat_server *s);
void chat_unlock(struct chat_server *s);

static inline bool chat_registered(const struct chat_client *c)
{
    return registry_registered(&c->member);
}

/* One line received on a stream (terminator removed): parsed, refused with ERR or handled
 * as chat_frame does. Called by the thread that owns c, without the lock. */
enum chat_result chat_line(struct chat_ctx *cx, struct chat_client *c, const char *line,
                           size_t len);

/* One parsed frame from c. Before HELLO only HELLO and PING are taken (ERR not_registered
 * otherwise). chat_frame takes the lock itself (its owner calls it); chat_frame_locked is
 * entered with the write lock held (the transport found c under it) and returns with it
 * released. A transport that filters verbs (hybrid mode) does so before. */
enum chat_result chat_frame(struct chat_ctx *cx, struct chat_client *c,
                            const struct proto_frame *f);
enum chat_result chat_frame_locked(struct chat_ctx *cx, struct chat_client *c,
                                   const struct proto_frame *f);

/* c leaves for reason why: out of the registry (detach), its room hears LEFT <id> <room>
 * <why> (not at shutdown: PROTOCOL.md, no N^2 LEFT flood), the log says so, and with bye
 * it hears BYE <why> last. Unregistered, only the BYE. The caller owns c and frees or
 * closes it afterwards. chat_leave_locked is entered with the write lock held. */
void chat_leave(struct chat_ctx *cx, struct chat_client *c, enum proto_reason why, bool bye);
void chat_leave_locked(struct chat_ctx *cx, struct chat_client *c, enum proto_reason why, bool bye);

/* Shutdown of a server whose clients are told all at once: every registered client is
 * taken out of the registry without any notice or log line and handed to each(cx, c)
 * under the write lock, which does the rest (gathers it for one BYE, detaches and frees
 * it). Returns how many there were. */
size_t chat_remove_all(struct chat_ctx *cx,
                       void (*each)(struct chat_ctx *cx, struct chat_client *c));

#endif
