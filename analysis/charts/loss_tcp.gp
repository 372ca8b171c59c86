# loss_tcp.gp: TCP loses nothing under loss but pays in tail latency (retransmission
# timeouts, head-of-line blocking); UDP and hybrid p99 for contrast.
load style
f = dir."/loss.csv"
eval sel("t50", f, "injected_loss_pct", "ack_p50_us", is("tcp"))
eval sel("t99", f, "injected_loss_pct", "ack_p99_us", is("tcp"))
eval sel("t999", f, "injected_loss_pct", "ack_p999_us", is("tcp"))
eval sel("tmax", f, "injected_loss_pct", "ack_max_us", is("tcp"))
eval sel("u99", f, "injected_loss_pct", "ack_p99_us", is("udp"))
eval sel("h99", f, "injected_loss_pct", "ack_p99_us", is("hybrid"))
set title "Loss: TCP ACK latency vs injected loss (nothing lost, everything late)"
set xlabel "injected loss per direction (%)"
set ylabel "ACK round trip (µs)"
set logscale y
set xrange [-0.5:*]
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $t999 u 1:2 w lp lt 7 t "TCP p99.9", $tmax u 1:2 w lp lt 6 t "TCP max", \
     $u99 u 1:2 w lp lt 4 t "UDP p99 (of the ACKs that came back)", \
     $h99 u 1:2 w lp lt 10 t "hybrid p99 (of the ACKs that came back)"
