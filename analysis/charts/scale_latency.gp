# scale_latency.gp: ACK round trip (p50, p99) against the number of clients, TCP vs UDP.
load style
f = dir."/scale.csv"
eval sel("t50", f, "clients", "ack_p50_us", is("tcp"))
eval sel("t99", f, "clients", "ack_p99_us", is("tcp"))
eval sel("u50", f, "clients", "ack_p50_us", is("udp"))
eval sel("u99", f, "clients", "ack_p99_us", is("udp"))
set title "Scale: ACK latency vs clients (fixed rate per client)"
set xlabel "connected clients"
set ylabel "ACK round trip (µs)"
set logscale xy
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99"
