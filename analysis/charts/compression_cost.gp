# compression_cost.gp: what compression costs: server CPU per message, compressed vs plain.
load style
f = dir."/compression.csv"
c(k) = sprintf("strcol('payload') eq '%s' && column('compress') == 1", k)
eval sel("h", f, "size_bytes", "server_cpu_us_per_msg", c("hex"))
eval sel("t", f, "size_bytes", "server_cpu_us_per_msg", c("text"))
eval sel("r", f, "size_bytes", "server_cpu_us_per_msg", c("random"))
eval sel("p", f, "size_bytes", "server_cpu_us_per_msg", "column('compress') == 0")
set title "Compression: UDP server CPU per message (inflate + deflate of the answer)"
set xlabel "payload size (bytes)"
set ylabel "server CPU per message (µs)"
set logscale x
set xrange [48:1400]
set yrange [0:*]
plot $h u 1:2 w lp lt 5 t "hex, compressed", $t u 1:2 w lp lt 7 t "text, compressed", \
     $r u 1:2 w lp lt 6 t "random, compressed", $p u 1:2 w lp lt 8 t "hex, plain"
