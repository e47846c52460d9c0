#!/usr/bin/env bash
# bench.sh: a first benchmark of lb on loopback, set up the way the project's benchmarking notes
# found stable on a 2-CPU machine.
#
# What it measures: lb with one worker pinned to CPU 0, in front of two `lb echo` origins pinned to
# CPU 1, driven by `wrk -t1 -c50 -d8s --latency` (also on CPU 1) after a 2 s warm-up. It prints
# wrk's requests/s and latency percentiles, and lb's CPU time per request: the utime+stime delta
# of the lb process (from /proc/PID/stat) over the measured run divided by the requests served.
# On two CPUs the client and origins saturate CPU 1 before lb saturates CPU 0, so CPU time per
# request is the figure that compares proxies; req/s varies between runs and machines. It also
# prints how many upstream connections lb opened (a handful means upstream keep-alive works).
#
# Usage: scripts/bench.sh            keep-alive clients
#        MODE=close scripts/bench.sh clients send `Connection: close` (one connection per request)
# Tunables: DURATION (8s), WARMUP (2s), CONNECTIONS (50). Run it on a quiet machine: a compile or a
# test suite running at the same time moves results by 15-25%.
#
# Every process it starts is stopped by PID when it exits, fails or is interrupted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-50}"
MODE="${MODE:-keepalive}"

PIDS=()
WORKDIR="$(mktemp -d)"
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench.sh: $*" >&2
    exit 1
}

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found; installing it with apt-get" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } ||
        die "could not install wrk"
fi

# CPU 0 for lb, CPU 1 for everything else; on a one-CPU machine nothing can be separated.
if [ "$(nproc)" -ge 2 ]; then
    LB_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
else
    echo "note: fewer than 2 CPUs; running unpinned, figures are not comparable" >&2
    LB_CPU=()
    LOAD_CPU=()
fi

echo "building the release binary..." >&2
cargo build --release -p lb >&2
LB=./target/release/lb

# Waits (up to 30 s) for a line matching $2 in file $1 and prints it.
wait_line() {
    local file=$1 pattern=$2 i
    for ((i = 0; i < 300; i++)); do
        if grep -m1 -E "$pattern" "$file" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "no line matching '$pattern' in $file; it says: $(cat "$file" "$file.err" 2>/dev/null)"
}

# Starts `lb echo` NAME in this shell (not in a command substitution, whose $! would be lost to
# the cleanup trap) and stores its address in ORIGIN.
start_echo() {
    local name=$1 out="$WORKDIR/echo-$1"
    "${LOAD_CPU[@]}" "$LB" echo --listen 127.0.0.1:0 --name "$name" >"$out" 2>"$out.err" &
    PIDS+=($!)
    ORIGIN=$(wait_line "$out" "^echo $name listening on " | awk '{print $NF}')
}

start_echo a
ORIGIN_A=$ORIGIN
start_echo b
ORIGIN_B=$ORIGIN

LB_OUT="$WORKDIR/lb"
LB_LOG=warn "${LB_CPU[@]}" "$LB" run --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 \
    --route "/=$ORIGIN_A,$ORIGIN_B" >"$LB_OUT" 2>"$LB_OUT.err" &
LB_PID=$!
PIDS+=("$LB_PID")
READY=$(wait_line "$LB_OUT" "listening on ")
LISTEN=$(sed -E 's/.*listening on ([^ ]+) \(admin ([^,]+),.*/\1/' <<<"$READY")
ADMIN=$(sed -E 's/.*listening on ([^ ]+) \(admin ([^,]+),.*/\2/' <<<"$READY")

WRK_ARGS=(-t1 "-c$CONNECTIONS" --latency)
if [ "$MODE" = close ]; then
    WRK_ARGS+=(-H "Connection: close")
fi

# lb's CPU time so far in clock ticks: utime + stime, fields 14 and 15 of /proc/PID/stat (the
# command name in field 2 cannot contain spaces here, so plain field splitting is safe).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$LB_PID/stat"; }
metric() {
    curl -s "http://$ADMIN/metrics" | awk -v m="$1" '$1 ~ "^"m {s += $NF} END {print s + 0}'
}

echo "lb $LISTEN (admin $ADMIN) -> origins $ORIGIN_A $ORIGIN_B; mode $MODE, $CONNECTIONS connections" >&2
echo "warm-up $WARMUP..." >&2
"${LOAD_CPU[@]}" wrk "${WRK_ARGS[@]}" -d "$WARMUP" "http://$LISTEN/" >/dev/null

TICKS_BEFORE=$(cpu_ticks)
MISSES_BEFORE=$(metric lb_worker_upstream_pool_misses_total)
echo "measuring $DURATION..." >&2
"${LOAD_CPU[@]}" wrk "${WRK_ARGS[@]}" -d "$DURATION" "http://$LISTEN/" >"$WORKDIR/wrk.txt"
TICKS_AFTER=$(cpu_ticks)
MISSES_AFTER=$(metric lb_worker_upstream_pool_misses_total)

cat "$WORKDIR/wrk.txt"

REQUESTS=$(awk '/requests in/ {print $1}' "$WORKDIR/wrk.txt")
RPS=$(awk '/^Requests\/sec:/ {print $2}' "$WORKDIR/wrk.txt")
P50=$(awk '$1 == "50%" {print $2}' "$WORKDIR/wrk.txt")
P99=$(awk '$1 == "99%" {print $2}' "$WORKDIR/wrk.txt")
ERRORS=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORKDIR/wrk.txt")
HZ=$(getconf CLK_TCK)
[ -n "$REQUESTS" ] && [ "$REQUESTS" -gt 0 ] || die "wrk reported no requests"

awk -v t=$((TICKS_AFTER - TICKS_BEFORE)) -v hz="$HZ" -v n="$REQUESTS" -v rps="$RPS" \
    -v p50="$P50" -v p99="$P99" -v errs="${ERRORS:-0}" -v conns=$((MISSES_AFTER - MISSES_BEFORE)) \
    -v mode="$MODE" 'BEGIN {
    printf "\nlb --workers 1, %s: %s req/s, p50 %s, p99 %s, non-2xx %s\n", mode, rps, p50, p99, errs
    printf "lb CPU: %.2f s for %d requests = %.1f us per request (clock tick %.0f ms)\n",
        t / hz, n, t / hz / n * 1e6, 1000 / hz
    printf "new upstream connections during the run: %d\n", conns
}'
