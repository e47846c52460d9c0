#!/usr/bin/env bash
# profile.sh: where a proxy's CPU goes under the keep-alive load of scripts/bench.sh.
#
# Starts bench.sh's nginx origin (`return 200`, two ports, CPU 1) and the proxy under test pinned to
# CPU 0 (lb --workers 1, HAProxy nbthread 1, or nginx 1 worker), both configured by the same
# functions as in bench.sh (scripts/bench_lib.sh), drives it with `wrk -t1 -c50` on CPU 1, and
# records, each over its own window of load:
#   1. syscalls per request: `perf stat` on the syscall tracepoints (no slow-down, unlike strace);
#   2. a `perf record -F 2000 -g` profile: kernel vs user split, top symbols, time under each
#      syscall (software clock: hardware counters are not available on this VM);
#   3. with CALLGRIND=1 (lb only): instructions per request in user space under
#      `valgrind --tool=callgrind`, top functions by self cost (scripts/callgrind_top.py).
# Results go to target/bench/profile/<proxy>/ (report.txt summarizes them).
#
# Usage: scripts/profile.sh [lb|haproxy|nginx]...     default: lb haproxy nginx
#        scripts/profile.sh --help                     this text
# Settings: SECONDS_PER_WINDOW (5), CALLGRIND (0), SKIP_BUILD (0), CLOSE (0; 1 sends
# `Connection: close` on every request, as bench.sh's close mode, results in profile-close/). Needs perf (linux-perf) and wrk;
# valgrind for CALLGRIND=1. Every process it starts is stopped by PID on exit, error or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
WINDOW="${SECONDS_PER_WINDOW:-5}"
CALLGRIND="${CALLGRIND:-0}"
PROXIES=("$@")
[ "${#PROXIES[@]}" -gt 0 ] || PROXIES=(lb haproxy nginx)
LB="$ROOT/target/release/lb"
OUT="$ROOT/target/bench/profile"
WRK_EXTRA=()
MODE_NAME=keep-alive
if [ "${CLOSE:-0}" = 1 ]; then
    WRK_EXTRA=(-H "Connection: close")
    OUT="$ROOT/target/bench/profile-close"
    MODE_NAME="Connection: close"
fi

# say/die, WORKDIR, the processes (each stopped by PID on exit), ports, and the origin nginx, lb,
# HAProxy and nginx exactly as bench.sh configures them.
source "$ROOT/scripts/bench_lib.sh"
help_if_asked "$@"

for tool in perf wrk nginx haproxy taskset curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (apt-get install -y linux-perf wrk nginx haproxy)"
done
[ "$CALLGRIND" != 1 ] || command -v valgrind >/dev/null 2>&1 || die "CALLGRIND=1 needs valgrind"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p lb >&2
fi

read -r -a PORTS <<<"$(free_ports 5)"
ORIGIN_A=${PORTS[0]} ORIGIN_B=${PORTS[1]} ORIGIN_STATUS=${PORTS[2]} FRONT=${PORTS[3]} ADMIN=${PORTS[4]}
# As bench.sh's keepalive mode: the proxy pinned to CPU 0 (lb keeps its own pinning), the origin
# and wrk on CPU 1.
PINNED=1 PROXY_PIN=(taskset -c 0) ORIGIN_PIN=(taskset -c 1)
start_origin_nginx "$ORIGIN_A" "$ORIGIN_B" "$ORIGIN_STATUS"

# Starts proxy $1 on $FRONT with one worker/thread; sets PROXY_ROOT (the process started) and
# PROXY_PID (the process doing the work).
start_proxy() {
    case "$1" in
    lb)
        start_lb "$FRONT" "$ADMIN" 1
        PROXY_ROOT=$LB_PID PROXY_PID=$LB_PID
        ;;
    haproxy)
        start_haproxy "$FRONT" 1 4096
        PROXY_ROOT=$HAPROXY_PID PROXY_PID=$HAPROXY_PID
        ;;
    nginx)
        start_nginx "$FRONT" 1 4096
        PROXY_ROOT=$NGINX_PID
        PROXY_PID=$(pgrep -P "$PROXY_ROOT" | head -1) # the worker does the proxying
        ;;
    *) die "unknown proxy $1" ;;
    esac
}

# Stops proxy $1 and keeps its stderr with the results.
stop_proxy() {
    stop_all "$PROXY_ROOT"
    cp "$WORKDIR/$1.err" "$OUT/$1/err" 2>/dev/null || true
}

# Runs wrk in the background for $1 seconds; sets WRK_PID; output in $2. Reap it with `reap`.
load() {
    taskset -c 1 wrk -t1 -c50 -d"$1"s --latency "${WRK_EXTRA[@]}" "http://127.0.0.1:$FRONT/" >"$2" &
    WRK_PID=$!
    PIDS+=("$WRK_PID")
}
reap() {
    wait "$WRK_PID" || true
    forget "$WRK_PID"
}

rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }

SYSCALLS=raw_syscalls:sys_enter
for s in epoll_wait sendto recvfrom writev readv read write epoll_ctl clock_gettime accept4 close \
    setsockopt getsockopt shutdown; do
    SYSCALLS+=",syscalls:sys_enter_$s"
done

for proxy in "${PROXIES[@]}"; do
    dir="$OUT/$proxy"
    rm -rf "$dir"
    mkdir -p "$dir"
    say "$proxy: warming up"
    start_proxy "$proxy"
    taskset -c 1 wrk -t1 -c50 -d2s "${WRK_EXTRA[@]}" "http://127.0.0.1:$FRONT/" >/dev/null

    say "$proxy: syscalls per request (${WINDOW} s)"
    load $((WINDOW + 2)) "$dir/wrk-stat.txt"
    sleep 1
    perf stat -x, -e "$SYSCALLS,task-clock" -p "$PROXY_PID" -o "$dir/perf-stat.csv" -- sleep "$WINDOW"
    reap

    say "$proxy: perf record (${WINDOW} s)"
    load $((WINDOW + 2)) "$dir/wrk-record.txt"
    sleep 1
    perf record -F 2000 -g -p "$PROXY_PID" -o "$dir/perf.data" -- sleep "$WINDOW" 2>/dev/null
    reap

    # `head` closes pipes early: no pipefail while the report is written.
    set +o pipefail
    {
        echo "# $proxy, wrk -t1 -c50 $MODE_NAME, proxy pinned to CPU 0"
        echo
        echo "## syscalls per request (perf stat, ${WINDOW} s at $(rps "$dir/wrk-stat.txt") req/s)"
        awk -F, -v rps="$(rps "$dir/wrk-stat.txt")" -v w="$WINDOW" '
            $3 != "" && $1 ~ /^[0-9.]+$/ {
                if ($3 == "task-clock") printf "  %-36s %.2f us per request (%.0f%% of one CPU)\n", "CPU time (task-clock)", $1 * 1000 / (rps * w), $1 / (w * 10)
                else if ($1 > 0) printf "  %-36s %8.3f per request\n", $3, $1 / (rps * w)
            }' "$dir/perf-stat.csv"
        echo
        echo "## where the time goes (perf record, ${WINDOW} s at $(rps "$dir/wrk-record.txt") req/s)"
        perf report -i "$dir/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]'
        echo
        echo "## time under each syscall (children included)"
        perf report -i "$dir/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
            grep -E '\] (__x64_sys_[a-z_0-9]+|handle_softirqs|schedule|finish_task_switch.*)$' | head -12 || true
        echo
        echo "## top symbols (self)"
        perf report -i "$dir/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -40
    } >"$dir/report.txt"
    set -o pipefail
    stop_proxy "$proxy"

    if [ "$CALLGRIND" = 1 ] && [ "$proxy" = lb ]; then
        say "lb: callgrind (instructions per request, user space)"
        taskset -c 0 env LB_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
            "$LB" run --listen "127.0.0.1:$FRONT" --admin "127.0.0.1:$ADMIN" --workers 1 \
            --route "/=127.0.0.1:$ORIGIN_A,127.0.0.1:$ORIGIN_B" >/dev/null 2>"$dir/valgrind.err" &
        PIDS+=($!)
        vg=$!
        for ((i = 0; i < 300; i++)); do
            ss -Hltn "sport = :$FRONT" | grep -q . && break
            kill -0 "$vg" 2>/dev/null || die "lb under valgrind exited: $(tail -3 "$dir/valgrind.err")"
            sleep 0.2
        done
        taskset -c 1 wrk -t1 -c50 -d3s "http://127.0.0.1:$FRONT/" >/dev/null
        requests() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^lb_worker_requests_total/ {s += $NF} END {print s}'; }
        r0=$(requests)
        callgrind_control -z "$vg" >/dev/null
        taskset -c 1 wrk -t1 -c50 -d10s "http://127.0.0.1:$FRONT/" >/dev/null
        callgrind_control -d "$vg" >/dev/null
        r1=$(requests)
        kill -TERM "$vg" 2>/dev/null || true
        wait "$vg" 2>/dev/null || true
        forget "$vg"
        dump=$(ls -t "$dir"/callgrind.out.* | head -1)
        {
            echo
            echo "## callgrind: user-space instructions per request ($((r1 - r0)) requests)"
            python3 "$ROOT/scripts/callgrind_top.py" "$dump" $((r1 - r0)) 30
        } >>"$dir/report.txt"
    fi
    say "$proxy: $dir/report.txt"
done
for proxy in "${PROXIES[@]}"; do
    cat "$OUT/$proxy/report.txt"
    echo
done
