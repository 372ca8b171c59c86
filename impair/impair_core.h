/* impair_core: the pure decision core of bin/udp_impair and bin/linkem: the seeded PRNG,
 * udp_impair's per-datagram decision, linkem's model of one direction of a link
 * (loss, Gilbert-Elliott bursts, duplication, drop-tail queue, bottleneck, delay and jitter),
 * per-flow reorder accounting and the timer heap both programs send from. No I/O, no clock:
 * callers pass times. Everything here is deterministic, which is what lets a test replay a
 * run.
 *
 * Thread-safety: no shared state; each struct belongs to its caller. */
#ifndef CHATBENCH_IMPAIR_CORE_H
#define CHATBENCH_IMPAIR_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum impair_dir { IMPAIR_UP = 0, IMPAIR_DOWN = 1, IMPAIR__DIRS };

/* --- PRNG: xoshiro256** seeded through splitmix64 (common/rng.h) --- */
struct impair_rng {
    uint64_t s[4];
};

void impair_rng_seed(struct impair_rng *r, uint64_t seed);
/* The generator of one direction: both programs draw each direction from its own stream, so
 * that what one direction carries never changes the other's decisions. */
void impair_rng_seed_dir(struct impair_rng *r, uint64_t seed, enum impair_dir dir);
uint64_t impair_rng_next(struct impair_rng *r);
/* Uniform in [0, 1). */
double impair_rng_unit(struct impair_rng *r);
/* Uniform in [0, max] (jitter in ns; the modulo bias is below 2^-40 for any delay we take).
 * Always consumes one number, also for max 0. */
uint64_t impair_rng_upto(struct impair_rng *r, uint64_t max);

/* --- the decision: exactly one action per impaired datagram --- */
struct impair_probs {
    double drop, dup, reorder;
    uint64_t jitter_ns; /* extra delay drawn uniformly in [0, jitter_ns] */
};

enum impair_action { IA_FORWARD = 0, IA_DROP, IA_DUP, IA_HOLD };

/* Draws exactly four numbers from r whatever the outcome (so that the stream of decisions
 * depends only on the seed and the order of datagrams), and decides in a fixed order: drop,
 * else duplicate, else hold for reordering, else forward. *jitter_ns gets the extra delay. */
enum impair_action impair_decide(const struct impair_probs *p, struct impair_rng *r,
                                 uint64_t *jitter_ns);

/* --- the link model: one direction of bin/linkem's emulated link ---
 * The order a packet meets things in, as on a real path: the loss model (what a lossy medium
 * does before anything queues it), duplication (a copy is a packet like any other from there
 * on), the drop-tail queue in front of the bottleneck (a full queue drops the newcomer), the
 * bottleneck's serialisation time (from the IP length), then the propagation delay with its
 * jitter. Four numbers are drawn per arriving packet whatever happens to it, so the fate of
 * the n-th packet of a direction depends only on the seed and n. */
struct impair_link_cfg {
    uint64_t delay_ns;    /* fixed one-way delay */
    uint64_t jitter_ns;   /* extra delay per packet, uniform in [0, jitter_ns] */
    bool reorder;         /* jitter may reorder; otherwise no packet leaves before one ahead */
    uint64_t rate_bps;    /* the bottleneck in bit/s; 0: none (and no queue) */
    uint32_t queue_pkts;  /* drop-tail limit, packets waiting for the bottleneck; 0: none */
    uint64_t queue_bytes; /* the same in bytes; 0: none */
    double loss;          /* independent loss probability (Bernoulli) */
    double ge_p, ge_r;    /* Gilbert-Elliott: P(good->bad), P(bad->good) per packet; r 0: off */
    double dup;           /* duplication probability */
};

/* Gilbert-Elliott transition probabilities for an average loss `loss` (0 < loss < 1) in bursts
 * of mean length `burst` packets (>= 1): every packet in the bad state is lost, none in the
 * good one, so runs of losses are geometric with mean 1/r = burst and the stationary loss is
 * p / (p + r) = loss. Returns 0, or -EINVAL when no such chain exists (p would exceed 1:
 * loss / (1 - loss) > burst, e.g. 60 % in bursts of 1). */
int impair_ge_params(double loss, double burst, double *p, double *r);

/* What the model counts itself (the program counts what it writes). */
struct impair_link_counts {
    uint64_t pkts_in, bytes_in;
    uint64_t lost;            /* dropped by the loss model */
    uint64_t duplicated;      /* extra copies made */
    uint64_t queue_drops;     /* copies dropped by the full queue */
    uint64_t max_queue;       /* most packets ever waiting for the bottleneck */
    uint64_t max_queue_bytes; /* most bytes ever waiting */
};

struct impair_link_wait {
    uint64_t start; /* when the bottleneck starts serialising it */
    uint32_t len;
};

struct impair_link {
    struct impair_link_cfg cfg;
    struct impair_rng rng;
    bool ge_bad;
    uint64_t busy_until;        /* the bottleneck serialises the last accepted copy until then */
    uint64_t carry;             /* remainder of the bit-time division: long runs stay exact */
    uint64_t last_out;          /* in order: the latest departure handed out */
    struct impair_link_wait *q; /* ring of the copies waiting for the bottleneck */
    size_t q_head, q_n, q_cap;
    uint64_t q_bytes;
    uint64_t next_idx;
    struct impair_link_counts n;
};

/* The fate of one arriving packet. */
struct impair_link_verdict {
    uint64_t idx;       /* arrival number in this direction, from 0 (copies share it) */
    bool lost;          /* dropped by the loss model: no copies */
    bool duplicated;    /* two copies entered the queue */
    int copies;         /* copies to send: 0, 1 or 2 */
    int queue_drops;    /* copies the full queue dropped */
    uint64_t depart[2]; /* departure time of each copy to send, CLOCK_MONOTONIC ns */
};

/* Returns 0, or -EINVAL for contradictory settings (loss and Gilbert-Elliott together, a
 * probability outside 0..1). No allocation until a queue forms. */
int impair_link_init(struct impair_link *l, const struct impair_link_cfg *cfg, uint64_t seed,
                     enum impair_dir dir);
void impair_link_destroy(struct impair_link *l);
/* One packet of len bytes (its IP length) arrives at now: fills *v and the counts. now must
 * not go backwards. A copy the queue cannot take for lack of memory counts as a queue drop. */
void impair_link_arrive(struct impair_link *l, uint64_t now, uint32_t len,
                        struct impair_link_verdict *v);
/* Serialisation time of len bytes at rate_bps, rounded up (what one packet alone costs). */
uint64_t impair_link_tx_ns(uint64_t rate_bps, uint32_t len);

/* --- reordering as a receiver sees it: per flow, the late packets ---
 * A copy is reordered when a packet of the same flow that arrived after it (a higher arrival
 * index) has already been sent: iperf3's and loadgen's "below the highest seq seen", counted
 * per flow (protocol, addresses, ports) at the link instead of per stream at the receiver. */
struct impair_flows {
    uint64_t *key; /* the caller's flow hash (0 is stored as 1); 0 marks a free slot */
    uint64_t *hi;  /* highest arrival index sent, plus one */
    size_t n, cap;
    uint64_t untracked; /* sends not judged: the table could not grow */
};

void impair_flows_init(struct impair_flows *f);
void impair_flows_destroy(struct impair_flows *f);
/* Records that a copy with arrival index idx of flow `flow` is sent now; returns whether a
 * later arrival of the same flow was sent before it (the copy is reordered). */
bool impair_flows_sent(struct impair_flows *f, uint64_t flow, uint64_t idx);

/* --- timer heap: earliest `at` first, FIFO among equal `at` --- */
struct impair_timer {
    uint64_t at;    /* CLOCK_MONOTONIC ns */
    uint64_t order; /* insertion counter: ties keep their order */
    void *ptr;
    uint64_t gen; /* the caller's generation check for entries that may go stale */
};

struct impair_heap {
    struct impair_timer *v;
    size_t n, cap;
    uint64_t next_order;
};

void impair_heap_init(struct impair_heap *h);
void impair_heap_destroy(struct impair_heap *h);
/* Returns 0 or -ENOMEM. */
int impair_heap_push(struct impair_heap *h, uint64_t at, void *ptr, uint64_t gen);
/* The earliest entry without removing it; false when empty. */
bool impair_heap_peek(const struct impair_heap *h, struct impair_timer *out);
/* Removes the earliest entry into *out; false when empty. */
bool impair_heap_pop(struct impair_heap *h, struct impair_timer *out);

#endif
