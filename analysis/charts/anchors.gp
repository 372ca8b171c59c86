# anchors.gp: our ACK round trip at 200 msg/s next to sockperf at the same rate and pinning
# (under-load) and to its ping-pong (the floor when nothing ever sleeps), same frame size.
load style
f = dir."/anchors.csv"
set datafile separator comma
set datafile columnheaders
set title "Anchor: chat ACK round trip vs sockperf at the same rate (same frame size and cores)"
set ylabel "round trip p50 (µs)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set key top left
plot f u "ack_p50_us":xtic(2) lt 1 t "ours", '' u "sockperf_load_p50_us" lt 5 t "sockperf under-load, same rate", \
     '' u "sockperf_p50_us" lt 7 t "sockperf ping-pong (never sleeps)"
