/* impair_opts: the command line of bin/udp_impair. */
#include "impair_opts.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif
static void usage(FILE *f)
{
    fprintf(f,
            "Usage: udp_impair [options]\n"
            "UDP relay that impairs chat datagrams per direction (up = client->server,\n"
            "down = server->client) and reports exactly what it did.\n\n"
            "  --listen-host H      address to listen on (default 127.0.0.1)\n"
            "  --listen-port P      port to listen on, 0 = any free port (default 0)\n"
            "  --server-host H      UDP server address (default 127.0.0.1)\n"
            "  --server-port P      UDP server port (default 5001)\n"
            "  --drop-up P, --drop-down P        drop probability, 0..1 or 0..100%%\n"
            "  --dup-up P, --dup-down P          duplicate probability\n"
            "  --reorder-up P, --reorder-down P  hold a datagram back and send it right after\n"
            "                       the next one of its stream (a swap)\n"
            "  --reorder-hold MS    send a held datagram alone after MS (default 50)\n"
            "  --reorder-scope S    stream (default: the next datagram of the same verb and\n"
            "                       sender id ends a hold) or mapping (any next datagram)\n"
            "  --delay-up MS, --delay-down MS    constant delay\n"
            "  --jitter MS          extra delay uniform in [0, MS], both directions\n"
            "  --jitter-up MS, --jitter-down MS  the same per direction\n"
            "  --seed N             PRNG seed (default 1)\n"
            "  --match VERBS        impair only these first words (default %s);\n"
            "                       compressed datagrams are inflated and classified by the\n"
            "                       frame inside; ones that do not inflate (ZLIB) count\n"
            "                       as MSG up, ACK/FROM down\n"
            "  --idle S             forget a client silent for S seconds (default 60)\n"
            "  --duration S         stop after S seconds (default: at SIGINT/SIGTERM)\n"
            "  --log FILE           one line per action: t_ns dir verb action seq client\n"
            "  --report FILE        the final report as JSON\n"
            "  --help, --version\n",
            IMPAIR_DEFAULT_MATCH);
}

static uint64_t opt_uint(const char *opt, const char *s, uint64_t max)
{
    return impair_opt_u64("udp_impair", opt, s, 0, max);
}

static double opt_prob(const char *opt, const char *s)
{
    return impair_opt_prob("udp_impair", opt, s);
}

static uint64_t opt_ms(const char *opt, const char *s)
{
    return impair_opt_ms("udp_impair", opt, s, 600000.0);
}

enum {
    OPT_LHOST = 256,
    OPT_LPORT,
    OPT_SHOST,
    OPT_SPORT,
    OPT_DROP_UP,
    OPT_DROP_DOWN,
    OPT_DUP_UP,
    OPT_DUP_DOWN,
    OPT_RE_UP,
    OPT_RE_DOWN,
    OPT_HOLD,
    OPT_SCOPE,
    OPT_DELAY_UP,
    OPT_DELAY_DOWN,
    OPT_JITTER,
    OPT_JITTER_UP,
    OPT_JITTER_DOWN,
    OPT_SEED,
    OPT_MATCH,
    OPT_IDLE,
    OPT_DURATION,
    OPT_LOG,
    OPT_REPORT,
    OPT_HELP,
    OPT_VERSION
};

void impair_options(int argc, char **argv, struct impair_config *c)
{
    static const struct option opts[] = {
        {"listen-host", required_argument, 0, OPT_LHOST},
        {"listen-port", required_argument, 0, OPT_LPORT},
        {"server-host", required_argument, 0, OPT_SHOST},
        {"server-port", required_argument, 0, OPT_SPORT},
        {"drop-up", required_argument, 0, OPT_DROP_UP},
        {"drop-down", required_argument, 0, OPT_DROP_DOWN},
        {"dup-up", required_argument, 0, OPT_DUP_UP},
        {"dup-down", required_argument, 0, OPT_DUP_DOWN},
        {"reorder-up", required_argument, 0, OPT_RE_UP},
        {"reorder-down", required_argument, 0, OPT_RE_DOWN},
        {"reorder-hold", required_argument, 0, OPT_HOLD},
        {"reorder-scope", required_argument, 0, OPT_SCOPE},
        {"delay-up", required_argument, 0, OPT_DELAY_UP},
        {"delay-down", required_argument, 0, OPT_DELAY_DOWN},
        {"jitter", required_argument, 0, OPT_JITTER},
        {"jitter-up", required_argument, 0, OPT_JITTER_UP},
        {"jitter-down", required_argument, 0, OPT_JITTER_DOWN},
        {"seed", required_argument, 0, OPT_SEED},
        {"match", required_argument, 0, OPT_MATCH},
        {"idle", required_argument, 0, OPT_IDLE},
        {"duration", required_argument, 0, OPT_DURATION},
        {"log", required_argument, 0, OPT_LOG},
        {"report", required_argument, 0, OPT_REPORT},
        {"help", no_argument, 0, OPT_HELP},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    c->listen_host = "127.0.0.1";
    c->server_host = "127.0.0.1";
    c->server_port = 5001;
    c->hold_ns = 50 * 1000000ull;
    c->seed = 1;
    c->match_str = IMPAIR_DEFAULT_MATCH;
    c->idle_ns = 60 * 1000000000ull;
    int o, li = -1;
    opterr = 0;
    while ((li = -1, o = getopt_long(argc, argv, ":", opts, &li)) != -1) {
        /* the option's own name: argv[optind - 1] is its value when given apart */
        char name[40];
        snprintf(name, sizeof name, "--%s", li >= 0 ? opts[li].name : "?");
        switch (o) {
        case OPT_LHOST:
            c->listen_host = optarg;
            break;
        case OPT_LPORT:
            c->listen_port = (uint16_t)opt_uint(name, optarg, 65535);
            break;
        case OPT_SHOST:
            c->server_host = optarg;
            break;
        case OPT_SPORT:
            c->server_port = (uint16_t)opt_uint(name, optarg, 65535);
            break;
        case OPT_DROP_UP:
            c->probs[IMPAIR_UP].drop = opt_prob(name, optarg);
            break;
        case OPT_DROP_DOWN:
            c->probs[IMPAIR_DOWN].drop = opt_prob(name, optarg);
            break;
        case OPT_DUP_UP:
            c->probs[IMPAIR_UP].dup = opt_prob(name, optarg);
            break;
        case OPT_DUP_DOWN:
            c->probs[IMPAIR_DOWN].dup = opt_prob(name, optarg);
            break;
        case OPT_RE_UP:
            c->probs[IMPAIR_UP].reorder = opt_prob(name, optarg);
            break;
        case OPT_RE_DOWN:
            c->probs[IMPAIR_DOWN].reorder = opt_prob(name, optarg);
            break;
        case OPT_HOLD:
            c->hold_ns = opt_ms(name, optarg);
            break;
        case OPT_SCOPE:
            if (strcmp(optarg, "stream") == 0)
                c->scope_mapping = false;
            else if (strcmp(optarg, "mapping") == 0)
                c->scope_mapping = true;
            else
                impair_die(2, "--reorder-scope: expected 'stream' or 'mapping', got '%s'", optarg);
            break;
        case OPT_DELAY_UP:
            c->delay_ns[IMPAIR_UP] = opt_ms(name, optarg);
            break;
        case OPT_DELAY_DOWN:
            c->delay_ns[IMPAIR_DOWN] = opt_ms(name, optarg);
            break;
        case OPT_JITTER:
            c->probs[IMPAIR_UP].jitter_ns = c->probs[IMPAIR_DOWN].jitter_ns = opt_ms(name, optarg);
            break;
        case OPT_JITTER_UP:
            c->probs[IMPAIR_UP].jitter_ns = opt_ms(name, optarg);
            break;
        case OPT_JITTER_DOWN:
            c->probs[IMPAIR_DOWN].jitter_ns = opt_ms(name, optarg);
            break;
        case OPT_SEED:
            c->seed = opt_uint(name, optarg, UINT64_MAX);
            break;
        case OPT_MATCH:
            if (impair_parse_match(optarg, &c->match) < 0)
                impair_die(2, "--match: expected a comma list of verbs (e.g. %s), got '%s'",
                           IMPAIR_DEFAULT_MATCH, optarg);
            c->match_str = optarg;
            break;
        case OPT_IDLE:
            c->idle_ns = opt_uint(name, optarg, 86400) * 1000000000ull;
            break;
        case OPT_DURATION:
            c->duration_ns = opt_uint(name, optarg, 86400 * 365) * 1000000000ull;
            break;
        case OPT_LOG:
            c->log_path = optarg;
            break;
        case OPT_REPORT:
            c->report_path = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("udp_impair %s\n", CHATBENCH_VERSION);
            exit(0);
        case ':':
            impair_die(2, "%s needs a value (see --help)", argv[optind - 1]);
        default:
            impair_die(2, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        impair_die(2, "unexpected argument '%s' (see --help)", argv[optind]);
    if (c->idle_ns == 0)
        impair_die(2, "--idle must be at least 1 second");
    if (c->match == 0 && impair_parse_match(c->match_str, &c->match) < 0)
        impair_die(2, "internal error: bad default --match");
}
