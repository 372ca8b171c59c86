/* udp_guard: what udp_server sends to addresses that have not registered (PROTOCOL.md,
 * "Reflection"). Anyone can forge a datagram's source address, so an answer to an
 * unregistered address may land on a victim who never asked: a server that answers a
 * 1-byte datagram with a 57-byte ERR is a 57x amplifier, the DNS/NTP/memcached reflection
 * pattern. QUIC (RFC 9000, 8.1) allows three times the bytes received before an address is
 * validated; a chat has no reason for more than one, so:
 *   - no reply is larger than the datagram it answers (bytes on the wire, compressed or
 *     not): an ERR that does not fit goes as its short form, "ERR <code>", or not at all;
 *     a WELCOME that does not fit is not sent and the HELLO does not register ("ERR pad"
 *     instead, if even that fits): clients pad their HELLO (PROTO_HELLO_PAD);
 *   - all of these replies together stay within a token bucket of UDP_GUARD_RATE bytes a
 *     second (UDP_GUARD_BURST at once), so a flood from many forged addresses reflects a
 *     bounded volume whatever its size; a HELLO the bucket cannot answer does not register.
 * Suppressed replies are counted (shutdown statistics), and the bucket's in a [WARN] at
 * most once a second. Only the receiver thread answers unregistered addresses, so the
 * bucket and the counters need no lock. */
#include "udp_server.h"

#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <string.h>

void udp_guard_init(struct udp_guard *g, uint64_t now_ns)
{
    memset(g, 0, sizeof(*g));
    bucket_init(&g->bucket, UDP_GUARD_RATE, UDP_GUARD_BURST, now_ns);
}

/* The bucket is empty: a flood, most likely from forged addresses. Counted; said at once,
 * then once a second at most (a log line per datagram would be a flood of its own). */
static void over_rate(struct udp_guard *g)
{
    uint64_t now = clock_now_ms();
    g->over_rate++;
    g->unwarned++;
    if (g->warned_ms == 0 || now >= g->warned_ms + 1000) {
        log_line("WARN",
                 "Limite de respostas a endereços não registrados (%u KiB/s): %" PRIu64
                 " respostas suprimidas",
                 UDP_GUARD_RATE / 1024, g->unwarned);
        g->warned_ms = now;
        g->unwarned = 0;
    }
}

/* "ERR <code> <text>" cut to "ERR <code>" in place: its length, or 0 for any other frame. */
static size_t short_err(const char *frame, size_t len)
{
    if (len < 5 || memcmp(frame, "ERR ", 4) != 0)
        return 0;
    const char *sp = memchr(frame + 4, ' ', len - 4);
    return sp != NULL ? (size_t)(sp - frame) : 0;
}

bool udp_guard_reply(struct udp_ctx *cx, size_t len, bool zip, const struct sockaddr_in *to,
                     size_t budget)
{
    struct udp_guard *g = &cx->s->guard;
    const char *wire;
    size_t n = udp_form(cx, len, zip, &wire);
    size_t cut;
    if (n > budget && (cut = short_err(cx->chat.out, len)) > 0)
        n = udp_form(cx, cut, zip, &wire);
    if (n > budget) {
        g->too_big++;
        return false;
    }
    if (!bucket_take(&g->bucket, n, clock_now_ns())) {
        over_rate(g);
        return false;
    }
    g->sent++;
    g->sent_bytes += n;
    udp_queue(cx, wire, n, to, 1, UDP_OUTQ_REPLY);
    return true;
}

bool udp_guard_hello(struct udp_ctx *cx, const struct proto_frame *f, const struct sockaddr_in *to,
                     bool zip, size_t budget)
{
    struct udp_guard *g = &cx->s->guard;
    struct chat_ctx *ch = &cx->chat;
    char id[PROTO_ID_MAX + 1], addr[NET_ADDRSTRLEN];
    memcpy(id, f->id, f->id_len);
    id[f->id_len] = '\0';
    int len = proto_fmt_welcome(ch->out, ch->out_cap - 1, id, net_addr_str(to, addr));
    const char *wire;
    size_t n = len < 0 ? SIZE_MAX : udp_form(cx, (size_t)len, zip, &wire);
    if (n > budget) { /* too short for its WELCOME: say so if even that fits */
        len = proto_fmt_err_code(ch->out, ch->out_cap - 1, PROTO_E_PAD);
        if (len > 0)
            (void)udp_guard_reply(cx, (size_t)len, zip, to, budget);
        return false;
    }
    /* the WELCOME itself takes the bytes when it goes (udp_guard_reply) */
    if (!bucket_has(&g->bucket, n, clock_now_ns())) {
        over_rate(g);
        return false;
    }
    return true;
}
