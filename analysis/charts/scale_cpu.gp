# scale_cpu.gp: server CPU time per message against clients.
load style
f = dir."/scale.csv"
eval sel("t", f, "clients", "server_cpu_us_per_msg", is("tcp"))
eval sel("u", f, "clients", "server_cpu_us_per_msg", is("udp"))
set title "Scale: server CPU per message vs clients"
set xlabel "connected clients"
set ylabel "server CPU (user + system) per message (µs)"
set logscale x
set yrange [0:*]
plot $t u 1:2 w lp lt 1 t "TCP", $u u 1:2 w lp lt 2 t "UDP"
