#!/usr/bin/env bash
# HTTP/2 conformance (h2spec, 146 cases) against lb over h2c (prior knowledge).
#   bash scripts/h2spec.sh                 build lb and h2spec, start an origin and lb, run h2spec
#   bash scripts/h2spec.sh --port PORT     run h2spec against an lb already listening on PORT
# h2spec is built offline by ../shared/tools/h2spec/build.sh into target/h2spec/h2spec (Debian's
# Go and Go libraries, installed by apt when missing). Prints h2spec's report; exits non-zero
# unless every case passed and none was skipped. The black-box test http2::conformance runs the
# same check in `cargo test`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
h2spec=$(H2SPEC_OUT="$root/target/h2spec/h2spec" bash ../shared/tools/h2spec/build.sh)

port=
if [[ ${1:-} == --port ]]; then
    port=${2:?usage: h2spec.sh [--port PORT]}
fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

if [[ -z $port ]]; then
    cargo build -q -p lb
    lb=$root/target/debug/lb
    # The origin's body must be at least 5 bytes: case 6.9.2/2 is skipped below that.
    "$lb" echo --listen 127.0.0.1:0 --name h2spec-origin >"$root/target/h2spec/origin.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        origin=$(grep -o '127\.0\.0\.1:[0-9]*' "$root/target/h2spec/origin.log" | head -1 || true)
        [[ -n $origin ]] && break
        sleep 0.1
    done
    [[ -n $origin ]] || { echo "h2spec.sh: the origin did not start" >&2; exit 1; }
    "$lb" run --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 --no-pin \
        --route "/=$origin" >"$root/target/h2spec/lb.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$root/target/h2spec/lb.log" | grep -o '[0-9]*$' || true)
        [[ -n $port ]] && break
        sleep 0.1
    done
    [[ -n $port ]] || { echo "h2spec.sh: lb did not start" >&2; cat "$root/target/h2spec/lb.log" >&2; exit 1; }
fi

report=$("$h2spec" -h 127.0.0.1 -p "$port" -o 5 || true)
echo "$report"
summary=$(echo "$report" | grep -E '^[0-9]+ tests, ' | tail -1)
echo "h2spec.sh: $summary"
[[ $summary =~ ^([0-9]+)\ tests,\ ([0-9]+)\ passed,\ 0\ skipped,\ 0\ failed$ ]] &&
    [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]
