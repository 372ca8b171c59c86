/* client_backoff: when and how the clients try again after a failed or lost connection:
 * exponential backoff with jitter, --max-retries, and sleeps that end when the session does. */
#ifndef CHATBENCH_CLIENT_BACKOFF_H
#define CHATBENCH_CLIENT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "client_common.h"

#define CLI_BACKOFF_MIN_MS 100u
#define CLI_BACKOFF_MAX_MS 5000u

/* Exponential backoff with +-50% jitter; owned by one thread. */
struct cli_backoff {
    uint32_t next_ms;       /* the next delay before jitter */
    unsigned long failures; /* consecutive failed attempts since the last success */
    unsigned int rng;       /* rand_r state */
};

/* Backoff: init, reset after a success, and fail: counts a failed attempt and returns the
 * delay before the next one (ms, jittered), or 0 when --max-retries is exhausted. */
void cli_backoff_init(struct cli_backoff *b);
void cli_backoff_reset(struct cli_backoff *b);
uint32_t cli_backoff_fail(struct cli_session *s, struct cli_backoff *b);

/* Sleeps ms milliseconds unless the session is quitting; returns false when quitting. */
bool cli_sleep(struct cli_session *s, uint32_t ms);

/* After a lost or failed connection to port (rc: 0 = it closed, else -errno of the failed
 * attempt): counts the failure, tells the user ("lost" when it had been connected, with
 * what, e.g. "conexão" or "conexão de controle"), and sleeps the backoff. Returns false when
 * the client must stop (quitting, or --max-retries exhausted: cli_fatal was called). */
bool cli_retry_wait(struct cli_session *s, struct cli_backoff *b, int rc, bool *was_connected,
                    uint16_t port, const char *what);

/* The ERR id_in_use answer to HELLO: the old session may still be timing out, so HELLO is
 * sent again after the backoff. Returns false when the session must end (quitting, or
 * --max-retries exhausted: cli_fatal was called). Receiver thread. */
bool cli_retry_hello(struct cli_session *s, struct cli_backoff *b);

#endif
