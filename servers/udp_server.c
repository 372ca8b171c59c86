/* udp_server: the UDP chat server. main() reads options, binds one socket and runs three
 * threads (receiver, sender, keep-alive) until SIGINT/SIGTERM; udp_handle.c handles each
 * datagram and the chat core (chat.c) the chat.
 * --hybrid adds a TCP control listener and its threads (udp_hybrid.c). */
#include "udp_server.h"

#include "clock.h"
#include "cpus.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CHATBENCH_VERSION /* the Makefile defines it; lint runs without */
#define CHATBENCH_VERSION "unknown"
#endif

#define UDP_BATCH 64                  /* datagrams per recvmmsg/sendmmsg call */
#define UDP_SOCKBUF (4 * 1024 * 1024) /* SO_RCVBUF/SO_SNDBUF: 10,000 clients share them */
#define UDP_QUEUE_BYTES (8u << 20)    /* outbound payload ring */
#define UDP_QUEUE_MIN_ENTRIES 262144u /* outbound datagrams in flight */
/* a receive slot: larger than any acceptable datagram, so MSG_TRUNC tells a too long one */
#define UDP_SLOT(s) ((s)->cfg.max_frame + 64)

/* --- options --- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udp_server [options]\n"
            "UDP chat server (one frame per datagram, see PROTOCOL.md).\n"
            "\n"
            "  --host ADDR         address to bind (default 127.0.0.1)\n"
            "  --port N            UDP port (default 5001; 0 picks a free one)\n"
            "  --timeout S         forget clients silent for S seconds (default 30; hybrid:\n"
            "                      TCP keep-alive idle time of the control connections)\n"
            "  --idle-timeout S    drop a registered client that sends nothing but PING (and\n"
            "                      empty keep-alives) for S seconds: LEFT <id> <room> idle\n"
            "                      (default 0: never; hybrid too)\n"
            "  --max-clients N     refuse HELLO beyond N clients (default 10000)\n"
            "  --max-frame B       longest frame in bytes, %d..%d (default %d)\n"
            "  --cpus LIST         run the server's threads on these CPUs only, taskset -c\n"
            "                      syntax: 0, 0-1, 0,2-3 (default: any CPU)\n"
            "  --hybrid            hybrid mode: HELLO/WHO/JOIN/BYE over a TCP control\n"
            "                      connection, chat over UDP with the session token\n"
            "                      (PROTOCOL.md, \"Hybrid mode\")\n"
            "  --control-port N    hybrid: TCP control port (default 5002; 0 picks a free one)\n"
            "  --hello-timeout S   hybrid: seconds a control connection has to say HELLO\n"
            "                      (default 10)\n"
            "  -q, --quiet         no [MESSAGE] line per chat message\n"
            "  -h, --help          this help\n"
            "  -V, --version       print the version\n",
            PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT, PROTO_MAX_FRAME_DEFAULT);
}

static void bad_option(const char *what, const char *arg)
{
    fprintf(stderr, "udp_server: %s '%s'\nTry 'udp_server --help'.\n", what, arg);
    exit(2);
}

/* A whole decimal number in [lo, hi], or exit 2 naming the option. */
static unsigned long number(const char *opt, const char *arg, unsigned long lo, unsigned long hi)
{
    uint64_t v;
    if (parse_u64(arg, lo, hi, &v) < 0) {
        fprintf(stderr, "udp_server: %s must be a number from %lu to %lu, not '%s'\n", opt, lo, hi,
                arg);
        fprintf(stderr, "Try 'udp_server --help'.\n");
        exit(2);
    }
    return v;
}

static void parse_options(int argc, char **argv, struct udp_config *cfg)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_TIMEOUT,
        OPT_MAX_CLIENTS,
        OPT_MAX_FRAME,
        OPT_HYBRID,
        OPT_CONTROL_PORT,
        OPT_HELLO_TIMEOUT,
        OPT_IDLE_TIMEOUT,
        OPT_CPUS
    };
    static const struct option opts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"hybrid", no_argument, NULL, OPT_HYBRID},
        {"control-port", required_argument, NULL, OPT_CONTROL_PORT},
        {"hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *cfg = (struct udp_config){.host = "127.0.0.1",
                               .port = 5001,
                               .timeout_s = 30,
                               .max_clients = 10000,
                               .max_frame = PROTO_MAX_FRAME_DEFAULT,
                               .control_port = 5002,
                               .hello_timeout_s = 10};
    bool control_port_set = false;
    opterr = 0;
    int ch, rc;
    while ((ch = getopt_long(argc, argv, ":qhV", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_HOST:
            cfg->host = optarg;
            break;
        case OPT_PORT:
            cfg->port = (uint16_t)number("--port", optarg, 0, 65535);
            break;
        case OPT_TIMEOUT:
            cfg->timeout_s = (unsigned)number("--timeout", optarg, 1, 86400);
            break;
        case OPT_MAX_CLIENTS:
            cfg->max_clients = number("--max-clients", optarg, 1, 1000000);
            break;
        case OPT_MAX_FRAME:
            cfg->max_frame = number("--max-frame", optarg, PROTO_MIN_FRAME, PROTO_MAX_FRAME_LIMIT);
            break;
        case OPT_HYBRID:
            cfg->hybrid = true;
            break;
        case OPT_CONTROL_PORT:
            cfg->control_port = (uint16_t)number("--control-port", optarg, 0, 65535);
            control_port_set = true;
            break;
        case OPT_HELLO_TIMEOUT:
            cfg->hello_timeout_s = (unsigned)number("--hello-timeout", optarg, 1, 3600);
            control_port_set = true; /* hybrid only, like --control-port */
            break;
        case OPT_CPUS:
            if ((rc = cpus_parse_allowed(optarg, &cfg->cpus)) < 0) {
                fprintf(stderr, "udp_server: --cpus '%s': %s\nTry 'udp_server --help'.\n", optarg,
                        cpus_why(rc));
                exit(2);
            }
            cfg->pin = true;
            break;
        case OPT_IDLE_TIMEOUT:
            cfg->idle_timeout_s = (unsigned)number("--idle-timeout", optarg, 0, 86400);
            break;
        case 'q':
            cfg->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("udp_server %s\n", CHATBENCH_VERSION);
            exit(0);
        case ':':
            bad_option("missing value for option", argv[optind - 1]);
            break;
        default:
            bad_option("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_option("unexpected argument", argv[optind]);
    if (control_port_set && !cfg->hybrid) {
        fprintf(stderr, "udp_server: --control-port and --hello-timeout need --hybrid\n"
                        "Try 'udp_server --help'.\n");
        exit(2);
    }
}

/* --- threads --- */

/* Waits until fd is readable or shutdown begins; returns false on shutdown. */
static bool wait_readable(struct udp_server *s, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, 2, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_line("ERROR", "poll falhou: %s", strerror(errno));
            return false;
        }
        return !(p[1].revents & POLLIN) && !atomic_load(&s->stopping);
    }
}

static void *receiver_main(void *arg)
{
    struct udp_server *s = arg;
    struct udp_ctx *cx = &s->rx_ctx;
    char *bufs = s->rx_bufs;
    size_t slot = UDP_SLOT(s);
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_in from[UDP_BATCH];

    while (wait_readable(s, -1)) {
        /* drain the socket before polling again; check for shutdown between batches */
        while (!atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
            for (int i = 0; i < UDP_BATCH; i++) {
                iov[i] = (struct iovec){.iov_base = bufs + (size_t)i * slot, .iov_len = slot};
                msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                                  .msg_namelen = sizeof(from[i]),
                                                  .msg_iov = &iov[i],
                                                  .msg_iovlen = 1};
            }
            int n = recvmmsg(s->fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    log_line("ERROR", "recvmmsg falhou: %s", strerror(errno));
                break;
            }
            for (int i = 0; i < n; i++) {
                if (msgs[i].msg_hdr.msg_namelen != sizeof(from[i]) || from[i].sin_family != AF_INET)
                    continue; /* not an IPv4 peer we could answer */
                udp_handle_datagram(cx, &from[i], iov[i].iov_base, msgs[i].msg_len,
                                    (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
            }
            /* one wake-up of the sender for the whole batch's replies, not one per reply */
            udp_outq_kick(&s->outq);
            if (n < UDP_BATCH)
                break;
        }
    }
    return NULL;
}

static void *sender_main(void *arg)
{
    struct udp_server *s = arg;
    struct udp_outq_ent ents[UDP_BATCH];
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    size_t k;
    while ((k = udp_outq_take(&s->outq, ents, UDP_BATCH)) > 0) {
        for (size_t i = 0; i < k; i++) {
            iov[i] = (struct iovec){.iov_base = s->outq.data + ents[i].off, .iov_len = ents[i].len};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &ents[i].to,
                                              .msg_namelen = sizeof(ents[i].to),
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1};
            s->bytes_out += ents[i].len;
            if (ents[i].len > 0 && (unsigned char)s->outq.data[ents[i].off] == PROTO_ZMARK) {
                s->zdgrams_out++;
                s->zbytes_out += ents[i].len;
            }
        }
        size_t sent = 0;
        while (sent < k) {
            int n = sendmmsg(s->fd, msgs + sent, (unsigned)(k - sent), 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                /* one datagram failed (EPERM, ENOBUFS...): count it, go on with the rest */
                s->send_errors++;
                sent++;
                continue;
            }
            s->dgrams_out += (uint64_t)n;
            sent += (size_t)n;
        }
        udp_outq_release(&s->outq, ents, k);
    }
    return NULL;
}

static void *keepalive_main(void *arg)
{
    struct udp_server *s = arg;
    uint64_t next = clock_now_ms() + 1000;
    uint64_t reported = 0; /* drops already logged */
    for (;;) {
        uint64_t now = clock_now_ms();
        if (now < next) {
            struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
            int n = poll(&p, 1, (int)(next - now));
            if (n < 0 && errno != EINTR) {
                log_line("ERROR", "poll falhou: %s", strerror(errno));
                break;
            }
            if (n > 0 || atomic_load(&s->stopping))
                break;
            continue;
        }
        next = now + 1000;
        udp_expire(&s->ka_ctx, now);
        /* drops are normal for UDP but should not go unnoticed: one line per second at most */
        uint64_t dropped = udp_outq_dropped(&s->outq);
        if (dropped > reported) {
            log_line("WARN", "Fila de saída cheia: %llu datagramas descartados no último segundo",
                     (unsigned long long)(dropped - reported));
            reported = dropped;
        }
    }
    return NULL;
}

/* --- start-up and shutdown --- */

static void setup_socket(struct udp_server *s)
{
    int rc = net_bind_udp(s->cfg.host, s->cfg.port, &s->fd);
    if (rc < 0) {
        fprintf(stderr, "udp_server: cannot bind %s:%u: %s\n", s->cfg.host, (unsigned)s->cfg.port,
                rc == -EINVAL ? "not an IPv4 address or host name" : strerror(-rc));
        if (rc == -EADDRINUSE)
            fprintf(stderr, "Another server may be running; try --port 0 or another port.\n");
        exit(1);
    }
    /* best effort: a smaller buffer only drops sooner under a burst */
    (void)net_set_sockbuf(s->fd, 1, UDP_SOCKBUF);
    (void)net_set_sockbuf(s->fd, 0, UDP_SOCKBUF);
    if (net_local_port(s->fd, &s->cfg.port) < 0) {
        fprintf(stderr, "udp_server: getsockname: %s\n", strerror(errno));
        exit(1);
    }
}

static void die_errno(const char *what, int err)
{
    fprintf(stderr, "udp_server: %s: %s\n", what, strerror(err));
    exit(1);
}

/* Hybrid mode: the TCP control listener, its locks and its shared context. */
static void setup_control(struct udp_server *s)
{
    s->ctl_fd = -1;
    if (!s->cfg.hybrid)
        return;
    long nofile = 0; /* one descriptor per control connection */
    int rc = net_raise_nofile(&nofile);
    if (rc < 0) /* not fatal: the limit we have may be enough */
        fprintf(stderr, "udp_server: cannot raise the open-file limit: %s\n", strerror(-rc));
    rc = net_listen_tcp(s->cfg.host, s->cfg.control_port, 1024, &s->ctl_fd);
    if (rc < 0) {
        fprintf(stderr, "udp_server: cannot listen on %s:%u (control): %s\n", s->cfg.host,
                (unsigned)s->cfg.control_port,
                rc == -EINVAL ? "not an IPv4 address or host name" : strerror(-rc));
        if (rc == -EADDRINUSE)
            fprintf(stderr, "Another server may be running; try --control-port 0.\n");
        exit(1);
    }
    if (net_local_port(s->ctl_fd, &s->cfg.control_port) < 0)
        die_errno("getsockname", errno);
    if ((rc = pthread_mutex_init(&s->ctl_lock, NULL)) != 0 ||
        (rc = pthread_mutex_init(&s->ctls_lock, NULL)) != 0 ||
        (rc = pthread_cond_init(&s->ctls_gone, NULL)) != 0)
        die_errno("pthread_mutex_init", rc);
    if ((rc = udp_ctx_init(&s->ctl_ctx, s, &udp_ctl_transport)) < 0)
        die_errno("thread buffers", -rc);
}

int main(int argc, char **argv)
{
    static struct udp_server srv; /* static: the struct is large and lives as long as main */
    struct udp_server *s = &srv;
    parse_options(argc, argv, &s->cfg);
    log_set_quiet(s->cfg.quiet);
    /* --cpus: on the process before any thread starts, so that every thread inherits it */
    if (s->cfg.pin && sched_setaffinity(0, sizeof(s->cfg.cpus), &s->cfg.cpus) < 0)
        die_errno("sched_setaffinity (--cpus)", errno);

    /* Workers inherit this mask: only the main thread takes SIGINT/SIGTERM (sigwait). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int rc = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (rc != 0)
        die_errno("pthread_sigmask", rc);
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die_errno("signal", errno);

    setup_socket(s);
    setup_control(s);
    s->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (s->wake_fd < 0)
        die_errno("eventfd", errno);
    if ((rc = chat_server_init(&s->chat, s->cfg.max_clients)) < 0)
        die_errno("chat lock", -rc);
    s->chat.idle_s = s->cfg.idle_timeout_s;
    size_t ents = s->cfg.max_clients * 8 > UDP_QUEUE_MIN_ENTRIES ? s->cfg.max_clients * 8
                                                                 : UDP_QUEUE_MIN_ENTRIES;
    /* the payload ring must hold at least a few maximal datagrams */
    size_t bytes = UDP_QUEUE_BYTES > 16 * zframe_bound(s->cfg.max_frame + CHAT_FRAME_EXTRA)
                       ? UDP_QUEUE_BYTES
                       : 16 * zframe_bound(s->cfg.max_frame + CHAT_FRAME_EXTRA);
    if ((rc = udp_outq_init(&s->outq, bytes, ents)) < 0)
        die_errno("outbound queue", -rc);
    /* per-thread storage, allocated here so that a failure stops start-up, not a thread */
    const struct chat_transport *dg = &udp_dgram_transport;
    if ((rc = udp_ctx_init(&s->rx_ctx, s, dg)) < 0 || (rc = udp_ctx_init(&s->ka_ctx, s, dg)) < 0 ||
        (rc = udp_ctx_init(&s->main_ctx, s, dg)) < 0)
        die_errno("thread buffers", -rc);
    s->rx_ctx.batch = true; /* receiver_main kicks the sender after each recvmmsg */
    if ((s->rx_bufs = malloc(UDP_SLOT(s) * UDP_BATCH)) == NULL)
        die_errno("receive buffers", ENOMEM);
    udp_guard_init(&s->guard, clock_now_ns());

    pthread_t recv_t, send_t, keep_t;
    if ((rc = pthread_create(&send_t, NULL, sender_main, s)) != 0 ||
        (rc = pthread_create(&recv_t, NULL, receiver_main, s)) != 0 ||
        (rc = pthread_create(&keep_t, NULL, keepalive_main, s)) != 0)
        die_errno("pthread_create", rc);
    pthread_t ctl_t;
    memset(&ctl_t, 0, sizeof(ctl_t)); /* used only in hybrid mode; set for the analyzers */
    if (s->cfg.hybrid && (rc = udp_hybrid_start(s, &ctl_t)) < 0)
        die_errno("pthread_create", -rc);

    if (log_start(STDOUT_FILENO, 0) < 0) /* not fatal: lines are then written directly */
        fprintf(stderr, "udp_server: no log writer thread; logging directly\n");
    log_line("INFO", "Servidor UDP iniciado na porta %u", (unsigned)s->cfg.port);
    if (s->cfg.hybrid)
        log_line("INFO", "Modo híbrido: controle TCP na porta %u", (unsigned)s->cfg.control_port);
    log_line("INFO", "Aguardando mensagens...");

    int sig;
    while ((rc = sigwait(&sigs, &sig)) != 0) {
        if (rc != EINTR)
            die_errno("sigwait", rc);
    }
    log_line("INFO", "Sinal %s recebido, encerrando...", sig == SIGINT ? "SIGINT" : "SIGTERM");

    /* Stop taking datagrams, then say goodbye, then let the sender drain the queue. */
    atomic_store(&s->stopping, true);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
        log_line("ERROR", "eventfd: %s", strerror(errno)); /* threads still see stopping */
    pthread_join(recv_t, NULL);
    pthread_join(keep_t, NULL);

    size_t told = s->cfg.hybrid ? udp_hybrid_stop(s, ctl_t) : 0;
    told += udp_farewell(&s->main_ctx);
    udp_outq_stop(&s->outq);
    pthread_join(send_t, NULL);

    log_line("INFO", "BYE shutdown enviado a %zu clientes", told);
    log_line("INFO",
             "Recebidos: %llu datagramas, %llu bytes (%llu comprimidos, %llu bytes), "
             "%llu recusados",
             (unsigned long long)s->dgrams_in, (unsigned long long)s->bytes_in,
             (unsigned long long)s->zdgrams_in, (unsigned long long)s->zbytes_in,
             (unsigned long long)s->rejected_in);
    log_line("INFO",
             "Enviados: %llu datagramas, %llu bytes (%llu comprimidos, %llu bytes), "
             "%llu erros de envio",
             (unsigned long long)s->dgrams_out, (unsigned long long)s->bytes_out,
             (unsigned long long)s->zdgrams_out, (unsigned long long)s->zbytes_out,
             (unsigned long long)s->send_errors);
    log_line("INFO",
             "Descartados por fila cheia: %llu; removidos por inatividade: %llu, por "
             "ociosidade: %llu",
             (unsigned long long)udp_outq_dropped(&s->outq),
             (unsigned long long)atomic_load(&s->timeouts),
             (unsigned long long)atomic_load(&s->idles));
    log_line("INFO",
             "Respostas a endereços não registrados: %llu enviadas, %llu bytes; suprimidas: "
             "%llu maiores que o datagrama recebido, %llu pelo limite de taxa",
             (unsigned long long)s->guard.sent, (unsigned long long)s->guard.sent_bytes,
             (unsigned long long)s->guard.too_big, (unsigned long long)s->guard.over_rate);
    if (s->cfg.hybrid)
        log_line("INFO", "Recusados por token ausente ou inválido: %llu",
                 (unsigned long long)s->token_refused);

    udp_ctx_destroy(&s->rx_ctx);
    udp_ctx_destroy(&s->ka_ctx);
    udp_ctx_destroy(&s->main_ctx);
    if (s->cfg.hybrid) {
        udp_ctx_destroy(&s->ctl_ctx);
        pthread_mutex_destroy(&s->ctl_lock);
        pthread_mutex_destroy(&s->ctls_lock);
        pthread_cond_destroy(&s->ctls_gone);
    }
    free(s->rx_bufs);
    udp_outq_destroy(&s->outq);
    chat_server_destroy(&s->chat);
    close(s->wake_fd);
    close(s->fd);
    log_line("INFO", "Servidor encerrado");
    (void)log_stop(); /* bounded: a stdout nobody reads loses the rest, it cannot hold the exit */
    return 0;
}
