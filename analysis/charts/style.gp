# style.gp: the one style every chart loads (gnuplot 5.4, pngcairo). Charts are run as
#   gnuplot -e "dir='results'" -e "out='results/x.png'" -e "style='analysis/charts/style.gp'" x.gp
set terminal pngcairo size 960,600 enhanced font "DejaVu Sans,11" linewidth 1.5
set output out
set grid xtics ytics mxtics mytics lc rgb "#dddddd" lw 1
set border 3 lc rgb "#444444"
set tics nomirror out
set key top left box opaque samplen 2 spacing 1.2
set pointsize 1.1
set datafile missing "n/a"

# TCP is blue, UDP orange, hybrid teal, tcp --io epoll red, everywhere; dashed = a second
# statistic of the same series.
set linetype 1 lc rgb "#1f77b4" pt 7 dt 1   # TCP p50 / main
set linetype 2 lc rgb "#ff7f0e" pt 5 dt 1   # UDP p50 / main
set linetype 3 lc rgb "#1f77b4" pt 6 dt 2   # TCP p99 / secondary
set linetype 4 lc rgb "#ff7f0e" pt 4 dt 2   # UDP p99 / secondary
set linetype 5 lc rgb "#2ca02c" pt 9 dt 1   # third series (iperf3, hex...)
set linetype 6 lc rgb "#d62728" pt 11 dt 1  # fourth series
set linetype 7 lc rgb "#9467bd" pt 13 dt 1
set linetype 8 lc rgb "#7f7f7f" pt 1 dt 3   # references (y = x, theory)
set linetype 9 lc rgb "#17becf" pt 9 dt 1   # hybrid (udp_server --hybrid) p50 / main
set linetype 10 lc rgb "#17becf" pt 8 dt 2  # hybrid p99 / secondary
set linetype 11 lc rgb "#d62728" pt 10 dt 2 # fourth series (tcp --io epoll) p99 / secondary

# sel(block, file, x, y, cond): fills datablock $block with columns x and y of the CSV rows
# of file for which cond (a gnuplot expression over strcol/column) holds; rows with an
# empty value are dropped. Usage: eval sel("t", dir."/scale.csv", "clients", "ack_p50_us",
# "strcol('proto') eq 'tcp'") then plot $t using 1:2. A series with no rows still exists
# (one NaN row), so a reduced matrix (bench-quick) draws every chart with what it has.
sel(b, f, x, y, c) = sprintf("set datafile separator comma; set datafile columnheaders; " . \
    "set table $%s; plot '%s' using (column('%s')):(column('%s')) with table if (%s); " . \
    "unset table; set print $%s append; print 'NaN NaN'; unset print; " . \
    "set datafile separator whitespace; set datafile nocolumnheaders", b, f, x, y, c, b)
is(p) = sprintf("strcol('proto') eq '%s'", p)
# ser(s): the rows of one server series (scale, saturation: tcp, tcp-epoll, udp, hybrid)
ser(s) = sprintf("strcol('series') eq '%s'", s)
# selu(block, file, using, cond): the same with a free using spec, e.g.
# "(column('clients')):(column('a')/column('b'))".
selu(b, f, u, c) = sprintf("set datafile separator comma; set datafile columnheaders; " . \
    "set table $%s; plot '%s' using %s with table if (%s); " . \
    "unset table; set print $%s append; print 'NaN NaN'; unset print; " . \
    "set datafile separator whitespace; set datafile nocolumnheaders", b, f, u, c, b)
