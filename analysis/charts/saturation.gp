# saturation.gp: acknowledged against offered rate per server, pinned cores, the knee of each
# series circled (the highest rate that passed the criterion below the first that failed).
load style
f = dir."/saturation.csv"
eval sel("t", f, "offered_rate_msgs", "acked_rate_msgs", ser("tcp"))
eval sel("e", f, "offered_rate_msgs", "acked_rate_msgs", ser("tcp-epoll"))
eval sel("u", f, "offered_rate_msgs", "acked_rate_msgs", ser("udp"))
eval sel("h", f, "offered_rate_msgs", "acked_rate_msgs", ser("hybrid"))
eval sel("k", f, "offered_rate_msgs", "acked_rate_msgs", "column('knee') == 1")
set title "Saturation: acknowledged vs offered rate (100 clients, open loop, server and load generator on their own cores)"
set xlabel "offered rate (messages/s, all clients)"
set ylabel "acknowledged (messages/s)"
set logscale xy
plot $t u 1:2 w lp lt 1 t "tcp (threads)", $e u 1:2 w lp lt 6 t "tcp --io epoll", \
     $u u 1:2 w lp lt 2 t "udp", $h u 1:2 w lp lt 9 t "hybrid", \
     x w l lt 8 t "offered (all acknowledged)", \
     $k u 1:2 w p pt 6 ps 3 lw 2 lc rgb "#000000" t "knee"
