/* worker: one thread, one libevent event_base, one slice of the clients (whole rooms, so a
 * room's fan-out bookkeeping never crosses threads), its own statistics.
 *
 * Sends are driven by a per-thread min-heap of clients keyed by their next intended send
 * time and a single event_base timer armed for the heap's top: 10,000 clients at 10 msg/s
 * cost one timer, not 10,000. A 10 ms housekeeping tick launches connections along the
 * ramp, retries UDP set-up, expires UDP messages past --timeout and hands interval
 * statistics to the main thread.
 *
 * Interval statistics: the worker records into cur without any lock; when the main thread
 * asks (swap_req), the tick swaps cur and pub under a mutex that only the tick and the main
 * thread take, never the send or receive path. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

#include "clock.h"

atomic_uint_fast64_t lg_t0_ns;
atomic_int lg_stop;

/* --- the send heap --- */

/* Keys live in the heap entries: sifting touches one array, not 10,000 client structs
 * (perf showed heap_down's cache misses at 5 % of the loadgen's time with the keys outside). */
static uint64_t key(const struct lg_worker *w, uint32_t i)
{
    return w->heap[i].due;
}

static void heap_swap(struct lg_worker *w, uint32_t a, uint32_t b)
{
    struct lg_heap_ent t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
}

static void heap_down(struct lg_worker *w, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->heap_n && key(w, l) < key(w, m))
            m = l;
        if (r < w->heap_n && key(w, r) < key(w, m))
            m = r;
        if (m == i)
            return;
        heap_swap(w, i, m);
        i = m;
    }
}

static void heap_pop(struct lg_worker *w)
{
    w->heap[0] = w->heap[--w->heap_n];
    heap_down(w, 0);
}

static void heap_build(struct lg_worker *w)
{
    for (uint32_t i = w->heap_n / 2; i-- > 0;)
        heap_down(w, i);
}

static void arm_send_timer(struct lg_worker *w, uint64_t now)
{
    if (w->heap_n == 0) {
        w->sends_done = true;
        return;
    }
    if (w->cfg->busy_poll)
        return; /* busy_poll() looks at the heap's top at every turn */
    uint64_t due = key(w, 0);
    uint64_t d = due > now ? due - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(d / 1000000000u),
                         .tv_usec = (suseconds_t)((d % 1000000000u) / 1000u)};
    if (evtimer_add(w->send_timer, &tv) < 0)
        w->st.errors++;
}

static void send_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    (void)fd;
    (void)what;
    uint64_t now = clock_now_ns();
    if (w->sends_done)
        return; /* past t_end: what is still due is counted as behind, not sent late */
    /* a bounded batch, so a late timer cannot starve the reads */
    for (int batch = 0; w->heap_n > 0 && batch < 4096; batch++) {
        struct lg_client *c = &w->clients[w->heap[0].idx];
        uint64_t due = w->heap[0].due;
        if (c->state != LG_READY || due >= w->meter.t_end) {
            heap_pop(w);
            continue;
        }
        if (due > now) {
            now = clock_now_ns();
            if (due > now)
                break;
        }
        lg_client_send_msg(w, c);
        w->heap[0].due = lg_meas_due(&c->m);
        heap_down(w, 0);
    }
    arm_send_timer(w, clock_now_ns());
}

/* --- start of the measured run --- */

static uint64_t mix(uint64_t a, uint64_t b)
{
    struct lg_rng r;
    lg_rng_seed(&r, a * 0x9E3779B97F4A7C15ull ^ b);
    return lg_rng_next(&r);
}

static void start_sending(struct lg_worker *w, uint64_t t0)
{
    const struct lg_config *cfg = w->cfg;
    w->t0 = t0;
    w->meter.warm_end = t0 + (uint64_t)(cfg->warmup_s * 1e9);
    w->meter.t_end = w->meter.warm_end + (uint64_t)(cfg->duration_s * 1e9);
    w->started = true;
    /* who is in: a client not in its room by t0 is a failed set-up */
    for (uint32_t k = 0; k < w->nmine; k++) {
        struct lg_client *c = &w->clients[w->mine[k]];
        if (c->state != LG_READY && c->state != LG_FAILED) {
            if (c->state == LG_IDLE) {
                c->state = LG_FAILED; /* never launched: the ramp did not reach it */
                w->st.connect_failed++;
                atomic_fetch_add(&w->n_failed, 1);
            } else {
                lg_client_fail(w, c);
            }
        }
    }
    for (uint32_t k = 0; k < w->nmine; k++) {
        struct lg_client *c = &w->clients[w->mine[k]];
        if (c->state != LG_READY)
            continue;
        /* the room's members are consecutive in the shard's array too */
        uint32_t first = c->room * cfg->room_size, members = 0;
        uint32_t local = lg_shard_local(&cfg->shard, cfg->room_size, first);
        for (uint32_t j = first; j < first + cfg->room_size && j < cfg->clients; j++)
            members += w->clients[local++].state == LG_READY;
        lg_meas_start(&c->m, t0, cfg->rate, cfg->poisson, mix(cfg->seed, c->index),
                      members > 0 ? members - 1 : 0);
        w->heap[w->heap_n].idx = w->mine[k]; /* the shard's (local) number */
        w->heap[w->heap_n++].due = lg_meas_due(&c->m);
    }
    heap_build(w);
    arm_send_timer(w, clock_now_ns());
}

/* --- housekeeping --- */

static void finish(struct lg_worker *w)
{
    for (uint32_t k = 0; k < w->nmine; k++)
        lg_client_finish(w, &w->clients[w->mine[k]]);
    if (event_base_loopbreak(w->base) < 0)
        w->st.errors++;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    const struct lg_config *cfg = w->cfg;
    (void)fd;
    (void)what;
    uint64_t now = clock_now_ns();

    unsigned req = atomic_load(&w->swap_req);
    if (req != atomic_load(&w->swap_done)) {
        pthread_mutex_lock(&w->lock);
        struct lg_ival *t = w->cur;
        w->cur = w->pub;
        w->pub = t;
        w->meter.iv = w->cur;
        pthread_mutex_unlock(&w->lock);
        atomic_store(&w->swap_done, req);
    }

    if (!w->started) {
        while (w->launched < w->nmine && w->handshakes < LG_MAX_HANDSHAKES) {
            uint64_t at = w->start_ns + (uint64_t)(cfg->ramp_s * 1e9 * w->launched / w->nmine);
            if (at > now)
                break;
            lg_client_launch(w, &w->clients[w->mine[w->launched++]]);
        }
        uint64_t t0 = atomic_load(&lg_t0_ns);
        if (t0 != 0)
            start_sending(w, t0);
    }
    if (w->started && atomic_load(&lg_stop) && w->meter.t_end > now)
        w->meter.t_end = now; /* interrupted: stop sending, still drain */

    /* before the visit below: the tick that ends the sending must count what is in flight */
    if (w->started && !w->sends_done && now >= w->meter.t_end)
        w->sends_done = true; /* the send timer may sleep past t_end: no more sends */

    /* visiting every client costs a cache miss each: every tick while set-ups or the drain
     * need it, else every LG_SWEEP_TICKS (expiry stays exact: on_ack checks the timeout).
     * inflight is known only after a visit: a skipped visit must not read as "none left"
     * (it did: an overloaded run, whose send timer lags past t_end, ended its drain on the
     * tick that set sends_done, and its last send batches of 4096 counted as lost) */
    uint64_t inflight = UINT64_MAX;
    if (w->handshakes > 0 || w->sends_done || w->ticks++ % LG_SWEEP_TICKS == 0) {
        inflight = 0;
        for (uint32_t k = 0; k < w->nmine; k++)
            inflight += lg_client_tick(w, &w->clients[w->mine[k]], now);
    }

    if (w->sends_done) {
        uint64_t tmo = (uint64_t)cfg->timeout_ms * 1000000u;
        uint64_t t_end = w->meter.t_end;
        /* a reliable transport loses nothing: wait for its last ACKs up to LG_TCP_DRAIN_MAX
         * after the window (a saturated server catches up; a segment lost again and again
         * waits for RTOs that double: 0.2 + 0.4 + ... + 6.4 s after six losses in a row,
         * which 10 % loss each way makes about one segment in 20,000 do). A message still
         * unacknowledged then is counted lost, and the run fails. */
        if (w->drain_end == 0)
            w->drain_end = w->tp->datagrams ? (now > t_end ? now : t_end) + tmo + LG_TICK_NS
                                            : t_end + LG_TCP_DRAIN_MAX_NS;
        if (inflight == 0 || now >= w->drain_end || atomic_load(&lg_stop) > 1)
            finish(w);
    }
}

/* --- life cycle --- */

int lg_worker_init(struct lg_worker *w, uint32_t id, const struct lg_config *cfg,
                   struct lg_client *clients, uint32_t *mine, uint32_t nmine)
{
    int rc = -ENOMEM;
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    w->tp = cfg->transport;
    w->clients = clients;
    w->mine = mine;
    w->nmine = nmine;
    w->id_prefix_len = strlen(cfg->id_prefix);
    w->ping_ns = (uint64_t)(cfg->ping_interval_s * 1e9);
    lg_rng_seed(&w->rng, mix(cfg->seed, 0x10000000ull + id));
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        return -ENOMEM;
    if ((rc = lg_stats_init(&w->st)) < 0 || (rc = lg_ival_init(&w->ival[0])) < 0 ||
        (rc = lg_ival_init(&w->ival[1])) < 0)
        return rc;
    w->cur = &w->ival[0];
    w->pub = &w->ival[1];
    w->meter = (struct lg_meter){.st = &w->st,
                                 .iv = w->cur,
                                 .timeout_ns = (uint64_t)cfg->timeout_ms * 1000000u,
                                 .datagrams = w->tp->datagrams};
    if (cfg->compress && (rc = zframe_init(&w->z, NULL)) < 0)
        return rc;
    w->pool_len = 65536 + 4 * (size_t)cfg->size;
    w->pool = malloc(w->pool_len);
    w->scratch = malloc(LG_ZBUF + 16);
    w->scratch2 = malloc(LG_ZBUF + 16);
    w->rx = malloc((size_t)LG_RX_BATCH * LG_RX_SIZE);
    w->heap = calloc(nmine ? nmine : 1, sizeof(*w->heap));
    if (w->pool == NULL || w->scratch == NULL || w->scratch2 == NULL || w->rx == NULL ||
        w->heap == NULL)
        return -ENOMEM;
    lg_payload_fill(cfg->payload, mix(cfg->seed, 0x20000000ull + id), w->pool, w->pool_len);

    struct event_config *ec = event_config_new();
    if (ec == NULL)
        return -ENOMEM;
    /* one thread per base: no locks inside libevent; timerfd for sub-millisecond timers,
     * unless the worker busy-polls: then epoll_wait never sleeps, and a timerfd would only
     * be disarmed at every turn of the loop (a syscall for nothing) */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK |
                                  (cfg->busy_poll ? 0 : EVENT_BASE_FLAG_PRECISE_TIMER));
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL)
        return -ENOMEM;
    w->send_timer = evtimer_new(w->base, send_cb, w);
    w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    if (w->send_timer == NULL || w->tick == NULL)
        return -ENOMEM;

    for (uint32_t k = 0; k < nmine; k++) {
        uint32_t global = lg_shard_global(&cfg->shard, cfg->room_size, mine[k]);
        if ((rc = lg_client_init(&clients[mine[k]], w, global, global / cfg->room_size)) < 0)
            return rc;
    }
    return 0;
}

void lg_worker_destroy(struct lg_worker *w)
{
    for (uint32_t k = 0; k < w->nmine; k++)
        lg_client_destroy(&w->clients[w->mine[k]]);
    if (w->send_timer != NULL)
        event_free(w->send_timer);
    if (w->tick != NULL)
        event_free(w->tick);
    if (w->base != NULL)
        event_base_free(w->base);
    zframe_destroy(&w->z);
    free(w->pool);
    free(w->scratch);
    free(w->scratch2);
    free(w->rx);
    free(w->heap);
    lg_stats_destroy(&w->st);
    lg_ival_destroy(&w->ival[0]);
    lg_ival_destroy(&w->ival[1]);
    pthread_mutex_destroy(&w->lock);
}

/* --cpus: this worker's CPU, the set's (id mod count)-th. */
static void pin(struct lg_worker *w)
{
    const cpu_set_t *set = &w->cfg->cpus;
    uint32_t k = w->id % (uint32_t)CPU_COUNT(set);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set) || k-- > 0)
            continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof(one), &one) < 0) /* 0: this thread */
            w->st.errors++;                              /* it keeps the whole set main gave it */
        return;
    }
}

/* --busy-poll: the loop's turns without sleeping (epoll_wait with a zero timeout), until
 * tick_cb breaks it or nothing is left to wait for, as event_base_dispatch ends. One turn
 * per call (EVLOOP_ONCE: NONBLOCK alone keeps turning while replies keep arriving, and the
 * sends below would wait for a quiet turn). Sends are not on a libevent timer (without
 * EVENT_BASE_FLAG_PRECISE_TIMER its clock is the coarse one, a few ms per step): every turn
 * compares the heap's top with clock_now_ns(), so a send is late by one turn of the loop,
 * not by a wake-up from the idle state. */
static void busy_poll(struct lg_worker *w)
{
    for (;;) {
        int rc = event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (rc < 0)
            w->st.errors++;
        if (rc != 0 || event_base_got_break(w->base))
            return;
        if (w->started && !w->sends_done && w->heap_n > 0 && key(w, 0) <= clock_now_ns())
            send_cb(-1, 0, w);
    }
}

void *lg_worker_main(void *arg)
{
    struct lg_worker *w = arg;
    if (w->cfg->pin)
        pin(w);
    char name[16];
    snprintf(name, sizeof(name), "lg-worker-%" PRIu32, w->id % 100000);
    /* best effort: the name only helps top -H, perf and the tests tell the workers apart
     * (named after pinning, so a named worker is a pinned one) */
    (void)pthread_setname_np(pthread_self(), name);
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(LG_TICK_NS / 1000)};
    w->start_ns = clock_now_ns();
    if (event_add(w->tick, &tv) < 0)
        w->st.errors++;
    else if (!w->cfg->busy_poll && event_base_dispatch(w->base) < 0)
        w->st.errors++;
    else if (w->cfg->busy_poll)
        busy_poll(w);
    atomic_store(&w->done, true);
    return NULL;
}

void lg_worker_collect(struct lg_worker *w, struct lg_ival *dst)
{
    unsigned req = atomic_fetch_add(&w->swap_req, 1) + 1;
    while (atomic_load(&w->swap_done) != req && !atomic_load(&w->done)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ts, NULL); /* an interrupted sleep only loops again */
    }
    pthread_mutex_lock(&w->lock);
    if (atomic_load(&w->swap_done) != req) { /* the worker has finished: take cur as well */
        lg_ival_add(dst, w->cur);
        lg_ival_reset(w->cur);
    }
    lg_ival_add(dst, w->pub);
    lg_ival_reset(w->pub);
    pthread_mutex_unlock(&w->lock);
}
