# loss_udp.gp: UDP (and hybrid: chat over UDP too) messages lost against the loss injected
# in the kernel, next to iperf3.
load style
f = dir."/loss.csv"
x = "(column('injected_loss_pct'))"
eval selu("lt", f, x.":(100.0*column('lost')/column('sent'))", is("udp"))
eval selu("up", f, x.":(100.0*column('lost_uplink')/column('sent'))", is("udp"))
eval selu("dn", f, x.":(100.0*column('lost_downlink')/column('sent'))", is("udp"))
eval selu("hl", f, x.":(100.0*column('lost')/column('sent'))", is("hybrid"))
eval sel("ip", f, "injected_loss_pct", "iperf3_lost_pct", is("udp"))
set title "Loss: UDP and hybrid messages lost vs packet loss injected by nftables (each direction)"
set xlabel "injected loss per direction (%)"
set ylabel "lost (% of messages sent)"
set xrange [0:*]
set yrange [0:*]
plot $lt u 1:2 w lp lt 2 t "UDP lost (no ACK in time)", \
     $up u 1:2 w lp lt 4 t "UDP uplink (MSG never reached the server)", \
     $dn u 1:2 w lp lt 6 t "UDP downlink (ACK lost)", \
     $hl u 1:2 w lp lt 9 t "hybrid lost (chat over UDP, control over TCP)", \
     $ip u 1:2 w lp lt 5 t "iperf3 -u, same size, rate and rule (one way)", \
     100*(1-(1-x/100)**2) w l lt 8 t "expected both ways: 1-(1-p)^2", x w l lt 7 dt 3 t "p"
