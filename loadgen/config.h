/* config: the load generator's settings, as the command line gives them (opts.c). Read-only
 * once lg_options returns: every thread reads it without a lock. */
#ifndef CHATBENCH_LG_CONFIG_H
#define CHATBENCH_LG_CONFIG_H

#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "payload.h"
#include "shard.h"

#define LG_MAX_SIZE 3900     /* payload bytes; the frame stays under 4096 */
#define LG_SOURCES_MAX 65536 /* --source addresses */
#define LG_PING_INTERVAL_S 5 /* --ping-interval default: udp_client's own */

struct lg_transport;

struct lg_config {
    const struct lg_transport *transport; /* --proto */
    uint32_t clients;
    char host[256];
    uint16_t port;
    struct sockaddr_in server; /* host:port, resolved once */
    uint32_t threads;
    double duration_s, warmup_s, ramp_s, interval_s;
    double rate;       /* per client, messages/s */
    double total_rate; /* 0 unless --total-rate */
    bool poisson;
    uint32_t size;
    enum lg_payload payload;
    uint32_t room_size;
    bool compress;
    uint32_t timeout_ms;
    double ping_interval_s; /* connectionless: PING after this long without sending */
    const char *out_dir;
    char label[65];
    uint64_t seed;
    bool json, quiet;
    double start_at;         /* --start-at: t0 in Unix time; 0: as soon as set up */
    struct in_addr *sources; /* --source: local addresses, client by client round-robin */
    uint32_t nsources;       /* 0: the kernel picks (one address's ephemeral ports) */
    bool pin;                /* --cpus given */
    cpu_set_t cpus;          /* --cpus: worker t runs on the set's (t mod count)-th CPU */
    char cpus_text[64];      /* --cpus as given ("" without) */
    bool busy_poll;          /* --busy-poll: workers spin on their cores instead of sleeping */
    /* derived */
    struct lg_shard shard;  /* --shard or the launcher's environment (shard.h) */
    uint32_t shard_clients; /* this shard's clients (all of them when not sharded) */
    char id_prefix[16];     /* "L<8 hex digits>-": client k is L...-k; random per process, so
                             * ids are unique across processes and hosts on one server */
};

/* Parses argv into *cfg. Exits 0 after --help/--version, 2 with a message on bad options
 * (an unresolvable --host, a --source that is not this host's, a CPU this process may not
 * use included). lg_config_destroy frees what it allocated. */
void lg_options(int argc, char **argv, struct lg_config *cfg);
void lg_config_destroy(struct lg_config *cfg);

#endif
