# bottleneck_latency.gp: ACK latency against the offered load in % of a 10 Mbit/s link (50
# packets of queue, 20 ms RTT): UDP's stays near the RTT plus a full queue, TCP's keeps growing
# past the capacity (its excess waits in the link's queue and its own socket buffers).
load style
f = dir."/bottleneck.csv"
off = "(100.0*column('offered_rate_msgs')*(column('bytes_sent_wire')/column('sent')+28)*8/column('link_rate_bps'))"
eval selu("t50", f, off.":(column('ack_p50_us')/1000.0)", is("tcp"))
eval selu("t99", f, off.":(column('ack_p99_us')/1000.0)", is("tcp"))
eval selu("u50", f, off.":(column('ack_p50_us')/1000.0)", is("udp"))
eval selu("u99", f, off.":(column('ack_p99_us')/1000.0)", is("udp"))
set title "A 10 Mbit/s bottleneck: ACK latency against the offered load"
set xlabel "offered load (% of the link, with UDP/IP headers)"
set ylabel "ACK round trip (ms)"
set logscale y
set xrange [40:160]
set arrow from 100, graph 0 to 100, graph 1 nohead lt 8
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99"
