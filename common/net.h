/* net: socket helpers shared by every program (IPv4, loopback-first).
 *
 * Each returns 0 or a negative errno and never prints or exits; EINTR is retried inside.
 * Thread-safe: they keep no state. */
#ifndef CHATBENCH_NET_H
#define CHATBENCH_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_ADDRSTRLEN 22     /* "255.255.255.255:65535" plus NUL */
#define NET_WAIT_SLICE_MS 100 /* net_write_until: longest wait before stop() is asked again */

/* Fills *sa from a dotted IPv4 address or a host name ("localhost") and a port.
 * Returns 0, or -EINVAL when the host cannot be resolved to IPv4. */
int net_resolve(const char *host, uint16_t port, struct sockaddr_in *sa);

/* Creates a listening TCP socket bound to host:port (port 0: the kernel picks) with
 * SO_REUSEADDR, close-on-exec. On success *fd is the socket. */
int net_listen_tcp(const char *host, uint16_t port, int backlog, int *fd);

/* Creates a UDP socket bound to host:port (port 0: any), close-on-exec. */
int net_bind_udp(const char *host, uint16_t port, int *fd);

/* Connects a TCP socket to host:port with TCP_NODELAY set; *fd is a blocking socket. Gives
 * up with -ETIMEDOUT after timeout_ms (negative: the kernel's own SYN retries, about two
 * minutes) and with -ECANCELED as soon as cancel_fd (-1: none) is readable, so a caller
 * connecting to an address that drops packets can be stopped at once. */
int net_connect_tcp(const char *host, uint16_t port, int timeout_ms, int cancel_fd, int *fd);

/* The local port a socket is bound to, in *port. */
int net_local_port(int fd, uint16_t *port);

/* Writes all len bytes to fd, retrying short writes and EINTR: send(2) with MSG_NOSIGNAL on
 * a socket, write(2) on anything else (a pipe, a file, a terminal). -EAGAIN when a socket's
 * SO_SNDTIMEO runs out or a non-blocking fd is full. */
int net_write_all(int fd, const void *buf, size_t len);

/* net_write_all that gives up with -ECANCELED once stop(arg) is true. The fd is never
 * waited on for longer than NET_WAIT_SLICE_MS at a time (a socket is written with
 * MSG_DONTWAIT; any other fd must be non-blocking), and a signal that interrupts the wait
 * has stop asked at once: a peer that stopped reading cannot hold the caller longer than
 * a slice after it was asked to stop. */
int net_write_until(int fd, const void *buf, size_t len, bool (*stop)(void *arg), void *arg);

/* Asks for a socket buffer of bytes (rcv: SO_RCVBUF, else SO_SNDBUF), forced past the
 * sysctl cap (SO_*BUFFORCE) when the process may (CAP_NET_ADMIN), else capped by
 * net.core.rmem_max / wmem_max. Returns 0, or -errno when neither call took. A cap, not
 * an allocation: the kernel charges only what is queued. */
int net_set_sockbuf(int fd, int rcv, int bytes);

/* Sets or clears O_NONBLOCK. */
int net_set_nonblock(int fd, int on);

/* Formats "ip:port" into out (NET_ADDRSTRLEN bytes). Returns out. */
char *net_addr_str(const struct sockaddr_in *sa, char *out);

/* Raises the soft open-file limit to the hard limit; *now gets the new soft limit. */
int net_raise_nofile(long *now);

#endif
