# scale_memory.gp: server resident memory and threads against clients (a thread per client
# for TCP threads and for the hybrid's control connections, a fixed few for TCP epoll and
# UDP).
load style
f = dir."/scale.csv"
eval sel("tr", f, "clients", "server_rss_kib_max", ser("tcp"))
eval sel("er", f, "clients", "server_rss_kib_max", ser("tcp-epoll"))
eval sel("ur", f, "clients", "server_rss_kib_max", ser("udp"))
eval sel("hr", f, "clients", "server_rss_kib_max", ser("hybrid"))
eval sel("tt", f, "clients", "server_threads_max", ser("tcp"))
eval sel("et", f, "clients", "server_threads_max", ser("tcp-epoll"))
eval sel("ut", f, "clients", "server_threads_max", ser("udp"))
eval sel("ht", f, "clients", "server_threads_max", ser("hybrid"))
set title "Scale: server memory (solid) and threads (dashed) vs clients"
set xlabel "connected clients"
set ylabel "server peak RSS (MiB)"
set y2label "server threads"
set logscale x
set logscale y
set logscale y2
set y2tics nomirror
set key top left maxrows 4
plot $tr u 1:($2/1024) w lp lt 1 t "TCP --io threads: RSS", $er u 1:($2/1024) w lp lt 6 t "TCP --io epoll: RSS", \
     $ur u 1:($2/1024) w lp lt 2 t "UDP: RSS", $hr u 1:($2/1024) w lp lt 9 t "hybrid: RSS", \
     $tt u 1:2 axes x1y2 w lp lt 3 t "TCP --io threads: threads", $et u 1:2 axes x1y2 w lp lt 11 t "TCP --io epoll: threads", \
     $ut u 1:2 axes x1y2 w lp lt 4 t "UDP: threads", $ht u 1:2 axes x1y2 w lp lt 10 t "hybrid: threads"
