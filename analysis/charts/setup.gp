# setup.gp: connection set-up time (TCP connect + HELLO, UDP HELLO, hybrid TCP connect +
# HELLO on the control connection) against clients.
load style
f = dir."/scale.csv"
eval sel("t50", f, "clients", "connect_p50_us", is("tcp"))
eval sel("t99", f, "clients", "connect_p99_us", is("tcp"))
eval sel("u50", f, "clients", "connect_p50_us", is("udp"))
eval sel("u99", f, "clients", "connect_p99_us", is("udp"))
eval sel("h50", f, "clients", "connect_p50_us", is("hybrid"))
eval sel("h99", f, "clients", "connect_p99_us", is("hybrid"))
set title "Connection set-up vs clients (TCP handshake + HELLO/WELCOME, UDP HELLO/WELCOME, hybrid)"
set xlabel "clients (from 1,000 on, set-up spread over clients/1000 s by --ramp)"
set ylabel "set-up time (µs)"
set logscale xy
set key top center horizontal maxcols 3
set offsets 0, 0, graph 0.2, 0  # room for the key above the data
plot $t50 u 1:2 w lp lt 1 t "TCP p50", $t99 u 1:2 w lp lt 3 t "TCP p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99", \
     $h50 u 1:2 w lp lt 9 t "hybrid p50", \
     $h99 u 1:2 w lp lt 10 t "hybrid p99"
