/* client_opts: the clients' command line (--help, --version, options, the id prompt). */
#include "client_common.h"

#include "parse.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

static void usage(const struct cli_transport *tp, FILE *out)
{
    fprintf(out,
            "Usage: %s [options]\n"
            "Terminal chat client for chatbench's %s server (protocol: PROTOCOL.md).\n\n"
            "  --host HOST          server address (default 127.0.0.1)\n"
            "  --port PORT          server port (default %u)\n"
            "  --id ID              your id, 1-32 of [A-Za-z0-9_.-] (asked for on a terminal)\n",
            tp->prog, tp->name, (unsigned)tp->default_port);
    if (tp->has_ping)
        fprintf(out, "  --ping-interval S    seconds between keep-alive PINGs (default 5); "
                     "3 silent\n"
                     "                       intervals or ERR not_registered: register again\n");
    if (tp->has_compress)
        fprintf(out, "  --compress           send zlib-compressed datagrams (0xFF frames)\n");
    if (tp->has_hybrid)
        fprintf(out,
                "  --hybrid             hybrid mode (udp_server --hybrid): register, /who and\n"
                "                       /join over a TCP control connection; chat over UDP\n"
                "                       with the session token; the server names the UDP port\n"
                "  --control-port PORT  hybrid: the server's control port (default 5002)\n");
    if (tp->has_hybrid)
        fprintf(out,
                "  --connect-timeout S  hybrid: give up a control connection attempt after\n"
                "                       S seconds and retry (default %g)\n",
                CLI_CONNECT_TIMEOUT_S);
    else
        fprintf(out,
                "  --connect-timeout S  give up a connection attempt after S seconds and\n"
                "                       retry (default %g)\n",
                CLI_CONNECT_TIMEOUT_S);
    fprintf(out, "  --max-retries N      give up (exit 1) after N failed attempts in a row\n"
                 "                       (default 0: keep retrying; Ctrl-C quits)\n"
                 "  -h, --help           this help\n"
                 "  --version            print the version\n\n"
                 "On a terminal, lines are edited with readline and incoming messages never\n"
                 "garble them. Otherwise lines are read from stdin; at EOF the client waits up to\n"
                 "2 s for the ACKs of its messages, says BYE and exits 0.\n"
                 "Commands: /who, /msg <id> <text>, /join <room>, /quit, /help.\n"
                 "The connection is re-established automatically (backoff 0.1 s to 5 s, +-50%%).\n"
                 "Ctrl-C ends the client at once, also while it connects or while a server\n"
                 "that stopped reading holds its writes.\n"
                 "Exit status: 0 ok, 1 could not reach the server or failed, 2 bad usage.\n");
}

__attribute__((format(printf, 2, 3))) static int bad_usage(const struct cli_transport *tp,
                                                           const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", tp->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", tp->prog);
    return 2;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    uint64_t v;
    if (parse_u64(s, 0, max, &v) < 0)
        return false;
    *out = v;
    return true;
}

int cli_parse_args(int argc, char **argv, const struct cli_transport *tp, struct cli_opts *o)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_ID,
        OPT_PING,
        OPT_COMPRESS,
        OPT_RETRIES,
        OPT_VERSION,
        OPT_HYBRID,
        OPT_CONTROL_PORT,
        OPT_CONNECT_TIMEOUT
    };
    static const struct option all[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"id", required_argument, NULL, OPT_ID},
        {"max-retries", required_argument, NULL, OPT_RETRIES},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"ping-interval", required_argument, NULL, OPT_PING},
        {"compress", no_argument, NULL, OPT_COMPRESS},
        {"hybrid", no_argument, NULL, OPT_HYBRID},
        {"control-port", required_argument, NULL, OPT_CONTROL_PORT},
        {NULL, 0, NULL, 0},
    };
    struct option opts[sizeof(all) / sizeof(all[0])];
    size_t k = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if ((all[i].val == OPT_PING && !tp->has_ping) ||
            (all[i].val == OPT_COMPRESS && !tp->has_compress) ||
            ((all[i].val == OPT_HYBRID || all[i].val == OPT_CONTROL_PORT) && !tp->has_hybrid))
            continue;
        opts[k++] = all[i];
    }
    o->host = "127.0.0.1";
    o->port = tp->default_port;
    o->ping_interval_s = 5.0;
    o->control_port = 5002;
    o->connect_timeout_ms = (unsigned)(CLI_CONNECT_TIMEOUT_S * 1000);
    bool control_set = false, ping_set = false, connect_set = false;
    double secs;
    opterr = 0;
    int c;
    unsigned long v;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(tp, stdout);
            return 0;
        case OPT_VERSION:
            printf("%s %s\n", tp->prog, CHATBENCH_VERSION);
            return 0;
        case OPT_HOST:
            if (*optarg == '\0')
                return bad_usage(tp, "--host needs an address%s", "");
            o->host = optarg;
            break;
        case OPT_PORT:
            if (!parse_ulong(optarg, 65535, &v) || v == 0)
                return bad_usage(tp, "bad --port '%s' (1 to 65535)", optarg);
            o->port = (uint16_t)v;
            o->port_set = true;
            break;
        case OPT_ID:
            if (!proto_valid_name(optarg, strlen(optarg)))
                return bad_usage(tp, "bad --id '%s' (1 to 32 of A-Z a-z 0-9 _ . -)", optarg);
            snprintf(o->id, sizeof(o->id), "%s", optarg);
            break;
        case OPT_RETRIES:
            if (!parse_ulong(optarg, ULONG_MAX, &o->max_retries))
                return bad_usage(tp, "bad --max-retries '%s' (a count, 0 = forever)", optarg);
            break;
        case OPT_PING:
            if (parse_double(optarg, 0.05, 3600, &o->ping_interval_s) < 0)
                return bad_usage(tp, "bad --ping-interval '%s' (0.05 to 3600 seconds)", optarg);
            ping_set = true;
            break;
        case OPT_CONNECT_TIMEOUT:
            if (parse_double(optarg, 0.05, 3600, &secs) < 0)
                return bad_usage(tp, "bad --connect-timeout '%s' (0.05 to 3600 seconds)", optarg);
            o->connect_timeout_ms = (unsigned)(secs * 1000);
            connect_set = true;
            break;
        case OPT_COMPRESS:
            o->compress = true;
            break;
        case OPT_HYBRID:
            o->hybrid = true;
            break;
        case OPT_CONTROL_PORT:
            if (!parse_ulong(optarg, 65535, &v) || v == 0)
                return bad_usage(tp, "bad --control-port '%s' (1 to 65535)", optarg);
            o->control_port = (uint16_t)v;
            control_set = true;
            break;
        case ':':
            return bad_usage(tp, "option '%s' needs a value", argv[optind - 1]);
        default:
            return bad_usage(tp, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage(tp, "unexpected argument '%s'", argv[optind]);
    if (control_set && !o->hybrid)
        return bad_usage(tp, "--control-port needs --hybrid%s", "");
    if (o->hybrid && o->port_set)
        return bad_usage(tp, "with --hybrid the server names the UDP port; use --control-port%s",
                         "");
    if (o->hybrid && ping_set)
        return bad_usage(tp,
                         "with --hybrid the control connection keeps the session; "
                         "--ping-interval does not apply%s",
                         "");
    if (connect_set && tp->has_hybrid && !o->hybrid)
        return bad_usage(tp, "--connect-timeout needs --hybrid (plain UDP does not connect)%s", "");
    if (o->hybrid && o->compress)
        return bad_usage(tp, "--compress is not available with --hybrid%s", "");
    return -1;
}

bool cli_ask_id(struct cli_opts *o)
{
    for (;;) {
        char *line = readline("Id: ");
        if (line == NULL)
            return false;
        bool ok = proto_valid_name(line, strlen(line));
        if (ok)
            snprintf(o->id, sizeof(o->id), "%s", line);
        else
            fprintf(stderr, "an id is 1 to 32 of A-Z a-z 0-9 _ . -\n");
        free(line);
        if (ok)
            return true;
    }
}
