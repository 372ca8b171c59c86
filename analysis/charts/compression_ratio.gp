# compression_ratio.gp: wire bytes / plain bytes with --compress, by payload kind and size.
load style
f = dir."/compression.csv"
c(k) = sprintf("strcol('payload') eq '%s' && column('compress') == 1", k)
eval sel("h", f, "size_bytes", "compress_ratio", c("hex"))
eval sel("t", f, "size_bytes", "compress_ratio", c("text"))
eval sel("r", f, "size_bytes", "compress_ratio", c("random"))
set title "Compression (UDP, zlib + preset dictionary): ratio by payload"
set xlabel "payload size (bytes)"
set ylabel "bytes on the wire / plain bytes (uplink)"
set logscale x
set xrange [48:1400]
set yrange [0:*]
set key top right
plot $h u 1:2 w lp lt 5 t "hex telemetry", $t u 1:2 w lp lt 7 t "chat text", \
     $r u 1:2 w lp lt 6 t "random (incompressible)", 1 w l lt 8 t "no gain (1.0)"
