/* linkem_opts: the command line of bin/linkem (per-direction options, --help, validation). */
#include "linkem.h"

#include "parse.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

#define LK_MAX_MS 60000.0 /* a minute of delay or jitter is already absurd for a link */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: linkem [OPTIONS] [--] [COMMAND [ARGS...]]\n"
            "Runs COMMAND (default: $SHELL) in a new network namespace joined to this one by an\n"
            "emulated point-to-point link, and exits with COMMAND's status. Needs root and\n"
            "/dev/net/tun. COMMAND gets LINKEM_HOST (this side's address: where servers listen)\n"
            "and LINKEM_SELF (its own).\n\n"
            "Per direction: --up-X applies from COMMAND's side out (inner -> outer), --down-X\n"
            "towards it (outer -> inner), plain --X to both.\n"
            "  --delay MS           fixed one-way delay, fractions allowed (default 0)\n"
            "  --jitter MS          extra delay per packet, uniform in [0, MS]; packets keep\n"
            "                       their order unless --reorder\n"
            "  --reorder            let jitter reorder packets (counted per flow as reordered)\n"
            "  --rate RATE          bottleneck: 500kbit, 10mbit, 1.5gbit (bit/s; serialisation\n"
            "                       time from each packet's IP length; default none)\n"
            "  --queue N            drop-tail queue of N packets before the bottleneck (default "
            "100)\n"
            "  --queue-bytes B      the queue's limit in bytes (instead of packets, unless\n"
            "                       --queue is given too)\n"
            "  --loss P             independent loss, percent (5 = 5 %%)\n"
            "  --burst-loss P:L     Gilbert-Elliott loss: P %% on average in bursts of mean\n"
            "                       length L packets\n"
            "  --dup P              duplicate P %% of the packets\n"
            "Both directions:\n"
            "  --seed N             every random choice follows from it (default 1)\n"
            "  --net A.B.C.D        the link's /30: A.B.C.D+1 outside, +2 inside; D a multiple\n"
            "                       of 4 (default 10.77.0.0), so several links can coexist\n"
            "  --log FILE           one line per packet event: t_s dir n proto len src dst\n"
            "                       event data (n: arrival number in its direction; event:\n"
            "                       in, drop-loss, dup, drop-queue, reorder, out, error;\n"
            "                       data: the first 16 payload bytes in hex)\n"
            "  --json FILE          the exit report as JSON\n"
            "  --quiet              no exit report on stderr\n"
            "  --help, --version\n\n"
            "Exit status: COMMAND's (128+N when a signal N ended it); 2 for bad options or\n"
            "a missing privilege or device; 1 when the link cannot be set up otherwise.\n");
}

/* A decimal number (fractions allowed) in [lo, hi], the whole string. */
static double opt_num(const char *opt, const char *s, double lo, double hi, const char *what)
{
    double v;
    if (parse_double(s, lo, hi, &v) < 0)
        lk_die(LK_EXIT_USAGE, "%s: expected %s, got '%s'", opt, what, s);
    return v;
}

static uint64_t opt_ms(const char *opt, const char *s)
{
    return impair_opt_ms("linkem", opt, s, LK_MAX_MS);
}

static double opt_pct(const char *opt, const char *s)
{
    char buf[64];
    size_t len = strlen(s);
    if (len > 0 && len < sizeof buf && s[len - 1] == '%') { /* "5%" reads as "5" */
        memcpy(buf, s, len - 1);
        buf[len - 1] = '\0';
        s = buf;
    }
    return opt_num(opt, s, 0.0, 100.0, "a percentage in 0..100") / 100.0;
}

/* "10mbit" -> 10,000,000 bit/s (tc's units: bit, kbit, mbit, gbit; decimal prefixes). */
static uint64_t opt_rate(const char *opt, const char *s)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}};
    size_t n = strspn(s, "0123456789.eE+-"); /* the number, then its unit */
    char num[32];
    double v;
    if (n > 0 && n < sizeof num) {
        memcpy(num, s, n);
        num[n] = '\0';
        if (parse_double(num, 0.0, 1e12, &v) == 0)
            for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
                if (strcasecmp(s + n, units[i].unit) == 0 && v * units[i].mult >= 1000.0 &&
                    v * units[i].mult <= 1e11)
                    return (uint64_t)llround(v * units[i].mult);
    }
    lk_die(LK_EXIT_USAGE,
           "%s: expected a rate from 1kbit to 100gbit with a unit (bit, kbit, mbit, gbit: "
           "e.g. 10mbit), got '%s'",
           opt, s);
}

static uint64_t opt_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    return impair_opt_u64("linkem", opt, s, lo, hi);
}

/* "P:L" -> Gilbert-Elliott transition probabilities. */
static void opt_burst(const char *opt, const char *s, struct impair_link_cfg *c)
{
    const char *colon = strchr(s, ':');
    char pbuf[64];
    if (!colon || (size_t)(colon - s) >= sizeof pbuf)
        lk_die(LK_EXIT_USAGE, "%s: expected P:L (loss percent : mean burst length), got '%s'", opt,
               s);
    memcpy(pbuf, s, (size_t)(colon - s));
    pbuf[colon - s] = '\0';
    double p = opt_num(opt, pbuf, 0.0, 100.0, "a loss percentage before ':'") / 100.0;
    double len = opt_num(opt, colon + 1, 1.0, 1e6, "a mean burst length >= 1 after ':'");
    if (impair_ge_params(p, len, &c->ge_p, &c->ge_r) < 0)
        lk_die(LK_EXIT_USAGE,
               "%s: no loss process has %g %% on average in bursts of %g (the loss must be "
               "above 0 and below 100 %%, and at most L/(1+L) of the packets)",
               opt, p * 100.0, len);
}

/* Options that come in three forms: --X (both), --up-X, --down-X. */
enum lk_param {
    LP_DELAY = 0,
    LP_JITTER,
    LP_REORDER,
    LP_RATE,
    LP_QUEUE,
    LP_QUEUE_BYTES,
    LP_LOSS,
    LP_BURST,
    LP_DUP,
    LP__COUNT
};

static const char *const param_names[LP__COUNT] = {
    "delay", "jitter", "reorder", "rate", "queue", "queue-bytes", "loss", "burst-loss", "dup",
};

enum {
    OPT_SEED = 256,
    OPT_NET,
    OPT_LOG,
    OPT_JSON,
    OPT_QUIET,
    OPT_HELP,
    OPT_VERSION,
    OPT_PARAM = 512 /* + 3 * param + form (0 both, 1 up, 2 down) */
};

struct lk_seen {
    bool queue[IMPAIR__DIRS], queue_bytes[IMPAIR__DIRS];
};

static void set_param(struct lk_config *c, struct lk_seen *seen, int param, int dir,
                      const char *opt, const char *arg)
{
    struct impair_link_cfg *d = &c->dir[dir];
    switch (param) {
    case LP_DELAY:
        d->delay_ns = opt_ms(opt, arg);
        break;
    case LP_JITTER:
        d->jitter_ns = opt_ms(opt, arg);
        break;
    case LP_REORDER:
        d->reorder = true;
        break;
    case LP_RATE:
        d->rate_bps = opt_rate(opt, arg);
        break;
    case LP_QUEUE:
        d->queue_pkts = (uint32_t)opt_u64(opt, arg, 1, 1000000);
        seen->queue[dir] = true;
        break;
    case LP_QUEUE_BYTES:
        d->queue_bytes = opt_u64(opt, arg, 64, 1ull << 30);
        seen->queue_bytes[dir] = true;
        break;
    case LP_LOSS:
        d->loss = opt_pct(opt, arg);
        d->ge_p = d->ge_r = 0.0; /* the later option wins */
        break;
    case LP_BURST:
        opt_burst(opt, arg, d);
        d->loss = 0.0;
        break;
    case LP_DUP:
        d->dup = opt_pct(opt, arg);
        break;
    default:
        break;
    }
}

static void opt_net(const char *s, struct lk_config *c)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        lk_die(LK_EXIT_USAGE, "--net: expected an IPv4 address A.B.C.D, got '%s'", s);
    uint32_t h = ntohl(a.s_addr);
    uint32_t first = h >> 24;
    if ((h & 3u) != 0 || first == 0 || first == 127 || first >= 224)
        lk_die(LK_EXIT_USAGE,
               "--net: '%s' cannot start a /30 link: the last number must be a multiple of "
               "4, and the address neither 0.x, 127.x (loopback) nor multicast",
               s);
    c->net = a;
    c->outer.s_addr = htonl(h + 1);
    c->inner.s_addr = htonl(h + 2);
}

void lk_options(int argc, char **argv, struct lk_config *c)
{
    struct option opts[3 * LP__COUNT + 8];
    char names[3 * LP__COUNT][32];
    size_t k = 0;
    static const char *const forms[3] = {"", "up-", "down-"};
    for (int p = 0; p < LP__COUNT; p++)
        for (int f = 0; f < 3; f++) {
            snprintf(names[k], sizeof names[k], "%s%s", forms[f], param_names[p]);
            opts[k] = (struct option){names[k], p == LP_REORDER ? no_argument : required_argument,
                                      0, OPT_PARAM + 3 * p + f};
            k++;
        }
    const struct option fixed[] = {
        {"seed", required_argument, 0, OPT_SEED}, {"net", required_argument, 0, OPT_NET},
        {"log", required_argument, 0, OPT_LOG},   {"json", required_argument, 0, OPT_JSON},
        {"quiet", no_argument, 0, OPT_QUIET},     {"help", no_argument, 0, OPT_HELP},
        {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0},
    };
    memcpy(&opts[k], fixed, sizeof fixed);

    memset(c, 0, sizeof *c);
    c->seed = 1;
    for (int d = 0; d < IMPAIR__DIRS; d++)
        c->dir[d].queue_pkts = 100;
    opt_net("10.77.0.0", c);
    struct lk_seen seen = {0};
    int o, li = -1;
    opterr = 0;
    /* "+": the first word that is not an option starts COMMAND, whose options are its own */
    while ((li = -1, o = getopt_long(argc, argv, "+:", opts, &li)) != -1) {
        char name[48];
        snprintf(name, sizeof name, "--%s", li >= 0 ? opts[li].name : "?");
        if (o >= OPT_PARAM && o < OPT_PARAM + 3 * LP__COUNT) {
            int p = (o - OPT_PARAM) / 3, f = (o - OPT_PARAM) % 3;
            for (int d = 0; d < IMPAIR__DIRS; d++)
                if (f == 0 || f == 1 + d)
                    set_param(c, &seen, p, d, name, optarg);
            continue;
        }
        switch (o) {
        case OPT_SEED:
            c->seed = opt_u64(name, optarg, 0, UINT64_MAX);
            break;
        case OPT_NET:
            opt_net(optarg, c);
            break;
        case OPT_LOG:
            c->log_path = optarg;
            break;
        case OPT_JSON:
            c->json_path = optarg;
            break;
        case OPT_QUIET:
            c->quiet = true;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("linkem %s\n", CHATBENCH_VERSION);
            exit(0);
        case ':':
            lk_die(LK_EXIT_USAGE, "%s needs a value (see --help)", argv[optind - 1]);
        default:
            lk_die(LK_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    for (int d = 0; d < IMPAIR__DIRS; d++)
        if (seen.queue_bytes[d] && !seen.queue[d])
            c->dir[d].queue_pkts = 0; /* --queue-bytes alone: a byte limit only */
    c->argv = argv + optind;
}
