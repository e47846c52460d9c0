#!/usr/bin/env bash
# oha_ab.sh: lb against HAProxy (and the floor, null_proxy) under oha, alternating on the same
# running processes, with the proxy's system calls and CPU per request from `perf stat`.
#
# bench.sh runs oha once per proxy as a cross-check; single oha runs move by ±15% here. This runs
# ROUNDS (3) alternating `oha -c50 -z DURATION s` (5) runs against the floor (null_proxy, see
# bench.sh), lb --workers 1 and HAProxy nbthread 1 (pinned to CPU 0; origin nginx and oha on CPU 1;
# configs from bench_lib.sh) and prints one line per run. Needs nginx, haproxy, oha, perf and a
# release build of lb and of null_proxy (`cargo build --release -p lb -p lb-benches --bins`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
source "$ROOT/scripts/bench_lib.sh"
help_if_asked "$@"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
LB="${LB_BIN:-$ROOT/target/release/lb}"
NULL_PROXY="$ROOT/target/release/null_proxy"
PINNED=1
PROXY_PIN=(taskset -c 0)
ORIGIN_PIN=(taskset -c 1)
read -r ORIGIN_A ORIGIN_B STATUS LB_PORT LB_ADMIN HAPROXY_PORT FLOOR_PORT < <(free_ports 7)
start_origin_nginx "$ORIGIN_A" "$ORIGIN_B" "$STATUS"
start_lb "$LB_PORT" "$LB_ADMIN" 1
start_haproxy "$HAPROXY_PORT" 1 20000
start_floor "$FLOOR_PORT" 1
events='raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,context-switches,task-clock'
for ((round = 1; round <= ROUNDS; round++)); do
    for proxy in floor lb haproxy; do
        case "$proxy" in
        floor) port=$FLOOR_PORT pid=$FLOOR_PID ;;
        lb) port=$LB_PORT pid=$LB_PID ;;
        haproxy) port=$HAPROXY_PORT pid=$HAPROXY_PID ;;
        esac
        perf stat -e "$events" -p "$pid" -o "$WORKDIR/perf.txt" -- sleep "$DURATION" &
        perf_pid=$!
        taskset -c 1 oha --no-tui --output-format json -z "${DURATION}s" -c 50 \
            "http://127.0.0.1:$port/" >"$WORKDIR/oha.json" 2>/dev/null
        wait "$perf_pid" || true
        python3 - "$WORKDIR/oha.json" "$WORKDIR/perf.txt" "$proxy" "$round" "$DURATION" <<'PY'
import json, re, sys
oha, perf, proxy, round_, seconds = sys.argv[1:]
d = json.load(open(oha))
rps = d["summary"]["requestsPerSec"]
lat = d.get("latencyPercentiles", {})
text = open(perf).read()
def event(name):
    m = re.search(r"([\d,.]+)\s+(?:msec\s+)?" + re.escape(name), text)
    return float(m.group(1).replace(",", "")) if m else float("nan")
n = rps * float(seconds)
print(f"round {round_} {proxy:8} {rps:8.0f} req/s  p50 {lat.get('p50', 0) * 1000:.2f} ms"
      f"  p99 {lat.get('p99', 0) * 1000:.2f} ms  syscalls/req {event('raw_syscalls:sys_enter') / n:.2f}"
      f"  epoll_wait/req {event('syscalls:sys_enter_epoll_wait') / n:.2f}"
      f"  switches/req {event('context-switches') / n:.3f}"
      f"  cpu {event('task-clock') * 1000 / n:.1f} us/req")
PY
    done
done
