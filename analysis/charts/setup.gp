# setup.gp: connection set-up time (TCP connect + HELLO, UDP HELLO, hybrid TCP connect +
# HELLO on the control connection) against clients, per server.
load style
f = dir."/scale.csv"
eval sel("t50", f, "clients", "connect_p50_us", ser("tcp"))
eval sel("t99", f, "clients", "connect_p99_us", ser("tcp"))
eval sel("e50", f, "clients", "connect_p50_us", ser("tcp-epoll"))
eval sel("e99", f, "clients", "connect_p99_us", ser("tcp-epoll"))
eval sel("u50", f, "clients", "connect_p50_us", ser("udp"))
eval sel("u99", f, "clients", "connect_p99_us", ser("udp"))
eval sel("h50", f, "clients", "connect_p50_us", ser("hybrid"))
eval sel("h99", f, "clients", "connect_p99_us", ser("hybrid"))
set title "Connection set-up vs clients (TCP handshake + HELLO/WELCOME, UDP HELLO/WELCOME, hybrid)"
set xlabel "clients (1,000 to 19,000: set-up spread over clients/1000 s by --ramp; 100,000: none)"
set ylabel "set-up time (µs)"
set logscale xy
set key top center horizontal maxcols 4
set offsets 0, 0, graph 0.25, 0  # room for the key above the data
plot $t50 u 1:2 w lp lt 1 t "TCP --io threads p50", $t99 u 1:2 w lp lt 3 t "TCP --io threads p99", \
     $e50 u 1:2 w lp lt 6 t "TCP --io epoll p50", $e99 u 1:2 w lp lt 11 t "TCP --io epoll p99", \
     $u50 u 1:2 w lp lt 2 t "UDP p50", $u99 u 1:2 w lp lt 4 t "UDP p99", \
     $h50 u 1:2 w lp lt 9 t "hybrid p50", \
     $h99 u 1:2 w lp lt 10 t "hybrid p99"
