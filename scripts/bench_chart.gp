# The chart of scripts/bench.sh: requests per second (median, min-max bars) and proxy CPU time per
# request, per mode and origin, for direct / lb / HAProxy / nginx.
#
#   gnuplot -e "load 'RUN/chart.vars'; datafile='RUN/chart.dat'; outfile='docs/img/bench.png'; subtitle='...'" scripts/bench_chart.gp
#
# chart.dat and chart.vars are written by scripts/bench_report.py: one row per (mode, origin); per
# proxy four columns: req/s median, min, max, CPU µs/request ("?" when missing); chart.vars names
# the proxies (nproxies, names, colors, first_cpu = first proxy with a CPU figure).

if (!exists("subtitle")) subtitle = ""
set terminal pngcairo size 1400,1000 font "sans,11" noenhanced
set output outfile
set datafile missing "?"
set multiplot layout 2,1 title "lb vs HAProxy vs nginx, HTTP/1.1 on loopback (scripts/bench.sh)\n".subtitle

set style data histogram
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top right
set yrange [0:*]
set xtics nomirror
set bmargin 4
if (!exists("nproxies")) nproxies = 4
if (!exists("names")) names = "direct lb HAProxy nginx"
if (!exists("colors")) colors = "#9e9e9e #1f77b4 #d62728 #2ca02c"
if (!exists("first_cpu")) first_cpu = 2

set title "requests per second (median of rounds; bars: min-max)"
set ylabel "req/s"
set style histogram errorbars gap 2 lw 1.5
plot for [i=1:nproxies] datafile using (column(4*i-2)):(column(4*i-1)):(column(4*i+0)):xtic(1) \
     title word(names, i) lc rgb word(colors, i)

set title "proxy CPU time per request (utime+stime / requests; lower is better)"
set ylabel "µs per request"
set style histogram clustered gap 2
plot for [i=first_cpu:nproxies] datafile using (column(4*i+1)):xtic(1) title word(names, i) lc rgb word(colors, i)

unset multiplot
