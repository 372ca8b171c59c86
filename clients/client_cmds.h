/* client_cmds: what a typed line does: chat to the room, or a command (/who, /msg,
 * /join, /quit, /help). Main thread. */
#ifndef CHATBENCH_CLIENT_CMDS_H
#define CHATBENCH_CLIENT_CMDS_H

#include <stdbool.h>
#include <stddef.h>

#include "client_common.h"

/* Handles one input line (without its LF). Returns false when the user asked to quit. In
 * line mode a line waits for the (re)connection, so a script's lines are not lost; on a
 * terminal it is dropped with a notice. */
bool cli_handle_line(struct cli_session *s, const char *line, size_t len);

#endif
