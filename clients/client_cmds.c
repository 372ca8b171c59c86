/* client_cmds: typed lines into frames (see client_cmds.h). */
#include "client_cmds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client_term.h"

/* Sends a frame the user asked for. In line mode it first waits for the (re)connection,
 * so a script's lines are not lost; on a terminal it says so and drops the line. */
static void send_user_frame(struct cli_session *s, const char *frame, size_t len, bool chat)
{
    if (!cli_registered(s)) {
        if (s->tty) {
            cli_printf(s, "* sem conexão com o servidor; linha não enviada");
            return;
        }
        if (!cli_term_wait(s, cli_registered, -1))
            return;
    }
    if (chat) {
        pthread_mutex_lock(&s->lock);
        s->outstanding++; /* before sending: the ACK may beat us back */
        pthread_mutex_unlock(&s->lock);
    }
    int rc = s->tp->send(s, frame, len);
    if (rc < 0) {
        if (chat)
            cli_settled(s);
        if (rc != -ECANCELED) /* Ctrl-C while the server was not reading: no error */
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

bool cli_handle_line(struct cli_session *s, const char *line, size_t len)
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
