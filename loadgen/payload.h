/* payload: the text of the load generator's MSG frames, by kind. Pure and deterministic.
 *
 *  - hex:    telemetry-like "k=v" fields of hexadecimal readings (compresses about 2:1)
 *  - text:   chat-like English words and punctuation (compresses well)
 *  - random: bytes 0x21..0xFE drawn uniformly (no NUL, LF, CR, space or 0xFF):
 *            incompressible, so --compress shows its worst case
 * A worker builds one pool per run and takes each message's payload as a window of it at a
 * random offset, which costs nothing per message and varies the content frame to frame. */
#ifndef CHATBENCH_LG_PAYLOAD_H
#define CHATBENCH_LG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

enum lg_payload { LG_PAYLOAD_HEX, LG_PAYLOAD_TEXT, LG_PAYLOAD_RANDOM };

/* Parses "hex", "text" or "random". Returns 0 or -1. */
int lg_payload_parse(const char *s, enum lg_payload *out);
const char *lg_payload_name(enum lg_payload k);

/* Fills buf[0..len) with payload of kind k drawn from seed. Same arguments, same bytes.
 * Never writes NUL, LF or CR. */
void lg_payload_fill(enum lg_payload k, uint64_t seed, char *buf, size_t len);

#endif
