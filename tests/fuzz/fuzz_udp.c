/* fuzz_udp: udp_server's datagram path driven without sockets (libFuzzer).
 *
 * udp_handle.c already has a socket-free entry point, udp_handle_datagram(), which the
 * receiver thread calls for each datagram and which hands frames to the chat core (chat.c);
 * replies go to the outbound queue (udp_outq),
 * which this harness drains in place of the sender thread. Datagrams come from four
 * addresses, plain or compressed (a valid zlib stream made here, so the fuzzer reaches
 * the inflated frame; raw 0xFF bytes test inflation of anything), whole or truncated as
 * recvmmsg's MSG_TRUNC reports them. The keep-alive's udp_expire() runs on request, and
 * udp_farewell() ends every input as shutdown does.
 *
 * Checks: every queued datagram is a frame a client can parse (after inflating it when
 * compressed) and within the reply size; nothing sent to an address that had not
 * registered is larger than the datagram it answered (PROTOCOL.md, "Reflection"); log
 * lines are whole and escaped; the client table and its rooms are empty after farewell;
 * and ASan/UBSan/LSan watch every access, leak and inflation (zlib bombs, truncated and
 * corrupt streams).
 *
 * Input: byte 0 picks --max-frame, --max-clients, -q and --idle-timeout; then records:
 *   op: bits 0-1 source address, bit 2 compress the payload, bit 3 truncated,
 *       bits 4-5 both set: run the keep-alive 31 s later instead (no payload),
 *       bit 6: a 2-byte little-endian length follows instead of 1 byte;
 *   len, payload. */
#include "../../servers/udp_server.h"

#include "clock.h"
#include "fuzz_util.h"
#include "log.h"

#include <errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_ADDRS 4
#define FZ_MAXES 4

static struct udp_server srv;
static struct udp_ctx ctxs[FZ_MAXES]; /* one per --max-frame choice: zlib state is costly */
static struct zframe checker;         /* inflates the replies, as a client would */
static char *reply;                   /* an inflated reply */
static int log_fd = -1;
static const size_t maxes[FZ_MAXES] = {PROTO_MIN_FRAME, 200, PROTO_MAX_FRAME_DEFAULT, 16384};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_fd = fz_log_capture();
    FZ_CHECK(chat_server_init(&srv.chat, FZ_ADDRS) == 0);
    /* as main() sizes it, for the largest max-frame used here */
    FZ_CHECK(udp_outq_init(&srv.outq, 16 * zframe_bound(16384 + CHAT_FRAME_EXTRA), 4096) == 0);
    srv.fd = srv.wake_fd = -1;
    srv.cfg.max_clients = FZ_ADDRS; /* sizes the recipient lists: the most any input uses */
    for (int i = 0; i < FZ_MAXES; i++) {
        srv.cfg.max_frame = maxes[i];
        FZ_CHECK(udp_ctx_init(&ctxs[i], &srv, &udp_dgram_transport) == 0);
    }
    FZ_CHECK(zframe_init(&checker, NULL) == 0);
    reply = malloc(16384 + CHAT_FRAME_EXTRA);
    FZ_CHECK(reply != NULL);
    return 0;
}

/* The sender thread's part: take every queued datagram and check it. Datagrams to
 * stranger (NULL: none) are at most budget bytes. */
static void drain(const struct sockaddr_in *stranger, size_t budget)
{
    struct udp_outq_ent ents[64];
    size_t limit = srv.cfg.max_frame + CHAT_FRAME_EXTRA;
    while (srv.outq.ent_count > 0) {
        size_t k = udp_outq_take(&srv.outq, ents, 64);
        for (size_t i = 0; i < k; i++) {
            const char *d = srv.outq.data + ents[i].off;
            size_t len = ents[i].len;
            FZ_CHECK(len > 0);
            if (stranger != NULL && ents[i].to.sin_port == stranger->sin_port &&
                ents[i].to.sin_addr.s_addr == stranger->sin_addr.s_addr && len > budget) {
                fprintf(stderr, "a reply of %zu bytes to a %zu-byte datagram from a stranger\n",
                        len, budget);
                abort();
            }
            if ((unsigned char)d[0] == PROTO_ZMARK) {
                int n = zframe_decompress(&checker, d, len, reply, limit);
                FZ_CHECK(n > 0);
                d = reply;
                len = (size_t)n;
            } else {
                FZ_CHECK(d[len - 1] == '\n'); /* plain replies end with LF, for nc */
                len--;
            }
            FZ_CHECK(len <= limit);
            struct proto_frame f;
            if (proto_parse_server(d, len, &f) != PROTO_OK) {
                fprintf(stderr, "unparsable datagram from the server: \"%.*s\"\n", (int)len, d);
                abort();
            }
        }
        udp_outq_release(&srv.outq, ents, k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    unsigned cfg = fz_byte(&in);
    struct udp_ctx *cx = &ctxs[cfg & 3];
    srv.cfg.max_frame = maxes[cfg & 3];
    srv.cfg.max_clients = 1 + ((cfg >> 2) & 3); /* 1..4 for 4 addresses: server_full too */
    srv.chat.max_clients = srv.cfg.max_clients;
    srv.cfg.timeout_s = 30;
    srv.cfg.idle_timeout_s = (cfg & 0x20) ? 20 : 0; /* the keep-alive op expires idlers too */
    srv.chat.idle_s = srv.cfg.idle_timeout_s;
    log_set_quiet((cfg & 0x10) != 0);
    udp_guard_init(&srv.guard, clock_now_ns()); /* a full bucket for every input */
    size_t slot = srv.cfg.max_frame + 64;       /* the receiver's buffer per datagram */
    char *buf = malloc(slot);
    char *zbuf = malloc(zframe_bound(65536));
    FZ_CHECK(buf != NULL && zbuf != NULL);

    while (in.left > 0) {
        unsigned op = fz_byte(&in);
        if ((op & 0x30) == 0x30) {
            udp_expire(cx, clock_now_ms() + 31000);
            drain(NULL, 0);
            fz_log_check(log_fd);
            continue;
        }
        size_t want = fz_byte(&in);
        if (op & 0x40)
            want |= (size_t)fz_byte(&in) << 8;
        size_t len;
        const char *payload = fz_bytes(&in, want, &len);
        if (op & 4) { /* a valid compressed datagram holding the payload */
            int zl = zframe_compress(&cx->z, payload, len, zbuf, zframe_bound(65536));
            FZ_CHECK(zl > 0);
            payload = zbuf;
            len = (size_t)zl;
        }
        bool truncated = (op & 8) != 0;
        if (len > slot) { /* recvmmsg fills the slot and sets MSG_TRUNC */
            len = slot;
            truncated = true;
        }
        memcpy(buf, payload, len);
        struct sockaddr_in from = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)(40000 + (op & 3))),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool stranger = udp_find_addr(&srv, &from) == NULL;
        udp_handle_datagram(cx, &from, buf, len, truncated);
        drain(stranger ? &from : NULL, len);
        fz_log_check(log_fd);
    }

    udp_farewell(cx);
    drain(NULL, 0);
    const struct registry *reg = &srv.chat.reg;
    FZ_CHECK(reg->count == 0 && reg->by_id == NULL && reg->rooms == NULL);
    FZ_CHECK(srv.by_addr == NULL && srv.lru == NULL && srv.idle == NULL);
    fz_log_check(log_fd);
    free(buf);
    free(zbuf);
    return 0;
}
