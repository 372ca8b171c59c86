/* impair_classify: what a chat datagram is, for bin/udp_impair: its first word (verb), its
 * <seq> and the sequence space it belongs to, and the --match list of impaired verbs.
 * Pure code over buffers; thread-safe (no state). */
#ifndef CHATBENCH_IMPAIR_CLASSIFY_H
#define CHATBENCH_IMPAIR_CLASSIFY_H

#include "impair_core.h"
#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first word of a datagram: a chat verb (in common/proto's order, so that each is its
 * proto_verb less one and the report lists them as before), IV_ZLIB: a compressed datagram
 * (first byte 0xFF) whose verb is not visible (the relay inflates compressed datagrams first
 * and classifies the frame inside; only those that do not inflate stay IV_ZLIB), IV_OTHER:
 * anything else (plain chat text, garbage). */
enum impair_verb {
    IV_HELLO = PROTO_HELLO - 1,
    IV_MSG = PROTO_MSG - 1,
    IV_TO = PROTO_TO - 1,
    IV_JOIN = PROTO_JOIN - 1,
    IV_WHO = PROTO_WHO - 1,
    IV_PING = PROTO_PING - 1,
    IV_BYE = PROTO_BYE - 1,
    IV_WELCOME = PROTO_WELCOME - 1,
    IV_ACK = PROTO_ACK - 1,
    IV_FROM = PROTO_FROM - 1,
    IV_PRIV = PROTO_PRIV - 1,
    IV_USER = PROTO_USER - 1,
    IV_USERS = PROTO_USERS - 1,
    IV_PONG = PROTO_PONG - 1,
    IV_JOINED = PROTO_JOINED - 1,
    IV_LEFT = PROTO_LEFT - 1,
    IV_ERR = PROTO_ERR - 1,
    IV_ZLIB,
    IV_OTHER,
    IV__COUNT
};

#define IMPAIR_NO_SEQ UINT64_MAX
#define IMPAIR_DEFAULT_MATCH "MSG,ACK,FROM,PRIV,TO"

/* What the relay knows about one datagram. */
struct impair_info {
    enum impair_verb verb;
    uint64_t seq;    /* the frame's <seq> field (MSG ACK FROM PRIV TO), else IMPAIR_NO_SEQ */
    uint64_t stream; /* hash of the sequence space the seq belongs to: the verb, plus the
                        sender id for FROM/PRIV and the target id for TO */
};

/* Classifies buf[0..len). Never fails: unknown input is IV_OTHER. */
void impair_classify(const char *buf, size_t len, struct impair_info *out);

/* Wire name of a verb ("MSG", "ZLIB", "OTHER"). Never NULL. */
const char *impair_verb_name(enum impair_verb v);

/* Parses a comma list of verb names ("MSG,ACK") into a bit mask (bit v for verb v).
 * Returns 0, or -EINVAL for an empty list or an unknown verb. */
int impair_parse_match(const char *list, uint32_t *mask);

/* Whether a datagram of verb v going in direction dir is impaired under mask. A compressed
 * datagram counts as chat: MSG going up, ACK or FROM going down. */
bool impair_matched(uint32_t mask, enum impair_verb v, enum impair_dir dir);

#endif
