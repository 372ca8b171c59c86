/* tcp_server: the chat over TCP. Two I/O models serve the same chat (--io): a thread per
 * client (tcp_threads.c, the default and the challenge's design) or a few event loops
 * (tcp_epoll.c). Both hand frames to the chat core (chat.c) through tcp_conn.c, so the
 * protocol, the log and every limit are the same whichever runs.
 *
 * This file: options, start-up, the accepting thread (accept, --max-clients, refusals,
 * signals) and shutdown. The accepting thread hands each connection to the model.
 *
 * Relaying: a sender writes a frame straight into the recipient's socket (non-blocking,
 * under the recipient's out_lock). What the socket does not take goes into the recipient's
 * bounded queue (outq), and the recipient's owner is told to wait for POLLOUT too.
 *
 * Slow consumers (PROTOCOL.md, "Flow control"): when a frame would push a queue past
 * --max-queue, nothing more is sent to that client (out_state OUT_DEAD), shutdown() wakes
 * its owner, which logs [WARN], tells its room LEFT <id> <room> slow and closes. The
 * sender never waits: this is Redis's client-output-buffer-limit policy.
 *
 * Shutdown (SIGINT/SIGTERM): stop accepting, set `stopping`, and the model ends every
 * client: BYE shutdown, at most TCP_FINAL_FLUSH_MS to flush, close; every thread is joined
 * and everything freed. No LEFT ... shutdown is sent (N^2 frames; PROTOCOL.md).
 *
 * Lock order: the chat lock (chat.h), then a client's out_lock; a model's own lock
 * (tcp_threads' list, a loop's inbox) is never held with the chat lock, and is taken before
 * an out_lock; nothing takes another lock while holding an out_lock. */
#include "tcp_server.h"

#include "clock.h"
#include "cpus.h"
#include "log.h"
#include "net.h"
#include "parse.h"
#include "proto.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <unistd.h>

#ifndef CHATBENCH_VERSION /* the Makefile defines it; lint runs without */
#define CHATBENCH_VERSION "unknown"
#endif

struct tcp_srv tcp_srv;

/* --- the accepting thread: accept, refuse, signals --- */

/* Refuses an accepted connection with ERR server_full (really full, or no resources). */
static void refuse(int fd, const char *addr, bool full)
{
    char buf[128];
    int n = proto_fmt_err(buf, sizeof(buf) - 1, PROTO_E_FULL, NULL);
    buf[n] = '\n';
    /* best effort: a refused peer that does not read loses nothing of ours */
    (void)send(fd, buf, (size_t)n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
    atomic_fetch_add(&tcp_srv.stat_refused, 1);
    /* At most one line a second: a connect flood against a full server must not turn into
     * a write(2) per connection. Only the accepting thread gets here. */
    static uint64_t last_ms, unlogged;
    uint64_t now = clock_now_ms();
    unlogged++;
    if (last_ms == 0 || now >= last_ms + 1000) {
        log_line("WARN", "Conexão de %s recusada: %s (%" PRIu64 " recusadas desde o último aviso)",
                 addr, full ? "servidor cheio" : "sem recursos", unlogged);
        last_ms = now;
        unlogged = 0;
    }
}

/* Accepts what is pending. Returns -1 when accept is out of fds (pause it a little). */
static int accept_some(int lfd)
{
    for (int i = 0; i < TCP_ACCEPT_BATCH; i++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_line("ERROR", "accept: %s", strerror(errno));
                return -1;
            }
            return 0; /* EAGAIN, or a connection that died in the backlog */
        }
        int one = 1;
        /* best effort: chat frames are small and latency-sensitive */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char addr[NET_ADDRSTRLEN];
        net_addr_str(&sa, addr);
        if (atomic_load(&tcp_srv.nconns) >= tcp_srv.cfg.max_clients) {
            refuse(fd, addr, true);
            continue;
        }
        struct tcp_client *c = tcp_conn_new(fd, &sa);
        if (c == NULL)
            log_line("ERROR", "Memória insuficiente para a conexão de %s", addr);
        if (c == NULL || tcp_srv.io->adopt(c) < 0) {
            if (c != NULL)
                tcp_conn_unref(c); /* the fd stays open: refuse() closes it */
            refuse(fd, addr, false);
            continue;
        }
        atomic_fetch_add(&tcp_srv.stat_conns, 1);
    }
    return 0;
}

/* Runs until SIGINT or SIGTERM. Returns the signal's number. */
static int serve(int lfd, int sfd)
{
    int paused_ms = 0;
    for (;;) {
        struct pollfd p[3] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = paused_ms ? -1 : lfd, .events = POLLIN},
            {.fd = tcp_srv.io->event_fd, .events = POLLIN},
        };
        int rc = poll(p, 3, paused_ms ? paused_ms : -1);
        if (rc < 0 && errno != EINTR) {
            log_line("ERROR", "poll: %s", strerror(errno));
            return SIGTERM;
        }
        paused_ms = 0;
        if (rc <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                return (int)si.ssi_signo;
        }
        if ((p[1].revents & POLLIN) && accept_some(lfd) < 0)
            paused_ms = 100; /* out of fds: let some clients leave first */
        if (p[2].revents & POLLIN)
            tcp_srv.io->on_event();
    }
}

/* --- options and start-up --- */

static long default_loops(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : n;
}

static void usage(FILE *to)
{
    fprintf(to,
            "Usage: tcp_server [options]\n"
            "Chat server over TCP (chatbench).\n\n"
            "  --io MODEL           how clients are served: threads, one thread per client\n"
            "                       (default); epoll, a few event-loop threads that each\n"
            "                       serve many clients (see --loops). The chat, the log and\n"
            "                       every limit below are the same in both\n"
            "  --loops N            epoll: event-loop threads, 1..1024 (default: one per\n"
            "                       core, %ld here)\n"
            "  --host ADDR          address to listen on (default 127.0.0.1)\n"
            "  --port N             TCP port (default 5000; 0 picks a free port)\n"
            "  --max-clients N      connections served at once (default 10000)\n"
            "  --max-frame BYTES    longest frame accepted, %d..%d (default %d)\n"
            "  --max-queue BYTES    outbound queue per client before it is dropped as slow\n"
            "                       (default 1048576)\n"
            "  --cpus LIST          run the server's threads on these CPUs only, taskset -c\n"
            "                       syntax: 0, 0-1, 0,2-3 (default: any CPU)\n"
            "  --hello-timeout SEC  time a new connection has to send HELLO (default 10)\n"
            "  --idle-timeout SEC   drop a registered client that sends nothing but PING for\n"
            "                       SEC seconds: LEFT <id> <room> idle (default 0: never)\n"
            "  -q, --quiet          do not log every chat message\n"
            "  -h, --help           this help\n"
            "  -V, --version        print the version\n",
            default_loops(), PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT, PROTO_MAX_FRAME_DEFAULT);
}

static long parse_num(const char *opt, const char *s, long lo, long hi)
{
    uint64_t v;
    if (parse_u64(s, (uint64_t)lo, (uint64_t)hi, &v) < 0) {
        fprintf(stderr, "tcp_server: %s: '%s' is not a number from %ld to %ld\n", opt, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct tcp_config *cfg)
{
    enum { O_HOST = 256, O_PORT, O_MAXC, O_MAXF, O_MAXQ, O_HELLO, O_IDLE, O_IO, O_LOOPS, O_CPUS };
    static const struct option opts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"max-clients", required_argument, NULL, O_MAXC},
        {"max-frame", required_argument, NULL, O_MAXF},
        {"max-queue", required_argument, NULL, O_MAXQ},
        {"hello-timeout", required_argument, NULL, O_HELLO},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"io", required_argument, NULL, O_IO},
        {"loops", required_argument, NULL, O_LOOPS},
        {"cpus", required_argument, NULL, O_CPUS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *cfg = (struct tcp_config){.host = "127.0.0.1",
                               .port = 5000,
                               .max_clients = 10000,
                               .max_frame = PROTO_MAX_FRAME_DEFAULT,
                               .max_queue = 1u << 20,
                               .hello_timeout_s = 10,
                               .io = TCP_IO_THREADS,
                               .loops = (int)default_loops()};
    bool loops_set = false;
    int o, rc;
    while ((o = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
        switch (o) {
        case O_HOST:
            cfg->host = optarg;
            break;
        case O_PORT:
            cfg->port = (uint16_t)parse_num("--port", optarg, 0, 65535);
            break;
        case O_MAXC:
            cfg->max_clients = parse_num("--max-clients", optarg, 1, 1000000);
            break;
        case O_MAXF:
            cfg->max_frame =
                (size_t)parse_num("--max-frame", optarg, PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT);
            break;
        case O_MAXQ:
            cfg->max_queue = (size_t)parse_num("--max-queue", optarg, 1024, 1L << 30);
            break;
        case O_HELLO:
            cfg->hello_timeout_s = (int)parse_num("--hello-timeout", optarg, 1, 86400);
            break;
        case O_IDLE:
            cfg->idle_timeout_s = (int)parse_num("--idle-timeout", optarg, 0, 86400);
            break;
        case O_IO:
            if (strcmp(optarg, "threads") == 0) {
                cfg->io = TCP_IO_THREADS;
            } else if (strcmp(optarg, "epoll") == 0) {
                cfg->io = TCP_IO_EPOLL;
            } else {
                fprintf(stderr, "tcp_server: --io: '%s' is not threads or epoll\n", optarg);
                exit(2);
            }
            break;
        case O_LOOPS:
            cfg->loops = (int)parse_num("--loops", optarg, 1, 1024);
            loops_set = true;
            break;
        case O_CPUS:
            if ((rc = cpus_parse_allowed(optarg, &cfg->cpus)) < 0) {
                fprintf(stderr, "tcp_server: --cpus '%s': %s\n", optarg, cpus_why(rc));
                exit(2);
            }
            cfg->pin = true;
            break;
        case 'q':
            log_set_quiet(true);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("tcp_server chatbench " CHATBENCH_VERSION "\n");
            exit(0);
        default:
            fprintf(stderr, "Try 'tcp_server --help'.\n");
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tcp_server: unexpected argument '%s'; try 'tcp_server --help'\n",
                argv[optind]);
        exit(2);
    }
    if (loops_set && cfg->io != TCP_IO_EPOLL) {
        fprintf(stderr, "tcp_server: --loops needs --io epoll; try 'tcp_server --help'\n");
        exit(2);
    }
    if (cfg->max_queue < cfg->max_frame + CHAT_FRAME_EXTRA) {
        fprintf(stderr, "tcp_server: --max-queue must hold at least one frame (%zu bytes)\n",
                cfg->max_frame + CHAT_FRAME_EXTRA);
        exit(2);
    }
}

/* Signals: SIGINT/SIGTERM through a signalfd, SIGUSR1 blocked (tcp_threads.c unblocks it
 * inside its ppoll), SIGPIPE ignored. Every thread inherits the mask. Dies on failure
 * (start-up only). */
static int setup_signals(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    if (sigaction(SIGPIPE, &ign, NULL) < 0 || pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("tcp_server: signals");
        exit(1);
    }
    sigdelset(&set, SIGUSR1);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("tcp_server: signalfd");
        exit(1);
    }
    return sfd;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv, &tcp_srv.cfg);
    /* --cpus: on the process before any thread starts, so that every thread inherits it */
    if (tcp_srv.cfg.pin && sched_setaffinity(0, sizeof(tcp_srv.cfg.cpus), &tcp_srv.cfg.cpus) < 0) {
        perror("tcp_server: sched_setaffinity (--cpus)");
        return 1;
    }
    int sfd = setup_signals();
    long nofile = 0;
    int rc = net_raise_nofile(&nofile);
    if (rc < 0) /* not fatal: the limit we have may be enough */
        fprintf(stderr, "tcp_server: cannot raise the open-file limit: %s\n", strerror(-rc));
    int lfd;
    rc = net_listen_tcp(tcp_srv.cfg.host, tcp_srv.cfg.port, 4096, &lfd);
    if (rc < 0) {
        if (rc == -EINVAL)
            fprintf(stderr, "tcp_server: --host %s: not an IPv4 address or known host name\n",
                    tcp_srv.cfg.host);
        else
            fprintf(stderr, "tcp_server: cannot listen on %s:%u: %s (port in use? try --port 0)\n",
                    tcp_srv.cfg.host, (unsigned)tcp_srv.cfg.port, strerror(-rc));
        return rc == -EINVAL ? 2 : 1;
    }
    uint16_t port = tcp_srv.cfg.port;
    if (net_local_port(lfd, &port) < 0 || net_set_nonblock(lfd, 1) < 0) {
        perror("tcp_server: listening socket");
        return 1;
    }
    tcp_srv.io = tcp_srv.cfg.io == TCP_IO_EPOLL ? tcp_io_epoll : tcp_io_threads;
    if ((rc = chat_server_init(&tcp_srv.chat, (size_t)tcp_srv.cfg.max_clients)) < 0) {
        fprintf(stderr, "tcp_server: start-up: %s\n", strerror(-rc));
        return 1;
    }
    tcp_srv.chat.idle_s = (unsigned)tcp_srv.cfg.idle_timeout_s;
    if ((rc = tcp_srv.io->start()) < 0) {
        fprintf(stderr, "tcp_server: start-up: %s\n", strerror(-rc));
        return 1;
    }

    if (log_start(STDOUT_FILENO, 0) < 0) /* not fatal: lines are then written directly */
        fprintf(stderr, "tcp_server: no log writer thread; logging directly\n");
    log_line("INFO", "Servidor TCP iniciado na porta %u", (unsigned)port);
    if (nofile > 0 && nofile < tcp_srv.cfg.max_clients + 16)
        log_line("WARN", "Limite de arquivos abertos (%ld) menor que --max-clients (%ld)", nofile,
                 tcp_srv.cfg.max_clients);
    log_line("INFO", "Aguardando conexões...");

    int sig = serve(lfd, sfd);
    log_line("INFO", "Sinal %s recebido: encerrando", sig == SIGINT ? "SIGINT" : "SIGTERM");
    close(lfd); /* new connections are refused from here on */
    atomic_store(&tcp_srv.stopping, true);
    tcp_srv.io->stop();

    chat_server_destroy(&tcp_srv.chat);
    close(sfd);
    log_line("INFO",
             "Estatísticas: %lu conexões, %lu mensagens, %lu consumidores lentos, "
             "%lu ociosos, %lu recusadas",
             atomic_load(&tcp_srv.stat_conns), atomic_load(&tcp_srv.stat_chat),
             atomic_load(&tcp_srv.stat_slow), atomic_load(&tcp_srv.stat_idle),
             atomic_load(&tcp_srv.stat_refused));
    log_line("INFO", "Servidor encerrado");
    (void)log_stop(); /* bounded: a stdout nobody reads loses the rest, it cannot hold the exit */
    return 0;
}
