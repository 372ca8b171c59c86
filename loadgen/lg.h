/* lg: the load generator's shared types: settings, simulated clients, per-thread workers
 * and their statistics. main.c parses options and reports; worker.c runs the event loops;
 * client.c speaks the protocol for one simulated client over TCP or UDP. */
#ifndef CHATBENCH_LG_H
#define CHATBENCH_LG_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "payload.h"
#include "proto.h"
#include "schedule.h"
#include "seqstats.h"
#include "zframe.h"

#define LG_HIST_LOW_NS 1ull            /* 1 ns: exact to 2047 ns, then 3 digits */
#define LG_HIST_HIGH_NS 60000000000ull /* 60 s */
#define LG_HIST_SIGFIGS 3
/* LOADGEN-BOUND (report.c): ack latency ~= raw latency + send lag, so a lag p99 that is a
 * sizeable part of the ack p99 means the figures measure the load generator. The floor keeps
 * scheduler noise (tens of us) on an idle loopback from tripping it. */
#define LG_LAG_BOUND_MIN_NS 100000ull        /* lag p99 above max(100 us, */
#define LG_LAG_BOUND_SHARE 0.25              /* 25 % of the ack p99) */
#define LG_RATE_BOUND 0.95                   /* achieved below 95 % of offered: likewise */
#define LG_MAX_SIZE 3900                     /* payload bytes; the frame stays under 4096 */
#define LG_RBUF 8192                         /* TCP line buffer of one client */
#define LG_WBUF_MAX (1u << 20)               /* TCP: unsent bytes of one client */
#define LG_RX_BATCH 8                        /* UDP: datagrams per recvmmsg */
#define LG_RX_SIZE 8192                      /* UDP: largest datagram taken */
#define LG_ZBUF 65536                        /* datagram and read scratch of a worker */
#define LG_CONNECT_TIMEOUT_NS 20000000000ull /* set-up of one client, after its ramp slot */
#define LG_SETUP_MAX_NS 120000000000ull      /* the whole set-up phase, after the ramp */
#define LG_KEEPALIVE_NS 5000000000ull        /* UDP: PING after 5 s without sending */
#define LG_TCP_DRAIN_MAX_NS 30000000000ull   /* TCP: longest wait for ACKs after the window */
#define LG_HELLO_RETRY_NS 1000000000ull      /* UDP: resend HELLO/JOIN after 1 s */
#define LG_TICK_NS 10000000ull               /* housekeeping period of a worker */
#define LG_SWEEP_TICKS 5                     /* ticks between visits of every client */
#define LG_MAX_HANDSHAKES 64 /* set-ups in progress per worker: they sit in the lobby */
#define LG_FROM_STREAMS_MAX (64ull << 20) /* bytes of per-stream FROM accounting */

/* LG_HYBRID: udp_server --hybrid. A TCP control connection per client (HELLO -> WELCOME with
 * a session token), chat over a connected UDP socket, each datagram prefixed by the token. */
enum lg_proto { LG_TCP, LG_UDP, LG_HYBRID };

/* "tcp", "udp" or "hybrid" (upper: "TCP", "UDP", "hybrid") */
const char *lg_proto_name(enum lg_proto p, bool upper);

struct lg_config {
    enum lg_proto proto;
    uint32_t clients;
    char host[256];
    uint16_t port;
    uint32_t threads;
    double duration_s, warmup_s, ramp_s, interval_s;
    double rate;       /* per client, messages/s */
    double total_rate; /* 0 unless --total-rate */
    bool poisson;
    uint32_t size;
    enum lg_payload payload;
    uint32_t room_size;
    bool compress;
    uint32_t timeout_ms;
    const char *out_dir;
    char label[65];
    uint64_t seed;
    bool json, quiet;
};

/* Parses argv into *cfg. Exits 0 after --help/--version, 2 with a message on bad options. */
void lg_options(int argc, char **argv, struct lg_config *cfg);

enum lg_state {
    LG_IDLE,       /* not launched yet */
    LG_CONNECTING, /* TCP connect in progress */
    LG_HELLO,      /* HELLO sent, waiting for WELCOME */
    LG_JOINING,    /* JOIN sent, waiting for JOINED (hybrid: PING sent on UDP, wait for PONG) */
    LG_READY,      /* in its room, waiting for t0 or sending */
    LG_FAILED,     /* set-up failed or the connection died */
};

/* One in-flight message (slot seq & mask of the client's ring). */
struct lg_slot {
    uint64_t seq;
    uint64_t intended_ns;
    uint64_t sent_ns;
    uint64_t last_from_ns; /* latest FROM arrival so far */
    uint32_t fan_left;     /* FROMs still expected */
    uint8_t used, acked;
};

struct lg_client {
    uint32_t index;
    enum lg_state state;
    int fd;
    struct event *ev;
    bool want_write; /* TCP: output pending, EV_WRITE registered */
    uint8_t tries;
    uint64_t launch_ns, hello_ns, retry_ns, last_tx_ns;
    uint32_t room, room_members; /* members joined at t0 */
    /* schedule */
    struct lg_sched sched;
    bool sending;
    uint64_t next_seq;       /* seq of the next MSG */
    uint64_t first_measured; /* first seq past the warm-up; UINT64_MAX until known */
    /* in-flight ring */
    struct lg_slot *ring;
    uint32_t mask;
    uint64_t base; /* oldest seq still in the ring */
    /* the ACK of the highest seq and its n (frames the server had counted from us): every
     * seq up to hi_seq that the server never counted was lost on the way up */
    bool have_hi;
    uint64_t hi_seq, hi_n;
    /* the same for the highest ACKed seq below first_measured (a warm-up message): the
     * baseline that restricts the split to the measured window */
    bool have_base;
    uint64_t base_seq, base_n;
    uint64_t sent_all;
    struct seqstats ack_ss;
    struct seqstats *from_ss; /* one per room member (by position), or NULL */
    /* hybrid: the data path next to the control connection (fd) */
    int ufd;                        /* connected UDP socket, -1 until WELCOME */
    struct event *uev;              /* reads ufd */
    char token[PROTO_TOKEN_PREFIX]; /* "<token> " in front of every datagram */
    /* TCP buffers (heap, only while needed) */
    char *rbuf;
    size_t rlen;
    char *wbuf;
    size_t wlen, wcap;
    struct lg_worker *w;
};

/* Statistics of one thread (or the merged run). Counters count measured messages only:
 * those whose intended send time is past the warm-up. */
struct lg_stats {
    struct hist ack, ack_raw, fanout, fanout_last, connect, lag;
    /* UDP: user-space receive time - kernel receive time (SO_TIMESTAMPNS) of measured ACKs
     * and FROMs: the wait in our socket buffer for this worker (empty over TCP) */
    struct hist rx_lag;
    uint64_t sent, acked, lost, late, duplicates, reordered, too_old;
    uint64_t fanout_expected, fanout_received, fanout_dup, fanout_reordered, fanout_lost;
    /* measured messages some member never got a FROM for: left out of fanout_last */
    uint64_t fanout_last_incomplete;
    uint64_t connected, connect_failed, errors, tcp_disorder;
    uint64_t disconnects, err_frames, send_errors; /* parts of errors */
    uint64_t reregistered; /* UDP: registered again after ERR not_registered */
    uint64_t server_full;  /* ERR server_full answers */
    uint64_t behind;       /* messages due in the window that were never sent: the loadgen lagged */
    /* bytes of the MSG, ACK and FROM frames of measured messages (duplicates included) */
    uint64_t bytes_sent_wire, bytes_recv_wire, bytes_sent_plain, bytes_recv_plain;
    /* every byte of the run: set-up, warm-up, PING, BYE and the rest */
    uint64_t bytes_sent_wire_total, bytes_recv_wire_total, bytes_sent_plain_total,
        bytes_recv_plain_total;
    uint64_t sent_all; /* every MSG of the run, warm-up included */
    /* for the uplink/downlink split (lg_stats_account_client): uplink_est = seqs between each
     * client's baseline ACK and its highest ACK that the server never counted; tail = measured
     * seqs after the highest ACK (no later ACK tells which way they were lost) */
    uint64_t uplink_est, tail;
    /* RFC 3550 jitter: each client's running estimate of its ACK stream, sampled at every
     * first arrival of a measured message's ACK; the report gives the mean of the samples */
    double jitter_sum_ns;
    uint64_t jitter_n;
};

int lg_stats_init(struct lg_stats *s);
void lg_stats_destroy(struct lg_stats *s);
int lg_stats_add(struct lg_stats *dst, const struct lg_stats *src);

/* The loss split of the measured window. Messages after a client's last ACK are lost in a
 * direction nothing tells (unknown). Of the others, the server's counts n in two ACKs say how
 * many seqs between them never reached it: the baseline is the ACK of the highest warm-up seq
 * (seq_b, n_b; none: seq -1, n 0), the end is the highest ACK (hi_seq, hi_n), and
 * uplink = (hi_seq - seq_b) - (hi_n - n_b); the rest of lost reached the server and lost
 * their ACK (downlink). uplink + downlink + unknown == lost. Exact when the baseline is the
 * last warm-up seq (always with --warmup 0) and nothing duplicates frames on the way up (the
 * server counts copies); warm-up seqs after an unacknowledged end of the warm-up are all lost,
 * and those lost on the way up are counted as measured uplink (clamped to lost). */
struct lg_loss_split {
    uint64_t uplink, downlink, unknown;
};
struct lg_loss_split lg_stats_loss_split(const struct lg_stats *s);

/* One client's end-of-run figures: sent_all messages (seqs 0..sent_all-1), the first measured
 * seq (UINT64_MAX: none), the baseline ACK and the highest ACK with their n. */
struct lg_acct {
    uint64_t sent_all, first_measured;
    bool have_base, have_hi;
    uint64_t base_seq, base_n, hi_seq, hi_n;
};
void lg_stats_account_client(struct lg_stats *s, const struct lg_acct *a);

/* Whether per-stream FROM accounting (fan-out duplicates and reordering) is on: a room size
 * above 1 and at most LG_FROM_STREAMS_MAX bytes of it. Off, those two counts stay 0. */
bool lg_fanout_tracking(const struct lg_config *cfg);

/* Per-interval figures; the worker fills cur and swaps it with pub under lock. */
struct lg_ival {
    struct hist ack, fanout;
    uint64_t sent, acked, lost;
};

struct lg_worker {
    uint32_t id;
    const struct lg_config *cfg;
    struct lg_client *clients; /* the run's array; this worker owns the indices below */
    uint32_t *mine;
    uint32_t nmine;
    uint32_t launched, handshakes;
    uint64_t start_ns; /* when the ramp began */
    struct event_base *base;
    struct event *send_timer, *tick;
    /* min-heap of clients by next intended send time */
    struct lg_heap_ent {
        uint64_t due; /* the client's lg_sched_peek, copied */
        uint32_t idx;
    } * heap;
    uint32_t heap_n;
    uint64_t t0, warm_end, t_end, drain_end;
    bool started, sends_done;
    uint64_t ticks;
    uint64_t acks_seen, drain_acks; /* every ACK of ours: progress while draining */
    struct lg_stats st;
    struct lg_ival ival[2];
    struct lg_ival *cur, *pub; /* pub guarded by lock */
    pthread_mutex_t lock;
    atomic_uint swap_req, swap_done;
    /* shared with main */
    atomic_uint n_ready, n_failed, n_dropped; /* dropped: ready, then lost its connection */
    atomic_bool done;
    /* scratch */
    struct zframe z;
    char *pool;
    size_t pool_len;
    struct lg_rng rng;
    char *scratch, *scratch2;
    char *rx;         /* LG_RX_BATCH buffers of LG_RX_SIZE */
    bool rx_measured; /* set by on_frame: the frame was an ACK/FROM of a measured message */
    uint64_t tx_ns;   /* set by the send path just before send(): a MSG's send time */
    pthread_t thread;
    char id_prefix[24];
    size_t id_prefix_len;
};

/* Set by main: t0 (0 until the set-up is over) and an early stop: 1 after the first
 * SIGINT/SIGTERM (stop sending, drain), 2 after the second (finish now). */
extern atomic_uint_fast64_t lg_t0_ns;
extern atomic_int lg_stop;

int lg_worker_init(struct lg_worker *w, uint32_t id, const struct lg_config *cfg,
                   struct lg_client *clients, uint32_t *mine, uint32_t nmine);
void lg_worker_destroy(struct lg_worker *w);
void *lg_worker_main(void *arg);
/* Main thread: collects the worker's last interval into dst (adding). Blocks briefly until
 * the worker has swapped (or has finished). */
void lg_worker_collect(struct lg_worker *w, struct lg_ival *dst);
int lg_ival_init(struct lg_ival *v);
void lg_ival_destroy(struct lg_ival *v);
void lg_ival_reset(struct lg_ival *v);
void lg_ival_add(struct lg_ival *dst, const struct lg_ival *src);

/* client.c: protocol of one client (called on its worker's thread). */
void lg_client_launch(struct lg_worker *w, struct lg_client *c);
void lg_client_send_msg(struct lg_worker *w, struct lg_client *c, uint64_t now);
void lg_client_tick(struct lg_worker *w, struct lg_client *c, uint64_t now);
void lg_client_close(struct lg_client *c);
/* Closes a client after an error and counts it (set-up failure or lost connection). */
void lg_client_fail(struct lg_worker *w, struct lg_client *c);
/* End of the run: whatever is still in flight is resolved (lost when never acked). */
void lg_client_finish(struct lg_worker *w, struct lg_client *c);
uint64_t lg_client_inflight(const struct lg_client *c);
/* Says BYE (best effort) to a client's server at the end of the run. */
void lg_client_bye(struct lg_worker *w, struct lg_client *c);

#endif
