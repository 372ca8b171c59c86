# saturation.gp: achieved and acknowledged rate against offered rate (open loop).
load style
f = dir."/saturation.csv"
eval sel("ta", f, "offered_rate_msgs", "acked_rate_msgs", is("tcp"))
eval sel("ua", f, "offered_rate_msgs", "acked_rate_msgs", is("udp"))
eval sel("ts", f, "offered_rate_msgs", "achieved_rate_msgs", is("tcp"))
eval sel("us", f, "offered_rate_msgs", "achieved_rate_msgs", is("udp"))
set title "Saturation: acknowledged vs offered rate (100 clients, open loop)"
set xlabel "offered rate (messages/s)"
set ylabel "rate (messages/s)"
set logscale xy
plot $ta u 1:2 w lp lt 1 t "TCP acked", $ts u 1:2 w lp lt 3 t "TCP sent", \
     $ua u 1:2 w lp lt 2 t "UDP acked", $us u 1:2 w lp lt 4 t "UDP sent", \
     $ta u 1:1 w l lt 8 t "ideal (= offered)"
