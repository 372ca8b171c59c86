/* stats: what one worker thread measured (struct lg_stats) and what it hands the main thread
 * every interval (struct lg_ival), their merge, and the loss split of the merged run. Each
 * thread fills its own; the main thread adds them after pthread_join (or, for intervals,
 * under the worker's swap lock). */
#ifndef CHATBENCH_LG_STATS_H
#define CHATBENCH_LG_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "hist.h"

#define LG_HIST_LOW_NS 1ull            /* 1 ns: exact to 2047 ns, then 3 digits */
#define LG_HIST_HIGH_NS 60000000000ull /* 60 s */
#define LG_HIST_SIGFIGS 3
#define LG_FROM_STREAMS_MAX (64ull << 20) /* bytes of per-stream FROM accounting */

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
    /* for the uplink/downlink split (lg_meas_finish): uplink_est = seqs between each
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

/* Whether per-stream FROM accounting (fan-out duplicates and reordering) is on: a room size
 * above 1 and at most LG_FROM_STREAMS_MAX bytes of it. Off, those two counts stay 0. */
bool lg_fanout_tracking(const struct lg_config *cfg);

/* Per-interval figures of every message (warm-up included); a worker fills its current one
 * and swaps it with the main thread's under a lock. */
struct lg_ival {
    struct hist ack, fanout;
    uint64_t sent, acked, lost;
};

int lg_ival_init(struct lg_ival *v);
void lg_ival_destroy(struct lg_ival *v);
void lg_ival_reset(struct lg_ival *v);
void lg_ival_add(struct lg_ival *dst, const struct lg_ival *src);

#endif
