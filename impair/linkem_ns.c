/* linkem_ns: the plumbing of bin/linkem's link: the two TUN devices, the new network namespace
 * with its addresses and routes, COMMAND's process (and every process it leaves behind) and
 * the kernel's own drop counters at the devices.
 *
 * Everything is done with system calls, nothing is shelled out to ip(8): the outer TUN is
 * opened here; unshare(CLONE_NEWNET) moves linkem into a fresh namespace where the inner TUN,
 * loopback and the default route are set up; setns() comes back. A TUN device lives in the
 * namespace where /dev/net/tun was opened and, being non-persistent, vanishes with its file
 * descriptor, and the namespace with its last process and reference: so nothing survives
 * linkem but processes that escaped the teardown (see lk_net_signal_all). */
#include "linkem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- devices and addresses --- */

static int tun_open(const char *pattern, char name[16])
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            lk_die(LK_EXIT_USAGE, "/dev/net/tun is missing: load the tun module (modprobe tun); "
                                  "in a container pass the device (--device /dev/net/tun)");
        if (errno == EACCES || errno == EPERM)
            lk_die(LK_EXIT_USAGE, "cannot open /dev/net/tun (%s): run linkem as root",
                   strerror(errno));
        lk_die(1, "cannot open /dev/net/tun: %s", strerror(errno));
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI; /* bare IP packets: no 4-byte header to strip */
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", pattern);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        if (errno == EPERM)
            lk_die(LK_EXIT_USAGE, "creating a TUN device needs CAP_NET_ADMIN: run linkem as root");
        lk_die(1, "cannot create a TUN device (%s): %s", pattern, strerror(errno));
    }
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = '\0';
    return fd;
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr = a;
    memcpy(sa, &sin, sizeof sin);
}

static void if_ioctl(int sock, unsigned long req, struct ifreq *ifr, const char *what)
{
    if (ioctl(sock, req, ifr) < 0)
        lk_die(1, "%s on %s: %s", what, ifr->ifr_name, strerror(errno));
}

static void if_up(int sock, const char *dev)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
    if_ioctl(sock, SIOCGIFFLAGS, &ifr, "reading the flags");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if_ioctl(sock, SIOCSIFFLAGS, &ifr, "bringing the device up");
}

/* IPv6 off on our device, so that nothing but what the programs send crosses the link (no
 * router solicitations, no MLD reports in the counts). Best effort: the kernel may have no
 * IPv6 at all. The path resolves in the namespace linkem is in when it opens it. */
static void no_ipv6(const char *dev)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)!write(fd, "1", 1); /* best effort, see above */
    close(fd);
}

/* Address local, peer at the other end, on a /30; MTU; up. Configured while down, so that the
 * prefix route is made once, from the final netmask, when the device comes up. */
static void if_config(int sock, const char *dev, struct in_addr local, struct in_addr peer)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
    no_ipv6(dev);
    set_sin(&ifr.ifr_addr, local);
    if_ioctl(sock, SIOCSIFADDR, &ifr, "setting the address");
    struct in_addr mask = {htonl(0xfffffffcu)};
    set_sin(&ifr.ifr_netmask, mask);
    if_ioctl(sock, SIOCSIFNETMASK, &ifr, "setting the netmask");
    set_sin(&ifr.ifr_dstaddr, peer);
    if_ioctl(sock, SIOCSIFDSTADDR, &ifr, "setting the peer address");
    ifr.ifr_mtu = LK_MTU;
    if_ioctl(sock, SIOCSIFMTU, &ifr, "setting the MTU");
    if_up(sock, dev);
}

static int ctl_socket(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        lk_die(1, "socket: %s", strerror(errno));
    return s;
}

/* Another link (or anything) already using our /30 here would steal or confuse the routes. */
static void check_free(const struct lk_config *c)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return; /* cannot tell: the ioctls below still fail loudly on a real clash */
    uint32_t net = ntohl(c->net.s_addr);
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        struct sockaddr_in sin;
        memcpy(&sin, i->ifa_addr, sizeof sin);
        if ((ntohl(sin.sin_addr.s_addr) & ~3u) == net) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &sin.sin_addr, a, sizeof a);
            lk_die(1, "%s is already on %s here (another linkem?): pick another --net", a,
                   i->ifa_name);
        }
    }
    freeifaddrs(ifs);
}

/* --- the kernel's drop counters (/proc/net/dev of each namespace) --- */

static int open_procdev(void)
{
    /* /proc/self/net is the namespace of whoever opens it: this fd keeps reading the one
     * linkem is in now, wherever linkem goes next */
    int fd = open("/proc/self/net/dev", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        lk_die(1, "cannot open /proc/self/net/dev: %s", strerror(errno));
    return fd;
}

/* rx_drop and tx_drop of dev, or 0 and 0 when it cannot be read (best effort: the report
 * then says 0, which the balance of the other counts does not depend on). */
static void read_drops(int fd, const char *dev, uint64_t *rx, uint64_t *tx)
{
    *rx = *tx = 0;
    char buf[8192];
    size_t have = 0;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        if (have == sizeof buf - 1)
            break; /* our devices are near the top: a namespace this big is not ours */
    }
    buf[have] = '\0';
    size_t dl = strlen(dev);
    for (char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, dev, dl) != 0 || p[dl] != ':')
            continue;
        uint64_t v[16];
        if (sscanf(p + dl + 1,
                   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                   &v[11]) == 12) {
            *rx = v[3];  /* receive: bytes packets errs drop */
            *tx = v[11]; /* transmit: bytes packets errs drop */
        }
        return;
    }
}

void lk_net_kdrops(const struct lk_net *n, enum impair_dir dir, uint64_t *in, uint64_t *out)
{
    uint64_t rx[2], tx[2]; /* [0] outer, [1] inner */
    read_drops(n->procdev_outer, n->dev_outer, &rx[0], &tx[0]);
    read_drops(n->procdev_inner, n->dev_inner, &rx[1], &tx[1]);
    /* up: the inner kernel hands packets to linkem (tx of the inner device), linkem writes
     * them to the outer one (rx); down the other way round */
    int from = dir == IMPAIR_UP ? 1 : 0, to = 1 - from;
    *in = tx[from] - n->kd0_tx[from];
    *out = rx[to] - n->kd0_rx[to];
}

/* --- set-up --- */

void lk_net_setup(struct lk_net *n, const struct lk_config *c)
{
    memset(n, 0, sizeof *n);
    n->tun_outer = n->tun_inner = n->ns_inner = n->procdev_outer = n->procdev_inner = -1;
    check_free(c);
    n->tun_outer = tun_open("linkem%d", n->dev_outer);
    int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (here < 0)
        lk_die(1, "cannot open /proc/self/ns/net: %s", strerror(errno));
    int s = ctl_socket();
    if_config(s, n->dev_outer, c->outer, c->inner);
    close(s);
    n->procdev_outer = open_procdev();

    if (unshare(CLONE_NEWNET) < 0) {
        if (errno == EPERM)
            lk_die(LK_EXIT_USAGE, "creating a network namespace needs CAP_SYS_ADMIN: run linkem "
                                  "as root (in a container: --privileged)");
        lk_die(1, "unshare(CLONE_NEWNET): %s", strerror(errno));
    }
    n->ns_inner = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (n->ns_inner < 0 || fstat(n->ns_inner, &st) < 0)
        lk_die(1, "cannot open the new namespace: %s", strerror(errno));
    n->ns_inner_ino = (uint64_t)st.st_ino;
    n->tun_inner = tun_open("linkem0", n->dev_inner);
    s = ctl_socket();
    if_up(s, "lo"); /* loopback inside stays loopback */
    if_config(s, n->dev_inner, c->inner, c->outer);
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    struct in_addr any = {0};
    set_sin(&rt.rt_dst, any);
    set_sin(&rt.rt_genmask, any);
    set_sin(&rt.rt_gateway, c->outer);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = n->dev_inner;
    if (ioctl(s, SIOCADDRT, &rt) < 0)
        lk_die(1, "adding the default route via %s: %s", inet_ntoa(c->outer), strerror(errno));
    close(s);
    n->procdev_inner = open_procdev();

    if (setns(here, CLONE_NEWNET) < 0)
        lk_die(1, "cannot return to the original namespace: %s", strerror(errno));
    close(here);
    read_drops(n->procdev_outer, n->dev_outer, &n->kd0_rx[0], &n->kd0_tx[0]);
    read_drops(n->procdev_inner, n->dev_inner, &n->kd0_rx[1], &n->kd0_tx[1]);
}

/* --- COMMAND --- */

void lk_net_spawn(struct lk_net *n, const struct lk_config *c, const sigset_t *blocked)
{
    /* orphans of COMMAND become linkem's children, so teardown can wait for every one */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        lk_die(1, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
    bool fg = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    char host[INET_ADDRSTRLEN], self[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &c->outer, host, sizeof host);
    inet_ntop(AF_INET, &c->inner, self, sizeof self);
    char *sh = getenv("SHELL");
    char *shell[] = {sh && *sh ? sh : "/bin/sh", NULL};
    char **argv = c->argv[0] ? c->argv : shell;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        lk_die(1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* linkem killed outright: COMMAND goes too, instead of running on without a link */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        (void)setpgid(0, 0); /* its own group: teardown signals it, never linkem's parent */
        if (fg) {            /* keep the terminal working: COMMAND gets Ctrl-C, not linkem */
            (void)signal(SIGTTOU, SIG_IGN);
            (void)tcsetpgrp(STDIN_FILENO, getpid());
            (void)signal(SIGTTOU, SIG_DFL);
        }
        if (setns(n->ns_inner, CLONE_NEWNET) < 0) {
            fprintf(stderr, "linkem: cannot enter the new namespace: %s\n", strerror(errno));
            _exit(126);
        }
        if (setenv("LINKEM_HOST", host, 1) < 0 || setenv("LINKEM_SELF", self, 1) < 0)
            _exit(126);
        (void)sigprocmask(SIG_UNBLOCK, blocked, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "linkem: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    (void)setpgid(pid, pid); /* the same as the child's own call: whichever runs first */
    n->child = pid;
    n->took_tty = fg;
}

void lk_net_signal_all(const struct lk_net *n, int sig)
{
    if (n->child > 0 && !n->reaped)
        (void)kill(-n->child, sig); /* the group; ESRCH when it is empty */
    /* and whoever is in the namespace without being in the group (setsid, nsenter) */
    DIR *d = opendir("/proc");
    if (!d)
        return;
    char want[48];
    snprintf(want, sizeof want, "net:[%" PRIu64 "]", n->ns_inner_ino);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/%s/ns/net", e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len <= 0)
            continue; /* gone, or a kernel thread */
        link[len] = '\0';
        if (strcmp(link, want) == 0)
            (void)kill((pid_t)atoi(e->d_name), sig); /* it may have exited meanwhile */
    }
    closedir(d);
}

bool lk_net_reap(struct lk_net *n)
{
    for (;;) {
        int st = 0;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            if (p == n->child) {
                n->status = st;
                n->reaped = true;
            }
            continue;
        }
        if (p == 0)
            return false;
        if (errno == EINTR)
            continue;
        return true; /* ECHILD: no child, adopted or not, is left */
    }
}

void lk_net_close(struct lk_net *n)
{
    if (n->took_tty) {
        /* linkem is in a background group now: taking the terminal back needs SIGTTOU held */
        sigset_t tt, old;
        sigemptyset(&tt);
        sigaddset(&tt, SIGTTOU);
        (void)sigprocmask(SIG_BLOCK, &tt, &old);
        (void)tcsetpgrp(STDIN_FILENO, getpgrp()); /* best effort: the terminal may be gone */
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
    }
    int *fds[] = {&n->tun_outer, &n->tun_inner, &n->ns_inner, &n->procdev_outer, &n->procdev_inner};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}
