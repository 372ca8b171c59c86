# saturation_latency.gp: ACK latency (p50 solid, p99 dashed) against offered rate per server,
# the 10 ms p50 limit of the criterion drawn, the knee of each series circled.
load style
f = dir."/saturation.csv"
eval sel("t50", f, "offered_rate_msgs", "ack_p50_us", ser("tcp"))
eval sel("t99", f, "offered_rate_msgs", "ack_p99_us", ser("tcp"))
eval sel("e50", f, "offered_rate_msgs", "ack_p50_us", ser("tcp-epoll"))
eval sel("e99", f, "offered_rate_msgs", "ack_p99_us", ser("tcp-epoll"))
eval sel("u50", f, "offered_rate_msgs", "ack_p50_us", ser("udp"))
eval sel("u99", f, "offered_rate_msgs", "ack_p99_us", ser("udp"))
eval sel("h50", f, "offered_rate_msgs", "ack_p50_us", ser("hybrid"))
eval sel("h99", f, "offered_rate_msgs", "ack_p99_us", ser("hybrid"))
eval sel("k", f, "offered_rate_msgs", "ack_p50_us", "column('knee') == 1")
set title "Saturation: ACK latency vs offered rate (corrected for coordinated omission)"
set xlabel "offered rate (messages/s, all clients)"
set ylabel "ACK round trip (µs)"
set logscale xy
plot $t50 u 1:2 w lp lt 1 t "tcp p50", $t99 u 1:2 w lp lt 3 t "tcp p99", \
     $e50 u 1:2 w lp lt 6 t "tcp --io epoll p50", $e99 u 1:2 w lp lt 11 t "tcp --io epoll p99", \
     $u50 u 1:2 w lp lt 2 t "udp p50", $u99 u 1:2 w lp lt 4 t "udp p99", \
     $h50 u 1:2 w lp lt 9 t "hybrid p50", $h99 u 1:2 w lp lt 10 t "hybrid p99", \
     10000 w l lt 8 t "criterion: p50 at most 10 ms", \
     $k u 1:2 w p pt 6 ps 3 lw 2 lc rgb "#000000" t "knee (p50)"
