/* registry: connected clients by id (hash table) and rooms with member lists.
 *
 * Intrusive: the caller embeds a struct reg_member in its own client struct, so adding a
 * client allocates nothing but, for a new room, the room. Rooms are created on first join
 * and freed when their last member leaves, so a MSG fan-out walks one room's members:
 * O(room), not O(clients). Not thread-safe: the caller serialises every call (the chat
 * core holds its lock, chat.h); members and rooms may be read under that same lock. */
#ifndef CHATBENCH_REGISTRY_H
#define CHATBENCH_REGISTRY_H

#include "proto.h"

#include <stddef.h>
/* A hash table that cannot grow must not exit the server (chat.h, out of memory): uthash
 * then leaves the item out and sets its hh.tbl to NULL, which the adders check. */
#ifndef HASH_NONFATAL_OOM
#define HASH_NONFATAL_OOM 1
#endif
#include <uthash.h>

struct reg_room;

struct reg_member {
    char id[PROTO_ID_MAX + 1];
    struct reg_room *room;           /* NULL while not registered */
    struct reg_member *prev_in_room; /* the room's member list */
    struct reg_member *next_in_room;
    void *owner;       /* the caller's client struct (the chat core's struct chat_client) */
    UT_hash_handle hh; /* by_id, keyed by id */
};

struct reg_room {
    char name[PROTO_ID_MAX + 1];
    size_t count;             /* members */
    struct reg_member *first; /* member list, newest first */
    UT_hash_handle hh;        /* rooms, keyed by name */
};

struct registry {
    struct reg_member *by_id; /* uthash head */
    struct reg_room *rooms;   /* uthash head */
    size_t count;             /* registered members */
};

void registry_init(struct registry *r);

/* Frees the rooms. Members belong to the caller; they are only unlinked. */
void registry_destroy(struct registry *r);

/* Registers m under id (1..32 valid name characters) in room. Returns 0; -EEXIST when
 * another member holds id; -EINVAL for a bad id or room; -ENOMEM. m must not be
 * registered. On error nothing changed. */
int registry_add(struct registry *r, struct reg_member *m, const char *id, size_t id_len,
                 const char *room, size_t room_len, void *owner);

/* Unregisters m (a no-op when it is not registered); frees its room if now empty. */
void registry_remove(struct registry *r, struct reg_member *m);

/* Moves m to room (created if needed; the old one is freed when empty). Moving to the
 * room m is in changes nothing. Returns 0, -EINVAL or -ENOMEM (m stays where it was). */
int registry_move(struct registry *r, struct reg_member *m, const char *room, size_t room_len);

/* The member registered under id[0..len), or NULL. */
struct reg_member *registry_find(const struct registry *r, const char *id, size_t len);

/* The room called name[0..len), or NULL when it has no members. */
struct reg_room *registry_room(const struct registry *r, const char *name, size_t len);

static inline int registry_registered(const struct reg_member *m)
{
    return m->room != NULL;
}

#endif
