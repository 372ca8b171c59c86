/* opts: the load generator's command line (see config.h, lg_options). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "net.h"
#include "parse.h"
#include "transport.h"

#ifndef CHATBENCH_VERSION
#define CHATBENCH_VERSION "dev"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: loadgen [options]\n"
            "Open-loop load generator for chatbench's tcp_server and udp_server: N clients,\n"
            "each on its own socket, send MSG frames at a fixed rate and measure ACK and\n"
            "fan-out latency, loss, reordering, duplicates, jitter and bytes.\n"
            "\n"
            "  --proto P             transport: tcp, udp or hybrid (default tcp); hybrid is\n"
            "                        udp_server --hybrid: a TCP control connection per\n"
            "                        client, chat over UDP with its session token\n"
            "  --clients N           simulated clients, one socket each (default 1000)\n"
            "  --host H              server address (default 127.0.0.1)\n"
            "  --port P              server port (default 5000 for tcp, 5001 for udp;\n"
            "                        hybrid: the control port, default 5002)\n"
            "  --threads T           worker threads (default: number of cores)\n"
            "  --duration S          measured seconds of sending (default 8)\n"
            "  --warmup S            seconds of sending before that, left out of the figures\n"
            "                        (default 1)\n"
            "  --rate R              messages per second per client (default 5)\n"
            "  --total-rate R        messages per second for all clients (instead of --rate)\n"
            "  --poisson             Poisson arrivals instead of a fixed period\n"
            "  --size B              payload bytes per message, 0..%d (default 100)\n"
            "  --payload KIND        hex (telemetry), text (chat-like) or random\n"
            "                        (incompressible); default hex\n"
            "  --room-size K         clients per room; each MSG fans out to K-1 members\n"
            "                        (default 1: ACK only)\n"
            "  --compress            udp: zlib-compress every datagram (PROTOCOL.md)\n"
            "  --ramp S              spread connection set-up over S seconds (default 0)\n"
            "  --timeout MS          udp: a message not ACKed within MS is lost (default 1000)\n"
            "  --ping-interval S     udp: PING after S seconds without sending, so that the\n"
            "                        server keeps the client (default %d, as udp_client)\n"
            "  --interval S          time series and progress period (default 1)\n"
            "  --out DIR             append summary.csv, timeseries.csv, latency.csv and\n"
            "                        write LABEL.KIND.hist histograms and the HdrHistogram\n"
            "                        interval log LABEL.hlog into DIR\n"
            "  --label NAME          run name in the CSVs (default from the settings)\n"
            "  --seed N              seed of phases, Poisson gaps and payloads (default 1)\n"
            "  --start-at T          connect, then wait until T (Unix time, fractional\n"
            "                        seconds) to start the warm-up: shards line up\n"
            "  --source LIST         local addresses for the client sockets, round-robin:\n"
            "                        A,B,... or ranges A-B (127.0.0.2-127.0.0.9); each address\n"
            "                        has its own ephemeral ports\n"
            "  --cpus LIST           pin worker threads to these CPUs, one each in turn\n"
            "                        (taskset -c syntax: 1, 0-1, 0,2-3)\n"
            "  --busy-poll           workers never sleep: they poll their sockets and the\n"
            "                        clock, as sockperf's client busy-waits between sends;\n"
            "                        no wake-up latency, one whole core each (needs --cpus\n"
            "                        with a CPU per thread). The main thread shares those\n"
            "                        CPUs: its work every --interval (collecting the figures,\n"
            "                        writing the .hlog) holds a worker back for a few ms; an\n"
            "                        --interval longer than the run keeps it out of them\n"
            "  --shard I/N           be shard I of N (0-based) of one run: rooms go to shards\n"
            "                        round-robin; without it the shard comes from the\n"
            "                        launcher: OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE,\n"
            "                        SLURM_PROCID/NTASKS, or JOB_COMPLETION_INDEX and --shards\n"
            "  --shards N            the number of shards (a Kubernetes Indexed Job's\n"
            "                        completions); checked against the launcher's when both\n"
            "  --launcher NAME       read the shard from this launcher's variables only: ompi,\n"
            "                        pmi, slurm or k8s (when several are set and disagree)\n"
            "  --json                print the summary as one JSON object instead of text\n"
            "  --quiet               no progress line and no text summary\n"
            "  --help, --version\n"
            "\n"
            "Figures: counts cover messages intended after the warm-up. ack latency runs from\n"
            "the intended send time (corrected for coordinated omission), ack raw from the\n"
            "actual send; lag = actual - intended. UDP: lost = no ACK within --timeout, split\n"
            "by the server's count in later ACKs into uplink (never arrived), downlink (its\n"
            "ACK was lost) and unknown (after the client's last ACK); an ACK after the\n"
            "timeout is late, not acked. reordered: below the highest seq seen (iperf3).\n"
            "bytes_*: the MSG, ACK and FROM frames of measured messages; bytes_*_total: the\n"
            "whole run. jitter: RFC 3550 running estimate of each client's ACK stream,\n"
            "averaged over its samples at every measured ACK arrival.\n"
            "fanout_last: to the last member, only for messages every member got (biased low\n"
            "under loss); the others are counted in fanout_last_incomplete. Above 64 MiB of\n"
            "per-stream state, fan-out duplicates/reordering are not tracked\n"
            "(fanout_tracking = 0, with a warning).\n"
            "offered_rate_msgs: --rate x the clients that connected. Send times are taken\n"
            "after formatting and compressing, just before send(): raw latency leaves out\n"
            "the load generator's own work, which is in the lag.\n"
            "rx lag (UDP): kernel receive time (SO_TIMESTAMPNS) to the loadgen's read.\n"
            "Self-check: ack ~= ack raw + send lag, so the run is LOADGEN-BOUND when the\n"
            "send or rx lag p99 exceeds max(100 us, 25 %% of the ack p99), or under 95 %%\n"
            "of the messages due were sent; loadgen_bound = 1 in the CSV.\n"
            "\n"
            "Example: loadgen --proto udp --clients 1000 --compress\n"
            "Shards of one run (--shard, mpirun, srun, an Indexed Job) are added up with\n"
            "  loadgen merge DIR... --out DIR   (see loadgen merge --help)\n"
            "TCP: after the window it waits up to 30 s for the last ACKs (retransmissions\n"
            "under loss back off); one still missing then counts as lost.\n"
            "Exit status: 0 ok, 1 run failed (no client connected, or TCP lost or reordered\n"
            "a message), 2 bad options.\n",
            LG_MAX_SIZE, LG_PING_INTERVAL_S);
}

static _Noreturn void bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "loadgen: invalid %s '%s': %s (see --help)\n", opt, val, why);
    exit(2);
}

static double num(const char *opt, const char *s, double lo, double hi)
{
    double v = 0;
    int rc = parse_double(s, lo, hi, &v);
    if (rc == -EINVAL)
        bad(opt, s, "not a number");
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof(why), "must be between %g and %g", lo, hi);
        bad(opt, s, why);
    }
    return v;
}

static uint64_t integer(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    uint64_t v = 0;
    int rc = parse_u64(s, lo, hi, &v);
    if (rc == -EINVAL)
        bad(opt, s, "not a non-negative integer");
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof(why), "must be between %" PRIu64 " and %" PRIu64, lo, hi);
        bad(opt, s, why);
    }
    return v;
}

static bool valid_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

/* --start-at: Unix seconds, within an hour before and a day after now (a time in ms, or
 * yesterday's, is a mistake worth stopping for). */
static double start_at(const char *s)
{
    double t = num("--start-at", s, 1e9, 1e11);
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) < 0)
        bad("--start-at", s, "cannot read the clock");
    double d = t - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
    if (d < -3600 || d > 86400)
        bad("--start-at", s, "more than an hour ago or a day ahead (give Unix seconds)");
    return t;
}

/* An IPv4 address of this host: bindable. */
static bool local_address(struct in_addr a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = a};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd); /* a probe: nothing to keep */
    return ok;
}

/* --source A,B-C,...: the addresses, in order, ranges expanded. */
static void sources(const char *arg, struct lg_config *cfg)
{
    char *copy = strdup(arg), *rest = copy;
    uint64_t n = 0, cap = 0;
    if (copy == NULL)
        bad("--source", arg, "out of memory");
    for (char *tok; (tok = strsep(&rest, ",")) != NULL;) {
        char *dash = strchr(tok, '-');
        struct in_addr lo, hi;
        if (dash != NULL)
            *dash = '\0';
        if (inet_pton(AF_INET, tok, &lo) != 1 ||
            (dash != NULL && inet_pton(AF_INET, dash + 1, &hi) != 1))
            bad("--source", arg, "give IPv4 addresses A,B,... or ranges A-B");
        uint32_t first = ntohl(lo.s_addr), last = dash != NULL ? ntohl(hi.s_addr) : first;
        if (last < first || n + (last - first) + 1 > LG_SOURCES_MAX)
            bad("--source", arg, "a range runs backwards, or more than 65536 addresses");
        for (uint64_t v = first; v <= last; v++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                struct in_addr *a = realloc(cfg->sources, cap * sizeof(*a));
                if (a == NULL)
                    bad("--source", arg, "out of memory");
                cfg->sources = a;
            }
            cfg->sources[n].s_addr = htonl((uint32_t)v);
            if (!local_address(cfg->sources[n]))
                bad("--source", arg, "not all of them are addresses of this host");
            n++;
        }
    }
    free(copy);
    if (n == 0)
        bad("--source", arg, "no address");
    cfg->nsources = (uint32_t)n;
}

/* --cpus LIST: CPUs this process may run on. */
static void cpus(const char *arg, struct lg_config *cfg)
{
    cpu_set_t allowed;
    if (parse_cpulist(arg, &cfg->cpus) < 0 || strlen(arg) >= sizeof(cfg->cpus_text))
        bad("--cpus", arg, "give a CPU list such as 1, 0-1 or 0,2-3");
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        bad("--cpus", arg, "cannot read this process's CPUs");
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &cfg->cpus) && !CPU_ISSET(c, &allowed))
            bad("--cpus", arg, "a CPU this process may not run on (see taskset -p $$)");
    cfg->pin = true;
    snprintf(cfg->cpus_text, sizeof(cfg->cpus_text), "%s", arg);
}

void lg_config_destroy(struct lg_config *cfg)
{
    free(cfg->sources);
    cfg->sources = NULL;
    cfg->nsources = 0;
}

static const char *getenv_const(const char *name)
{
    return getenv(name);
}

/* 32 random bits for the client ids' prefix (pid and time if getrandom fails). */
static uint32_t run_tag(void)
{
    uint32_t tag;
    if (getrandom(&tag, sizeof(tag), GRND_NONBLOCK) == (ssize_t)sizeof(tag))
        return tag;
    return (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
}

enum {
    O_PROTO = 256,
    O_CLIENTS,
    O_HOST,
    O_PORT,
    O_THREADS,
    O_DURATION,
    O_WARMUP,
    O_RATE,
    O_TOTAL_RATE,
    O_POISSON,
    O_SIZE,
    O_PAYLOAD,
    O_ROOM,
    O_COMPRESS,
    O_RAMP,
    O_TIMEOUT,
    O_INTERVAL,
    O_OUT,
    O_LABEL,
    O_SEED,
    O_JSON,
    O_QUIET,
    O_SHARD,
    O_SHARDS,
    O_LAUNCHER,
    O_START_AT,
    O_SOURCE,
    O_CPUS,
    O_BUSY_POLL,
    O_PING,
    O_HELP,
    O_VERSION
};

void lg_options(int argc, char **argv, struct lg_config *cfg)
{
    static const struct option opts[] = {
        {"proto", required_argument, 0, O_PROTO},
        {"clients", required_argument, 0, O_CLIENTS},
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"duration", required_argument, 0, O_DURATION},
        {"warmup", required_argument, 0, O_WARMUP},
        {"rate", required_argument, 0, O_RATE},
        {"total-rate", required_argument, 0, O_TOTAL_RATE},
        {"poisson", no_argument, 0, O_POISSON},
        {"size", required_argument, 0, O_SIZE},
        {"payload", required_argument, 0, O_PAYLOAD},
        {"room-size", required_argument, 0, O_ROOM},
        {"compress", no_argument, 0, O_COMPRESS},
        {"ramp", required_argument, 0, O_RAMP},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"interval", required_argument, 0, O_INTERVAL},
        {"out", required_argument, 0, O_OUT},
        {"label", required_argument, 0, O_LABEL},
        {"seed", required_argument, 0, O_SEED},
        {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},
        {"shard", required_argument, 0, O_SHARD},
        {"shards", required_argument, 0, O_SHARDS},
        {"launcher", required_argument, 0, O_LAUNCHER},
        {"start-at", required_argument, 0, O_START_AT},
        {"source", required_argument, 0, O_SOURCE},
        {"cpus", required_argument, 0, O_CPUS},
        {"busy-poll", no_argument, 0, O_BUSY_POLL},
        {"ping-interval", required_argument, 0, O_PING},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    memset(cfg, 0, sizeof(*cfg));
    cfg->transport = &lg_tcp;
    cfg->clients = 1000;
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = ncpu > 0 ? (uint32_t)ncpu : 1;
    cfg->duration_s = 8;
    cfg->warmup_s = 1;
    cfg->interval_s = 1;
    cfg->rate = 5;
    cfg->size = 100;
    cfg->payload = LG_PAYLOAD_HEX;
    cfg->room_size = 1;
    cfg->timeout_ms = 1000;
    cfg->ping_interval_s = LG_PING_INTERVAL_S;
    cfg->seed = 1;
    bool port_set = false, rate_set = false;
    const char *label = NULL;
    struct lg_shard_opts so = {0};

    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        const char *name = optind > 1 ? argv[optind - 1] : "?";
        switch (o) {
        case O_PROTO:
            cfg->transport = lg_transport_find(optarg);
            if (cfg->transport == NULL)
                bad("--proto", optarg, "must be tcp, udp or hybrid");
            break;
        case O_CLIENTS:
            cfg->clients = (uint32_t)integer("--clients", optarg, 1, 1000000);
            break;
        case O_HOST:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cfg->host) ||
                strspn(optarg,
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                    strlen(optarg))
                bad("--host", optarg, "use an IPv4 address or a host name");
            snprintf(cfg->host, sizeof(cfg->host), "%s", optarg);
            break;
        case O_PORT:
            cfg->port = (uint16_t)integer("--port", optarg, 1, 65535);
            port_set = true;
            break;
        case O_THREADS:
            cfg->threads = (uint32_t)integer("--threads", optarg, 1, 256);
            break;
        case O_DURATION:
            cfg->duration_s = num("--duration", optarg, 0.001, 86400);
            break;
        case O_WARMUP:
            cfg->warmup_s = num("--warmup", optarg, 0, 3600);
            break;
        case O_RATE:
            cfg->rate = num("--rate", optarg, 0.001, 1e6);
            rate_set = true;
            break;
        case O_TOTAL_RATE:
            cfg->total_rate = num("--total-rate", optarg, 0.001, 1e8);
            break;
        case O_POISSON:
            cfg->poisson = true;
            break;
        case O_SIZE:
            cfg->size = (uint32_t)integer("--size", optarg, 0, LG_MAX_SIZE);
            break;
        case O_PAYLOAD:
            if (lg_payload_parse(optarg, &cfg->payload) < 0)
                bad("--payload", optarg, "must be hex, text or random");
            break;
        case O_ROOM:
            cfg->room_size = (uint32_t)integer("--room-size", optarg, 1, 1000000);
            break;
        case O_COMPRESS:
            cfg->compress = true;
            break;
        case O_RAMP:
            cfg->ramp_s = num("--ramp", optarg, 0, 3600);
            break;
        case O_TIMEOUT:
            cfg->timeout_ms = (uint32_t)integer("--timeout", optarg, 1, 600000);
            break;
        case O_INTERVAL:
            cfg->interval_s = num("--interval", optarg, 0.05, 3600);
            break;
        case O_OUT:
            if (strlen(optarg) == 0)
                bad("--out", optarg, "empty directory name");
            cfg->out_dir = optarg;
            break;
        case O_LABEL:
            if (!valid_label(optarg))
                bad("--label", optarg, "use 1 to 64 of [A-Za-z0-9_.-]");
            label = optarg;
            break;
        case O_SEED:
            cfg->seed = integer("--seed", optarg, 0, UINT64_MAX);
            break;
        case O_JSON:
            cfg->json = true;
            break;
        case O_QUIET:
            cfg->quiet = true;
            break;
        case O_SHARD:
            so.shard = optarg;
            break;
        case O_SHARDS:
            so.shards = (uint32_t)integer("--shards", optarg, 1, LG_SHARDS_MAX);
            break;
        case O_LAUNCHER:
            so.launcher = optarg;
            break;
        case O_START_AT:
            cfg->start_at = start_at(optarg);
            break;
        case O_SOURCE:
            sources(optarg, cfg);
            break;
        case O_CPUS:
            cpus(optarg, cfg);
            break;
        case O_BUSY_POLL:
            cfg->busy_poll = true;
            break;
        case O_PING:
            cfg->ping_interval_s = num("--ping-interval", optarg, 0.1, 3600);
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        case O_VERSION:
            printf("loadgen (chatbench) %s\n", CHATBENCH_VERSION);
            exit(0);
        case ':':
            fprintf(stderr, "loadgen: option %s needs a value (see --help)\n", name);
            exit(2);
        default:
            fprintf(stderr, "loadgen: unknown option %s (see --help)\n", name);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
        exit(2);
    }
    if (cfg->total_rate > 0) {
        if (rate_set) {
            fprintf(stderr, "loadgen: give --rate or --total-rate, not both\n");
            exit(2);
        }
        cfg->rate = cfg->total_rate / cfg->clients;
    }
    if (cfg->compress && !cfg->transport->compress) {
        fprintf(stderr, "loadgen: --compress applies to --proto udp only\n");
        exit(2);
    }
    if (!port_set)
        cfg->port = cfg->transport->default_port;
    if (net_resolve(cfg->host, cfg->port, &cfg->server) < 0) {
        fprintf(stderr, "loadgen: cannot resolve --host '%s' to an IPv4 address\n", cfg->host);
        exit(2);
    }
    char why[256];
    if (lg_shard_resolve(&so, getenv_const, &cfg->shard, why, sizeof(why)) < 0) {
        fprintf(stderr, "loadgen: %s\n", why);
        exit(2);
    }
    cfg->shard_clients = lg_shard_clients(&cfg->shard, cfg->clients, cfg->room_size);
    if (cfg->shard_clients == 0) {
        fprintf(stderr,
                "loadgen: shard %" PRIu32 "/%" PRIu32 " has no clients: %" PRIu32
                " clients in rooms of %" PRIu32 " make fewer rooms than shards\n",
                cfg->shard.index, cfg->shard.count, cfg->clients, cfg->room_size);
        exit(2);
    }
    if (cfg->threads > cfg->shard_clients)
        cfg->threads = cfg->shard_clients;
    /* two spinning workers on one CPU would take turns by the scheduler's time slice */
    if (cfg->busy_poll && (!cfg->pin || (int)cfg->threads > CPU_COUNT(&cfg->cpus))) {
        fprintf(stderr,
                "loadgen: --busy-poll needs --cpus with a CPU for each of the %" PRIu32
                " worker threads (--threads)\n",
                cfg->threads);
        exit(2);
    }
    snprintf(cfg->id_prefix, sizeof(cfg->id_prefix), "L%08" PRIx32 "-", run_tag());
    if (label != NULL) {
        snprintf(cfg->label, sizeof(cfg->label), "%s", label);
    } else {
        snprintf(cfg->label, sizeof(cfg->label), "%s-c%" PRIu32 "-r%g-s%" PRIu32 "-k%" PRIu32 "%s",
                 cfg->transport->name, cfg->clients, cfg->rate, cfg->size, cfg->room_size,
                 cfg->compress ? "-z" : "");
    }
}
