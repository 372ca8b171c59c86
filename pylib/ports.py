"""ports: a free port on loopback, and waiting until something is bound to a port."""
import socket
import time

HOST = "127.0.0.1"


def free_port(kind="tcp", host=HOST):
    """A port free right now on host; kind "tcp" or "udp". For tools without --port 0: the
    port may be taken again before the tool binds it (a tiny race, accepted)."""
    with socket.socket(socket.AF_INET,
                       socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, kind="tcp", timeout=10.0):
    """Waits until a socket is bound to port: a TCP listener or a UDP socket, IPv4, any
    address. Reads /proc/net/{tcp,udp} instead of connecting, which would disturb one-shot
    servers. Raises TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    table = "/proc/net/tcp" if kind == "tcp" else "/proc/net/udp"
    while time.monotonic() < deadline:
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[1].split(":")[1] == f"{port:04X}" and (kind != "tcp" or cols[3] == "0A"):
                    return
        time.sleep(0.05)
    raise TimeoutError(f"nothing bound to port {port} ({kind}) after {timeout:.0f} s")
