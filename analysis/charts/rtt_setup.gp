# rtt_setup.gp: connection set-up in round trips of the path against its RTT (no loss): TCP 2,
# UDP 1, hybrid 3 expected (analysis/scenarios/rtt.py says why); p99 dashed.
load style
f = dir."/rtt.csv"
c(p) = sprintf("strcol('proto') eq '%s' && column('link_loss_pct') == 0 && column('rtt_ms') > 0", p)
u50 = "(column('rtt_ms')):(column('connect_p50_us')/1000.0/column('rtt_ms'))"
u99 = "(column('rtt_ms')):(column('connect_p99_us')/1000.0/column('rtt_ms'))"
eval selu("t50", f, u50, c("tcp"))
eval selu("t99", f, u99, c("tcp"))
eval selu("u50", f, u50, c("udp"))
eval selu("u99", f, u99, c("udp"))
eval selu("h50", f, u50, c("hybrid"))
eval selu("h99", f, u99, c("hybrid"))
set title "Set-up over an emulated path (linkem), in round trips of the path, no loss"
set xlabel "round trip of the path (ms)"
set ylabel "set-up time / RTT"
set logscale x
set xrange [7:300]
set yrange [0:4]
set key top center horizontal maxcols 3
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99", \
     $h50 u 1:2 w lp lt 9 t "hybrid p50", $h99 u 1:2 w lp lt 10 t "hybrid p99", \
     1 w l lt 8 notitle, 2 w l lt 8 notitle, 3 w l lt 8 t "1, 2, 3 round trips"
