/* impair_opts: the command line of bin/udp_impair (its options, --help and validation). */
#ifndef CHATBENCH_IMPAIR_OPTS_H
#define CHATBENCH_IMPAIR_OPTS_H

#include "impair_classify.h"
#include "impair_cli.h"

#include <stdbool.h>
#include <stdint.h>

struct impair_config {
    const char *listen_host, *server_host;
    uint16_t listen_port, server_port;
    struct impair_probs probs[IMPAIR__DIRS];
    uint64_t delay_ns[IMPAIR__DIRS];
    uint64_t hold_ns;
    bool scope_mapping; /* --reorder-scope mapping: any next datagram ends a hold */
    uint64_t seed;
    uint32_t match;
    const char *match_str;
    uint64_t idle_ns;
    uint64_t duration_ns; /* 0: until a signal */
    const char *log_path, *report_path;
};

/* Fills *c from argv. Exits 0 after --help/--version and 2, with a message on stderr that
 * names the option, for anything invalid. */
void impair_options(int argc, char **argv, struct impair_config *c);

/* Prints "udp_impair: <message>" on stderr and exits with code (start-up errors only). */
#define impair_die(...) impair_fatal("udp_impair", __VA_ARGS__)

#endif
