# fanout.gp: time from the intended send to each room member's FROM, against room size.
load style
f = dir."/fanout.csv"
eval sel("t50", f, "room_size", "fanout_p50_us", is("tcp"))
eval sel("t99", f, "room_size", "fanout_p99_us", is("tcp"))
eval sel("tl", f, "room_size", "fanout_last_p99_us", is("tcp"))
eval sel("u50", f, "room_size", "fanout_p50_us", is("udp"))
eval sel("u99", f, "room_size", "fanout_p99_us", is("udp"))
eval sel("ul", f, "room_size", "fanout_last_p99_us", is("udp"))
set title "Fan-out: delivery latency vs room size (100 clients)"
set xlabel "room size (clients per room)"
set ylabel "send to FROM arrival (µs)"
set logscale xy
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $tl u 1:2 w lp lt 5 t "TCP last recipient p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99", \
     $ul u 1:2 w lp lt 6 t "UDP last recipient p99"
