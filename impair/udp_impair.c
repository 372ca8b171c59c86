/* udp_impair: a UDP relay between chat clients and a UDP server that drops, duplicates,
 * reorders and delays datagrams per direction with seeded probabilities, and reports
 * exactly what it did (the kernel here has no netem; this is how benchmarks impair UDP).
 *
 * One thread, one epoll loop (this file; what happens to each datagram is impair_relay.c, the
 * log and report impair_report.c, the state udp_impair.h). Each client source address gets its own
 * upstream socket (connected to the server), so the server sees one address per client and its
 * replies come back on the socket that names the client. Decisions are drawn from one PRNG per
 * direction, so a run is reproducible given the seed and the order of datagrams.
 *
 * What is impaired, and how it is counted (the report's columns):
 *  - Only datagrams whose first word is in --match (default MSG,ACK,FROM,PRIV,TO); set-up and
 *    keep-alive frames pass untouched so that counts stay exact. Compressed datagrams are
 *    inflated (zframe knows the dictionary) and judged by the frame inside; one that does
 *    not inflate is "ZLIB" and counts as chat: MSG going up, ACK/FROM going down.
 *  - Each impaired datagram gets four PRNG draws and exactly one action, in this order:
 *    dropped, else duplicated (two copies), else held, else forwarded.
 *    received == forwarded + dropped; held == reordered + held_flushed.
 *  - A held datagram goes out right after the next forwarded datagram of the same stream
 *    (verb, plus sender id for FROM/PRIV and target for TO: one sequence space), i.e. the
 *    two are swapped: "reordered". With --reorder-scope mapping any next impaired datagram
 *    of the mapping and direction ends the hold; a swap of an ACK with a FROM is then
 *    invisible to a seq-based receiver, which is why stream is the default. One hold per
 *    mapping and direction: a hold drawn while one is pending is forwarded instead. No next
 *    within --reorder-hold: sent alone, "held_flushed", not reordered.
 *  - Delay (constant + uniform jitter in [0, J], so --delay is a lower bound) applies to every
 *    copy. Jitter can make a copy overtake one emitted before it; such copies are counted as
 *    "jitter_reordered" (per mapping and direction, all impaired verbs together), never as
 *    "reordered".
 *  - At exit (SIGINT, SIGTERM, --duration) delayed copies are sent at once and held ones are
 *    flushed, so every received datagram is accounted for. */
#include "clock.h"
#include "udp_impair.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define IMP_BATCH 64                 /* datagrams read from one socket per wake-up (fairness) */
#define IMP_LISTEN_RCVBUF (16 << 20) /* every client's uplink shares it */
#define IMP_MAP_RCVBUF (2 << 20)
#define IMP_SWEEP_NS 1000000000ull

/* --- mappings --- */
static uint64_t map_key(const struct sockaddr_in *sa)
{
    return (uint64_t)sa->sin_addr.s_addr << 16 | sa->sin_port;
}

static void enable_rxq_ovfl(int fd)
{
    int on = 1;
    /* Best effort: without it the report just lacks kernel drop counts. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
}

/* A receive queue deep enough that a burst is not dropped while the relay is busy (or,
 * under a loaded machine, not scheduled). Best effort: without it the kernel's default
 * queue still works, and its drops are counted (SO_RXQ_OVFL). */
static void set_rcvbuf(int fd, int bytes)
{
    (void)net_set_sockbuf(fd, 1, bytes);
}

static struct imp_map *map_get(struct imp_relay *r, const struct sockaddr_in *client)
{
    uint64_t key = map_key(client);
    struct imp_map *m = NULL;
    HASH_FIND(hh, r->maps, &key, sizeof key, m);
    if (m)
        return m;
    m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->key = key;
    m->client = *client;
    net_addr_str(client, m->name);
    m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->fd < 0)
        goto fail;
    enable_rxq_ovfl(m->fd);
    set_rcvbuf(m->fd, IMP_MAP_RCVBUF);
    if (connect(m->fd, (const struct sockaddr *)&r->server, sizeof r->server) < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = m};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, m->fd, &ev) < 0)
        goto fail;
    HASH_ADD(hh, r->maps, key, sizeof m->key, m);
    r->maps_created++;
    if (++r->maps_now > r->maps_peak)
        r->maps_peak = r->maps_now;
    return m;
fail:
    if (m->fd >= 0)
        close(m->fd);
    free(m);
    return NULL;
}

static void map_free(struct imp_relay *r, struct imp_map *m)
{
    /* The analyzer, following a sweep that frees maps, loses uthash's list invariant and
     * reports a use after free in the macro: a false positive (every caller reads
     * m->hh.next before the call). */
    HASH_DEL(r->maps, m); // NOLINT(clang-analyzer-unix.Malloc)
    r->kdrops_down_closed += m->ovfl;
    close(m->fd); /* closing also removes it from the epoll set */
    free(m);
    r->maps_now--;
}

static void sweep_idle(struct imp_relay *r)
{
    struct imp_map *m, *tmp;
    for (m = r->maps; m; m = tmp) {
        tmp = m->hh.next; /* m may be freed below */
        if (r->now - m->last_ns < r->cfg.idle_ns || m->inflight || m->held[0] || m->held[1])
            continue;
        map_free(r, m);
        r->maps_expired++;
    }
}

/* --- reading --- */

/* One datagram from fd into buf; *ovfl gets SO_RXQ_OVFL when the kernel reports it.
 * Returns the length, or -1 when nothing is left (or on an error that is not ours). */
static ssize_t recv_one(int fd, char *buf, struct sockaddr_in *from, uint32_t *ovfl)
{
    char cbuf[CMSG_SPACE(sizeof(uint32_t))];
    struct iovec iov = {.iov_base = buf, .iov_len = IMP_MAX_DGRAM};
    struct msghdr mh = {.msg_name = from,
                        .msg_namelen = from ? sizeof *from : 0,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    ssize_t n;
    do
        n = recvmsg(fd, &mh, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1; /* EAGAIN, or ECONNREFUSED from an ICMP: nothing to relay */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
            memcpy(ovfl, CMSG_DATA(c), sizeof *ovfl);
    return n;
}

static void read_up(struct imp_relay *r, char *buf)
{
    for (int i = 0; i < IMP_BATCH; i++) {
        struct sockaddr_in from;
        ssize_t n = recv_one(r->lfd, buf, &from, &r->ovfl_listen);
        if (n < 0)
            return;
        r->now = clock_now_ns();
        struct imp_map *m = map_get(r, &from);
        if (!m) {
            r->unmapped++; /* out of sockets or memory: this datagram cannot be relayed */
            continue;
        }
        imp_process(r, m, IMPAIR_UP, buf, (size_t)n);
    }
}

static void read_down(struct imp_relay *r, struct imp_map *m, char *buf)
{
    for (int i = 0; i < IMP_BATCH; i++) {
        ssize_t n = recv_one(m->fd, buf, NULL, &m->ovfl);
        if (n < 0)
            return;
        r->now = clock_now_ns();
        imp_process(r, m, IMPAIR_DOWN, buf, (size_t)n);
    }
}

/* --- set-up and loop --- */
static void setup(struct imp_relay *r)
{
    const struct impair_config *c = &r->cfg;
    long nofile = 0;
    if (net_raise_nofile(&nofile) < 0)
        fprintf(stderr, "udp_impair: warning: cannot raise the open-file limit\n");
    int rc = net_resolve(c->server_host, c->server_port, &r->server);
    if (rc < 0)
        impair_die(2, "--server-host: cannot resolve '%s' to IPv4", c->server_host);
    rc = net_bind_udp(c->listen_host, c->listen_port, &r->lfd);
    if (rc < 0)
        impair_die(1, "cannot bind UDP %s:%u: %s (try another --listen-port)", c->listen_host,
                   c->listen_port, strerror(-rc));
    if (net_set_nonblock(r->lfd, 1) < 0)
        impair_die(1, "cannot make the listening socket non-blocking: %s", strerror(errno));
    set_rcvbuf(r->lfd, IMP_LISTEN_RCVBUF);
    enable_rxq_ovfl(r->lfd);
    uint16_t port = 0;
    if (net_local_port(r->lfd, &port) < 0)
        impair_die(1, "getsockname: %s", strerror(errno));

    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (r->ep < 0)
        impair_die(1, "epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r->lfd};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->lfd, &ev) < 0)
        impair_die(1, "epoll_ctl: %s", strerror(errno));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        impair_die(1, "sigprocmask: %s", strerror(errno));
    r->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r->sfd < 0)
        impair_die(1, "signalfd: %s", strerror(errno));
    ev.data.ptr = &r->sfd;
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->sfd, &ev) < 0)
        impair_die(1, "epoll_ctl: %s", strerror(errno));
    if (c->log_path) {
        r->log = fopen(c->log_path, "w");
        if (!r->log)
            impair_die(1, "--log %s: %s", c->log_path, strerror(errno));
        /* Full buffering: one fprintf per action must not cost a write(2). */
        (void)setvbuf(r->log, NULL, _IOFBF, 1 << 20); /* best effort */
    }
    impair_heap_init(&r->timers);
    r->zbuf = malloc(IMP_MAX_DGRAM);
    if (!r->zbuf || zframe_init(&r->z, NULL) < 0)
        impair_die(1, "out of memory for zlib state");
    impair_rng_seed_dir(&r->rng[IMPAIR_UP], c->seed, IMPAIR_UP);
    impair_rng_seed_dir(&r->rng[IMPAIR_DOWN], c->seed, IMPAIR_DOWN);

    char srv[NET_ADDRSTRLEN];
    printf("udp_impair listening on %s:%u -> %s\n", c->listen_host, port,
           net_addr_str(&r->server, srv));
    fflush(stdout);
}

/* epoll with a nanosecond timeout (delays of a few ms must not round to 1 ms ticks); falls
 * back to epoll_wait, rounding up, where epoll_pwait2 is missing (kernels < 5.11, valgrind). */
static int wait_events(struct imp_relay *r, struct epoll_event *evs, int max, uint64_t wait_ns)
{
    if (!r->no_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(r->ep, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        r->no_pwait2 = true;
    }
    uint64_t ms = (wait_ns + 999999u) / 1000000u;
    return epoll_wait(r->ep, evs, max, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

static void run(struct imp_relay *r, char *buf)
{
    struct epoll_event evs[256];
    r->now = r->start_ns = clock_now_ns();
    r->host_rcvbuf_errors = imp_host_rcvbuf_errors();
    uint64_t end = r->cfg.duration_ns ? r->start_ns + r->cfg.duration_ns : UINT64_MAX;
    uint64_t next_sweep = r->now + IMP_SWEEP_NS;
    for (;;) {
        r->now = clock_now_ns();
        imp_run_timers(r);
        if (r->now >= end)
            return;
        if (r->now >= next_sweep) {
            sweep_idle(r);
            next_sweep = r->now + IMP_SWEEP_NS;
        }
        uint64_t wake = next_sweep < end ? next_sweep : end;
        struct impair_timer t;
        if (impair_heap_peek(&r->timers, &t) && t.at < wake)
            wake = t.at;
        uint64_t wait = wake > r->now ? wake - r->now : 0;
        int n = wait_events(r, evs, 256, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            impair_die(1, "epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &r->sfd)
                return;
            if (p == &r->lfd)
                read_up(r, buf);
            else
                read_down(r, p, buf);
        }
    }
}

static void shutdown_relay(struct imp_relay *r)
{
    r->now = clock_now_ns();
    r->flushing = true;
    imp_run_timers(r); /* delayed copies go out now, in their order */
    struct imp_map *m, *tmp;
    for (m = r->maps; m; m = m->hh.next) {
        for (int d = 0; d < IMPAIR__DIRS; d++)
            if (m->held[d])
                imp_flush_held(r, m, (enum impair_dir)d);
    }
    double secs = (double)(r->now - r->start_ns) / 1e9;
    imp_print_report(r, stdout, secs);
    fflush(stdout);
    int rc = 0;
    if (r->cfg.report_path && (rc = imp_write_json(r, r->cfg.report_path, secs)) < 0)
        fprintf(stderr, "udp_impair: --report %s: %s\n", r->cfg.report_path, strerror(-rc));
    if (r->log && fclose(r->log) != 0)
        fprintf(stderr, "udp_impair: --log %s: %s\n", r->cfg.log_path, strerror(errno));
    for (m = r->maps; m; m = tmp) {
        tmp = m->hh.next; /* m is freed below */
        map_free(r, m);
    }
    imp_pool_destroy(r);
    impair_heap_destroy(&r->timers);
    zframe_destroy(&r->z);
    free(r->zbuf);
    close(r->lfd);
    close(r->sfd);
    close(r->ep);
}

int main(int argc, char **argv)
{
    struct imp_relay relay = {0};
    impair_options(argc, argv, &relay.cfg);
    char *buf = malloc(IMP_MAX_DGRAM); /* one datagram being read */
    if (!buf)
        impair_die(1, "out of memory");
    setup(&relay);
    run(&relay, buf);
    shutdown_relay(&relay);
    free(buf);
    return 0;
}
