/* registry: clients by id and rooms with member lists (see registry.h). */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void registry_init(struct registry *r)
{
    memset(r, 0, sizeof(*r));
}

void registry_destroy(struct registry *r)
{
    /* HASH_CLEAR frees only the tables; the items' app-order links stay readable */
    struct reg_member *m = r->by_id;
    HASH_CLEAR(hh, r->by_id);
    for (; m != NULL; m = m->hh.next) {
        m->room = NULL;
        m->prev_in_room = m->next_in_room = NULL;
    }
    struct reg_room *room = r->rooms;
    HASH_CLEAR(hh, r->rooms);
    while (room != NULL) {
        struct reg_room *next = room->hh.next;
        free(room);
        room = next;
    }
    r->count = 0;
}

struct reg_member *registry_find(const struct registry *r, const char *id, size_t len)
{
    struct reg_member *m = NULL;
    HASH_FIND(hh, r->by_id, id, len, m);
    return m;
}

struct reg_room *registry_room(const struct registry *r, const char *name, size_t len)
{
    struct reg_room *room = NULL;
    HASH_FIND(hh, r->rooms, name, len, room);
    return room;
}

/* The room called name, created empty when missing; NULL when out of memory. */
static struct reg_room *room_get(struct registry *r, const char *name, size_t len)
{
    struct reg_room *room = registry_room(r, name, len);
    if (room != NULL)
        return room;
    room = calloc(1, sizeof(*room));
    if (room == NULL)
        return NULL;
    memcpy(room->name, name, len);
    room->name[len] = '\0';
    HASH_ADD(hh, r->rooms, name[0], len, room);
    if (room->hh.tbl == NULL) { /* the table could not grow: registry.h */
        free(room);
        return NULL;
    }
    return room;
}

static void room_link(struct reg_room *room, struct reg_member *m)
{
    m->room = room;
    m->prev_in_room = NULL;
    m->next_in_room = room->first;
    if (room->first != NULL)
        room->first->prev_in_room = m;
    room->first = m;
    room->count++;
}

/* Unlinks m from its room and frees the room when it is left empty. */
static void room_unlink(struct registry *r, struct reg_member *m)
{
    struct reg_room *room = m->room;
    if (m->prev_in_room != NULL)
        m->prev_in_room->next_in_room = m->next_in_room;
    else
        room->first = m->next_in_room;
    if (m->next_in_room != NULL)
        m->next_in_room->prev_in_room = m->prev_in_room;
    m->prev_in_room = m->next_in_room = NULL;
    m->room = NULL;
    if (--room->count == 0) {
        HASH_DEL(r->rooms, room);
        free(room);
    }
}

int registry_add(struct registry *r, struct reg_member *m, const char *id, size_t id_len,
                 const char *room, size_t room_len, void *owner)
{
    if (!proto_valid_name(id, id_len) || !proto_valid_name(room, room_len))
        return -EINVAL;
    if (registry_find(r, id, id_len) != NULL)
        return -EEXIST;
    struct reg_room *rm = room_get(r, room, room_len);
    if (rm == NULL)
        return -ENOMEM;
    memcpy(m->id, id, id_len);
    m->id[id_len] = '\0';
    m->owner = owner;
    HASH_ADD(hh, r->by_id, id[0], id_len, m);
    if (m->hh.tbl == NULL) { /* the table could not grow: nothing changed but a new room */
        if (rm->count == 0) {
            HASH_DEL(r->rooms, rm);
            free(rm);
        }
        return -ENOMEM;
    }
    room_link(rm, m);
    r->count++;
    return 0;
}

void registry_remove(struct registry *r, struct reg_member *m)
{
    if (m->room == NULL)
        return;
    HASH_DEL(r->by_id, m);
    room_unlink(r, m);
    r->count--;
}

int registry_move(struct registry *r, struct reg_member *m, const char *room, size_t room_len)
{
    if (!proto_valid_name(room, room_len) || m->room == NULL)
        return -EINVAL;
    if (strlen(m->room->name) == room_len && memcmp(m->room->name, room, room_len) == 0)
        return 0;
    struct reg_room *to = room_get(r, room, room_len);
    if (to == NULL)
        return -ENOMEM;
    room_unlink(r, m);
    room_link(to, m);
    return 0;
}
