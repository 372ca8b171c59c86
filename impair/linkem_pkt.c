/* linkem_pkt: reading the IP headers of the packets linkem carries (IPv4, and IPv6 as far as
 * its fixed header): the flow a packet belongs to and what the log says about it. Pure code
 * over buffers; nothing here trusts a length field it has not checked against the buffer. */
#include "linkem.h"

#include <arpa/inet.h>
#include <string.h>

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The transport header at t[0..tlen) of protocol proto: ports and payload. */
static void transport(uint8_t proto, const unsigned char *t, size_t tlen, struct lk_ipinfo *out)
{
    size_t hdr;
    if (proto == IPPROTO_UDP && tlen >= 8)
        hdr = 8;
    else if (proto == IPPROTO_TCP && tlen >= 20 && (size_t)(t[12] >> 4) * 4 >= 20 &&
             (size_t)(t[12] >> 4) * 4 <= tlen)
        hdr = (size_t)(t[12] >> 4) * 4;
    else
        return;
    out->ports = true;
    out->sport = be16(t);
    out->dport = be16(t + 2);
    out->payload = t + hdr;
    out->payload_len = tlen - hdr;
}

void lk_ip_parse(const unsigned char *pkt, size_t len, struct lk_ipinfo *out)
{
    memset(out, 0, sizeof *out);
    strcpy(out->src, "-");
    strcpy(out->dst, "-");
    if (len < 1)
        return;
    int v = pkt[0] >> 4;
    if (v == 4 && len >= 20) {
        size_t ihl = (size_t)(pkt[0] & 15) * 4;
        size_t total = be16(pkt + 2);
        if (ihl < 20 || ihl > len)
            return;
        if (total > len || total < ihl)
            total = len; /* a bad length field: read what is there */
        out->version = 4;
        out->proto = pkt[9];
        inet_ntop(AF_INET, pkt + 12, out->src, sizeof out->src);
        inet_ntop(AF_INET, pkt + 16, out->dst, sizeof out->dst);
        if ((be16(pkt + 6) & 0x1fff) == 0) /* only a first fragment carries the ports */
            transport(out->proto, pkt + ihl, total - ihl, out);
    } else if (v == 6 && len >= 40) {
        out->version = 6;
        out->proto = pkt[6]; /* extension headers are not walked: their packets have no ports */
        inet_ntop(AF_INET6, pkt + 8, out->src, sizeof out->src);
        inet_ntop(AF_INET6, pkt + 24, out->dst, sizeof out->dst);
        transport(out->proto, pkt + 40, len - 40, out);
    }
}

/* FNV-1a over the header fields that name a flow. */
static uint64_t mix(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t lk_ip_flow(const unsigned char *pkt, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        size_t ihl = (size_t)(pkt[0] & 15) * 4;
        h = mix(h, pkt + 9, 1);  /* protocol */
        h = mix(h, pkt + 12, 8); /* source and destination */
        uint8_t proto = pkt[9];
        /* fragments (MF or an offset) go by addresses alone: only the first has ports */
        bool fragment = (be16(pkt + 6) & 0x3fff) != 0;
        if ((proto == IPPROTO_UDP || proto == IPPROTO_TCP) && !fragment && ihl >= 20 &&
            len >= ihl + 4)
            h = mix(h, pkt + ihl, 4);
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        h = mix(h, pkt + 6, 1);
        h = mix(h, pkt + 8, 32);
        if ((pkt[6] == IPPROTO_UDP || pkt[6] == IPPROTO_TCP) && len >= 44)
            h = mix(h, pkt + 40, 4);
    } else {
        h = mix(h, pkt, len < 20 ? len : 20);
    }
    return h;
}
