/* zframe_dict: the preset zlib dictionary "chatbench-v1" (see zframe.h, PROTOCOL.md).
 *
 * deflate finds matches of 3 to 258 bytes up to 32 KiB back; a preset dictionary is text
 * placed "before" every frame, so words of the protocol cost a short back-reference instead
 * of literals. Nearer matches get shorter distance codes, so the most frequent strings come
 * LAST. Changing one byte changes the dictionary id: peers must agree, hence the version.
 *
 * Kept as plain ASCII string literals without escapes between the BEGIN/END markers so that
 * other languages (tests/integration/test_udp_server.py) can read it from this file. */
#ifndef CHATBENCH_ZFRAME_DICT_H
#define CHATBENCH_ZFRAME_DICT_H

#define ZFRAME_DICT_NAME "chatbench-v1"

/* BEGIN dictionary */
#define ZFRAME_DICT_TEXT                                                                           \
    "ERR bad_frame malformed frame"                                                                \
    "ERR too_long frame too long"                                                                  \
    "ERR bad_id id must be 1 to 32 of A-Z a-z 0-9 _ . -"                                           \
    "ERR bad_room room must be 1 to 32 of A-Z a-z 0-9 _ . -"                                       \
    "ERR id_in_use id in use"                                                                      \
    "ERR already_registered already registered with another id"                                    \
    "ERR unknown_user no such user"                                                                \
    "ERR server_full server full"                                                                  \
    "ERR bad_zlib corrupt or oversized compressed frame"                                           \
    "ERR not_registered not registered, send HELLO <id> first"                                     \
    "BYE shutdown BYE timeout BYE slow BYE quit"                                                   \
    "USERS 1 USER user-1 127.0.0.1:5 lobby"                                                        \
    "WELCOME client-1 127.0.0.1:4"                                                                 \
    "HELLO client-"                                                                                \
    "JOIN room-1 JOINED user lobby "                                                               \
    "LEFT user lobby moved LEFT user lobby timeout LEFT user lobby quit "                          \
    "PING PONG WHO "                                                                               \
    "the and you that have for not with this but what are was can just like know "                 \
    "how is it going when will would right "                                                       \
    "hello the a is you we ok see there about meeting today lunch later thanks sure what time "    \
    "room server works now again and but maybe lol yes no good morning deploy build failed "       \
    "passed tests coffee break brb why, . "                                                        \
    "0123456789abcdef fedcba9876543210 "                                                           \
    "id=;t=;temp=;hum=;v=;seq=;rssi=;st=;temp=;hum=;rssi=;seq=;"                                   \
    "TO user-1 1 PRIV user-1 1 "                                                                   \
    "FROM client-1 1 ACK 1 1 MSG 1 1"
/* END dictionary */

#endif
