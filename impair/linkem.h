/* linkem.h: the state of bin/linkem and what its files share.
 *   linkem.c         the packet path and the event loop (why it is built the way it is)
 *   linkem_ns.c      TUN devices, the network namespace, COMMAND's process and its teardown
 *   linkem_opts.c    the command line
 *   linkem_pkt.c     IP header reading: flows for reorder accounting, the log's description
 *   linkem_report.c  the packet log, the exit report and its JSON
 * One process, one thread: every function takes the one struct linkem. */
#ifndef CHATBENCH_LINKEM_H
#define CHATBENCH_LINKEM_H

#include "impair_cli.h"
#include "impair_core.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define LK_SLOT 2048 /* data bytes of a pool slot: the links' MTU (1500) and some room */
#define LK_MTU 1500
#define LK_EXIT_USAGE 2 /* bad options, or no privilege or device to make a link with */

/* --- the command line (linkem_opts.c) --- */
struct lk_config {
    struct impair_link_cfg dir[IMPAIR__DIRS];
    uint64_t seed;
    struct in_addr outer, inner; /* --net A.B.C.D: .D+1 outside, .D+2 inside */
    struct in_addr net;
    const char *log_path, *json_path;
    bool quiet;
    char **argv; /* COMMAND and its arguments, NULL-terminated */
};

/* Fills *c from argv. Exits 0 after --help/--version, LK_EXIT_USAGE with a message naming
 * the option for anything invalid. */
void lk_options(int argc, char **argv, struct lk_config *c);

/* Prints "linkem: <message>" on stderr and exits with code (start-up errors only). */
#define lk_die(...) impair_fatal("linkem", __VA_ARGS__)

/* --- a packet in flight --- */
struct lk_pkt {
    struct lk_pkt *next_free;
    uint64_t idx;  /* arrival number in its direction */
    uint64_t flow; /* flow hash (reorder accounting) */
    uint32_t len;
    enum impair_dir dir;
    unsigned char data[LK_SLOT];
};

/* --- what the program counts itself (the model counts the rest) --- */
struct lk_counts {
    uint64_t pkts_out, bytes_out;
    uint64_t reordered;
    uint64_t errors;     /* copies linkem could not carry: no buffer, oversize, write error */
    uint64_t unsent;     /* copies still delayed or queued when the link was torn down */
    uint64_t kdrops_in;  /* the kernel dropped them at the entry TUN before linkem read */
    uint64_t kdrops_out; /* the kernel dropped them at the exit TUN after linkem wrote */
};

/* --- the link: devices, namespace, COMMAND (linkem_ns.c) --- */
enum lk_state { LK_RUNNING = 0, LK_DRAINING, LK_KILLING, LK_DONE };

struct lk_net {
    int tun_outer, tun_inner; /* the two TUN devices; closing them removes them */
    char dev_outer[16], dev_inner[16];
    int ns_inner;                     /* /proc/self/ns/net of the new namespace */
    uint64_t ns_inner_ino;            /* its inode: how its member processes are found */
    int procdev_outer, procdev_inner; /* /proc/net/dev opened in each namespace */
    uint64_t kd0_tx[2], kd0_rx[2];    /* TUN drop counters at start: [outer], [inner] */
    pid_t child;                      /* COMMAND; its process group has the same id */
    int status;                       /* COMMAND's wait status, once reaped */
    bool reaped, took_tty;
    enum lk_state state;
    uint64_t deadline_ns; /* LK_DRAINING/LK_KILLING: when to escalate */
};

/* Creates both TUN devices and the namespace, configures addresses and routes, and comes back
 * to the namespace linkem started in. Exits LK_EXIT_USAGE saying what is missing (root,
 * /dev/net/tun, namespaces) or 1 for any other failure. */
void lk_net_setup(struct lk_net *n, const struct lk_config *c);
/* Forks COMMAND into the new namespace, in its own process group (the terminal's foreground
 * one when linkem had the terminal), with LINKEM_HOST and LINKEM_SELF set. */
void lk_net_spawn(struct lk_net *n, const struct lk_config *c, const sigset_t *blocked);
/* Sends sig to COMMAND's process group and to every process left in the namespace. */
void lk_net_signal_all(const struct lk_net *n, int sig);
/* Reaps children (COMMAND and the orphans linkem adopts as subreaper). Returns true when no
 * child is left. */
bool lk_net_reap(struct lk_net *n);
/* The kernel's drop counts at the TUN devices since start: entry side (tx of the device the
 * kernel hands packets to linkem on) and exit side (rx of the one linkem writes to). */
void lk_net_kdrops(const struct lk_net *n, enum impair_dir dir, uint64_t *in, uint64_t *out);
/* Gives the terminal back, closes the devices (they vanish) and the namespace fd. */
void lk_net_close(struct lk_net *n);

/* --- IP headers (linkem_pkt.c) --- */
struct lk_ipinfo {
    int version;   /* 4 or 6; 0: not IP */
    uint8_t proto; /* IPv4 protocol, IPv6 next header */
    char src[46], dst[46];
    bool ports; /* sport/dport valid (TCP/UDP, not a later fragment) */
    uint16_t sport, dport;
    const unsigned char *payload; /* the transport payload (TCP/UDP), else NULL */
    size_t payload_len;
};

/* Reads the headers of pkt[0..len) (never fails: unknown input is version 0). */
void lk_ip_parse(const unsigned char *pkt, size_t len, struct lk_ipinfo *out);
/* Hash of the packet's flow (protocol, addresses, ports) without formatting anything: the
 * reorder accounting's key, per packet. */
uint64_t lk_ip_flow(const unsigned char *pkt, size_t len);

/* --- the whole program's state --- */
struct linkem {
    struct lk_config cfg;
    struct lk_net net;
    struct impair_link link[IMPAIR__DIRS];
    struct impair_flows flows[IMPAIR__DIRS]; /* only with --reorder */
    struct lk_counts cnt[IMPAIR__DIRS];
    struct impair_heap timers; /* copies waiting to leave, both directions */
    size_t pending[IMPAIR__DIRS];
    struct lk_pkt *free_pkts;
    void **slabs;
    size_t nslabs, npkts;
    unsigned char *overflow; /* read beyond a slot: an oversize packet is detected, not cut */
    struct lk_pkt *scratch;  /* where a packet goes when the pool is exhausted */
    int ep, tfd, sfd;
    uint64_t armed_at;           /* the timerfd's expiry, 0 when not armed */
    bool armed_early;            /* armed ahead of a departure after a long sleep (see plan_wait) */
    bool polling;                /* woke early: epoll polls until the departure is due */
    int64_t wake_mean, wake_dev; /* how late long sleeps wake up, ns (EWMA, as TCP's RTT) */
    uint64_t start_ns, end_ns;
    double cpu_s; /* linkem's own user + system time (not COMMAND's) */
    FILE *log;
};

/* --- linkem_report.c --- */

/* Opens --log and writes its header line. Exits 1 when it cannot. */
void lk_log_open(struct linkem *lk);
/* One line: "t_s dir n proto len src dst event data" (no-op without --log). */
void lk_log(struct linkem *lk, uint64_t now, enum impair_dir dir, uint64_t idx,
            const unsigned char *pkt, size_t len, const char *event);
void lk_log_close(struct linkem *lk);
/* The exit report, per direction, on f. */
void lk_report_text(const struct linkem *lk, FILE *f);
/* The same as JSON into path. Returns 0 or -errno. */
int lk_report_json(const struct linkem *lk, const char *path);

#endif
