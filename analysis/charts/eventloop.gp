# eventloop.gp: what a client costs tcp_server, with a thread per client against an event
# loop: RSS per client (solid, left) and the server's threads (dashed, right), udp_server's
# RSS per client for reference.
load style
f = dir."/scale.csv"
eval selu("tk", f, "(column('clients')):(column('server_rss_kib_max')/column('clients'))", ser("tcp"))
eval selu("ek", f, "(column('clients')):(column('server_rss_kib_max')/column('clients'))", ser("tcp-epoll"))
eval selu("uk", f, "(column('clients')):(column('server_rss_kib_max')/column('clients'))", ser("udp"))
eval sel("tt", f, "clients", "server_threads_max", ser("tcp"))
eval sel("et", f, "clients", "server_threads_max", ser("tcp-epoll"))
set title "Threads or an event loop: tcp\\_server's cost per client"
set xlabel "connected clients"
set ylabel "server peak RSS per client (KiB)"
set y2label "server threads"
set logscale x
set logscale y
set logscale y2
set y2tics nomirror
set key top center maxrows 3
set offsets 0, 0, graph 0.15, 0
plot $tk u 1:2 w lp lt 1 t "--io threads: RSS per client", $ek u 1:2 w lp lt 6 t "--io epoll: RSS per client", \
     $uk u 1:2 w lp lt 2 t "udp\\_server: RSS per client", \
     $tt u 1:2 axes x1y2 w lp lt 3 t "--io threads: threads", $et u 1:2 axes x1y2 w lp lt 11 t "--io epoll: threads"
