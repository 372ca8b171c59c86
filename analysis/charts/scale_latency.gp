# scale_latency.gp: ACK round trip (p50, p99) against the number of clients, per server
# (TCP with a thread per client, TCP with an event loop, UDP); fixed rate per client.
load style
f = dir."/scale.csv"
eval sel("t50", f, "clients", "ack_p50_us", ser("tcp"))
eval sel("t99", f, "clients", "ack_p99_us", ser("tcp"))
eval sel("e50", f, "clients", "ack_p50_us", ser("tcp-epoll"))
eval sel("e99", f, "clients", "ack_p99_us", ser("tcp-epoll"))
eval sel("u50", f, "clients", "ack_p50_us", ser("udp"))
eval sel("u99", f, "clients", "ack_p99_us", ser("udp"))
set title "Scale: ACK latency vs clients (1 msg/s per client; 100,000 UDP clients: 0.1 msg/s)"
set xlabel "connected clients (19,000 TCP and 100,000 UDP: load generator in shards, merged)"
set ylabel "ACK round trip (µs)"
set logscale xy
set key top left maxrows 3
plot $t50 u 1:2 w lp lt 1 t "TCP --io threads p50", $t99 u 1:2 w lp lt 3 t "TCP --io threads p99", \
     $e50 u 1:2 w lp lt 6 t "TCP --io epoll p50", $e99 u 1:2 w lp lt 11 t "TCP --io epoll p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99"
