/* stats: what one worker thread measured (struct lg_stats) and what it hands the main thread
 * every interval (struct lg_ival), their merge, and the loss split of the merged run. Each
 * thread fills its own; the main thread adds them after pthread_join (or, for intervals,
 * under the worker's swap lock). */
#ifndef CHATBENCH_LG_STATS_H
#define CHATBENCH_LG_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hist.h"

#define LG_HIST_LOW_NS 1ull            /* 1 ns: exact to 2047 ns, then 3 digits */
#define LG_HIST_HIGH_NS 60000000000ull /* 60 s */
#define LG_HIST_SIGFIGS 3
#define LG_FROM_STREAMS_MAX (64ull << 20) /* bytes of per-stream FROM accounting */

/* The histograms of a run, in the order of latency.csv; their names are the KIND of
 * latency.csv, LABEL.KIND.hist and the .hlog's Tag=KIND. */
enum lg_kind {
    LG_ACK,         /* ACK latency from the intended send time (coordinated omission) */
    LG_ACK_RAW,     /* ACK latency from the actual send */
    LG_FANOUT,      /* FROM latency from the sender's intended time */
    LG_FANOUT_LAST, /* to the last member, for messages every member got */
    LG_CONNECT,     /* set-up time of a client */
    LG_LAG,         /* send lag: actual - intended send time */
    /* datagrams: user-space receive time - kernel receive time (SO_TIMESTAMPNS) of measured
     * ACKs and FROMs: the wait in our socket buffer for this worker (empty over TCP) */
    LG_RX_LAG,
    LG_KINDS
};
extern const char *const lg_kind_names[LG_KINDS];

/* Statistics of one thread (or the merged run). Counters count measured messages only:
 * those whose intended send time is past the warm-up. */
struct lg_stats {
    struct hist h[LG_KINDS];
    uint64_t sent, acked, lost, late, duplicates, reordered, too_old;
    uint64_t fanout_expected, fanout_received, fanout_dup, fanout_reordered;
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
    uint64_t sent_all;   /* every MSG of the run, warm-up included */
    uint64_t keepalives; /* PINGs of the whole run (--ping-interval), set-up wait included */
    /* for the uplink/downlink split (lg_meas_finish): uplink_est = seqs between each
     * client's baseline ACK and its highest ACK that the server never counted; tail = measured
     * seqs after the highest ACK (no later ACK tells which way they were lost) */
    uint64_t uplink_est, tail;
    /* RFC 3550 jitter: each client's running estimate of its ACK stream, sampled at every
     * first arrival of a measured message's ACK; the report gives the mean of the samples */
    double jitter_sum_ns;
    uint64_t jitter_n;
};

/* The counters of struct lg_stats (every uint64_t field) with the summary.csv column that
 * holds each: one list for adding threads (lg_stats_add) and shards (loadgen merge). The
 * jitter sum, a double, is apart. */
#define LG_COUNTERS 35
struct lg_counter_def {
    const char *column;
    size_t offset;
};
extern const struct lg_counter_def lg_counter_defs[LG_COUNTERS];
uint64_t *lg_counter(struct lg_stats *s, size_t i);
const uint64_t *lg_counter_c(const struct lg_stats *s, size_t i);

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

/* Whether per-stream FROM accounting (fan-out duplicates and reordering) is on: a room size
 * above 1 and at most LG_FROM_STREAMS_MAX bytes of it. Off, those two counts stay 0. */
bool lg_fanout_tracking(const struct lg_config *cfg);

/* Per-interval figures; a worker fills its current one and swaps it with the main thread's
 * under a lock. ack, fanout and the counts cover every message (warm-up included: the time
 * series); meas holds what the interval added to lg_stats's histograms (the .hlog), so the
 * intervals of a kind add up to the run's histogram. */
struct lg_ival {
    struct hist ack, fanout;
    uint64_t sent, acked, lost;
    struct hist meas[LG_KINDS];
};

/* Whether the interval holds anything at all. */
bool lg_ival_empty(const struct lg_ival *v);

int lg_ival_init(struct lg_ival *v);
void lg_ival_destroy(struct lg_ival *v);
void lg_ival_reset(struct lg_ival *v);
void lg_ival_add(struct lg_ival *dst, const struct lg_ival *src);

#endif
