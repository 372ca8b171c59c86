/* test_registry: clients by id and rooms: add, duplicate, remove, move, room lifetime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../servers/registry.h"

#include <errno.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static size_t members(const struct reg_room *room)
{
    size_t n = 0;
    for (const struct reg_member *m = room ? room->first : NULL; m; m = m->next_in_room)
        n++;
    return n;
}

static void test_add_find(void **state)
{
    (void)state;
    struct registry r;
    struct reg_member a = {0}, b = {0};
    int owner_a, owner_b;
    registry_init(&r);
    assert_null(registry_find(&r, S("alice")));
    assert_int_equal(registry_add(&r, &a, S("alice"), S("lobby"), &owner_a), 0);
    assert_int_equal(registry_add(&r, &b, S("bob"), S("lobby"), &owner_b), 0);
    assert_ptr_equal(registry_find(&r, S("alice")), &a);
    assert_ptr_equal(registry_find(&r, S("bob"))->owner, &owner_b);
    assert_null(registry_find(&r, S("alic"))); /* exact length match */
    assert_string_equal(a.id, "alice");
    assert_int_equal(r.count, 2);
    struct reg_room *lobby = registry_room(&r, S("lobby"));
    assert_non_null(lobby);
    assert_int_equal(lobby->count, 2);
    assert_int_equal(members(lobby), 2);
    assert_true(registry_registered(&a));
    registry_destroy(&r);
}

static void test_duplicate_and_invalid(void **state)
{
    (void)state;
    struct registry r;
    struct reg_member a = {0}, a2 = {0};
    registry_init(&r);
    assert_int_equal(registry_add(&r, &a, S("alice"), S("lobby"), NULL), 0);
    assert_int_equal(registry_add(&r, &a2, S("alice"), S("other"), NULL), -EEXIST);
    assert_false(registry_registered(&a2));
    assert_null(registry_room(&r, S("other")));          /* a refusal leaves no empty room */
    assert_ptr_equal(registry_find(&r, S("alice")), &a); /* the holder is undisturbed */
    assert_int_equal(registry_add(&r, &a2, S("bad id"), S("lobby"), NULL), -EINVAL);
    assert_int_equal(registry_add(&r, &a2, S("ok"), S(""), NULL), -EINVAL);
    assert_int_equal(r.count, 1);
    registry_destroy(&r);
}

static void test_remove(void **state)
{
    (void)state;
    struct registry r;
    struct reg_member m[3];
    memset(m, 0, sizeof(m));
    const char *ids[3] = {"a", "b", "c"};
    registry_init(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(registry_add(&r, &m[i], ids[i], 1, S("lobby"), NULL), 0);
    registry_remove(&r, &m[1]); /* from the middle of the member list */
    assert_null(registry_find(&r, S("b")));
    assert_false(registry_registered(&m[1]));
    registry_remove(&r, &m[1]); /* twice: a no-op */
    assert_int_equal(registry_room(&r, S("lobby"))->count, 2);
    assert_int_equal(members(registry_room(&r, S("lobby"))), 2);
    registry_remove(&r, &m[2]); /* the list's head */
    registry_remove(&r, &m[0]);
    assert_null(registry_room(&r, S("lobby"))); /* an empty room is freed */
    assert_int_equal(r.count, 0);
    /* the id is free again */
    assert_int_equal(registry_add(&r, &m[1], S("a"), S("lobby"), NULL), 0);
    registry_destroy(&r);
}

static void test_move(void **state)
{
    (void)state;
    struct registry r;
    struct reg_member a = {0}, b = {0};
    registry_init(&r);
    assert_int_equal(registry_add(&r, &a, S("alice"), S("lobby"), NULL), 0);
    assert_int_equal(registry_add(&r, &b, S("bob"), S("lobby"), NULL), 0);
    assert_int_equal(registry_move(&r, &a, S("games")), 0);
    assert_string_equal(a.room->name, "games");
    assert_int_equal(registry_room(&r, S("lobby"))->count, 1);
    assert_ptr_equal(registry_room(&r, S("lobby"))->first, &b);
    assert_int_equal(registry_room(&r, S("games"))->count, 1);
    assert_int_equal(registry_move(&r, &a, S("games")), 0); /* same room: no change */
    assert_int_equal(registry_room(&r, S("games"))->count, 1);
    assert_int_equal(registry_move(&r, &a, S("bad room")), -EINVAL);
    assert_string_equal(a.room->name, "games");
    assert_int_equal(registry_move(&r, &b, S("games")), 0);
    assert_null(registry_room(&r, S("lobby"))); /* left empty: freed */
    assert_int_equal(members(registry_room(&r, S("games"))), 2);
    struct reg_member c = {0};
    assert_int_equal(registry_move(&r, &c, S("games")), -EINVAL); /* not registered */
    registry_destroy(&r);
    assert_false(registry_registered(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find),
        cmocka_unit_test(test_duplicate_and_invalid),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
