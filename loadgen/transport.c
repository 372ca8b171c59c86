/* transport: the table of the load generator's transports and what they share (see
 * transport.h). */
#include "transport.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "worker.h"

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

int lg_sock_bind_source(int fd, const struct lg_worker *w, const struct lg_client *c, bool tcp)
{
    const struct lg_config *cfg = w->cfg;
    if (cfg->nsources == 0)
        return 0;
    uint32_t local = lg_shard_local(&cfg->shard, cfg->room_size, c->index);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr = cfg->sources[local % cfg->nsources]};
    if (tcp) {
        int one = 1;
        /* best effort: without it (kernels before 4.2) bind picks the port, and each source
         * address still has its own range */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    return bind(fd, (const struct sockaddr *)&src, sizeof(src)) < 0 ? -errno : 0;
}
