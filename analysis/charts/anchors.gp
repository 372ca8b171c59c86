# anchors.gp: our ACK round trip at low load next to sockperf's ping-pong on the same loopback.
load style
f = dir."/anchors.csv"
set datafile separator comma
set datafile columnheaders
set title "Anchor: chat ACK round trip vs sockperf ping-pong (same frame size)"
set ylabel "round trip (µs)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set key top left
plot f u "ack_p50_us":xtic(2) lt 1 t "ours p50", '' u "sockperf_p50_us" lt 5 t "sockperf p50", \
     '' u "ack_p99_us" lt 3 t "ours p99", '' u "sockperf_p99_us" lt 7 t "sockperf p99"
