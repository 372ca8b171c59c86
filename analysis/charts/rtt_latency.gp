# rtt_latency.gp: ACK latency against the path's RTT with 1 % loss each way: TCP loses nothing
# and its tail waits for retransmissions; UDP and hybrid lose the message and stay near one RTT.
load style
f = dir."/rtt.csv"
c(p) = sprintf("strcol('proto') eq '%s' && column('link_loss_pct') == 1 && column('rtt_ms') > 0", p)
eval sel("t50", f, "rtt_ms", "ack_p50_us", c("tcp"))
eval sel("t99", f, "rtt_ms", "ack_p99_us", c("tcp"))
eval sel("tmax", f, "rtt_ms", "ack_max_us", c("tcp"))
eval sel("u50", f, "rtt_ms", "ack_p50_us", c("udp"))
eval sel("u99", f, "rtt_ms", "ack_p99_us", c("udp"))
eval sel("h99", f, "rtt_ms", "ack_p99_us", c("hybrid"))
set title "ACK latency over an emulated path with 1 % loss each way"
set xlabel "round trip of the path (ms)"
set ylabel "ACK round trip (ms)"
set logscale xy
set xrange [7:300]
set key bottom right
plot $t50 u 1:($2/1000) w lp lt 1 t "TCP p50", $t99 u 1:($2/1000) w lp lt 3 t "TCP p99", \
     $tmax u 1:($2/1000) w lp lt 6 t "TCP max", \
     $u50 u 1:($2/1000) w lp lt 2 t "UDP p50", \
     $u99 u 1:($2/1000) w lp lt 4 t "UDP p99 (of the ACKs that came back)", \
     $h99 u 1:($2/1000) w lp lt 10 t "hybrid p99 (of the ACKs that came back)", \
     x w l lt 8 dt 3 t "one RTT", x + 200 w l lt 8 dt 2 t "RTT + 200 ms (the earliest answer after a timeout)"
