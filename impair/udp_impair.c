/* udp_impair: a UDP relay between chat clients and a UDP server that drops, duplicates,
 * reorders and delays datagrams per direction with seeded probabilities, and reports
 * exactly what it did (the kernel here has no netem; this is how benchmarks impair UDP).
 *
 * One thread, one epoll loop. Each client source address gets its own upstream socket
 * (connected to the server), so the server sees one address per client and its replies
 * come back on the socket that names the client. Decisions are drawn from one PRNG per
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
#include "impair_core.h"
#include "impair_opts.h"
#include "net.h"
#include "zframe.h"

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
#include <uthash.h>

#define IMP_BATCH 64                 /* datagrams read from one socket per wake-up (fairness) */
#define IMP_MAX_DGRAM 65536          /* larger than any UDP payload, so nothing is truncated */
#define IMP_LISTEN_RCVBUF (16 << 20) /* every client's uplink shares it */
#define IMP_MAP_RCVBUF (2 << 20)
#define IMP_MAX_QUEUED (256ull << 20) /* bytes of held and delayed datagrams */
#define IMP_SWEEP_NS 1000000000ull
#define IMP_NO_IDX UINT64_MAX /* datagrams outside --match: no jitter accounting */

/* --- counters: per direction and verb --- */
enum imp_stat {
    IS_RECEIVED = 0,
    IS_FORWARDED,        /* passed on once (whatever else happened to them) */
    IS_DROPPED,          /* received == forwarded + dropped */
    IS_DUPLICATED,       /* extra copies sent */
    IS_HELD,             /* held back for reordering: held == reordered + held_flushed */
    IS_REORDERED,        /* swapped with the next datagram of the same stream */
    IS_HELD_FLUSHED,     /* no next came within --reorder-hold: sent alone, not reordered */
    IS_DELAYED,          /* copies sent through the delay queue */
    IS_JITTER_REORDERED, /* copies sent after a copy emitted later (jitter overtook) */
    IS_SEND_ERRORS,      /* copies the kernel refused (EAGAIN, ENOBUFS, ECONNREFUSED) */
    IS_COMPRESSED,       /* received as a zlib datagram (classified by the frame inside) */
    IS__COUNT
};

static const char *const stat_names[IS__COUNT] = {
    "received",     "forwarded", "dropped",          "duplicated",  "held",       "reordered",
    "held_flushed", "delayed",   "jitter_reordered", "send_errors", "compressed",
};

static const char *const dir_names[IMPAIR__DIRS] = {"up", "down"};

/* --- datagrams that wait (held for reordering or delayed), pooled by size class --- */
enum pkt_kind { PK_FREE = 0, PK_HELD, PK_DELAYED };

struct imp_map;

struct imp_pkt {
    struct imp_pkt *next_free;
    struct imp_map *map;
    uint64_t gen; /* bumped on every change of role: timer entries of older roles are stale */
    uint64_t delay_ns;
    uint64_t seq;
    uint64_t idx;
    enum pkt_kind kind;
    enum impair_dir dir;
    enum impair_verb verb;
    uint32_t len, cap;
    char data[];
};

static const uint32_t pool_caps[] = {512, 4096, IMP_MAX_DGRAM};
#define POOL_CLASSES (sizeof pool_caps / sizeof pool_caps[0])

/* One client source address and its upstream socket. */
struct imp_map {
    uint64_t key; /* s_addr << 16 | port, network byte order values */
    struct sockaddr_in client;
    char name[NET_ADDRSTRLEN]; /* client as "ip:port", for the log */
    int fd;
    uint64_t last_ns;
    unsigned inflight;                  /* delayed packets not sent yet */
    struct imp_pkt *held[IMPAIR__DIRS]; /* at most one hold per direction */
    uint64_t held_stream[IMPAIR__DIRS];
    uint64_t emit_idx[IMPAIR__DIRS]; /* emission order of impaired datagrams */
    uint64_t sent_hi[IMPAIR__DIRS];  /* highest emission index sent, plus one */
    uint32_t ovfl;                   /* SO_RXQ_OVFL of fd: kernel drops so far */
    UT_hash_handle hh;
};

/* The relay: one instance, used by the one thread. */
struct imp_relay {
    struct impair_config cfg;
    int ep, lfd, sfd;
    struct sockaddr_in server;
    struct imp_map *maps;
    struct impair_heap timers;
    struct imp_pkt *pool[POOL_CLASSES];
    size_t pkts_out;     /* packets taken from the pool and not returned */
    uint64_t bytes_out;  /* their capacity: bounded by IMP_MAX_QUEUED */
    uint64_t queue_full; /* datagrams sent at once (not held or delayed): bound reached */
    struct impair_rng rng[IMPAIR__DIRS];
    struct zframe z; /* inflates compressed datagrams to see their verb and seq */
    char *zbuf;      /* IMP_MAX_DGRAM bytes */
    uint64_t st[IMPAIR__DIRS][IV__COUNT][IS__COUNT];
    uint64_t maps_created, maps_expired, maps_peak, maps_now, unmapped;
    uint32_t ovfl_listen;
    uint64_t kdrops_down_closed; /* kernel drops of upstream sockets already closed */
    bool flushing;               /* shutting down: send everything now */
    uint64_t now, start_ns;
    int64_t host_rcvbuf_errors; /* /proc/net/snmp Udp RcvbufErrors at start (-1: unknown) */
    FILE *log;
};

static struct imp_relay R;

/* --- log --- */
/* "t_ns dir verb action seq client": seq is "-" when the frame has none; client is the
 * mapping's source address, so that a test can follow each client's sequence space. */
static void log_action(const struct imp_map *m, enum impair_dir dir, enum impair_verb verb,
                       const char *action, uint64_t seq)
{
    if (!R.log)
        return;
    char seqs[24] = "-";
    if (seq != IMPAIR_NO_SEQ)
        snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
    fprintf(R.log, "%" PRIu64 " %s %s %s %s %s\n", R.now, dir_names[dir], impair_verb_name(verb),
            action, seqs, m->name);
}

/* --- packet pool --- */
static struct imp_pkt *pkt_get(uint32_t len)
{
    size_t c = 0;
    while (c + 1 < POOL_CLASSES && pool_caps[c] < len)
        c++; /* len <= IMP_MAX_DGRAM, the last class */
    if (R.bytes_out + pool_caps[c] > IMP_MAX_QUEUED) {
        R.queue_full++; /* a flood of big delayed datagrams must not take all memory */
        return NULL;
    }
    struct imp_pkt *p = R.pool[c];
    if (p) {
        R.pool[c] = p->next_free;
    } else {
        p = malloc(sizeof *p + pool_caps[c]);
        if (!p)
            return NULL;
        p->gen = 0;
        p->cap = pool_caps[c];
    }
    R.pkts_out++;
    R.bytes_out += p->cap;
    p->next_free = NULL;
    return p;
}

static void pkt_put(struct imp_pkt *p)
{
    size_t c = 0;
    while (c + 1 < POOL_CLASSES && pool_caps[c] < p->cap)
        c++;
    p->gen++;
    p->kind = PK_FREE;
    p->map = NULL;
    p->next_free = R.pool[c];
    R.pool[c] = p;
    R.pkts_out--;
    R.bytes_out -= p->cap;
}

/* --- sending --- */
static void count(enum impair_dir dir, enum impair_verb verb, enum imp_stat s)
{
    R.st[dir][verb][s]++;
}

/* Sends one copy now. idx is the copy's emission index (IMP_NO_IDX outside --match): a copy
 * sent after one emitted later was overtaken through jitter. */
static void send_now(struct imp_map *m, enum impair_dir dir, enum impair_verb verb, uint64_t seq,
                     const char *data, size_t len, uint64_t idx)
{
    ssize_t n;
    if (dir == IMPAIR_UP)
        n = send(m->fd, data, len, MSG_NOSIGNAL);
    else
        n = sendto(R.lfd, data, len, MSG_NOSIGNAL, (const struct sockaddr *)&m->client,
                   sizeof m->client);
    if (n < 0) {
        /* UDP is best effort: a refused copy is counted, never retried. */
        count(dir, verb, IS_SEND_ERRORS);
        log_action(m, dir, verb, "send-error", seq);
    }
    if (idx == IMP_NO_IDX)
        return;
    if (idx + 1 < m->sent_hi[dir]) {
        count(dir, verb, IS_JITTER_REORDERED);
        log_action(m, dir, verb, "jitter-reordered", seq);
    } else {
        m->sent_hi[dir] = idx + 1;
    }
}

static void schedule_delayed(struct imp_pkt *p, uint64_t delay_ns)
{
    p->kind = PK_DELAYED;
    p->gen++;
    if (impair_heap_push(&R.timers, R.now + delay_ns, p, p->gen) < 0) {
        /* Out of memory for the timer: send now rather than lose or leak it. */
        send_now(p->map, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
        pkt_put(p);
        return;
    }
    p->map->inflight++;
    count(p->dir, p->verb, IS_DELAYED);
}

/* Emits `copies` copies of an impaired datagram: now, or after its delay. */
static void emit(struct imp_map *m, enum impair_dir dir, const struct impair_info *in,
                 const char *data, size_t len, uint64_t delay_ns, int copies)
{
    uint64_t idx = m->emit_idx[dir]++;
    for (int i = 0; i < copies; i++) {
        struct imp_pkt *p = (delay_ns && !R.flushing) ? pkt_get((uint32_t)len) : NULL;
        if (!p) {
            send_now(m, dir, in->verb, in->seq, data, len, idx);
            continue;
        }
        memcpy(p->data, data, len);
        p->len = (uint32_t)len;
        p->map = m;
        p->dir = dir;
        p->verb = in->verb;
        p->seq = in->seq;
        p->idx = idx;
        schedule_delayed(p, delay_ns);
    }
}

/* Emits a packet that was held: now or after its own delay. Takes ownership of p. */
static void emit_pkt(struct imp_pkt *p)
{
    struct imp_map *m = p->map;
    p->idx = m->emit_idx[p->dir]++;
    if (p->delay_ns && !R.flushing) {
        schedule_delayed(p, p->delay_ns);
        return;
    }
    send_now(m, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
    pkt_put(p);
}

/* After a datagram of `stream` went out: a held datagram of the same stream follows it. */
static void release_if_next(struct imp_map *m, enum impair_dir dir, uint64_t stream)
{
    struct imp_pkt *p = m->held[dir];
    if (!p || (!R.cfg.scope_mapping && m->held_stream[dir] != stream))
        return;
    m->held[dir] = NULL;
    count(dir, p->verb, IS_REORDERED);
    log_action(m, dir, p->verb, "reordered", p->seq);
    emit_pkt(p);
}

static void flush_held(struct imp_map *m, enum impair_dir dir)
{
    struct imp_pkt *p = m->held[dir];
    m->held[dir] = NULL;
    count(dir, p->verb, IS_HELD_FLUSHED);
    log_action(m, dir, p->verb, "held-flushed", p->seq);
    emit_pkt(p);
}

/* --- the decision for one datagram --- */
static void process(struct imp_map *m, enum impair_dir dir, const char *data, size_t len)
{
    struct impair_info in;
    bool compressed = false;
    if (len > 0 && (unsigned char)data[0] == 0xFF) {
        /* The relay knows the dictionary, so it sees the verb and seq inside; a datagram
         * that does not inflate stays ZLIB (chat, by the --match rule). */
        int n = zframe_decompress(&R.z, data, len, R.zbuf, IMP_MAX_DGRAM);
        compressed = n >= 0;
        if (compressed)
            impair_classify(R.zbuf, (size_t)n, &in);
    }
    if (!compressed)
        impair_classify(data, len, &in);
    count(dir, in.verb, IS_RECEIVED);
    if (compressed)
        count(dir, in.verb, IS_COMPRESSED);
    m->last_ns = R.now;
    if (!impair_matched(R.cfg.match, in.verb, dir)) {
        count(dir, in.verb, IS_FORWARDED);
        log_action(m, dir, in.verb, "passed", in.seq);
        send_now(m, dir, in.verb, in.seq, data, len, IMP_NO_IDX);
        return;
    }
    uint64_t jitter = 0;
    enum impair_action a = impair_decide(&R.cfg.probs[dir], &R.rng[dir], &jitter);
    uint64_t delay = R.cfg.delay_ns[dir] + jitter;
    if (a == IA_DROP) {
        count(dir, in.verb, IS_DROPPED);
        log_action(m, dir, in.verb, "dropped", in.seq);
        return;
    }
    count(dir, in.verb, IS_FORWARDED);
    if (a == IA_HOLD && !m->held[dir]) {
        struct imp_pkt *p = pkt_get((uint32_t)len);
        if (p) {
            memcpy(p->data, data, len);
            p->len = (uint32_t)len;
            p->map = m;
            p->dir = dir;
            p->verb = in.verb;
            p->seq = in.seq;
            p->delay_ns = delay;
            p->kind = PK_HELD;
            p->gen++;
            if (impair_heap_push(&R.timers, R.now + R.cfg.hold_ns, p, p->gen) == 0) {
                m->held[dir] = p;
                m->held_stream[dir] = in.stream;
                count(dir, in.verb, IS_HELD);
                log_action(m, dir, in.verb, "held", in.seq);
                return;
            }
            pkt_put(p);
        }
        a = IA_FORWARD; /* no memory: forward it instead */
    }
    /* A hold chosen while another is pending is forwarded: only one hold at a time, and
     * the next datagram of a held one's stream is never held itself. */
    if (a == IA_DUP) {
        count(dir, in.verb, IS_DUPLICATED);
        log_action(m, dir, in.verb, "duplicated", in.seq);
        emit(m, dir, &in, data, len, delay, 2);
    } else {
        log_action(m, dir, in.verb, "forwarded", in.seq);
        emit(m, dir, &in, data, len, delay, 1);
    }
    release_if_next(m, dir, in.stream);
}

/* --- timers --- */
static void run_timers(void)
{
    struct impair_timer t;
    while (impair_heap_peek(&R.timers, &t) && (t.at <= R.now || R.flushing)) {
        impair_heap_pop(&R.timers, &t);
        struct imp_pkt *p = t.ptr;
        if (p->gen != t.gen)
            continue; /* a hold that ended with a swap */
        if (p->kind == PK_HELD) {
            flush_held(p->map, p->dir);
        } else {
            p->map->inflight--;
            send_now(p->map, p->dir, p->verb, p->seq, p->data, p->len, p->idx);
            pkt_put(p);
        }
    }
}

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
 * under a loaded machine, not scheduled). It is a cap, not an allocation. The forced variant
 * needs CAP_NET_ADMIN; the plain one is capped by net.core.rmem_max. Best effort. */
static void set_rcvbuf(int fd, int bytes)
{
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

static struct imp_map *map_get(const struct sockaddr_in *client)
{
    uint64_t key = map_key(client);
    struct imp_map *m = NULL;
    HASH_FIND(hh, R.maps, &key, sizeof key, m);
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
    if (connect(m->fd, (const struct sockaddr *)&R.server, sizeof R.server) < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = m};
    if (epoll_ctl(R.ep, EPOLL_CTL_ADD, m->fd, &ev) < 0)
        goto fail;
    HASH_ADD(hh, R.maps, key, sizeof m->key, m);
    R.maps_created++;
    if (++R.maps_now > R.maps_peak)
        R.maps_peak = R.maps_now;
    return m;
fail:
    if (m->fd >= 0)
        close(m->fd);
    free(m);
    return NULL;
}

static void map_free(struct imp_map *m)
{
    HASH_DEL(R.maps, m);
    R.kdrops_down_closed += m->ovfl;
    close(m->fd); /* closing also removes it from the epoll set */
    free(m);
    R.maps_now--;
}

static void sweep_idle(void)
{
    struct imp_map *m, *tmp;
    for (m = R.maps; m; m = tmp) {
        tmp = m->hh.next; /* m may be freed below */
        if (R.now - m->last_ns < R.cfg.idle_ns || m->inflight || m->held[0] || m->held[1])
            continue;
        map_free(m);
        R.maps_expired++;
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

static void read_up(char *buf)
{
    for (int i = 0; i < IMP_BATCH; i++) {
        struct sockaddr_in from;
        ssize_t n = recv_one(R.lfd, buf, &from, &R.ovfl_listen);
        if (n < 0)
            return;
        R.now = clock_now_ns();
        struct imp_map *m = map_get(&from);
        if (!m) {
            R.unmapped++; /* out of sockets or memory: this datagram cannot be relayed */
            continue;
        }
        process(m, IMPAIR_UP, buf, (size_t)n);
    }
}

static void read_down(struct imp_map *m, char *buf)
{
    for (int i = 0; i < IMP_BATCH; i++) {
        ssize_t n = recv_one(m->fd, buf, NULL, &m->ovfl);
        if (n < 0)
            return;
        R.now = clock_now_ns();
        process(m, IMPAIR_DOWN, buf, (size_t)n);
    }
}

/* --- report --- */
static uint64_t kdrops_down(void)
{
    uint64_t d = R.kdrops_down_closed;
    for (const struct imp_map *m = R.maps; m; m = m->hh.next)
        d += m->ovfl;
    return d;
}

static void dir_total(enum impair_dir dir, uint64_t *tot)
{
    memset(tot, 0, sizeof(uint64_t) * IS__COUNT);
    for (int v = 0; v < IV__COUNT; v++)
        for (int s = 0; s < IS__COUNT; s++)
            tot[s] += R.st[dir][v][s];
}

static void print_row(FILE *f, const char *dir, const char *verb, const uint64_t *row)
{
    fprintf(f, "%-5s %-8s", dir, verb);
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, " %*" PRIu64, (int)strlen(stat_names[s]) > 9 ? (int)strlen(stat_names[s]) : 9,
                row[s]);
    fputc('\n', f);
}

/* The host's UDP RcvbufErrors (every socket of every process), or -1. A hint for runs that
 * do not add up: datagrams the kernel dropped at some receiver other than the relay. */
static int64_t host_rcvbuf_errors(void)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f)
        return -1;
    char names[1024], vals[1024];
    int64_t v = -1;
    while (fgets(names, sizeof names, f)) {
        if (strncmp(names, "Udp: ", 5) != 0 || !fgets(vals, sizeof vals, f))
            continue;
        int col = 0, want = -1;
        for (char *save = NULL, *t = strtok_r(names, " \n", &save); t;
             t = strtok_r(NULL, " \n", &save), col++)
            if (strcmp(t, "RcvbufErrors") == 0)
                want = col;
        col = 0;
        for (char *save = NULL, *t = strtok_r(vals, " \n", &save); t;
             t = strtok_r(NULL, " \n", &save), col++)
            if (col == want)
                v = strtoll(t, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

static int64_t host_drops_delta(void)
{
    int64_t now = host_rcvbuf_errors();
    return (now < 0 || R.host_rcvbuf_errors < 0) ? -1 : now - R.host_rcvbuf_errors;
}

static void print_report(FILE *f, double secs)
{
    fprintf(f, "udp_impair report: %.3f s, seed %" PRIu64 ", match %s, scope %s\n", secs,
            R.cfg.seed, R.cfg.match_str, R.cfg.scope_mapping ? "mapping" : "stream");
    fprintf(f,
            "mappings: created %" PRIu64 ", expired %" PRIu64 ", peak %" PRIu64
            ", unmapped datagrams %" PRIu64 ", queue full %" PRIu64 "; kernel drops: up %" PRIu32
            ", down %" PRIu64 " (host-wide UDP RcvbufErrors during the run: %" PRId64 ")\n",
            R.maps_created, R.maps_expired, R.maps_peak, R.unmapped, R.queue_full, R.ovfl_listen,
            kdrops_down(), host_drops_delta());
    fprintf(f, "%-5s %-8s", "dir", "verb");
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, " %9s", stat_names[s]);
    fputc('\n', f);
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        for (int v = 0; v < IV__COUNT; v++)
            if (R.st[d][v][IS_RECEIVED])
                print_row(f, dir_names[d], impair_verb_name((enum impair_verb)v), R.st[d][v]);
        uint64_t tot[IS__COUNT];
        dir_total((enum impair_dir)d, tot);
        print_row(f, dir_names[d], "total", tot);
    }
}

static void json_counts(FILE *f, const uint64_t *row)
{
    fputc('{', f);
    for (int s = 0; s < IS__COUNT; s++)
        fprintf(f, "%s\"%s\": %" PRIu64, s ? ", " : "", stat_names[s], row[s]);
    fputc('}', f);
}

static int write_json(const char *path, double secs)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const struct impair_config *c = &R.cfg;
    fprintf(f, "{\n  \"duration_s\": %.6f,\n  \"seed\": %" PRIu64 ",\n  \"match\": \"%s\",\n", secs,
            c->seed, c->match_str);
    fprintf(f, "  \"reorder_scope\": \"%s\",\n", c->scope_mapping ? "mapping" : "stream");
    fprintf(f, "  \"config\": {");
    for (int d = 0; d < IMPAIR__DIRS; d++)
        fprintf(f,
                "%s\"%s\": {\"drop\": %.6f, \"dup\": %.6f, \"reorder\": %.6f, "
                "\"delay_ms\": %.3f, \"jitter_ms\": %.3f}",
                d ? ", " : "", dir_names[d], c->probs[d].drop, c->probs[d].dup, c->probs[d].reorder,
                (double)c->delay_ns[d] / 1e6, (double)c->probs[d].jitter_ns / 1e6);
    fprintf(f, ", \"reorder_hold_ms\": %.3f},\n", (double)c->hold_ns / 1e6);
    fprintf(f,
            "  \"mappings\": {\"created\": %" PRIu64 ", \"expired\": %" PRIu64
            ", \"peak\": %" PRIu64 ", \"unmapped_datagrams\": %" PRIu64 "},\n"
            "  \"queue_full\": %" PRIu64 ",\n",
            R.maps_created, R.maps_expired, R.maps_peak, R.unmapped, R.queue_full);
    fprintf(f,
            "  \"kernel_drops\": {\"up\": %" PRIu32 ", \"down\": %" PRIu64 "},\n"
            "  \"host_udp_rcvbuf_errors\": %" PRId64,
            R.ovfl_listen, kdrops_down(), host_drops_delta());
    for (int d = 0; d < IMPAIR__DIRS; d++) {
        uint64_t tot[IS__COUNT];
        dir_total((enum impair_dir)d, tot);
        fprintf(f, ",\n  \"%s\": {\n    \"total\": ", dir_names[d]);
        json_counts(f, tot);
        fprintf(f, ",\n    \"verbs\": {");
        bool first = true;
        for (int v = 0; v < IV__COUNT; v++) {
            if (!R.st[d][v][IS_RECEIVED])
                continue;
            fprintf(f, "%s\n      \"%s\": ", first ? "" : ",",
                    impair_verb_name((enum impair_verb)v));
            json_counts(f, R.st[d][v]);
            first = false;
        }
        fprintf(f, "\n    }\n  }");
    }
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

/* --- set-up and loop --- */
static void setup(void)
{
    const struct impair_config *c = &R.cfg;
    long nofile = 0;
    if (net_raise_nofile(&nofile) < 0)
        fprintf(stderr, "udp_impair: warning: cannot raise the open-file limit\n");
    int rc = net_resolve(c->server_host, c->server_port, &R.server);
    if (rc < 0)
        impair_die(2, "--server-host: cannot resolve '%s' to IPv4", c->server_host);
    rc = net_bind_udp(c->listen_host, c->listen_port, &R.lfd);
    if (rc < 0)
        impair_die(1, "cannot bind UDP %s:%u: %s (try another --listen-port)", c->listen_host,
                   c->listen_port, strerror(-rc));
    if (net_set_nonblock(R.lfd, 1) < 0)
        impair_die(1, "cannot make the listening socket non-blocking: %s", strerror(errno));
    set_rcvbuf(R.lfd, IMP_LISTEN_RCVBUF);
    enable_rxq_ovfl(R.lfd);
    uint16_t port = 0;
    if (net_local_port(R.lfd, &port) < 0)
        impair_die(1, "getsockname: %s", strerror(errno));

    R.ep = epoll_create1(EPOLL_CLOEXEC);
    if (R.ep < 0)
        impair_die(1, "epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &R.lfd};
    if (epoll_ctl(R.ep, EPOLL_CTL_ADD, R.lfd, &ev) < 0)
        impair_die(1, "epoll_ctl: %s", strerror(errno));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        impair_die(1, "sigprocmask: %s", strerror(errno));
    R.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (R.sfd < 0)
        impair_die(1, "signalfd: %s", strerror(errno));
    ev.data.ptr = &R.sfd;
    if (epoll_ctl(R.ep, EPOLL_CTL_ADD, R.sfd, &ev) < 0)
        impair_die(1, "epoll_ctl: %s", strerror(errno));
    if (c->log_path) {
        R.log = fopen(c->log_path, "w");
        if (!R.log)
            impair_die(1, "--log %s: %s", c->log_path, strerror(errno));
        /* Full buffering: one fprintf per action must not cost a write(2). */
        (void)setvbuf(R.log, NULL, _IOFBF, 1 << 20); /* best effort */
    }
    impair_heap_init(&R.timers);
    R.zbuf = malloc(IMP_MAX_DGRAM);
    if (!R.zbuf || zframe_init(&R.z, NULL) < 0)
        impair_die(1, "out of memory for zlib state");
    impair_rng_seed(&R.rng[IMPAIR_UP], c->seed);
    impair_rng_seed(&R.rng[IMPAIR_DOWN], c->seed ^ 0x5bd1e9955bd1e995ull);

    char srv[NET_ADDRSTRLEN];
    printf("udp_impair listening on %s:%u -> %s\n", c->listen_host, port,
           net_addr_str(&R.server, srv));
    fflush(stdout);
}

/* epoll with a nanosecond timeout (delays of a few ms must not round to 1 ms ticks); falls
 * back to epoll_wait, rounding up, where epoll_pwait2 is missing (kernels < 5.11, valgrind). */
static int wait_events(struct epoll_event *evs, int max, uint64_t wait_ns)
{
    static bool no_pwait2;
    if (!no_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(R.ep, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = true;
    }
    uint64_t ms = (wait_ns + 999999u) / 1000000u;
    return epoll_wait(R.ep, evs, max, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

static void run(void)
{
    static char buf[IMP_MAX_DGRAM];
    struct epoll_event evs[256];
    R.now = R.start_ns = clock_now_ns();
    R.host_rcvbuf_errors = host_rcvbuf_errors();
    uint64_t end = R.cfg.duration_ns ? R.start_ns + R.cfg.duration_ns : UINT64_MAX;
    uint64_t next_sweep = R.now + IMP_SWEEP_NS;
    for (;;) {
        R.now = clock_now_ns();
        run_timers();
        if (R.now >= end)
            return;
        if (R.now >= next_sweep) {
            sweep_idle();
            next_sweep = R.now + IMP_SWEEP_NS;
        }
        uint64_t wake = next_sweep < end ? next_sweep : end;
        struct impair_timer t;
        if (impair_heap_peek(&R.timers, &t) && t.at < wake)
            wake = t.at;
        uint64_t wait = wake > R.now ? wake - R.now : 0;
        int n = wait_events(evs, 256, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            impair_die(1, "epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &R.sfd)
                return;
            if (p == &R.lfd)
                read_up(buf);
            else
                read_down(p, buf);
        }
    }
}

static void shutdown_relay(void)
{
    R.now = clock_now_ns();
    R.flushing = true;
    run_timers(); /* delayed copies go out now, in their order */
    struct imp_map *m, *tmp;
    for (m = R.maps; m; m = m->hh.next) {
        for (int d = 0; d < IMPAIR__DIRS; d++)
            if (m->held[d])
                flush_held(m, (enum impair_dir)d);
    }
    double secs = (double)(R.now - R.start_ns) / 1e9;
    print_report(stdout, secs);
    fflush(stdout);
    int rc = 0;
    if (R.cfg.report_path && (rc = write_json(R.cfg.report_path, secs)) < 0)
        fprintf(stderr, "udp_impair: --report %s: %s\n", R.cfg.report_path, strerror(-rc));
    if (R.log && fclose(R.log) != 0)
        fprintf(stderr, "udp_impair: --log %s: %s\n", R.cfg.log_path, strerror(errno));
    for (m = R.maps; m; m = tmp) {
        tmp = m->hh.next; /* m may be freed below */
        map_free(m);
    }
    for (size_t c = 0; c < POOL_CLASSES; c++)
        while (R.pool[c]) {
            struct imp_pkt *p = R.pool[c];
            R.pool[c] = p->next_free;
            free(p);
        }
    impair_heap_destroy(&R.timers);
    zframe_destroy(&R.z);
    free(R.zbuf);
    close(R.lfd);
    close(R.sfd);
    close(R.ep);
}

int main(int argc, char **argv)
{
    impair_options(argc, argv, &R.cfg);
    setup();
    run();
    shutdown_relay();
    return 0;
}
