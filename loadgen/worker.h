/* worker: one thread, one libevent event_base, one slice of the clients (whole rooms), its
 * own statistics (see worker.c for the send heap and the housekeeping tick). */
#ifndef CHATBENCH_LG_WORKER_H
#define CHATBENCH_LG_WORKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "config.h"
#include "measure.h"
#include "schedule.h"
#include "stats.h"
#include "transport.h"
#include "zframe.h"

#define LG_ZBUF 65536                      /* datagram and read scratch of a worker */
#define LG_RX_BATCH 8                      /* datagrams per recvmmsg */
#define LG_RX_SIZE 8192                    /* largest datagram taken */
#define LG_SETUP_MAX_NS 120000000000ull    /* the whole set-up phase, after the ramp */
#define LG_TCP_DRAIN_MAX_NS 30000000000ull /* reliable: longest wait for ACKs after the window */
#define LG_TICK_NS 10000000ull             /* housekeeping period of a worker */
#define LG_SWEEP_TICKS 5                   /* ticks between visits of every client */
#define LG_MAX_HANDSHAKES 64 /* set-ups in progress per worker: they sit in the lobby */

struct lg_worker {
    uint32_t id;
    const struct lg_config *cfg;
    const struct lg_transport *tp; /* cfg->transport */
    struct lg_client *clients;     /* the shard's array (local numbers, shard.h); this worker
                                    * owns the entries below */
    uint32_t *mine;
    uint32_t nmine;
    uint32_t launched, handshakes;
    uint64_t start_ns; /* when the ramp began */
    uint64_t ping_ns;  /* cfg->ping_interval_s */
    struct event_base *base;
    struct event *send_timer, *tick;
    /* min-heap of clients by next intended send time */
    struct lg_heap_ent {
        uint64_t due; /* the client's lg_meas_due, copied */
        uint32_t idx; /* in clients[] */
    } * heap;
    uint32_t heap_n;
    uint64_t t0, drain_end;
    bool started, sends_done;
    uint64_t ticks;
    struct lg_stats st;
    struct lg_meter meter; /* records into st and cur */
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
    char *rx; /* LG_RX_BATCH buffers of LG_RX_SIZE */
    pthread_t thread;
    size_t id_prefix_len; /* of cfg->id_prefix */
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

#endif
