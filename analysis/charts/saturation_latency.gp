# saturation_latency.gp: ACK latency against offered rate: the knee.
load style
f = dir."/saturation.csv"
eval sel("t50", f, "offered_rate_msgs", "ack_p50_us", is("tcp"))
eval sel("t99", f, "offered_rate_msgs", "ack_p99_us", is("tcp"))
eval sel("u50", f, "offered_rate_msgs", "ack_p50_us", is("udp"))
eval sel("u99", f, "offered_rate_msgs", "ack_p99_us", is("udp"))
set title "Saturation: ACK latency vs offered rate (corrected for coordinated omission)"
set xlabel "offered rate (messages/s)"
set ylabel "ACK round trip (µs)"
set logscale xy
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99"
