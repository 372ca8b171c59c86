/* transport: the table of the load generator's transports and what they share (see
 * transport.h). */
#include "transport.h"

#include <event2/event.h>
#include <string.h>
#include <unistd.h>

static const struct lg_transport *const all[] = {&lg_tcp, &lg_udp, &lg_hybrid};

const struct lg_transport *lg_transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

void lg_sock_close(int *fd, struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
    if (*fd >= 0) {
        close(*fd); /* nothing useful to do if it fails */
        *fd = -1;
    }
}
