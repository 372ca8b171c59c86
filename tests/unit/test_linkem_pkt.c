/* test_linkem_pkt: bin/linkem's reading of IP headers (impair/linkem_pkt.c): what the log says
 * about a packet, and the flow that reordering is judged in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../impair/linkem.h"

#include <string.h>

/* An IPv4 packet 10.77.0.2 -> 10.77.0.1 of protocol proto, transport header th[0..thl) and
 * payload; returns its length. frag: the flags/offset field. */
static size_t ip4(unsigned char *p, uint8_t proto, const unsigned char *th, size_t thl,
                  const char *payload, uint16_t frag)
{
    size_t pl = strlen(payload), len = 20 + thl + pl;
    memset(p, 0, 20);
    p[0] = 0x45;
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
    p[6] = (unsigned char)(frag >> 8);
    p[7] = (unsigned char)frag;
    p[8] = 64;
    p[9] = proto;
    const unsigned char src[4] = {10, 77, 0, 2}, dst[4] = {10, 77, 0, 1};
    memcpy(p + 12, src, 4);
    memcpy(p + 16, dst, 4);
    memcpy(p + 20, th, thl);
    memcpy(p + 20 + thl, payload, pl);
    return len;
}

static const unsigned char udp_40000_5001[8] = {0x9c, 0x40, 0x13, 0x89, 0, 0, 0, 0};

static void test_udp_and_tcp_headers(void **state)
{
    (void)state;
    unsigned char p[256];
    struct lk_ipinfo in;
    size_t n = ip4(p, 17, udp_40000_5001, 8, "MSG 7 hello", 0);
    lk_ip_parse(p, n, &in);
    assert_int_equal(in.version, 4);
    assert_int_equal(in.proto, 17);
    assert_string_equal(in.src, "10.77.0.2");
    assert_string_equal(in.dst, "10.77.0.1");
    assert_true(in.ports);
    assert_int_equal(in.sport, 40000);
    assert_int_equal(in.dport, 5001);
    assert_int_equal(in.payload_len, 11);
    assert_memory_equal(in.payload, "MSG 7 hello", 11);

    /* TCP with 12 bytes of options: the payload starts after the data offset (32 bytes) */
    unsigned char tcp[32] = {0x13, 0x88, 0xc3, 0x50};
    tcp[12] = 8 << 4;
    n = ip4(p, 6, tcp, sizeof tcp, "ACK 1 1\n", 0);
    lk_ip_parse(p, n, &in);
    assert_int_equal(in.proto, 6);
    assert_int_equal(in.sport, 5000);
    assert_int_equal(in.dport, 50000);
    assert_int_equal(in.payload_len, 8);
    assert_memory_equal(in.payload, "ACK 1 1\n", 8);

    /* a data offset past the packet: no ports, no payload, no read beyond the buffer */
    tcp[12] = 15 << 4;
    n = ip4(p, 6, tcp, 20, "", 0);
    lk_ip_parse(p, n, &in);
    assert_false(in.ports);
    assert_null(in.payload);
}

static void test_fragments_and_garbage(void **state)
{
    (void)state;
    unsigned char p[256];
    struct lk_ipinfo in;
    /* a later fragment carries no UDP header: no ports */
    size_t n = ip4(p, 17, udp_40000_5001, 8, "xxxx", 185);
    lk_ip_parse(p, n, &in);
    assert_int_equal(in.version, 4);
    assert_false(in.ports);
    /* the first fragment (MF set) does */
    n = ip4(p, 17, udp_40000_5001, 8, "xxxx", 0x2000);
    lk_ip_parse(p, n, &in);
    assert_true(in.ports);
    /* too short, a bad version, an IHL past the end: not IP, and nothing read beyond */
    lk_ip_parse(p, 10, &in);
    assert_int_equal(in.version, 0);
    assert_string_equal(in.src, "-");
    p[0] = 0x75;
    lk_ip_parse(p, n, &in);
    assert_int_equal(in.version, 0);
    p[0] = 0x4f;
    lk_ip_parse(p, 40, &in);
    assert_int_equal(in.version, 0);
    lk_ip_parse(p, 0, &in);
    assert_int_equal(in.version, 0);
}

static void test_ipv6_udp(void **state)
{
    (void)state;
    unsigned char p[64] = {0x60};
    p[6] = 17;
    p[23] = 1; /* ::1 */
    p[39] = 2; /* ::2 */
    memcpy(p + 40, udp_40000_5001, 8);
    memcpy(p + 48, "hi", 2);
    struct lk_ipinfo in;
    lk_ip_parse(p, 50, &in);
    assert_int_equal(in.version, 6);
    assert_string_equal(in.src, "::1");
    assert_string_equal(in.dst, "::2");
    assert_int_equal(in.dport, 5001);
    assert_int_equal(in.payload_len, 2);
}

static void test_flows(void **state)
{
    (void)state;
    unsigned char a[256], b[256];
    size_t na = ip4(a, 17, udp_40000_5001, 8, "MSG 1 x", 0);
    size_t nb = ip4(b, 17, udp_40000_5001, 8, "MSG 2 a longer payload", 0);
    /* the payload and the length do not matter, the 5-tuple does */
    assert_true(lk_ip_flow(a, na) == lk_ip_flow(b, nb));
    unsigned char other[8];
    memcpy(other, udp_40000_5001, 8);
    other[1] = 0x41; /* source port 40001 */
    nb = ip4(b, 17, other, 8, "MSG 1 x", 0);
    assert_true(lk_ip_flow(a, na) != lk_ip_flow(b, nb));
    nb = ip4(b, 6, udp_40000_5001, 8, "MSG 1 x", 0); /* TCP with the same ports */
    assert_true(lk_ip_flow(a, na) != lk_ip_flow(b, nb));
    /* every fragment of a datagram is one flow, ports or not */
    size_t f1 = ip4(a, 17, udp_40000_5001, 8, "xxxx", 0x2000);
    size_t f2 = ip4(b, 17, (const unsigned char *)"yyyyyyyy", 8, "yyyy", 185);
    assert_true(lk_ip_flow(a, f1) == lk_ip_flow(b, f2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_and_tcp_headers),
        cmocka_unit_test(test_fragments_and_garbage),
        cmocka_unit_test(test_ipv6_udp),
        cmocka_unit_test(test_flows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
