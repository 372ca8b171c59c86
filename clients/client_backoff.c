/* client_backoff: retries with exponential backoff and jitter (see client_backoff.h). */
#include "client_backoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_term.h"
#include "clock.h"

bool cli_sleep(struct cli_session *s, uint32_t ms)
{
    uint64_t end = clock_now_ms() + ms;
    while (!atomic_load(&s->quit)) {
        uint64_t now = clock_now_ms();
        if (now >= end)
            return true;
        uint64_t step = end - now < 50 ? end - now : 50; /* notice quit within 50 ms */
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL); /* EINTR only shortens one step */
    }
    return false;
}

void cli_backoff_init(struct cli_backoff *b)
{
    b->next_ms = CLI_BACKOFF_MIN_MS;
    b->failures = 0;
    b->rng = (unsigned int)(clock_now_ns() ^ ((uint64_t)getpid() << 16));
}

void cli_backoff_reset(struct cli_backoff *b)
{
    b->next_ms = CLI_BACKOFF_MIN_MS;
    b->failures = 0;
}

uint32_t cli_backoff_fail(struct cli_session *s, struct cli_backoff *b)
{
    b->failures++;
    if (s->opt.max_retries > 0 && b->failures > s->opt.max_retries)
        return 0;
    uint32_t d = b->next_ms;
    b->next_ms = d * 2 > CLI_BACKOFF_MAX_MS ? CLI_BACKOFF_MAX_MS : d * 2;
    /* +-50% jitter, so clients dropped together do not come back together */
    uint32_t j = d / 2 + (uint32_t)rand_r(&b->rng) % (d + 1);
    return j > 0 ? j : 1;
}

bool cli_retry_wait(struct cli_session *s, struct cli_backoff *b, int rc, bool *was_connected,
                    uint16_t port, const char *what)
{
    uint32_t d = cli_backoff_fail(s, b);
    if (d == 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "cannot reach %s:%u (%s); giving up (--max-retries)",
                 s->opt.host, (unsigned)port, rc < 0 ? strerror(-rc) : "closed");
        cli_fatal(s, 1, msg);
        return false;
    }
    if (rc == 0 || *was_connected) {
        cli_printf(s, "* %s perdida, reconectando em %.1f s...", what, d / 1000.0);
        *was_connected = true;
    } else {
        cli_printf(s, "* servidor indisponível (%s), nova tentativa em %.1f s...", strerror(-rc),
                   d / 1000.0);
    }
    return cli_sleep(s, d);
}

bool cli_retry_hello(struct cli_session *s, struct cli_backoff *b)
{
    uint32_t d = cli_backoff_fail(s, b);
    if (d == 0) {
        cli_fatal(s, 1, "the id is in use; giving up (--max-retries)");
        return false;
    }
    if (!cli_sleep(s, d))
        return false;
    (void)cli_send_hello(s); /* a failure shows up as EOF */
    return true;
}
