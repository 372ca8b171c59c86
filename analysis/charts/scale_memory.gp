# scale_memory.gp: server resident memory and threads against clients (thread per client
# for TCP, a fixed set of threads for UDP, a thread per control connection for hybrid).
load style
f = dir."/scale.csv"
eval sel("tr", f, "clients", "server_rss_kib_max", is("tcp"))
eval sel("ur", f, "clients", "server_rss_kib_max", is("udp"))
eval sel("tt", f, "clients", "server_threads_max", is("tcp"))
eval sel("ut", f, "clients", "server_threads_max", is("udp"))
eval sel("hr", f, "clients", "server_rss_kib_max", is("hybrid"))
eval sel("ht", f, "clients", "server_threads_max", is("hybrid"))
set title "Scale: server memory and threads vs clients"
set xlabel "connected clients"
set ylabel "server peak RSS (MiB)"
set y2label "server threads"
set logscale x
set logscale y
set logscale y2
set y2tics nomirror
plot $tr u 1:($2/1024) w lp lt 1 t "TCP RSS", $ur u 1:($2/1024) w lp lt 2 t "UDP RSS", \
     $tt u 1:2 axes x1y2 w lp lt 3 t "TCP threads", $ut u 1:2 axes x1y2 w lp lt 4 t "UDP threads", \
     $hr u 1:($2/1024) w lp lt 9 t "hybrid RSS", $ht u 1:2 axes x1y2 w lp lt 10 t "hybrid threads"
