#!/usr/bin/env bash
# upgrade_load.sh: a zero-downtime upgrade under wrk load, counted by wrk.
#
# Starts two `lb echo` origins and `lb --workers 2 --upgrade-socket ...` (a copy of
# target/release/lb in a scratch directory: an upgrade re-executes the binary at its path), runs
# `wrk -t1 -c50` for DURATION seconds (6) and, after UPGRADE_AT seconds (2), `lb upgrade`.
# Prints wrk's summary: its "Socket errors" and "Non-2xx" lines are absent when nothing failed.
#
# Usage: scripts/upgrade_load.sh [keepalive|close] [extra lb flags...]
# Needs wrk and a release build (cargo build --release -p lb). Every process it starts is
# stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=${1:-keepalive}
shift || true
DURATION=${DURATION:-6}
UPGRADE_AT=${UPGRADE_AT:-2}
dir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}" $(pgrep -f "$dir/lb run" || true); do
        kill "$pid" 2>/dev/null || true
    done
    for _ in $(seq 100); do
        pgrep -f "$dir/lb" >/dev/null || break
        sleep 0.1
    done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

cp target/release/lb "$dir/lb"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
o1=$(port) o2=$(port) front=$(port) admin=$(port)
"$dir/lb" echo --listen "127.0.0.1:$o1" --name e1 >/dev/null 2>&1 & pids+=($!)
"$dir/lb" echo --listen "127.0.0.1:$o2" --name e2 >/dev/null 2>&1 & pids+=($!)
LB_LOG=warn "$dir/lb" run --listen "127.0.0.1:$front" --admin "127.0.0.1:$admin" --workers 2 \
    --route "/=127.0.0.1:$o1,127.0.0.1:$o2" --upgrade-socket "$dir/up.sock" "$@" \
    >"$dir/lb.out" 2>"$dir/lb.err" &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$dir/lb.out" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$dir/lb.out" || { cat "$dir/lb.err" >&2; exit 1; }

extra=()
[ "$mode" = close ] && extra=(-H "Connection: close")
wrk -t1 -c50 -d"${DURATION}s" "${extra[@]}" "http://127.0.0.1:$front/" >"$dir/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
sleep "$UPGRADE_AT"
"$dir/lb" upgrade --upgrade-socket "$dir/up.sock"
wait "$wrk_pid"
echo "wrk, $mode, upgrade after ${UPGRADE_AT}s of ${DURATION}s:"
cat "$dir/wrk.txt"
