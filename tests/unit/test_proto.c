/* test_proto: the frame grammar of PROTOCOL.md, verb by verb, limit by limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"

#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static void assert_span(const char *p, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static enum proto_err pc(const char *s, struct proto_frame *f)
{
    return proto_parse_client(s, strlen(s), f);
}

static enum proto_err ps(const char *s, struct proto_frame *f)
{
    return proto_parse_server(s, strlen(s), f);
}

/* --- client frames --- */

static void test_hello(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("HELLO alice", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_HELLO);
    assert_span(f.id, f.id_len, "alice");
    assert_int_equal(pc("HELLO 123456789", &f), PROTO_OK);
    assert_int_equal(pc("HELLO a.b-c_D9", &f), PROTO_OK);
    assert_int_equal(pc("HELLO", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO ", &f), PROTO_E_BAD_FRAME);
    assert_null(f.room);
    assert_int_equal(pc("HELLO a r7", &f), PROTO_OK); /* register straight into a room */
    assert_span(f.id, f.id_len, "a");
    assert_span(f.room, f.room_len, "r7");
    assert_int_equal(pc("HELLO a r#7", &f), PROTO_E_BAD_ROOM);
    assert_int_equal(pc("HELLO a b c", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO a ", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO  a", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO al/ce", &f), PROTO_E_BAD_ID);
    assert_int_equal(pc("HELLO ali\xc3\xa7", &f), PROTO_E_BAD_ID);
}

/* PROTOCOL.md, "Reflection": a HELLO may end with padding, '#' and anything after it */
static void test_hello_padding(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("HELLO a #", &f), PROTO_OK);
    assert_span(f.id, f.id_len, "a");
    assert_null(f.room);
    assert_int_equal(pc("HELLO a # padded so that the WELCOME fits", &f), PROTO_OK);
    assert_span(f.id, f.id_len, "a");
    assert_null(f.room);
    assert_int_equal(pc("HELLO a r7 ########", &f), PROTO_OK);
    assert_span(f.room, f.room_len, "r7");
    assert_int_equal(pc("HELLO a r7 #x y #z", &f), PROTO_OK);
    assert_span(f.room, f.room_len, "r7");
    /* one space before the padding, as before any field; '#' inside a room is no padding */
    assert_int_equal(pc("HELLO a  #", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO a r7  #", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO a r7 x #", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("HELLO a r#7", &f), PROTO_E_BAD_ROOM);
    assert_int_equal(pc("HELLO #a", &f), PROTO_E_BAD_ID);
    assert_int_equal(pc("HELLO a #\x01", &f), PROTO_OK);        /* the padding is never looked at */
    assert_int_equal(pc("HELLO a #\n", &f), PROTO_E_BAD_FRAME); /* but is still a frame */
}

static void test_fmt_hello_pad(void **state)
{
    (void)state;
    char b[128];
    struct proto_frame f;
    int n = proto_fmt_hello_pad(b, sizeof(b), "carol", NULL, PROTO_HELLO_PAD);
    assert_int_equal(n, PROTO_HELLO_PAD);
    assert_int_equal(strlen(b), PROTO_HELLO_PAD);
    assert_memory_equal(b, "HELLO carol ##", 14);
    assert_int_equal(proto_parse_client(b, (size_t)n, &f), PROTO_OK);
    assert_span(f.id, f.id_len, "carol");
    assert_null(f.room);
    n = proto_fmt_hello_pad(b, sizeof(b), "carol", "r1", PROTO_HELLO_PAD);
    assert_int_equal(n, PROTO_HELLO_PAD);
    assert_int_equal(proto_parse_client(b, (size_t)n, &f), PROTO_OK);
    assert_span(f.room, f.room_len, "r1");
    /* long enough already: nothing added */
    assert_int_equal(proto_fmt_hello_pad(b, sizeof(b), "carol", "r1", 5), 14);
    assert_string_equal(b, "HELLO carol r1");
    /* a pad of one byte is " #": never a bare trailing space */
    n = proto_fmt_hello_pad(b, sizeof(b), "carol", NULL, 12);
    assert_string_equal(b, "HELLO carol #");
    assert_int_equal(n, 13);
    assert_int_equal(proto_fmt_hello_pad(b, 64, "carol", NULL, 64), -1); /* no room for NUL */
    /* the longest WELCOME, with its LF, fits what a padded HELLO is worth */
    char id[PROTO_ID_MAX + 1];
    memset(id, 'x', PROTO_ID_MAX);
    id[PROTO_ID_MAX] = '\0';
    n = proto_fmt_welcome(b, sizeof(b), id, "255.255.255.255:65535");
    assert_true(n + 1 <= PROTO_HELLO_PAD);
}

static void test_id_limits(void **state)
{
    (void)state;
    char id33[34];
    memset(id33, 'x', 33);
    id33[33] = '\0';
    assert_false(proto_valid_name(id33, 33));
    assert_true(proto_valid_name(id33, 32));
    assert_false(proto_valid_name("", 0));
    assert_true(proto_valid_name("a", 1));
    assert_false(proto_valid_name("a b", 3));
    assert_false(proto_valid_name("a:b", 3));
}

static void test_msg(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("MSG 7 hello world", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
    assert_int_equal(f.seq, 7);
    assert_span(f.text, f.text_len, "hello world");

    assert_int_equal(pc("MSG 0", &f), PROTO_OK); /* empty text */
    assert_int_equal(f.seq, 0);
    assert_int_equal(f.text_len, 0);

    assert_int_equal(pc("MSG - no seq", &f), PROTO_OK);
    assert_true(f.seq == PROTO_NO_SEQ);
    assert_span(f.text, f.text_len, "no seq");

    assert_int_equal(pc("MSG 18446744073709551614 x", &f), PROTO_OK);
    assert_true(f.seq == UINT64_MAX - 1);
    assert_int_equal(pc("MSG 18446744073709551615 x", &f), PROTO_E_BAD_FRAME); /* reserved */
    assert_int_equal(pc("MSG 99999999999999999999 x", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("MSG abc", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("MSG -1 x", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("MSG +1 x", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("MSG", &f), PROTO_E_BAD_FRAME);
}

static void test_plain_text_is_chat(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("hello there", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
    assert_true(f.seq == PROTO_NO_SEQ);
    assert_span(f.text, f.text_len, "hello there");
    /* a verb must be a whole word: these are chat too */
    assert_int_equal(pc("MSGx 1 a", &f), PROTO_OK);
    assert_span(f.text, f.text_len, "MSGx 1 a");
    assert_int_equal(pc("hello HELLO", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
    /* server verbs sent by a client are plain text, not commands */
    assert_int_equal(pc("ACK 1 1", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
    /* verbs are case-sensitive */
    assert_int_equal(pc("hello bob", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
    assert_int_equal(pc(" leading space", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_MSG);
}

static void test_to(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("TO bob 3 psst secret", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_TO);
    assert_span(f.id, f.id_len, "bob");
    assert_int_equal(f.seq, 3);
    assert_span(f.text, f.text_len, "psst secret");
    assert_int_equal(pc("TO bob - x", &f), PROTO_OK);
    assert_true(f.seq == PROTO_NO_SEQ);
    assert_int_equal(pc("TO bob", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("TO b@b 1 x", &f), PROTO_E_BAD_ID);
    assert_int_equal(pc("TO bob x y", &f), PROTO_E_BAD_FRAME);
}

static void test_join_who_ping_bye(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(pc("JOIN r1", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_JOIN);
    assert_span(f.room, f.room_len, "r1");
    assert_int_equal(pc("JOIN", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("JOIN r 1", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("JOIN r#1", &f), PROTO_E_BAD_ROOM);

    assert_int_equal(pc("WHO", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_WHO);
    assert_int_equal(pc("WHO x", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("WHO ", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(pc("JOIN r1 ", &f), PROTO_E_BAD_FRAME);

    assert_int_equal(pc("PING", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_PING);
    assert_int_equal(f.text_len, 0);
    assert_int_equal(pc("PING tok 12", &f), PROTO_OK);
    assert_span(f.text, f.text_len, "tok 12");

    assert_int_equal(pc("BYE", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_BYE);
    assert_int_equal(pc("BYE now", &f), PROTO_E_BAD_FRAME);
}

static void test_bad_bytes(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(proto_parse_client(S("MSG 1 a\0b"), &f), PROTO_E_BAD_FRAME);
    assert_int_equal(proto_parse_client(S("\0"), &f), PROTO_E_BAD_FRAME);
    assert_int_equal(proto_parse_client(S("MSG 1 a\nb"), &f), PROTO_E_BAD_FRAME);
    assert_int_equal(proto_parse_client(S("a\rb"), &f), PROTO_E_BAD_FRAME);
    assert_int_equal(proto_parse_client("", 0, &f), PROTO_E_BAD_FRAME);
    assert_int_equal(proto_parse_client(S("\xff\x78\x9c"), &f), PROTO_E_BAD_FRAME);
    /* invalid UTF-8 and control characters are text: relayed, escaped on output */
    assert_int_equal(proto_parse_client(S("MSG 1 \xc3\x28\x1b[2J"), &f), PROTO_OK);
    assert_int_equal(f.text_len, 6);
}

/* --- server frames --- */

static void test_server_frames(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(ps("WELCOME alice 127.0.0.1:5555", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_WELCOME);
    assert_span(f.id, f.id_len, "alice");
    assert_span(f.addr, f.addr_len, "127.0.0.1:5555");

    assert_int_equal(ps("ACK 5 9", &f), PROTO_OK);
    assert_int_equal(f.seq, 5);
    assert_int_equal(f.n, 9);
    assert_int_equal(ps("ACK - 2", &f), PROTO_OK);
    assert_true(f.seq == PROTO_NO_SEQ);
    assert_int_equal(ps("ACK 5", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("ACK 5 -", &f), PROTO_E_BAD_FRAME);

    assert_int_equal(ps("FROM bob 4 hi there", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_FROM);
    assert_span(f.id, f.id_len, "bob");
    assert_span(f.text, f.text_len, "hi there");
    assert_int_equal(ps("PRIV bob - x", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_PRIV);

    assert_int_equal(ps("USER bob 127.0.0.1:1 lobby", &f), PROTO_OK);
    assert_span(f.room, f.room_len, "lobby");
    assert_int_equal(ps("USERS 2", &f), PROTO_OK);
    assert_int_equal(f.n, 2);
    assert_int_equal(ps("PONG 17", &f), PROTO_OK);
    assert_span(f.text, f.text_len, "17");
    assert_int_equal(ps("JOINED bob r1", &f), PROTO_OK);
    assert_int_equal(ps("LEFT bob r1 timeout", &f), PROTO_OK);
    assert_span(f.text, f.text_len, "timeout");
    assert_int_equal(ps("BYE shutdown", &f), PROTO_OK);
    assert_int_equal(f.verb, PROTO_BYE);
    assert_int_equal(ps("ERR id_in_use id in use", &f), PROTO_OK);
    assert_span(f.code, f.code_len, "id_in_use");
    assert_span(f.text, f.text_len, "id in use");

    assert_int_equal(ps("HELLO x", &f), PROTO_E_BAD_FRAME); /* a client verb */
    assert_int_equal(ps("whatever", &f), PROTO_E_BAD_FRAME);
}

/* --- hybrid: tokens and WELCOME with a token --- */

static void test_welcome_token(void **state)
{
    (void)state;
    struct proto_frame f;
    assert_int_equal(ps("WELCOME alice 127.0.0.1:5555 00ff00ff00ff00ff 5001", &f), PROTO_OK);
    assert_true(f.has_token);
    assert_true(f.token == 0x00ff00ff00ff00ffull);
    assert_int_equal(f.udp_port, 5001);
    assert_span(f.addr, f.addr_len, "127.0.0.1:5555");
    assert_int_equal(ps("WELCOME alice 127.0.0.1:5555", &f), PROTO_OK);
    assert_false(f.has_token);
    /* a token must be 16 lower-case hex digits, the port 1..65535, nothing after */
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00FF00FF00FF00FF 5001", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00f 5001", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff0 5001", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff 0", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff 65536", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff 1 x", &f), PROTO_E_BAD_FRAME);
    assert_int_equal(ps("WELCOME a 1.2.3.4:5 00ff00ff00ff00ff 1 ", &f), PROTO_E_BAD_FRAME);

    char b[128];
    int n =
        proto_fmt_welcome_token(b, sizeof(b), "bob", "10.0.0.1:9", 0xfedcba9876543210ull, 65535);
    assert_true(n > 0);
    assert_string_equal(b, "WELCOME bob 10.0.0.1:9 fedcba9876543210 65535");
    assert_int_equal(proto_parse_server(b, (size_t)n, &f), PROTO_OK);
    assert_true(f.has_token && f.token == 0xfedcba9876543210ull && f.udp_port == 65535);
    assert_int_equal(proto_fmt_welcome_token(b, 20, "bob", "10.0.0.1:9", 1, 1), -1);
}

static void test_token_prefix(void **state)
{
    (void)state;
    char pre[PROTO_TOKEN_PREFIX];
    proto_token_prefix(0x1ull, pre);
    assert_memory_equal(pre, "0000000000000001 ", PROTO_TOKEN_PREFIX);
    proto_token_prefix(UINT64_MAX, pre);
    assert_memory_equal(pre, "ffffffffffffffff ", PROTO_TOKEN_PREFIX);

    uint64_t t = 0;
    size_t skip = 0;
    assert_true(proto_take_token(S("0123456789abcdef MSG 1 hi"), &t, &skip));
    assert_true(t == 0x0123456789abcdefull);
    assert_int_equal(skip, PROTO_TOKEN_PREFIX);
    assert_true(proto_take_token(S("0123456789abcdef"), &t, &skip)); /* a bare keep-alive */
    assert_int_equal(skip, PROTO_TOKEN_LEN);
    assert_true(proto_take_token(S("0123456789abcdef\n"), &t, &skip));
    assert_int_equal(skip, PROTO_TOKEN_LEN);
    assert_false(proto_take_token(S("0123456789ABCDEF MSG 1 hi"), &t, &skip));
    assert_false(proto_take_token(S("0123456789abcdefMSG"), &t, &skip));
    assert_false(proto_take_token(S("0123456789abcde"), &t, &skip));
    assert_false(proto_take_token(S("MSG 1 hello world there"), &t, &skip));
    /* what proto_token_prefix writes, proto_take_token reads back */
    proto_token_prefix(0xdeadbeefcafef00dull, pre);
    assert_true(proto_take_token(pre, sizeof(pre), &t, &skip));
    assert_true(t == 0xdeadbeefcafef00dull && skip == PROTO_TOKEN_PREFIX);
}

static void test_lookup_and_matchers(void **state)
{
    (void)state;
    assert_int_equal(proto_verb_lookup(S("MSG")), PROTO_MSG);
    assert_int_equal(proto_verb_lookup(S("USERS")), PROTO_USERS);
    assert_int_equal(proto_verb_lookup(S("USER")), PROTO_USER);
    assert_int_equal(proto_verb_lookup(S("msg")), PROTO_NONE);
    assert_int_equal(proto_verb_lookup(S("MSGX")), PROTO_NONE);
    assert_int_equal(proto_verb_lookup(S("")), PROTO_NONE);
    for (int v = PROTO_HELLO; v <= PROTO_ERR; v++) {
        const char *w = proto_verb_name((enum proto_verb)v);
        assert_int_equal(proto_verb_lookup(w, strlen(w)), v);
    }

    struct proto_frame f;
    assert_int_equal(ps("ERR server_full server full", &f), PROTO_OK);
    assert_true(proto_is_err(&f, PROTO_E_FULL));
    assert_false(proto_is_err(&f, PROTO_E_NOT_REG));
    assert_int_equal(ps("ERR server_fullx server full", &f), PROTO_OK);
    assert_false(proto_is_err(&f, PROTO_E_FULL));
    assert_int_equal(ps("BYE timeout", &f), PROTO_OK);
    assert_true(proto_is_bye(&f, PROTO_R_TIMEOUT));
    assert_false(proto_is_bye(&f, PROTO_R_QUIT));
    assert_false(proto_is_err(&f, PROTO_E_TIMEOUT)); /* a BYE is no ERR */
    assert_int_equal(ps("BYE timeouts", &f), PROTO_OK);
    assert_false(proto_is_bye(&f, PROTO_R_TIMEOUT));
}

/* --- round trips: every formatter's output parses back to its inputs --- */

static void test_format_round_trip(void **state)
{
    (void)state;
    char b[256];
    struct proto_frame f;
    int n;

    n = proto_fmt_msg(b, sizeof(b), 42, S("a b c"));
    assert_int_equal(proto_parse_client(b, (size_t)n, &f), PROTO_OK);
    assert_int_equal(f.seq, 42);
    assert_span(f.text, f.text_len, "a b c");

    n = proto_fmt_to(b, sizeof(b), "bob", PROTO_NO_SEQ, S("x"));
    assert_string_equal(b, "TO bob - x");
    assert_int_equal(proto_parse_client(b, (size_t)n, &f), PROTO_OK);

    n = proto_fmt_hello(b, sizeof(b), "alice");
    assert_string_equal(b, "HELLO alice");
    n = proto_fmt_hello_in(b, sizeof(b), "alice", "r1");
    assert_string_equal(b, "HELLO alice r1");
    assert_int_equal(proto_parse_client(b, (size_t)n, &f), PROTO_OK);
    assert_span(f.room, f.room_len, "r1");

    n = proto_fmt_from(b, sizeof(b), false, "alice", 3, S("hey"));
    assert_string_equal(b, "FROM alice 3 hey");
    assert_int_equal(proto_parse_server(b, (size_t)n, &f), PROTO_OK);
    n = proto_fmt_from(b, sizeof(b), true, "alice", PROTO_NO_SEQ, S("hey"));
    assert_string_equal(b, "PRIV alice - hey");

    proto_fmt_ack(b, sizeof(b), 3, 10);
    assert_string_equal(b, "ACK 3 10");
    proto_fmt_welcome(b, sizeof(b), "a", "127.0.0.1:9");
    assert_string_equal(b, "WELCOME a 127.0.0.1:9");
    proto_fmt_user(b, sizeof(b), "a", "127.0.0.1:9", "lobby");
    assert_string_equal(b, "USER a 127.0.0.1:9 lobby");
    proto_fmt_users(b, sizeof(b), 0);
    assert_string_equal(b, "USERS 0");
    proto_fmt_pong(b, sizeof(b), "", 0);
    assert_string_equal(b, "PONG");
    proto_fmt_pong(b, sizeof(b), S("t 1"));
    assert_string_equal(b, "PONG t 1");
    proto_fmt_joined(b, sizeof(b), "a", "r");
    assert_string_equal(b, "JOINED a r");
    proto_fmt_left(b, sizeof(b), "a", "r", PROTO_R_SLOW);
    assert_string_equal(b, "LEFT a r slow");
    proto_fmt_bye(b, sizeof(b), PROTO_R_SHUTDOWN);
    assert_string_equal(b, "BYE shutdown");
    n = proto_fmt_err(b, sizeof(b), PROTO_E_UNKNOWN_USER, "zed");
    assert_string_equal(b, "ERR unknown_user no such user: zed");
    assert_int_equal(proto_parse_server(b, (size_t)n, &f), PROTO_OK);
    assert_span(f.code, f.code_len, "unknown_user");
    /* the short form: a code without text still parses */
    n = proto_fmt_err_code(b, sizeof(b), PROTO_E_NOT_REG);
    assert_string_equal(b, "ERR not_registered");
    assert_int_equal(proto_parse_server(b, (size_t)n, &f), PROTO_OK);
    assert_true(proto_is_err(&f, PROTO_E_NOT_REG));
    assert_int_equal(f.text_len, 0);
    assert_int_equal(proto_fmt_err_code(b, sizeof(b), PROTO_E_PAD), 7);
    assert_string_equal(b, "ERR pad");
    proto_fmt_left(b, sizeof(b), "a", "r", PROTO_R_IDLE);
    assert_string_equal(b, "LEFT a r idle");
    proto_fmt_bye(b, sizeof(b), PROTO_R_IDLE);
    assert_string_equal(b, "BYE idle");
}

static void test_format_overflow(void **state)
{
    (void)state;
    char b[12];
    assert_int_equal(proto_fmt_msg(b, sizeof(b), 1, S("0123456789")), -1);
    assert_int_equal(proto_fmt_msg(b, sizeof(b), 1, S("01234")), 11); /* exactly fits */
    assert_string_equal(b, "MSG 1 01234");
    assert_int_equal(proto_fmt_msg(b, sizeof(b), 1, S("012345")), -1);
    assert_int_equal(proto_fmt_hello(b, 5, "alice"), -1);
    assert_int_equal(proto_fmt_ack(b, sizeof(b), 123456, 123456), -1);
}

static void test_every_name_defined(void **state)
{
    (void)state;
    for (int e = 0; e < PROTO_E__COUNT; e++) {
        assert_non_null(proto_err_name((enum proto_err)e));
        assert_true(strlen(proto_err_name((enum proto_err)e)) > 0);
        assert_null(strchr(proto_err_name((enum proto_err)e), ' '));
    }
    for (int r = 0; r < PROTO_R__COUNT; r++)
        assert_true(strlen(proto_reason_name((enum proto_reason)r)) > 0);
    assert_string_equal(proto_err_name(PROTO_E__COUNT), "unknown");
}

/* --- line framing --- */

static void test_next_line(void **state)
{
    (void)state;
    size_t ll = 99, used = 99;
    assert_int_equal(proto_next_line(S("abc\ndef"), 10, &ll, &used), 1);
    assert_int_equal(ll, 3);
    assert_int_equal(used, 4);
    assert_int_equal(proto_next_line(S("abc\r\n"), 10, &ll, &used), 1);
    assert_int_equal(ll, 3);
    assert_int_equal(used, 5);
    assert_int_equal(proto_next_line(S("\n"), 10, &ll, &used), 1);
    assert_int_equal(ll, 0);
    assert_int_equal(proto_next_line(S("abc"), 10, &ll, &used), 0);
    /* exactly max bytes, then LF or CR LF: accepted */
    assert_int_equal(proto_next_line(S("0123456789\n"), 10, &ll, &used), 1);
    assert_int_equal(ll, 10);
    assert_int_equal(proto_next_line(S("0123456789\r\n"), 10, &ll, &used), 1);
    assert_int_equal(ll, 10);
    /* max bytes (plus a possible CR) still waiting for their LF */
    assert_int_equal(proto_next_line(S("0123456789"), 10, &ll, &used), 0);
    assert_int_equal(proto_next_line(S("0123456789\r"), 10, &ll, &used), 0);
    /* one byte too many */
    assert_int_equal(proto_next_line(S("0123456789a\n"), 10, &ll, &used), -1);
    assert_int_equal(proto_next_line(S("0123456789ab"), 10, &ll, &used), -1);
    /* an LF far beyond the limit is not looked for */
    assert_int_equal(proto_next_line(S("0123456789abcdef\n"), 10, &ll, &used), -1);
}

/* --- escaping --- */

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    proto_escape(S("plain"), out, sizeof(out));
    assert_string_equal(out, "plain");
    proto_escape(S("a\"b\\c"), out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c");
    proto_escape(S("\x1b[2J\r\n\t\x7f"), out, sizeof(out));
    assert_string_equal(out, "\\x1b[2J\\x0d\\n\\t\\x7f");
    proto_escape(S("a\0b"), out, sizeof(out));
    assert_string_equal(out, "a\\x00b");
    /* valid UTF-8 kept, invalid bytes and C1 controls escaped */
    proto_escape(S("conex\xc3\xb5"
                   "es"),
                 out, sizeof(out));
    assert_string_equal(out, "conex\xc3\xb5"
                             "es");
    proto_escape(S("\xc3\x28"), out, sizeof(out));
    assert_string_equal(out, "\\xc3(");
    proto_escape(S("\xc2\x9b"), out, sizeof(out)); /* U+009B, CSI */
    assert_string_equal(out, "\\xc2\\x9b");
    proto_escape(S("\xe2\x82"), out, sizeof(out)); /* truncated sequence */
    assert_string_equal(out, "\\xe2\\x82");
    proto_escape(S("\xc0\xaf"), out, sizeof(out)); /* overlong '/' */
    assert_string_equal(out, "\\xc0\\xaf");
    proto_escape(S("a\xe2\x80\xae"
                   "b"),
                 out, sizeof(out)); /* U+202E RIGHT-TO-LEFT OVERRIDE */
    assert_string_equal(out, "a\\xe2\\x80\\xaeb");
    proto_escape(S("\xe2\x81\xa6"), out, sizeof(out)); /* U+2066 LEFT-TO-RIGHT ISOLATE */
    assert_string_equal(out, "\\xe2\\x81\\xa6");
    proto_escape(S("\xe2\x80\x94"), out, sizeof(out)); /* U+2014 EM DASH stays */
    assert_string_equal(out, "\xe2\x80\x94");
    proto_escape(S("\xf0\x9f\x98\x80"), out, sizeof(out)); /* emoji */
    assert_string_equal(out, "\xf0\x9f\x98\x80");
}

static void test_escape_truncates_whole(void **state)
{
    (void)state;
    char out[6];
    /* "ab" + "\x1b" would need 6 bytes plus NUL: the escape is dropped whole */
    size_t n = proto_escape(S("ab\x1b"), out, sizeof(out));
    assert_int_equal(n, 2);
    assert_string_equal(out, "ab");
    char one[1];
    assert_int_equal(proto_escape(S("abc"), one, sizeof(one)), 0);
    assert_string_equal(one, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_hello_padding),
        cmocka_unit_test(test_fmt_hello_pad),
        cmocka_unit_test(test_id_limits),
        cmocka_unit_test(test_msg),
        cmocka_unit_test(test_plain_text_is_chat),
        cmocka_unit_test(test_to),
        cmocka_unit_test(test_join_who_ping_bye),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_server_frames),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_overflow),
        cmocka_unit_test(test_every_name_defined),
        cmocka_unit_test(test_next_line),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_truncates_whole),
        cmocka_unit_test(test_welcome_token),
        cmocka_unit_test(test_token_prefix),
        cmocka_unit_test(test_lookup_and_matchers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
