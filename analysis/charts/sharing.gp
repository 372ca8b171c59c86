# sharing.gp: who gets a 10 Mbit/s link: one iperf3 TCP flow alone, then beside the chat
# (UDP at half the link, UDP past it, TCP past it), and what the chat delivered meanwhile.
load style
f = dir."/sharing.csv"
set datafile separator comma
set datafile columnheaders
set title "Sharing a 10 Mbit/s link: an iperf3 TCP flow beside the chat"
set ylabel "Mbit/s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set key top right
set xtics nomirror
plot f u (column('iperf3_alone_mbps')):xtic(stringcolumn('label')) lt 8 t "iperf3 alone (same congestion control)", \
     '' u (column('iperf3_mbps')) lt 5 t "iperf3 beside the chat", \
     '' u (column('acked_rate_msgs')*(column('bytes_sent_wire')/column('sent')+28)*8/1e6) lt 2 \
        t "chat delivered (with UDP/IP headers)"
