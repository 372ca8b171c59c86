/* proto: the chat's text frames, parsed and formatted over plain buffers (no I/O).
 *
 * The grammar is specified in PROTOCOL.md; this module is its single implementation,
 * shared by the servers, the clients, the load generator and the fuzzers.
 * Every function here is pure and thread-safe. Parsed frames point into the caller's
 * buffer: nothing is copied and nothing is allocated. */
#ifndef CHATBENCH_PROTO_H
#define CHATBENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_FRAME_DEFAULT 4096 /* bytes of one frame, terminator excluded */
#define PROTO_MAX_FRAME_LIMIT 65507  /* the largest UDP payload over IPv4 */
#define PROTO_MIN_FRAME 64           /* smaller limits would refuse our own replies */
#define PROTO_ID_MAX 32              /* ids and room names: 1..32 of [A-Za-z0-9_.-] */
#define PROTO_DEFAULT_ROOM "lobby"
#define PROTO_ZMARK 0xFF        /* first byte of a compressed UDP datagram; never starts text */
#define PROTO_NO_SEQ UINT64_MAX /* the '-' of a frame that carries no sequence number */
/* Hybrid mode: a session token is 16 lower-case hex digits; a datagram is "<token> <frame>" */
#define PROTO_TOKEN_LEN 16
#define PROTO_TOKEN_PREFIX (PROTO_TOKEN_LEN + 1) /* the token and its space */
/* A HELLO datagram of at least this many bytes always earns its WELCOME from a UDP server,
 * which never answers an unregistered address with more bytes than it received: the
 * longest WELCOME, "WELCOME <32> 255.255.255.255:65535" and its LF, is 63 bytes. Shorter
 * HELLOs are padded: HELLO <id> [<room>] #<anything> (PROTOCOL.md, "Reflection"). */
#define PROTO_HELLO_PAD 64
#define PROTO_PAD_MARK '#' /* opens the padding field of a HELLO; never starts a name */

enum proto_verb {
    PROTO_NONE = 0,
    /* client to server */
    PROTO_HELLO, /* HELLO <id> [<room>] [#<pad>]   (room NULL when absent: the default room;
                    the padding is ignored) */
    PROTO_MSG,   /* MSG <seq> <text>   (and a line with no known verb: seq = PROTO_NO_SEQ) */
    PROTO_TO,    /* TO <id> <seq> <text> */
    PROTO_JOIN,  /* JOIN <room> */
    PROTO_WHO,   /* WHO */
    PROTO_PING,  /* PING [<token>] */
    PROTO_BYE,   /* BYE  (server to client: BYE <reason>) */
    /* server to client */
    PROTO_WELCOME, /* WELCOME <id> <ip>:<port> [<token> <udp_port>]   (hybrid: the token) */
    PROTO_ACK,     /* ACK <seq> <n> */
    PROTO_FROM,    /* FROM <id> <seq> <text>   room chat */
    PROTO_PRIV,    /* PRIV <id> <seq> <text>   private chat */
    PROTO_USER,    /* USER <id> <ip>:<port> <room>   one line of a WHO answer */
    PROTO_USERS,   /* USERS <n>                      closes a WHO answer */
    PROTO_PONG,    /* PONG [<token>] */
    PROTO_JOINED,  /* JOINED <id> <room> */
    PROTO_LEFT,    /* LEFT <id> <room> <reason> */
    PROTO_ERR,     /* ERR <code> <text> */
};

/* Refusals. Each has a wire name (proto_err_name) used as <code> in ERR frames. */
enum proto_err {
    PROTO_OK = 0,
    PROTO_E_BAD_FRAME,    /* bad_frame: malformed, NUL byte, bad number */
    PROTO_E_TOO_LONG,     /* too_long: frame longer than the configured maximum */
    PROTO_E_BAD_ID,       /* bad_id: id not 1..32 of [A-Za-z0-9_.-] */
    PROTO_E_BAD_ROOM,     /* bad_room: room name invalid */
    PROTO_E_ID_IN_USE,    /* id_in_use: another connected client holds that id */
    PROTO_E_NOT_REG,      /* not_registered: HELLO first */
    PROTO_E_ALREADY_REG,  /* already_registered: a second HELLO with another id */
    PROTO_E_UNKNOWN_USER, /* unknown_user: TO names nobody connected */
    PROTO_E_FULL,         /* server_full: --max-clients reached */
    PROTO_E_BAD_ZLIB,     /* bad_zlib: compressed datagram corrupt or inflating past max */
    PROTO_E_TIMEOUT,      /* timeout: no HELLO in time */
    PROTO_E_RATE,         /* rate_limited: UDP WHO asked again within a second */
    PROTO_E_PAD,          /* pad: UDP HELLO shorter than its WELCOME; pad it (PROTO_HELLO_PAD) */
    PROTO_E__COUNT
};

/* Why a client left a room or the server (LEFT and BYE frames, [DISCONNECT] logs). */
enum proto_reason {
    PROTO_R_QUIT = 0, /* quit: the client said BYE or closed cleanly */
    PROTO_R_TIMEOUT,  /* timeout: silent for too long (UDP keep-alive, TCP no HELLO) */
    PROTO_R_ERROR,    /* error: reset, read or write error */
    PROTO_R_SLOW,     /* slow: outbound queue over its limit (slow consumer) */
    PROTO_R_MOVED,    /* moved: JOINed another room */
    PROTO_R_SHUTDOWN, /* shutdown: the server is stopping */
    PROTO_R_IDLE,     /* idle: no request but PING for --idle-timeout seconds */
    PROTO_R__COUNT
};

/* A parsed frame. Pointers point into the parsed buffer; lengths are exact (no NUL). */
struct proto_frame {
    enum proto_verb verb;
    const char *id; /* HELLO TO FROM PRIV WELCOME USER JOINED LEFT */
    size_t id_len;
    const char *room; /* HELLO (optional) JOIN USER JOINED LEFT */
    size_t room_len;
    const char *addr; /* WELCOME USER: "ip:port" */
    size_t addr_len;
    const char *text; /* MSG TO FROM PRIV: chat text; PING PONG: token; ERR: text;
                         LEFT BYE: reason; ERR: human text. May be empty. */
    size_t text_len;
    const char *code; /* ERR: the error's wire name */
    size_t code_len;
    uint64_t seq;      /* MSG TO FROM PRIV ACK; PROTO_NO_SEQ for '-' */
    uint64_t n;        /* ACK: chat frames received so far; USERS: count */
    bool has_token;    /* WELCOME of a hybrid server: token and port below are set */
    uint64_t token;    /* WELCOME (hybrid): the session token */
    uint16_t udp_port; /* WELCOME (hybrid): where the tokened datagrams go */
};

/* Parses one client-to-server frame of len bytes (terminator already removed).
 * A frame whose first word is not a known verb is a chat message: verb PROTO_MSG,
 * seq PROTO_NO_SEQ, text the whole frame. Returns PROTO_OK or the refusal. */
enum proto_err proto_parse_client(const char *buf, size_t len, struct proto_frame *out);

/* Parses one server-to-client frame. Returns PROTO_OK or PROTO_E_BAD_FRAME. */
enum proto_err proto_parse_server(const char *buf, size_t len, struct proto_frame *out);

/* Finds the next LF-terminated line in buf[0..len). On success returns 1, sets *line_len
 * to the frame's length without LF (and without one CR before it) and *consumed to the
 * bytes to drop from the buffer. Returns 0 when no LF is there yet and len <= max;
 * -1 when more than max bytes arrived without a LF (the frame is too long). */
int proto_next_line(const char *buf, size_t len, size_t max, size_t *line_len, size_t *consumed);

/* True when s[0..len) is a valid id or room name. */
bool proto_valid_name(const char *s, size_t len);

/* The verb spelled word[0..len) (upper case, exact), client or server side; PROTO_NONE when
 * it is no verb of the protocol. */
enum proto_verb proto_verb_lookup(const char *word, size_t len);

/* True when f is an ERR frame with the given code (f parsed by proto_parse_server). */
bool proto_is_err(const struct proto_frame *f, enum proto_err code);

/* True when f is a server's BYE frame giving that reason. */
bool proto_is_bye(const struct proto_frame *f, enum proto_reason r);

/* --- hybrid mode: the session token in front of every datagram (PROTOCOL.md) --- */

/* Writes "<16 hex digits> " into out: PROTO_TOKEN_PREFIX bytes, no NUL. */
void proto_token_prefix(uint64_t token, char out[PROTO_TOKEN_PREFIX]);

/* Reads the token that opens a hybrid datagram, "<16 hex digits>[ <frame>]": on success
 * *token is set and *skip is how many bytes to drop (the token and one space; a datagram that
 * is only the token, or the token and LF/CR LF, leaves an empty frame). False when the
 * datagram does not start that way (upper-case digits included: one spelling per token). */
bool proto_take_token(const char *buf, size_t len, uint64_t *token, size_t *skip);

/* Wire names and human texts. Never NULL. */
const char *proto_err_name(enum proto_err e);
const char *proto_err_text(enum proto_err e);
const char *proto_reason_name(enum proto_reason r);
const char *proto_verb_name(enum proto_verb v);

/* Escapes bytes for a terminal or a log line: control characters, DEL, '"', '\\', C1
 * controls and bytes that are not valid UTF-8 become \n, \t, \", \\ or \xHH.
 * Writes at most cap-1 bytes plus a NUL; never splits an escape. Returns the length
 * written (excluding NUL). cap must be >= 1. */
size_t proto_escape(const char *in, size_t len, char *out, size_t cap);

/* --- formatting: each writes one frame without terminator, returns its length or -1
 *     when it would not fit in cap (nothing useful is written then). --- */
int proto_fmt_hello(char *buf, size_t cap, const char *id);
/* HELLO <id> <room>: registers straight into room (no JOINED notices to the default room) */
int proto_fmt_hello_in(char *buf, size_t cap, const char *id, const char *room);
/* HELLO <id> [<room>] padded with " #..." to at least min_len bytes (room may be NULL): what
 * a UDP client sends so that the server may answer it with a WELCOME (PROTO_HELLO_PAD). */
int proto_fmt_hello_pad(char *buf, size_t cap, const char *id, const char *room, size_t min_len);
int proto_fmt_msg(char *buf, size_t cap, uint64_t seq, const char *text, size_t text_len);
int proto_fmt_to(char *buf, size_t cap, const char *id, uint64_t seq, const char *text,
                 size_t text_len);
int proto_fmt_welcome(char *buf, size_t cap, const char *id, const char *addr);
/* WELCOME <id> <addr> <token> <udp_port>: the hybrid server's answer on the control link */
int proto_fmt_welcome_token(char *buf, size_t cap, const char *id, const char *addr, uint64_t token,
                            uint16_t udp_port);
int proto_fmt_ack(char *buf, size_t cap, uint64_t seq, uint64_t n);
/* FROM (private=false) or PRIV (private=true) */
int proto_fmt_from(char *buf, size_t cap, bool priv, const char *id, uint64_t seq, const char *text,
                   size_t text_len);
int proto_fmt_user(char *buf, size_t cap, const char *id, const char *addr, const char *room);
int proto_fmt_users(char *buf, size_t cap, uint64_t n);
int proto_fmt_pong(char *buf, size_t cap, const char *token, size_t token_len);
int proto_fmt_joined(char *buf, size_t cap, const char *id, const char *room);
int proto_fmt_left(char *buf, size_t cap, const char *id, const char *room, enum proto_reason r);
int proto_fmt_bye(char *buf, size_t cap, enum proto_reason r);
/* ERR <code> <text>; detail, when not NULL, is appended after ": " */
int proto_fmt_err(char *buf, size_t cap, enum proto_err e, const char *detail);
/* ERR <code>: the short form, without text (a UDP server's answer to an unregistered
 * address whose datagram was too short for the whole ERR). */
int proto_fmt_err_code(char *buf, size_t cap, enum proto_err e);

#endif
