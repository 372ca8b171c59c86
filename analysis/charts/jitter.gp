# jitter.gp: the ACK latency distribution over --delay 20 --jitter 5 --reorder (40 ms of
# delay plus two uniform draws of up to 5 ms): without and with 1 % duplication.
load style
f = dir."/jitter.latency.csv"
k(l) = sprintf("strcol('label') eq '%s' && strcol('kind') eq 'ack'", l)
eval selu("r", f, "(column('value_us')/1000.0):(column('percentile'))", k("jitter-udp-reorder"))
eval selu("d", f, "(column('value_us')/1000.0):(column('percentile'))", k("jitter-udp-dup"))
set title "ACK latency through 20 ms + up to 5 ms of jitter each way (UDP, reordering)"
set xlabel "ACK round trip (ms)"
set ylabel "percentile"
set yrange [0:100]
set key bottom right
plot $r u 1:2 w lp lt 2 t "--reorder", $d u 1:2 w lp lt 4 t "--reorder --dup 1"
