/* hybrid: the load generator's transport for udp_server --hybrid (see transport.h): a TCP
 * control connection per client (HELLO -> WELCOME with a session token), then chat over a
 * connected UDP socket, each datagram "<token> <frame>". The set-up ends when the data path
 * answers: "<token> PING" -> PONG. */
#include <sys/socket.h>

#include "client.h"
#include "net.h"
#include "transport.h"
#include "worker.h"

/* One datagram "<token> <frame>" on the data path (two iovecs, no copy). */
static struct lg_tx data_send(struct lg_worker *w, struct lg_client *c, char *buf, size_t len)
{
    struct iovec iov[2] = {{c->token, sizeof(c->token)}, {buf, len}};
    return lg_udp_sendv(w, c, c->ufd, iov, 2, sizeof(c->token) + len);
}

static void send_ping(struct lg_worker *w, struct lg_client *c)
{
    char ping[] = "PING lg";
    (void)data_send(w, c, ping, sizeof(ping) - 1); /* lost: the retry sends it again */
}

static void data_io(evutil_socket_t fd, short what, void *arg)
{
    struct lg_client *c = arg;
    if (what & EV_READ)
        lg_udp_read(c->w, c, (int)fd);
}

/* WELCOME <id> <ip>:<port> <token> <udp_port> on the control connection: opens the data
 * path and sends the PING that binds it. */
static void hybrid_welcome(struct lg_worker *w, struct lg_client *c, const struct proto_frame *f,
                           uint64_t now)
{
    struct sockaddr_in sa;
    if (!f->has_token || net_resolve(w->cfg->host, f->udp_port, &sa) < 0) {
        w->st.errors++;
        lg_client_fail(w, c); /* not a hybrid server */
        return;
    }
    proto_token_prefix(f->token, c->token);
    c->ufd = lg_udp_socket(w, c, &sa);
    if (c->ufd < 0 ||
        (c->uev = event_new(w->base, c->ufd, EV_READ | EV_PERSIST, data_io, c)) == NULL ||
        event_add(c->uev, NULL) < 0) {
        lg_client_fail(w, c);
        return;
    }
    c->state = LG_JOINING; /* waiting for the PONG over UDP */
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    send_ping(w, c);
}

/* The data path works: the set-up is over. */
static void hybrid_pong(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    lg_meter_record(&w->meter, LG_CONNECT, now - c->launch_ns);
    lg_client_ready(w, c);
}

/* The binding PING or its PONG was lost (a lost HELLO cannot be: it went over TCP). */
static void hybrid_retry(struct lg_worker *w, struct lg_client *c, uint64_t now)
{
    if (c->state != LG_JOINING)
        return;
    c->retry_ns = now + LG_HELLO_RETRY_NS;
    send_ping(w, c);
}

static void hybrid_close(struct lg_client *c)
{
    lg_tcp_close(c);
    lg_sock_close(&c->ufd, &c->uev);
}

const struct lg_transport lg_hybrid = {
    .name = "hybrid",
    .upper = "hybrid",
    .default_port = 5002,
    .datagrams = true,
    .connectionless = false,
    .compress = false,
    .launch = lg_tcp_launch,
    .send_ctl = lg_tcp_send_line,
    .send_msg = data_send,
    .welcome = hybrid_welcome,
    .pong = hybrid_pong,
    .retry = hybrid_retry,
    .close = hybrid_close,
};
