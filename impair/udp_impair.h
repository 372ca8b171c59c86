/* udp_impair.h: the state of bin/udp_impair's relay and what its files share.
 *   udp_impair.c     set-up, sockets, client mappings and the event loop
 *   impair_relay.c   what happens to each datagram: decision, holds, delays, the packet pool
 *   impair_report.c  the action log, the final report and its JSON
 * One relay, used by the one thread that runs the loop; every function takes it. */
#ifndef CHATBENCH_UDP_IMPAIR_H
#define CHATBENCH_UDP_IMPAIR_H

#include "impair_classify.h"
#include "impair_core.h"
#include "impair_opts.h"
#include "net.h"
#include "zframe.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uthash.h>

#define IMP_MAX_DGRAM 65536   /* larger than any UDP payload, so nothing is truncated */
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

/* --- datagrams that wait (held for reordering or delayed), pooled by size class --- */
enum imp_pkt_kind { PK_FREE = 0, PK_HELD, PK_DELAYED };

struct imp_map;

struct imp_pkt {
    struct imp_pkt *next_free;
    struct imp_map *map;
    uint64_t gen; /* bumped on every change of role: timer entries of older roles are stale */
    uint64_t delay_ns;
    uint64_t seq;
    uint64_t idx;
    enum imp_pkt_kind kind;
    enum impair_dir dir;
    enum impair_verb verb;
    uint32_t len, cap;
    char data[];
};

#define IMP_POOL_CLASSES 3 /* 512 B, 4 KiB, IMP_MAX_DGRAM */

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

/* The relay. */
struct imp_relay {
    struct impair_config cfg;
    int ep, lfd, sfd;
    struct sockaddr_in server;
    struct imp_map *maps;
    struct impair_heap timers;
    struct imp_pkt *pool[IMP_POOL_CLASSES];
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
    bool no_pwait2;              /* epoll_pwait2 is missing: epoll_wait in ms */
    uint64_t now, start_ns;
    int64_t host_rcvbuf_errors; /* /proc/net/snmp Udp RcvbufErrors at start (-1: unknown) */
    FILE *log;
};

/* --- impair_relay.c --- */

/* Impairs one datagram of mapping m going in direction dir (r->now is its arrival). */
void imp_process(struct imp_relay *r, struct imp_map *m, enum impair_dir dir, const char *data,
                 size_t len);
/* Sends what is due at r->now (everything when r->flushing). */
void imp_run_timers(struct imp_relay *r);
/* Sends m's held datagram of direction dir alone (no next came). */
void imp_flush_held(struct imp_relay *r, struct imp_map *m, enum impair_dir dir);
/* Frees the pool's free lists (at exit, when every packet has been returned). */
void imp_pool_destroy(struct imp_relay *r);

/* --- impair_report.c --- */

/* The action log's line: "t_ns dir verb action seq client" (no-op without --log). */
void imp_log_action(const struct imp_relay *r, const struct imp_map *m, enum impair_dir dir,
                    enum impair_verb verb, const char *action, uint64_t seq);
/* The host's UDP RcvbufErrors (/proc/net/snmp), or -1. */
int64_t imp_host_rcvbuf_errors(void);
/* The text report (stdout at exit). */
void imp_print_report(const struct imp_relay *r, FILE *f, double secs);
/* The report as JSON into path. Returns 0 or -errno. */
int imp_write_json(const struct imp_relay *r, const char *path, double secs);

#endif
