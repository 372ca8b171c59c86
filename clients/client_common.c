/* client_common: options, input loop, frame printing, commands and backoff shared by
 * tcp_client and udp_client (see client_common.h). */
#include "client_common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "clock.h"

#define CLI_WHO_MAX_ROWS 100000 /* a hostile server cannot make us buffer more */

/* --- process-wide state: readline callbacks and signal handlers take no user pointer --- */

static volatile sig_atomic_t g_signal;   /* the signal that asked us to stop */
static int g_wake_wr = -1;               /* write end of the session's wake pipe */
static struct cli_session *g_rl_session; /* main thread only */
static bool g_rl_installed;              /* main thread only: callback handler active */
static bool g_in_rl_handler;             /* main thread only: inside on_rl_line */
static bool g_input_eof;                 /* main thread only */
static bool g_want_quit;                 /* main thread only: /quit typed */

static void on_signal(int sig)
{
    int saved = errno;
    g_signal = sig;
    if (g_wake_wr >= 0) {
        char c = 's';
        /* best effort: a full pipe already wakes the main thread */
        (void)!write(g_wake_wr, &c, 1);
    }
    errno = saved;
}

static void wake_main(struct cli_session *s)
{
    char c = 'w';
    /* best effort: a full pipe already wakes the main thread */
    (void)!write(s->wake_fd[1], &c, 1);
}

static int write_full(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* --- output --- */

/* Main thread, readline mode: prints above the prompt and redraws the partial input. */
static void tty_show(const char *line)
{
    if (g_rl_installed && !g_in_rl_handler) {
        rl_clear_visible_line();
        printf("%s\n", line);
        fflush(stdout);
        rl_on_new_line();
        rl_redisplay();
    } else {
        printf("%s\n", line);
        fflush(stdout);
    }
}

void cli_printf(struct cli_session *s, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return; /* out of memory: the line is lost, the chat goes on */
    if (s->tty && pthread_equal(pthread_self(), s->main_thread)) {
        tty_show(line);
    } else if (s->tty) {
        /* only the receiver thread writes here, so lines never interleave */
        line[n] = '\n';
        char *grown = realloc(line, (size_t)n + 2);
        if (grown != NULL) {
            line = grown;
            line[n + 1] = '\0';
            (void)write_full(s->out_fd[1], line, (size_t)n + 1); /* the main thread reads */
        }
    } else {
        pthread_mutex_lock(&s->out_lock);
        /* best effort: a closed stdout must not stop the chat */
        (void)fputs(line, stdout);
        (void)fputc('\n', stdout);
        (void)fflush(stdout);
        pthread_mutex_unlock(&s->out_lock);
    }
    free(line);
}

/* --- session state --- */

bool cli_registered(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->registered;
    pthread_mutex_unlock(&s->lock);
    return r;
}

bool cli_bye_seen(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->bye_seen;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void cli_lost(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    s->registered = false;
    s->outstanding = 0; /* their ACKs will never come */
    pthread_mutex_unlock(&s->lock);
    wake_main(s);
}

void cli_fatal(struct cli_session *s, int code, const char *msg)
{
    fprintf(stderr, "%s: %s\n", s->tp->prog, msg);
    atomic_store(&s->exit_code, code);
    atomic_store(&s->quit, true);
    wake_main(s);
}

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

int cli_send_hello(struct cli_session *s)
{
    char frame[64];
    int n = proto_fmt_hello(frame, sizeof(frame), s->opt.id);
    return n < 0 ? -EINVAL : s->tp->send(s, frame, (size_t)n);
}

/* --- frames from the server --- */

/* Escapes a short field (id, room, address) into out; longer ones are cut. */
static const char *esc_field(const char *in, size_t len, char *out, size_t cap)
{
    proto_escape(in, len, out, cap);
    return out;
}

static void show_who(struct cli_session *s, uint64_t count)
{
    size_t wid = 2, waddr = 8;
    for (size_t i = 0; i < s->who_n; i++) {
        size_t l = strlen(s->who[i].id);
        wid = l > wid ? l : wid;
        l = strlen(s->who[i].addr);
        waddr = l > waddr ? l : waddr;
    }
    /* "endereço" has one two-byte character: pad by display width, not bytes */
    cli_printf(s, "  %-*s  endereço%*s  sala", (int)wid, "id", (int)(waddr - 8), "");
    for (size_t i = 0; i < s->who_n; i++)
        cli_printf(s, "  %-*s  %-*s  %s%s", (int)wid, s->who[i].id, (int)waddr, s->who[i].addr,
                   s->who[i].room, strcmp(s->who[i].id, s->opt.id) == 0 ? "  (você)" : "");
    cli_printf(s, "* %llu usuário(s) conectado(s)", (unsigned long long)count);
    s->who_n = 0;
}

static void add_who_row(struct cli_session *s, const struct proto_frame *f)
{
    if (s->who_n == s->who_cap) {
        if (s->who_cap >= CLI_WHO_MAX_ROWS)
            return;
        size_t cap = s->who_cap ? s->who_cap * 2 : 16;
        struct cli_who_row *rows = realloc(s->who, cap * sizeof(*rows));
        if (rows == NULL)
            return; /* out of memory: the table is short, the chat goes on */
        s->who = rows;
        s->who_cap = cap;
    }
    struct cli_who_row *r = &s->who[s->who_n++];
    esc_field(f->id, f->id_len, r->id, sizeof(r->id));
    esc_field(f->addr, f->addr_len, r->addr, sizeof(r->addr));
    esc_field(f->room, f->room_len, r->room, sizeof(r->room));
}

static void on_welcome(struct cli_session *s)
{
    char room[PROTO_ID_MAX + 1];
    pthread_mutex_lock(&s->lock);
    bool was = s->registered;
    s->registered = true;
    s->told_in_use = false;
    memcpy(room, s->room, sizeof(room));
    pthread_mutex_unlock(&s->lock);
    if (was)
        return; /* a repeated WELCOME (UDP retry) */
    cli_printf(s, "Conectado ao servidor!");
    if (strcmp(room, PROTO_DEFAULT_ROOM) != 0) {
        char frame[64];
        int n = snprintf(frame, sizeof(frame), "JOIN %s", room);
        if (s->tp->send(s, frame, (size_t)n) < 0)
            cli_printf(s, "* não foi possível voltar à sala %s", room);
    }
    wake_main(s);
}

static void on_err(struct cli_session *s, const struct proto_frame *f)
{
    char code[4 * 40 + 1];
    esc_field(f->code, f->code_len, code, sizeof(code));
    if (proto_is_err(f, PROTO_E_NOT_REG))
        return; /* the transport registers again and says so */
    if (proto_is_err(f, PROTO_E_ID_IN_USE)) {
        pthread_mutex_lock(&s->lock);
        bool told = s->told_in_use;
        s->told_in_use = true;
        pthread_mutex_unlock(&s->lock);
        if (!told)
            cli_printf(s, "* o id %s já está em uso no servidor; tentando de novo...", s->opt.id);
        return;
    }
    /* refusals of a chat frame: its ACK will never come */
    if (proto_is_err(f, PROTO_E_UNKNOWN_USER) || proto_is_err(f, PROTO_E_TOO_LONG) ||
        proto_is_err(f, PROTO_E_BAD_ID)) {
        pthread_mutex_lock(&s->lock);
        if (s->outstanding > 0)
            s->outstanding--;
        pthread_mutex_unlock(&s->lock);
        wake_main(s);
    }
    proto_escape(f->text, f->text_len, s->esc, 4 * CLI_RECV_MAX + 1);
    cli_printf(s, "* erro: %s%s%s", code, f->text_len ? ": " : "", s->esc);
}

enum proto_err cli_handle_frame(struct cli_session *s, const char *buf, size_t len,
                                struct proto_frame *f)
{
    char id[4 * PROTO_ID_MAX + 1], room[4 * PROTO_ID_MAX + 1];
    const size_t esc_cap = 4 * CLI_RECV_MAX + 1;
    enum proto_err e = proto_parse_server(buf, len, f);
    if (e != PROTO_OK) {
        proto_escape(buf, len, s->esc, esc_cap);
        cli_printf(s, "* quadro inválido do servidor: \"%s\"", s->esc);
        return e;
    }
    switch (f->verb) {
    case PROTO_WELCOME:
        on_welcome(s);
        break;
    case PROTO_ACK:
        pthread_mutex_lock(&s->lock);
        if (s->outstanding > 0)
            s->outstanding--;
        pthread_mutex_unlock(&s->lock);
        cli_printf(s, "%s : \"ACK\"", s->opt.id);
        wake_main(s);
        break;
    case PROTO_FROM:
    case PROTO_PRIV:
        esc_field(f->id, f->id_len, id, sizeof(id));
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        cli_printf(s, "%s%s : \"%s\"", f->verb == PROTO_PRIV ? "[privado] " : "", id, s->esc);
        break;
    case PROTO_USER:
        add_who_row(s, f);
        break;
    case PROTO_USERS:
        show_who(s, f->n);
        break;
    case PROTO_PONG:
        break; /* keep-alive: the transport noted that something arrived */
    case PROTO_JOINED:
        esc_field(f->id, f->id_len, id, sizeof(id));
        esc_field(f->room, f->room_len, room, sizeof(room));
        if (f->id_len == strlen(s->opt.id) && memcmp(f->id, s->opt.id, f->id_len) == 0 &&
            proto_valid_name(f->room, f->room_len)) {
            pthread_mutex_lock(&s->lock);
            memcpy(s->room, f->room, f->room_len);
            s->room[f->room_len] = '\0';
            pthread_mutex_unlock(&s->lock);
            cli_printf(s, "* você entrou na sala %s", room);
        } else {
            cli_printf(s, "* %s entrou na sala %s", id, room);
        }
        break;
    case PROTO_LEFT:
        esc_field(f->id, f->id_len, id, sizeof(id));
        esc_field(f->room, f->room_len, room, sizeof(room));
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        cli_printf(s, "* %s saiu da sala %s (%s)", id, room, s->esc);
        break;
    case PROTO_BYE:
        proto_escape(f->text, f->text_len, s->esc, esc_cap);
        if (proto_is_bye(f, PROTO_R_QUIT)) {
            pthread_mutex_lock(&s->lock);
            s->bye_seen = true;
            pthread_mutex_unlock(&s->lock);
            /* the session is over, whether we asked (/quit, EOF) or not: exit 0 */
            atomic_store(&s->quit, true);
            wake_main(s);
        }
        cli_printf(s, "* o servidor encerrou a sessão (%s)", s->esc);
        break;
    case PROTO_ERR:
        on_err(s, f);
        break;
    default:
        break;
    }
    return PROTO_OK;
}

/* --- the main thread: waiting, input lines, commands --- */

static bool stopping(struct cli_session *s)
{
    return g_signal != 0 || atomic_load(&s->quit);
}

static void drain_fd(int fd)
{
    char tmp[256];
    while (read(fd, tmp, sizeof(tmp)) > 0)
        ;
}

/* Readline mode: shows the complete lines the receiver thread wrote to out_fd. */
static void show_pending_output(struct cli_session *s)
{
    static char buf[4 * CLI_RECV_MAX + 256];
    static size_t len;
    for (;;) {
        ssize_t n = read(s->out_fd[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break; /* EAGAIN: all read; EOF cannot happen while we hold the write end */
        len += (size_t)n;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', len - (size_t)(start - buf))) != NULL) {
            *nl = '\0';
            tty_show(start);
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
        if (len == sizeof(buf) - 1) { /* cannot happen: cli_printf lines are shorter */
            buf[len] = '\0';
            tty_show(buf);
            len = 0;
        }
    }
}

/* Waits (showing output) until done(s) is true, the session stops, or timeout_ms passes
 * (negative: no limit). Returns done(s). */
static bool main_wait(struct cli_session *s, bool (*done)(struct cli_session *), int timeout_ms)
{
    uint64_t end = clock_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    while (!done(s)) {
        if (stopping(s))
            return false;
        int left = 100;
        if (timeout_ms >= 0) {
            uint64_t now = clock_now_ms();
            if (now >= end)
                return false;
            left = end - now < 100 ? (int)(end - now) : 100;
        }
        struct pollfd p[2] = {{s->wake_fd[0], POLLIN, 0}, {s->out_fd[0], POLLIN, 0}};
        int n = poll(p, s->tty ? 2 : 1, left);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && (p[0].revents & POLLIN))
            drain_fd(s->wake_fd[0]);
        if (n > 0 && s->tty && (p[1].revents & POLLIN))
            show_pending_output(s);
    }
    return true;
}

static bool no_outstanding(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->outstanding == 0;
    pthread_mutex_unlock(&s->lock);
    return r;
}

static bool bye_or_lost(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    bool r = s->bye_seen || !s->registered;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Sends a frame the user asked for. In line mode it first waits for the (re)connection,
 * so a script's lines are not lost; on a terminal it says so and drops the line. */
static void send_user_frame(struct cli_session *s, const char *frame, size_t len, bool chat)
{
    if (!cli_registered(s)) {
        if (s->tty) {
            cli_printf(s, "* sem conexão com o servidor; linha não enviada");
            return;
        }
        if (!main_wait(s, cli_registered, -1))
            return;
    }
    if (chat) {
        pthread_mutex_lock(&s->lock);
        s->outstanding++; /* before sending: the ACK may beat us back */
        pthread_mutex_unlock(&s->lock);
    }
    int rc = s->tp->send(s, frame, len);
    if (rc < 0) {
        if (chat) {
            pthread_mutex_lock(&s->lock);
            if (s->outstanding > 0)
                s->outstanding--;
            pthread_mutex_unlock(&s->lock);
        }
        cli_printf(s, "* erro ao enviar: %s", strerror(-rc));
    }
}

static uint64_t take_seq(struct cli_session *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t seq = s->next_seq++;
    pthread_mutex_unlock(&s->lock);
    return seq;
}

static void send_chat(struct cli_session *s, const char *to, size_t to_len, const char *text,
                      size_t len)
{
    char frame[CLI_MAX_FRAME + 1];
    char id[PROTO_ID_MAX + 1];
    uint64_t seq = take_seq(s);
    int n;
    if (to != NULL) {
        memcpy(id, to, to_len);
        id[to_len] = '\0';
        n = proto_fmt_to(frame, sizeof(frame), id, seq, text, len);
    } else {
        n = proto_fmt_msg(frame, sizeof(frame), seq, text, len);
    }
    if (n < 0) {
        cli_printf(s, "* mensagem longa demais (máximo de %d bytes por quadro)", CLI_MAX_FRAME);
        return;
    }
    send_user_frame(s, frame, (size_t)n, true);
}

static void print_commands(struct cli_session *s)
{
    cli_printf(s, "Commands:");
    cli_printf(s, "  /who               list connected clients");
    cli_printf(s, "  /msg <id> <text>   private message to <id>");
    cli_printf(s, "  /join <room>       move to another room");
    cli_printf(s, "  /quit              leave (Ctrl-D too)");
    cli_printf(s, "  /help              this help");
    cli_printf(s, "  //text             send a line that starts with '/'");
    cli_printf(s, "Any other line is sent to everyone in your room.");
}

/* Splits off the next space-separated word of [*p, end). */
static size_t next_word(const char **p, const char *end, const char **word)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *word = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *word);
}

/* Handles one input line. Returns false when the user asked to quit. */
static bool handle_line(struct cli_session *s, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return true;
    if (line[0] != '/' || (len > 1 && line[1] == '/')) {
        size_t skip = line[0] == '/' ? 1 : 0; /* "//x" sends "/x" */
        send_chat(s, NULL, 0, line + skip, len - skip);
        return true;
    }
    const char *p = line, *end = line + len, *cmd, *arg;
    size_t cmd_len = next_word(&p, end, &cmd);
#define CLI_IS(name) (cmd_len == strlen(name) && memcmp(cmd, name, cmd_len) == 0)
    if (CLI_IS("/quit") || CLI_IS("/exit"))
        return false;
    if (CLI_IS("/help")) {
        print_commands(s);
    } else if (CLI_IS("/who")) {
        send_user_frame(s, "WHO", 3, false);
    } else if (CLI_IS("/join")) {
        size_t al = next_word(&p, end, &arg);
        if (!proto_valid_name(arg, al)) {
            cli_printf(s, "* uso: /join <sala>  (1 a 32 de A-Z a-z 0-9 _ . -)");
            return true;
        }
        char frame[64];
        int n = snprintf(frame, sizeof(frame), "JOIN %.*s", (int)al, arg);
        send_user_frame(s, frame, (size_t)n, false);
    } else if (CLI_IS("/msg")) {
        size_t al = next_word(&p, end, &arg);
        if (p < end)
            p++; /* the one space before the text */
        if (!proto_valid_name(arg, al) || p >= end) {
            cli_printf(s, "* uso: /msg <id> <texto>");
            return true;
        }
        send_chat(s, arg, al, p, (size_t)(end - p));
    } else {
        char name[64];
        proto_escape(cmd, cmd_len, name, sizeof(name));
        cli_printf(s, "* comando desconhecido: %s (veja /help)", name);
    }
#undef CLI_IS
    return true;
}

static void on_rl_line(char *line)
{
    struct cli_session *s = g_rl_session;
    if (line == NULL) {
        g_input_eof = true;
        return;
    }
    if (*line != '\0')
        add_history(line);
    g_in_rl_handler = true;
    if (!handle_line(s, line, strlen(line)))
        g_want_quit = true;
    g_in_rl_handler = false;
    free(line);
}

/* Line mode: feeds complete stdin lines to handle_line. Returns false on /quit. */
static bool feed_lines(struct cli_session *s, char *buf, size_t *len, bool *skipping, bool eof)
{
    size_t line_len, used;
    for (;;) {
        int r = proto_next_line(buf, *len, CLI_MAX_FRAME, &line_len, &used);
        if (r == 0 && eof && *len > 0) { /* a last line without LF */
            line_len = used = *len;
            r = 1;
        }
        if (r == 0)
            return true;
        if (r < 0) { /* longer than any frame: drop it up to its LF */
            if (!*skipping)
                cli_printf(s, "* linha longa demais, descartada");
            *skipping = true;
            *len = 0;
            return true;
        }
        bool keep = *skipping || handle_line(s, buf, line_len);
        *skipping = false;
        memmove(buf, buf + used, *len - used);
        *len -= used;
        if (!keep)
            return false;
        if (stopping(s))
            return true;
    }
}

/* The input loop. Returns true when input ended (EOF), false on /quit or a stop. */
static bool input_loop(struct cli_session *s)
{
    static char buf[2 * CLI_MAX_FRAME + 2];
    size_t len = 0;
    bool skipping = false;
    if (s->tty) {
        g_rl_session = s;
        rl_catch_signals = 0; /* our handlers stop cleanly; readline restores the tty */
        rl_callback_handler_install("> ", on_rl_line);
        g_rl_installed = true;
    }
    while (!stopping(s) && !g_want_quit && !g_input_eof) {
        struct pollfd p[3] = {
            {STDIN_FILENO, POLLIN, 0}, {s->wake_fd[0], POLLIN, 0}, {s->out_fd[0], POLLIN, 0}};
        int n = poll(p, s->tty ? 3 : 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_fatal(s, 1, strerror(errno));
            break;
        }
        if (p[1].revents & POLLIN)
            drain_fd(s->wake_fd[0]);
        if (s->tty && (p[2].revents & POLLIN))
            show_pending_output(s);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (s->tty) {
            rl_callback_read_char();
            continue;
        }
        ssize_t r = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            g_input_eof = true;
            (void)feed_lines(s, buf, &len, &skipping, true);
            break;
        }
        len += (size_t)r;
        if (!feed_lines(s, buf, &len, &skipping, false))
            g_want_quit = true;
    }
    return g_input_eof && !stopping(s);
}

/* Leaves politely: waits for ACKs (after EOF), says BYE, stops the receiver thread. */
static int finish(struct cli_session *s, bool drain)
{
    if (!stopping(s)) {
        if (drain)
            (void)main_wait(s, no_outstanding, CLI_DRAIN_MS);
        if (cli_registered(s) && s->tp->send(s, "BYE", 3) == 0)
            (void)main_wait(s, bye_or_lost, CLI_BYE_WAIT_MS);
    } else if (g_signal != 0 && cli_registered(s)) {
        (void)s->tp->send(s, "BYE", 3); /* best effort: the server times us out anyway */
    }
    atomic_store(&s->quit, true);
    s->tp->wake(s);
    s->tp->stop(s);
    if (s->tty) {
        show_pending_output(s);
        if (g_rl_installed) {
            rl_clear_visible_line();
            rl_callback_handler_remove(); /* restores the terminal */
            g_rl_installed = false;
        }
    }
    return atomic_load(&s->exit_code);
}

/* --- start-up --- */

static int make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    /* the read end never blocks: the main thread drains it in its poll loop */
    return fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR too */
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) < 0 ? -errno : 0;
}

/* Starts the receiver thread with our signals blocked, so they reach the main thread. */
static int start_transport(struct cli_session *s)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGWINCH);
    int rc = pthread_sigmask(SIG_BLOCK, &block, &old);
    if (rc != 0)
        return -rc;
    rc = s->tp->start(s);
    int rc2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc < 0 ? rc : -rc2;
}

int cli_main(int argc, char **argv, const struct cli_transport *tp)
{
    static struct cli_session sess; /* static: the receiver's scratch is large */
    struct cli_session *s = &sess;
    s->tp = tp;
    s->wake_fd[0] = s->wake_fd[1] = s->out_fd[0] = s->out_fd[1] = -1;
    int rc = cli_parse_args(argc, argv, tp, &s->opt);
    if (rc >= 0)
        return rc;
    s->tty = isatty(STDIN_FILENO) == 1;
    if (s->opt.id[0] == '\0') {
        if (!s->tty) {
            fprintf(stderr, "%s: --id is required when stdin is not a terminal (e.g. --id alice)\n",
                    tp->prog);
            return 2;
        }
        if (!cli_ask_id(&s->opt))
            return 2;
    }
    snprintf(s->room, sizeof(s->room), "%s", PROTO_DEFAULT_ROOM);
    s->next_seq = 1;
    s->main_thread = pthread_self();
    s->esc = malloc(4 * CLI_RECV_MAX + 1);
    if (s->esc == NULL || pthread_mutex_init(&s->lock, NULL) != 0 ||
        pthread_mutex_init(&s->out_lock, NULL) != 0 || make_pipe(s->wake_fd) < 0 ||
        make_pipe(s->out_fd) < 0 || install_signals() < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", tp->prog, strerror(errno));
        return 1;
    }
    g_wake_wr = s->wake_fd[1];
    /* the wake pipe's write end must never block a signal handler */
    if (fcntl(s->wake_fd[1], F_SETFL, O_NONBLOCK) < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", tp->prog, strerror(errno));
        return 1;
    }

    cli_printf(s, "Cliente: %s", s->opt.id);
    rc = start_transport(s);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start the receiver: %s\n", tp->prog, strerror(-rc));
        return 1;
    }
    bool eof = input_loop(s);
    rc = finish(s, eof);

    g_wake_wr = -1;
    for (int i = 0; i < 2; i++) {
        close(s->wake_fd[i]);
        close(s->out_fd[i]);
    }
    free(s->who);
    free(s->esc);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->out_lock);
    return rc;
}
