/* client_frames: what the clients show and remember of each frame from the server
 * (PROTOCOL.md): chat lines, the /who table, room changes, errors, WELCOME and BYE. */
#ifndef CHATBENCH_CLIENT_FRAMES_H
#define CHATBENCH_CLIENT_FRAMES_H

#include <stddef.h>

#include "client_common.h"

/* Parses and shows one server frame (without terminator) and updates the session: WELCOME
 * marks it registered and rejoins its room, ACK settles an outstanding message, JOINED of
 * itself records the room. *f gets the parsed frame so the transport can react too.
 * Returns PROTO_OK or PROTO_E_BAD_FRAME (shown to the user too). Receiver thread only. */
enum proto_err cli_handle_frame(struct cli_session *s, const char *buf, size_t len,
                                struct proto_frame *f);

#endif
