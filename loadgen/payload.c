/* payload: MSG texts by kind (see payload.h). */
#include "payload.h"

#include <string.h>

#include "schedule.h"

int lg_payload_parse(const char *s, enum lg_payload *out)
{
    static const char *const names[] = {"hex", "text", "random"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum lg_payload)i;
            return 0;
        }
    }
    return -1;
}

const char *lg_payload_name(enum lg_payload k)
{
    switch (k) {
    case LG_PAYLOAD_HEX:
        return "hex";
    case LG_PAYLOAD_TEXT:
        return "text";
    case LG_PAYLOAD_RANDOM:
        return "random";
    }
    return "?";
}

static const char *const words[] = {
    "hello",   "the",    "a",     "is",     "you",    "we",    "ok",     "see",   "there", "about",
    "meeting", "today",  "lunch", "later",  "thanks", "sure",  "what",   "time",  "room",  "server",
    "works",   "now",    "again", "and",    "but",    "maybe", "lol",    "yes",   "no",    "good",
    "morning", "deploy", "build", "failed", "passed", "tests", "coffee", "break", "brb",   "why"};

/* telemetry field names, the "k=v" part of a sensor reading */
static const char *const keys[] = {"id", "t", "temp", "hum", "v", "seq", "rssi", "st"};

static size_t put(char *buf, size_t at, size_t len, const char *s)
{
    while (*s != '\0' && at < len)
        buf[at++] = *s++;
    return at;
}

void lg_payload_fill(enum lg_payload k, uint64_t seed, char *buf, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    struct lg_rng r;
    lg_rng_seed(&r, seed);
    size_t at = 0;
    switch (k) {
    case LG_PAYLOAD_HEX:
        while (at < len) {
            at = put(buf, at, len, keys[lg_rng_next(&r) % (sizeof(keys) / sizeof(keys[0]))]);
            at = put(buf, at, len, "=");
            uint64_t v = lg_rng_next(&r);
            int digits = 4 + (int)(v % 5); /* 4..8 hex digits */
            for (int i = 0; i < digits && at < len; i++)
                buf[at++] = hexd[(v >> (8 + 4 * i)) & 15];
            at = put(buf, at, len, ";");
        }
        break;
    case LG_PAYLOAD_TEXT:
        while (at < len) {
            uint64_t v = lg_rng_next(&r);
            at = put(buf, at, len, words[v % (sizeof(words) / sizeof(words[0]))]);
            at = put(buf, at, len, (v >> 32) % 9 == 0 ? ", " : ((v >> 32) % 13 == 1 ? ". " : " "));
        }
        break;
    case LG_PAYLOAD_RANDOM:
        for (; at < len; at++)
            buf[at] = (char)(0x21 + lg_rng_next(&r) % (0xFE - 0x21 + 1));
        break;
    }
}
