# cdf_tail.gp: the same distributions on HdrHistogram's percentile axis, to show the tail.
load style
f = dir."/cdf.latency.csv"
k(l) = sprintf("strcol('label') eq '%s' && strcol('kind') eq 'ack' && " . \
               "column('percentile') < 100", l)
eval selu("t", f, "(1/(1-column('percentile')/100.0)):(column('value_us'))", k("cdf-tcp"))
eval selu("u", f, "(1/(1-column('percentile')/100.0)):(column('value_us'))", k("cdf-udp"))
set title "ACK latency by percentile at equal load (tail view)"
set xlabel "percentile"
set ylabel "ACK round trip (µs)"
set logscale xy
set xtics ("50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set key top left
plot $t u 1:2 w l lt 1 lw 2 t "TCP", $u u 1:2 w l lt 2 lw 2 t "UDP"
