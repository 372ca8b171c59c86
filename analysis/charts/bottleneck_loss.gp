# bottleneck_loss.gp: messages lost against the offered load in % of the link: UDP loses what
# does not fit (1 - capacity / offered drawn), TCP nothing.
load style
f = dir."/bottleneck.csv"
off = "(100.0*column('offered_rate_msgs')*(column('bytes_sent_wire')/column('sent')+28)*8/column('link_rate_bps'))"
eval selu("t", f, off.":(100.0*column('lost')/column('sent'))", is("tcp"))
eval selu("u", f, off.":(100.0*column('lost')/column('sent'))", is("udp"))
set title "A 10 Mbit/s bottleneck: messages lost against the offered load"
set xlabel "offered load (% of the link, with UDP/IP headers)"
set ylabel "messages lost (%)"
set xrange [40:160]
set yrange [-1:*]
plot $t u 1:2 w lp lt 1 t "TCP", $u u 1:2 w lp lt 2 t "UDP", \
     (x > 100 ? 100 * (1 - 100 / x) : 0) w l lt 8 t "1 - capacity / offered"
