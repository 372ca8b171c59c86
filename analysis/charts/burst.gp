# burst.gp: TCP's ACK latency by percentile (tail view) over a 50 ms path with 2 % loss each
# way, independent or in bursts of mean length 10 and 40; UDP's for contrast.
load style
f = dir."/burst.latency.csv"
k(l) = sprintf("strcol('label') eq '%s' && strcol('kind') eq 'ack' && " . \
               "column('percentile') < 100", l)
u = "(1/(1-column('percentile')/100.0)):(column('value_us')/1000.0)"
eval selu("ti", f, u, k("burst-tcp-indep"))
eval selu("t10", f, u, k("burst-tcp-burst10"))
eval selu("t50", f, u, k("burst-tcp-burst40"))
eval selu("u10", f, u, k("burst-udp-burst10"))
eval selu("u50", f, u, k("burst-udp-burst40"))
set title "Independent loss against bursts, 2 % each way, 50 ms RTT (tail view)"
set xlabel "percentile"
set ylabel "ACK round trip (ms)"
set logscale xy
set xrange [1.5:20000]
set xtics ("50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000)
set key bottom right
plot $ti u 1:2 w l lt 1 lw 2 t "TCP, independent", $t10 u 1:2 w l lt 5 lw 2 t "TCP, bursts of 10", \
     $t50 u 1:2 w l lt 6 lw 2 t "TCP, bursts of 40", \
     $u10 u 1:2 w l lt 4 lw 2 t "UDP, bursts of 10 (the ACKs that came back)", \
     $u50 u 1:2 w l lt 2 lw 2 t "UDP, bursts of 40 (the ACKs that came back)"
