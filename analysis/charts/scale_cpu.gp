# scale_cpu.gp: server CPU time per message against clients, per server.
load style
f = dir."/scale.csv"
eval sel("t", f, "clients", "server_cpu_us_per_msg", ser("tcp"))
eval sel("e", f, "clients", "server_cpu_us_per_msg", ser("tcp-epoll"))
eval sel("u", f, "clients", "server_cpu_us_per_msg", ser("udp"))
eval sel("h", f, "clients", "server_cpu_us_per_msg", ser("hybrid"))
set title "Scale: server CPU per message vs clients"
set xlabel "connected clients"
set ylabel "server CPU (user + system) per message (µs)"
set logscale x
set yrange [0:*]
plot $t u 1:2 w lp lt 1 t "TCP --io threads", $e u 1:2 w lp lt 6 t "TCP --io epoll", \
     $u u 1:2 w lp lt 2 t "UDP", $h u 1:2 w lp lt 9 t "hybrid"
