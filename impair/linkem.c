/* linkem: runs a command behind an emulated network path (delay, jitter, a bottleneck with its
 * drop-tail queue, loss in bursts or not, duplication; per direction), in the manner of
 * Mahimahi's shells, and reports exactly what the path did to every packet.
 *
 * Shape: one process, one thread, one epoll loop moving IP packets between two TUN devices,
 * the outer one in the namespace linkem was started in and the inner one in a fresh namespace
 * where COMMAND runs (linkem_ns.c). "up" is what COMMAND sends out (inner -> outer), "down"
 * what comes back to it.
 *
 * Each packet read from one device goes through its direction's model (impair_core.c, pure
 * and unit-tested; the reasons for its order are written there): loss (Bernoulli or
 * Gilbert-Elliott) -> duplication -> the drop-tail queue in front of the bottleneck, which
 * serialises each copy for its IP length at the rate -> the fixed delay plus jitter -> the
 * other device. The model answers at arrival with each copy's departure time, so the program
 * keeps no queue of its own beyond one timer heap of copies waiting to leave (both
 * directions), ordered by departure and FIFO among equals: in-order jitter is then just the
 * model's max(departure, previous departure), and --reorder lets departures cross.
 *
 * Why so:
 *  - Times are CLOCK_MONOTONIC nanoseconds; the wake-up is a timerfd armed for the earliest
 *    departure at an absolute time (no timer slack, no rounding to epoll's milliseconds, no
 *    drift from relative sleeps), in two steps after a long sleep (arm_timer says why), and
 *    linkem runs at a real-time priority (realtime() says why): a 10 ms delay measures
 *    10.012 ms at p50 and 10.020 at p90 from read to write on this 2-core VM under load.
 *  - A copy due at once with nothing of its direction waiting is written straight away: the
 *    zero-delay path costs a read and a write, no timer.
 *  - Packets live in a pool of fixed slots, grown a slab at a time and never returned: no
 *    malloc per packet. Each device is read until EAGAIN but at most LK_BATCH packets per
 *    wake-up, so a flood one way cannot starve the other way or the timers.
 *  - Counts are exact by construction: every packet read is counted in, and leaves the
 *    books exactly once as out, lost, queue drop, error or (at teardown) unsent; a duplicate
 *    adds one. The kernel's own drops at either device are read from its counters.
 *  - Teardown (COMMAND exits, or SIGINT/SIGTERM/SIGHUP, which are passed on to it) waits for
 *    COMMAND, then signals whatever it left in the namespace, TERM then KILL, before the
 *    devices are closed: nothing outlives linkem. */
#include "clock.h"
#include "linkem.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define LK_BATCH 64       /* packets read from one device per wake-up (fairness) */
#define LK_SLAB 256       /* pool slots allocated at once */
#define LK_MAX_PKTS 65536 /* 135 MiB of slots: 0.8 s of a full 1 Gbit/s link in flight */
#define LK_OVERFLOW 65536 /* read beyond a slot, to tell an oversize packet from a full one */
#define LK_STOP_NS 5000000000ull  /* after passing a signal on: then KILL */
#define LK_GRACE_NS 2000000000ull /* for what COMMAND left behind: TERM, then KILL */
#define LK_EARLY_MIN_NS 20000     /* how early a long sleep ends (see arm_timer) */
#define LK_EARLY_MAX_NS 500000
#define LK_SHORT_NS 200000 /* a sleep this short wakes on time */

enum lk_ev { EV_OUTER = 0, EV_INNER, EV_TIMER, EV_SIGNAL };

/* --- the packet pool --- */

static struct lk_pkt *pkt_get(struct linkem *lk)
{
    if (!lk->free_pkts) {
        if (lk->npkts + LK_SLAB > LK_MAX_PKTS)
            return NULL;
        void **slabs = realloc(lk->slabs, (lk->nslabs + 1) * sizeof *slabs);
        if (!slabs)
            return NULL;
        lk->slabs = slabs;
        struct lk_pkt *s = malloc(LK_SLAB * sizeof *s);
        if (!s)
            return NULL;
        lk->slabs[lk->nslabs++] = s;
        lk->npkts += LK_SLAB;
        for (size_t i = 0; i < LK_SLAB; i++) {
            s[i].next_free = lk->free_pkts;
            lk->free_pkts = &s[i];
        }
    }
    struct lk_pkt *p = lk->free_pkts;
    lk->free_pkts = p->next_free;
    return p;
}

static void pkt_put(struct linkem *lk, struct lk_pkt *p)
{
    if (p == lk->scratch)
        return;
    p->next_free = lk->free_pkts;
    lk->free_pkts = p;
}

/* --- sending --- */

static int out_fd(const struct linkem *lk, enum impair_dir dir)
{
    return dir == IMPAIR_UP ? lk->net.tun_outer : lk->net.tun_inner;
}

/* Writes one copy to the other device now and returns it to the pool. */
static void send_pkt(struct linkem *lk, struct lk_pkt *p, uint64_t now)
{
    struct lk_counts *c = &lk->cnt[p->dir];
    if (lk->cfg.dir[p->dir].reorder && impair_flows_sent(&lk->flows[p->dir], p->flow, p->idx)) {
        c->reordered++;
        lk_log(lk, now, p->dir, p->idx, p->data, p->len, "reorder");
    }
    ssize_t n;
    do
        n = write(out_fd(lk, p->dir), p->data, p->len);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)p->len) {
        c->pkts_out++;
        c->bytes_out += p->len;
        lk_log(lk, now, p->dir, p->idx, p->data, p->len, "out");
    } else {
        c->errors++; /* the device is gone or refused it: counted, never retried */
        lk_log(lk, now, p->dir, p->idx, p->data, p->len, "error");
    }
    pkt_put(lk, p);
}

/* Sends every copy due by now, in departure order (FIFO among equal times). */
static void send_due(struct linkem *lk, uint64_t now)
{
    struct impair_timer t;
    while (impair_heap_peek(&lk->timers, &t) && t.at <= now) {
        impair_heap_pop(&lk->timers, &t);
        struct lk_pkt *p = t.ptr;
        lk->pending[p->dir]--;
        send_pkt(lk, p, now);
    }
}

/* How the loop waits for the next departure. A wake-up after a long idle spell comes late on
 * a virtual machine (the host must run the halted vCPU again): measured here with a 10 ms
 * timerfd sleep, 57 us late at p50 and 120 us at p90 on an idle machine, 78 us and 130 us at
 * SCHED_FIFO under load; a sleep of 200 us or less wakes within about 10 (the host still
 * polls the halted vCPU for a while). So a departure more than `early` + LK_SHORT_NS away is
 * slept for in two steps: until `early` before it, then the rest; a nearer one in one.
 * `early` follows the lateness of the long sleeps (mean + 2 deviations, as TCP's RTO). No
 * busy wait for the last step: it was tried (10.001 ms at p50), but at linkem's real-time
 * priority it holds off the very programs the link is measuring, and with three links at
 * once it moved their round trips by milliseconds. */
static void arm_timer(struct linkem *lk, uint64_t now)
{
    struct impair_timer t;
    if (!impair_heap_peek(&lk->timers, &t))
        return;
    int64_t e = lk->wake_mean + 2 * lk->wake_dev;
    if (e < LK_EARLY_MIN_NS)
        e = LK_EARLY_MIN_NS;
    if (e > LK_EARLY_MAX_NS)
        e = LK_EARLY_MAX_NS;
    uint64_t early = (uint64_t)e;
    bool long_sleep = t.at > now + early + LK_SHORT_NS;
    uint64_t want = long_sleep ? t.at - early : t.at;
    if (lk->armed_at && lk->armed_at <= want)
        return; /* it already fires in time */
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(want / 1000000000u),
                                          .tv_nsec = (long)(want % 1000000000u)}};
    if (timerfd_settime(lk->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        lk_die(1, "timerfd_settime: %s", strerror(errno));
    lk->armed_at = want;
    lk->armed_early = long_sleep;
}

/* The timer fired at now. After a long sleep: learn how late it was. */
static void timer_fired(struct linkem *lk, uint64_t now)
{
    uint64_t expirations;
    /* EAGAIN when a re-arm raced the expiry: nothing to read either way */
    (void)!read(lk->tfd, &expirations, sizeof expirations);
    if (lk->armed_at && lk->armed_early && now >= lk->armed_at) {
        int64_t late = (int64_t)(now - lk->armed_at);
        int64_t err = late - lk->wake_mean;
        lk->wake_mean += err / 8;
        lk->wake_dev += ((err < 0 ? -err : err) - lk->wake_dev) / 4;
    }
    lk->armed_at = 0;
}

/* --- arrivals --- */

/* A copy leaves at `at`: now if nothing of its direction waits ahead of it, else in turn. */
static void depart(struct linkem *lk, struct lk_pkt *p, uint64_t at, uint64_t now)
{
    if (at <= now && lk->pending[p->dir] == 0) {
        send_pkt(lk, p, now);
        return;
    }
    if (impair_heap_push(&lk->timers, at, p, 0) < 0) {
        lk->cnt[p->dir].errors++; /* no memory for the heap: counted like any refusal */
        lk_log(lk, now, p->dir, p->idx, p->data, p->len, "error");
        pkt_put(lk, p);
        return;
    }
    lk->pending[p->dir]++;
}

/* One packet p of len bytes read at now in direction dir: the model decides, we carry out.
 * carry false: linkem cannot keep it (no slot, or larger than a slot); whatever copies the
 * model lets through are then counted as errors, so the books still balance. */
static void arrive(struct linkem *lk, enum impair_dir dir, struct lk_pkt *p, size_t len,
                   uint64_t now, bool carry)
{
    struct impair_link_verdict v;
    impair_link_arrive(&lk->link[dir], now, (uint32_t)len, &v);
    p->idx = v.idx;
    p->dir = dir;
    p->len = (uint32_t)len;
    lk_log(lk, now, dir, v.idx, p->data, len, "in");
    if (v.lost)
        lk_log(lk, now, dir, v.idx, p->data, len, "drop-loss");
    if (v.duplicated)
        lk_log(lk, now, dir, v.idx, p->data, len, "dup");
    for (int i = 0; i < v.queue_drops; i++)
        lk_log(lk, now, dir, v.idx, p->data, len, "drop-queue");
    struct lk_pkt *copy = NULL;
    if (carry && v.copies == 2 && (copy = pkt_get(lk)) != NULL)
        memcpy(copy, p, offsetof(struct lk_pkt, data) + len);
    int refused = carry ? (v.copies == 2 && !copy) : v.copies;
    lk->cnt[dir].errors += (uint64_t)refused;
    for (int i = 0; i < refused; i++)
        lk_log(lk, now, dir, v.idx, p->data, len, "error");
    if (!carry || v.copies == 0) {
        pkt_put(lk, p);
        return;
    }
    p->flow = lk->cfg.dir[dir].reorder ? lk_ip_flow(p->data, len) : 0;
    if (copy)
        copy->flow = p->flow;
    depart(lk, p, v.depart[0], now);
    if (copy)
        depart(lk, copy, v.depart[1], now);
}

/* Reads up to LK_BATCH packets from the device feeding direction dir. */
static void read_dir(struct linkem *lk, enum impair_dir dir)
{
    int fd = dir == IMPAIR_UP ? lk->net.tun_inner : lk->net.tun_outer;
    for (int i = 0; i < LK_BATCH; i++) {
        struct lk_pkt *p = pkt_get(lk);
        if (!p)
            p = lk->scratch; /* still read it: counted in, then refused */
        struct iovec iov[2] = {{p->data, LK_SLOT}, {lk->overflow, LK_OVERFLOW}};
        ssize_t n = readv(fd, iov, 2);
        if (n <= 0) {
            pkt_put(lk, p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno != EAGAIN)
                lk_die(1, "reading %s: %s",
                       dir == IMPAIR_UP ? lk->net.dev_inner : lk->net.dev_outer, strerror(errno));
            return;
        }
        /* larger than a slot: someone raised the MTU we set; refused, not cut */
        arrive(lk, dir, p, (size_t)n, clock_now_ns(), p != lk->scratch && n <= LK_SLOT);
    }
}

/* --- COMMAND's end and the teardown --- */

/* SIGINT, SIGTERM, SIGHUP go on to COMMAND's group; the link stays up until it has exited. A
 * second one, or LK_STOP_NS without an exit, kills. SIGCHLD only wakes the loop up. */
static void on_signals(struct linkem *lk, uint64_t now)
{
    struct signalfd_siginfo si;
    while (read(lk->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD)
            continue;
        if (lk->net.state == LK_RUNNING && lk->net.deadline_ns == 0) {
            lk_net_signal_all(&lk->net, sig);
            lk->net.deadline_ns = now + LK_STOP_NS;
        } else {
            lk_net_signal_all(&lk->net, SIGKILL);
        }
    }
}

/* Moves the teardown on: RUNNING (COMMAND alive) -> DRAINING (COMMAND gone: what it left in
 * the namespace is asked to stop, and what is still on the wire is delivered, so that its
 * last FIN or datagram reaches the other side) -> KILLING (what would not stop) -> DONE, at
 * the latest LK_GRACE_NS into each step. */
static void teardown_step(struct linkem *lk, uint64_t now)
{
    struct lk_net *n = &lk->net;
    bool none_left = lk_net_reap(n);
    bool idle = lk->pending[IMPAIR_UP] == 0 && lk->pending[IMPAIR_DOWN] == 0;
    bool late = n->deadline_ns && now >= n->deadline_ns;
    bool done = false;
    switch (n->state) {
    case LK_RUNNING:
        if (n->reaped) {
            n->state = LK_DRAINING;
            n->deadline_ns = now + LK_GRACE_NS;
            if (!none_left)
                lk_net_signal_all(n, SIGTERM);
        } else if (late) {
            lk_net_signal_all(n, SIGKILL); /* a signal was passed on and ignored */
            n->deadline_ns = now + LK_STOP_NS;
        }
        break;
    case LK_DRAINING:
        if (!none_left && late) {
            lk_net_signal_all(n, SIGKILL);
            n->state = LK_KILLING;
            n->deadline_ns = now + LK_GRACE_NS;
        } else {
            done = none_left && (idle || late); /* late: the rest counts as unsent */
        }
        break;
    case LK_KILLING:
        if (!none_left && late)
            fprintf(stderr, "linkem: warning: processes of the namespace do not die (stuck in "
                            "the kernel?); tearing the link down anyway\n");
        done = late || (none_left && idle);
        break;
    case LK_DONE:
        break;
    }
    if (done) {
        /* the last word for processes that joined the namespace from outside (nsenter): they
         * are nobody's children here, so only the namespace scan finds them */
        lk_net_signal_all(n, SIGKILL);
        n->state = LK_DONE;
    }
}

/* The teardown's next deadline as epoll's timeout in ms (-1: none). */
static int deadline_ms(const struct linkem *lk, uint64_t now)
{
    if (lk->net.deadline_ns == 0)
        return -1;
    if (lk->net.deadline_ns <= now)
        return 0;
    return (int)((lk->net.deadline_ns - now) / 1000000u + 1);
}

static void loop(struct linkem *lk)
{
    struct epoll_event evs[8];
    int timeout = -1;
    while (lk->net.state != LK_DONE) {
        int n = epoll_wait(lk->ep, evs, 8, timeout);
        if (n < 0 && errno != EINTR)
            lk_die(1, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            switch (evs[i].data.u32) {
            case EV_OUTER:
                read_dir(lk, IMPAIR_DOWN);
                break;
            case EV_INNER:
                read_dir(lk, IMPAIR_UP);
                break;
            case EV_TIMER:
                timer_fired(lk, clock_now_ns());
                break;
            case EV_SIGNAL:
                on_signals(lk, clock_now_ns());
                break;
            default:
                break;
            }
        }
        uint64_t now = clock_now_ns();
        send_due(lk, now);
        teardown_step(lk, now);
        arm_timer(lk, now);
        timeout = deadline_ms(lk, now);
    }
}

/* --- set-up --- */

static void watch(struct linkem *lk, int fd, enum lk_ev ev)
{
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = ev};
    if (epoll_ctl(lk->ep, EPOLL_CTL_ADD, fd, &e) < 0)
        lk_die(1, "epoll_ctl: %s", strerror(errno));
}

/* The link runs at a real-time priority, as the kernel's own packet path (softirqs) runs
 * above every process: a wire's timing must not depend on how busy the programs under test
 * keep the CPUs (under load a normal task wakes milliseconds late). linkem's work per packet
 * is small, and the kernel's RT throttling keeps 5 % of each second for everyone else.
 * COMMAND does not inherit it (SCHED_RESET_ON_FORK). Best effort: without the privilege
 * (some containers) the link still works, with looser timing. */
static void realtime(void)
{
    struct sched_param sp = {.sched_priority = 10};
    (void)sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp);
}

static void setup(struct linkem *lk, sigset_t *blocked)
{
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        /* the options keep the last of --loss and --burst-loss, and check every value */
        if (impair_link_init(&lk->link[d], &lk->cfg.dir[d], lk->cfg.seed, (enum impair_dir)d) < 0)
            lk_die(LK_EXIT_USAGE,
                   "internal error: the %s direction's settings contradict "
                   "each other",
                   d == IMPAIR_UP ? "up" : "down");
        impair_flows_init(&lk->flows[d]);
    }
    impair_heap_init(&lk->timers);
    lk->wake_mean = 100000; /* a first guess at a long sleep's lateness, until measured */
    lk->wake_dev = 50000;
    lk->overflow = malloc(LK_OVERFLOW);
    lk->scratch = malloc(sizeof *lk->scratch);
    struct lk_pkt *first = pkt_get(lk); /* the first slab now: no allocation on the first packets */
    if (!lk->overflow || !lk->scratch || !first)
        lk_die(1, "out of memory");
    pkt_put(lk, first);
    lk_log_open(lk);

    /* signals are read from a signalfd; COMMAND gets the mask back before it runs */
    sigemptyset(blocked);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(blocked, sigs[i]);
    if (sigprocmask(SIG_BLOCK, blocked, NULL) < 0)
        lk_die(1, "sigprocmask: %s", strerror(errno));
    lk->sfd = signalfd(-1, blocked, SFD_NONBLOCK | SFD_CLOEXEC);
    lk->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    lk->ep = epoll_create1(EPOLL_CLOEXEC);
    if (lk->sfd < 0 || lk->tfd < 0 || lk->ep < 0)
        lk_die(1, "signalfd/timerfd/epoll: %s", strerror(errno));

    lk_net_setup(&lk->net, &lk->cfg);
    realtime();
    watch(lk, lk->net.tun_outer, EV_OUTER);
    watch(lk, lk->net.tun_inner, EV_INNER);
    watch(lk, lk->tfd, EV_TIMER);
    watch(lk, lk->sfd, EV_SIGNAL);
}

/* Copies still waiting at the end are counted as unsent and freed. */
static void finish(struct linkem *lk)
{
    struct impair_timer t;
    while (impair_heap_pop(&lk->timers, &t)) {
        struct lk_pkt *p = t.ptr;
        lk->cnt[p->dir].unsent++;
        pkt_put(lk, p);
    }
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        lk->pending[d] = 0;
        lk_net_kdrops(&lk->net, (enum impair_dir)d, &lk->cnt[d].kdrops_in, &lk->cnt[d].kdrops_out);
    }
    lk->end_ns = clock_now_ns();
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        lk->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (!lk->cfg.quiet)
        lk_report_text(lk, stderr);
    int rc;
    if (lk->cfg.json_path && (rc = lk_report_json(lk, lk->cfg.json_path)) < 0)
        fprintf(stderr, "linkem: --json %s: %s\n", lk->cfg.json_path, strerror(-rc));
    lk_log_close(lk);
    lk_net_close(&lk->net);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        impair_link_destroy(&lk->link[d]);
        impair_flows_destroy(&lk->flows[d]);
    }
    impair_heap_destroy(&lk->timers);
    for (size_t i = 0; i < lk->nslabs; i++)
        free(lk->slabs[i]);
    free(lk->slabs);
    free(lk->overflow);
    free(lk->scratch);
    close(lk->ep);
    close(lk->tfd);
    close(lk->sfd);
}

int main(int argc, char **argv)
{
    struct linkem lk;
    memset(&lk, 0, sizeof lk);
    lk_options(argc, argv, &lk.cfg);
    sigset_t blocked;
    setup(&lk, &blocked);
    lk.start_ns = clock_now_ns();
    lk_net_spawn(&lk.net, &lk.cfg, &blocked);
    loop(&lk);
    int st = lk.net.status;
    finish(&lk);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
