# cdf.gp: ACK latency distribution, TCP against UDP at equal load (same clients and rate).
load style
f = dir."/cdf.latency.csv"
k(l) = sprintf("strcol('label') eq '%s' && strcol('kind') eq 'ack'", l)
eval sel("t", f, "value_us", "percentile", k("cdf-tcp"))
eval sel("u", f, "value_us", "percentile", k("cdf-udp"))
set title "ACK latency CDF at equal load (200 clients, 5 msg/s each)"
set xlabel "ACK round trip (µs)"
set ylabel "messages acknowledged within x (%)"
set logscale x
set yrange [0:100]
set key bottom right
plot $t u 1:2 w l lt 1 lw 2 t "TCP", $u u 1:2 w l lt 2 lw 2 t "UDP"
