#!/usr/bin/env bash
# bench.sh: lb against HAProxy and nginx on loopback, the way docs/benchmarks.md describes.
#
# What it does, per mode and per origin set (a "block"):
#   - starts the origins: nginx `return 200 "ok\n"` on two ports (1 worker, stub_status on a third
#     port to count accepted connections), or two `lb echo` processes;
#   - starts lb, HAProxy and nginx configured alike: round robin over the two origins, upstream
#     keep-alive (HAProxy `http-reuse always`; nginx `keepalive 64`, N in the conns mode,
#     `proxy_http_version 1.1`, `proxy_set_header Connection ""`), no access logs,
#     X-Forwarded-For added by all three (lb always adds it), one worker/thread (two in the
#     `workers2` mode);
#   - starts the floor: `null_proxy` (benches/src/bin/null_proxy.rs), which makes only the system
#     calls a keep-alive proxy must make (read, write upstream, read, write back) and nothing else,
#     so its CPU per request is what the kernel costs any proxy here (not in the close mode, where
#     it would open an upstream connection per client connection, which the proxies do not);
#   - runs `wrk -t1 -c50 --latency` against the origin directly and through each proxy, in
#     alternating rounds (direct floor lb haproxy nginx, direct floor lb ...), each run after a
#     warm-up of the same kind;
#   - per run records req/s, p50/p99, the proxy's CPU time (utime+stime of the proxy and its child
#     processes from /proc/PID/stat over the measured run) divided by the requests served, its peak
#     RSS (VmHWM, summed over its processes) and the new connections the origin saw.
# Modes: keepalive (proxy pinned to CPU 0 with taskset, wrk and origin on CPU 1), close (same, with
# `Connection: close` on every request), workers2 (2 workers/threads, nothing pinned), conns (a
# sweep: the keepalive setup once per wrk connection count in CONNS, nginx origin only, with
# `wrk --timeout 10s`, the peers' upstream keep-alive sized for the point: HAProxy `maxconn`,
# nginx `keepalive N` and `worker_connections`; a point needing more file descriptors than
# `ulimit -n` allows, 2 per connection plus a margin, is skipped with a note), bigbody (large
# bodies: an nginx origin serving BIGBODY_SIZES MiB files with sendfile, `wrk -c$BIGBODY_CONNS`,
# lb with splice and with its copy path, HAProxy with and without `option splice-response`, nginx
# with `proxy_buffering off`; body bytes per CPU-second: scripts/bench_bigbody.sh), h2 (HTTP/2 over
# clear text, prior knowledge: `h2load -t1 -c16 -m16` through lb, HAProxy `bind ... proto h2` and
# nginx `listen ... http2`, all proxying to the same HTTP/1.1 origins with the keepalive pinning;
# no direct or floor runs, the origins speak HTTP/1.1 only; p50/p99 from h2load's per-request log;
# H2_CONNS and H2_STREAMS change the 16 x 16; not in the default MODES).
# tls (scripts/bench_tls.sh): lb, HAProxy and nginx terminating TLS 1.3 with one certificate:
# full handshakes + one request + close, resumed handshakes, keep-alive requests, 1 MiB answers,
# driven by benches/src/bin/tls_load.rs; not in the default MODES (MODES=tls runs it).
# Then, unless IDLE_CONNS=0: each proxy's RSS with IDLE_CONNS idle keep-alive client connections
# (scripts/idle_conns.py), and, if `oha` is installed, one oha run per proxy as a cross-check.
#
# Output: a results section (markdown tables, issue-4 targets met / not met) and a PNG chart,
# written into docs/benchmarks.md (between the "bench.sh results" markers) and docs/img/bench.png,
# and the raw records (runs.tsv, ...) copied to target/bench/last/.
#
# Usage:
#   scripts/bench.sh                  the full run: ROUNDS=5, 8 s runs, 2 s warm-up (~55 minutes, bigbody ~9 of them)
#   QUICK=1 scripts/bench.sh          ROUNDS=1, 3 s runs, 1 s warm-up; writes nothing under docs/
#   scripts/bench.sh --help           this text
#   MODES=keepalive ORIGINS=nginx PROXIES="lb haproxy" scripts/bench.sh    a subset
#   MODES=conns CONNS="50 400" PROXIES="lb haproxy" scripts/bench.sh       part of the sweep
#   MODES=bigbody BIGBODY_SIZES=10 BIGBODY_PROXIES="lb haproxy-splice" scripts/bench.sh
#   CANDIDATE=/path/to/other/lb scripts/bench.sh   adds a "candidate" lb build (e.g. a branch under
#                                     review) to every round, configured like lb: an A/B in one run
# Settings (environment): ROUNDS, DURATION and WARMUP (seconds), CONNECTIONS (50), MODES
# ("keepalive close workers2 conns bigbody"), CONNS (the sweep's points: "50 400 4000 10000"),
# BIGBODY_SIZES ("1 10", MiB), BIGBODY_CONNS (8), BIGBODY_PROXIES ("lb lb-copy haproxy
# haproxy-splice nginx"), NOFILE (the
# file limit asked for, 65536; without the privilege the hard limit is used), ORIGINS ("nginx
# echo"), PROXIES ("direct floor lb haproxy nginx"),
# IDLE_CONNS (10000; 0 skips), OHA (1; 0 skips), WRITE_DOCS (1, or 0 with QUICK=1), SKIP_BUILD (0),
# KEEP_WORKDIR (0), LB_BIN (an lb binary to use instead of building target/release/lb),
# PEER_DEFER_ACCEPT (unset; 1 gives HAProxy `defer-accept` and nginx `deferred`
# on their listeners, for comparing against an lb that defers accepts).
#
# Run it on a quiet machine: a compile or a test suite running at the same time moves absolute
# results by 15-25%. The ratios are taken round by round, so they hold better than req/s does.
# Every process it starts is stopped by its PID when it exits, fails or is interrupted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

if [ "${QUICK:-0}" = 1 ]; then
    ROUNDS="${ROUNDS:-1}" DURATION="${DURATION:-3}" WARMUP="${WARMUP:-1}"
    WRITE_DOCS="${WRITE_DOCS:-0}"
fi
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-8}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-2}"
WARMUP="${WARMUP%s}"
CONNECTIONS="${CONNECTIONS:-50}"
MODES="${MODES:-keepalive close workers2 conns bigbody}"
H2_CONNS="${H2_CONNS:-16}"
H2_STREAMS="${H2_STREAMS:-16}"
CONNS="${CONNS:-50 400 4000 10000}"
NOFILE="${NOFILE:-65536}"
ORIGINS="${ORIGINS:-nginx echo}"
PROXIES="${PROXIES:-direct floor lb haproxy nginx}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
OHA="${OHA:-1}"
WRITE_DOCS="${WRITE_DOCS:-1}"
SKIP_BUILD="${SKIP_BUILD:-0}"
KEEP_WORKDIR="${KEEP_WORKDIR:-0}"
DOC="$ROOT/docs/benchmarks.md"
CHART="$ROOT/docs/img/bench.png"
LB="${LB_BIN:-$ROOT/target/release/lb}"
[ -z "${LB_BIN:-}" ] || SKIP_BUILD=1
NULL_PROXY="$ROOT/target/release/null_proxy"
CANDIDATE="${CANDIDATE:-}"
if [ -n "$CANDIDATE" ]; then
    [ -x "$CANDIDATE" ] || { echo "bench.sh: CANDIDATE=$CANDIDATE is not an executable" >&2; exit 1; }
    [[ " $PROXIES " == *" candidate "* ]] || PROXIES="${PROXIES/lb/lb candidate}"
    [[ " $PROXIES " == *" candidate "* ]] || PROXIES="$PROXIES candidate"
fi

# say/die, WORKDIR, the processes (each stopped by PID on exit), ports, and the origin nginx, lb,
# HAProxy and nginx as profile.sh runs them too.
source "$ROOT/scripts/bench_lib.sh"
source "$ROOT/scripts/bench_tls.sh"
help_if_asked "$@"
# The bigbody mode's origin, measurement and block.
source "$ROOT/scripts/bench_bigbody.sh"

# ---------------------------------------------------------------------------------------------
# Tools.

need_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        command -v "${pkg%%:*}" >/dev/null 2>&1 || missing+=("${pkg#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]} with apt-get"
    apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; } ||
        die "could not install ${missing[*]}"
}
need_apt wrk:wrk nginx:nginx haproxy:haproxy gnuplot:gnuplot-nox python3:python3 taskset:util-linux \
    curl:curl ss:iproute2
[[ " $MODES " == *" h2 "* ]] && need_apt h2load:nghttp2-client

HAVE_OHA=0
if [ "$OHA" = 1 ]; then
    if command -v oha >/dev/null 2>&1; then
        HAVE_OHA=1
    else
        say "oha not installed: the oha cross-check is skipped (cargo install oha --locked adds it)"
    fi
fi

# Proxies and direct runs need ulimit -n above the idle-connection count and the sweep's points
# (every process started from here inherits it).
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$IDLE_CONNS" -gt 0 ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 500)) ]; then
    say "ulimit -n is $(ulimit -n): too low for $IDLE_CONNS idle connections; using $(($(ulimit -n) - 500))"
    IDLE_CONNS=$(($(ulimit -n) - 500))
fi

if [ "$(nproc)" -ge 2 ]; then
    PROXY_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
else
    say "fewer than 2 CPUs: running unpinned; figures are not comparable"
    PROXY_CPU=()
    LOAD_CPU=()
fi

if [ "$SKIP_BUILD" != 1 ]; then
    say "building lb (cargo build --release -p lb)"
    cargo build --release -p lb >&2
fi
[ -x "$LB" ] || die "$LB not found"
if [[ " $PROXIES " == *" floor "* ]] && { [ "$SKIP_BUILD" != 1 ] || [ ! -x "$NULL_PROXY" ]; }; then
    say "building the floor (cargo build --release -p lb-benches --bin null_proxy)"
    cargo build --release -p lb-benches --bin null_proxy >&2
fi

# ---------------------------------------------------------------------------------------------
# Helpers.

# PID and its descendants.
tree() {
    local pid=$1 child
    echo "$pid"
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do
        tree "$child"
    done
}

# utime+stime (clock ticks) of PID and its descendants.
cpu_ticks() {
    local sum=0 p t
    for p in $(tree "$1"); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

# Sum of a /proc/PID/status field (kB) over PID and its descendants: VmHWM, VmRSS.
mem_kib() {
    local sum=0 p v
    for p in $(tree "$1"); do
        v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# wrk's latency figure (e.g. 605.00us, 2.31ms, 1.02s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "?" }'
}

HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Origins and proxies (start_origin_nginx, start_lb, start_haproxy, start_nginx: bench_lib.sh).

# Origin `lb echo`: ports $1 $2; sets ORIGIN_PIDS.
start_origin_echo() {
    spawn origin-echo-a "${ORIGIN_PIN[@]}" "$LB" echo --listen "127.0.0.1:$1" --name a
    ORIGIN_PIDS=("$SPAWNED")
    wait_port "$1" "$SPAWNED" origin-echo-a
    spawn origin-echo-b "${ORIGIN_PIN[@]}" "$LB" echo --listen "127.0.0.1:$2" --name b
    ORIGIN_PIDS+=("$SPAWNED")
    wait_port "$2" "$SPAWNED" origin-echo-b
}

# Connections the origin has accepted so far (block's origin set), or "" when not countable.
origin_accepts() {
    local proxy=$1
    case "$ORIGIN" in
    nginx)
        # stub_status counts its own connection too; the caller subtracts it.
        curl -s "http://127.0.0.1:$ORIGIN_STATUS/" | awk 'NR == 3 {print $1}'
        ;;
    echo)
        # lb echo has no counter: take the proxy's own count of connections it opened.
        case "$proxy" in
        lb) lb_metric lb_worker_upstream_pool_misses_total "$LB_ADMIN" ;;
        candidate) lb_metric lb_worker_upstream_pool_misses_total "$CAND_ADMIN" ;;
        haproxy)
            python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
lines = data.decode().splitlines()
cols = lines[0].lstrip("# ").split(",")
i, t = cols.index("connect"), cols.index("svname")
print(sum(int(l.split(",")[i] or 0) for l in lines[1:] if l and l.split(",")[t] in ("a", "b")))' \
                "$WORKDIR/haproxy/stats.sock" 2>/dev/null || echo ""
            ;;
        *) echo "" ;;
        esac
        ;;
    esac
}

lb_metric() {
    curl -s "http://127.0.0.1:$2/metrics" | awk -v m="$1" 'index($1, m) == 1 {s += $NF} END {print s + 0}'
}

# Per-worker lb counters: "worker accepted requests" lines.
lb_workers() {
    curl -s "http://127.0.0.1:$LB_ADMIN/metrics" | awk '
        /^lb_worker_connections_accepted_total/ {match($1, /worker="[0-9]+"/); w = substr($1, RSTART + 8, RLENGTH - 9); a[w] = $NF}
        /^lb_worker_requests_total/ {match($1, /worker="[0-9]+"/); w = substr($1, RSTART + 8, RLENGTH - 9); r[w] = $NF}
        END {for (w in a) print w, a[w], r[w]}' | sort -n
}

# wrk in the background (so a signal reaches the trap at once), waited for.
run_wrk() {
    local out=$1
    shift
    "${LOAD_PIN[@]}" wrk "$@" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || true
    forget "$pid"
}

# h2load (HTTP/2, prior knowledge) in the background, waited for: OUT SECONDS URL; its
# per-request log (start, status, microseconds) goes to OUT.log.
run_h2load() {
    local out=$1 secs=$2 url=$3
    "${LOAD_PIN[@]}" h2load -t1 "-c$H2_CONNS" "-m$H2_STREAMS" -D "$secs" --log-file="$out.log" \
        "$url" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || true
    forget "$pid"
}

# One load run of the block's kind: OUT SECONDS URL (wrk, or h2load in the h2 mode).
run_load() {
    local out=$1 secs=$2 url=$3
    if [ "$MODE" = h2 ]; then
        run_h2load "$out" "$secs" "$url"
        return
    fi
    local wrk_args=(-t1 "-c$BLOCK_CONNS" --latency)
    [ "$MODE" = close ] && wrk_args+=(-H "Connection: close")
    # Thousands of connections on one wrk thread: a late answer is slow, not an error.
    [ "$MODE" = conns ] && wrk_args+=(--timeout 10s)
    run_wrk "$out" "${wrk_args[@]}" -d "${secs}s" "$url"
}

# Reads a run's output OUT into REQUESTS RPS P50 P99 ERRORS (wrk's, or h2load's and its log).
read_run() {
    local out=$1
    if [ "$MODE" = h2 ]; then
        REQUESTS=$(awk '/^requests:/ {print $8}' "$out")
        RPS=$(awk '/^finished in/ {print $4}' "$out")
        ERRORS=$(awk '/^requests:/ {n = $10 + $12 + $14} /^status codes:/ {n += $5 + $7 + $9} END {print n + 0}' "$out")
        read -r P50 P99 < <(awk '{print $3}' "$out.log" 2>/dev/null | sort -n | awk '
            {d[NR] = $1} END {if (NR == 0) {print "? ?"; exit}
            printf "%.3f %.3f\n", d[int((NR - 1) * 0.50) + 1] / 1000, d[int((NR - 1) * 0.99) + 1] / 1000}')
        return
    fi
    REQUESTS=$(awk '/requests in/ {print $1}' "$out")
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    ERRORS=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
}

# One measured run: PROXY URL [PROXY_PID]; appends a record to runs.tsv.
measure() {
    local proxy=$1 url=$2 pid=${3:-} out
    out="$WORKDIR/wrk-$MODE-$ORIGIN-$BLOCK_CONNS-$ROUND-$proxy.txt"
    run_load "$out.warmup" "$WARMUP" "$url"
    local t0=0 c0 w0=""
    [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    c0=$(origin_accepts "$proxy")
    [ "$proxy" = lb ] && w0=$(lb_workers)
    run_load "$out" "$DURATION" "$url"
    local t1=0 c1 w1=""
    [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
    c1=$(origin_accepts "$proxy")
    [ "$proxy" = lb ] && w1=$(lb_workers)

    local requests rps p50 p99 errors conns="" cpu_us="" rss=""
    read_run "$out"
    requests=$REQUESTS rps=$RPS p50=$P50 p99=$P99 errors=$ERRORS
    if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
        say "$MODE/$ORIGIN round $ROUND $proxy: the load served no requests: $(cat "$out")"
        return 0
    fi
    if [ -n "$c0" ] && [ -n "$c1" ]; then
        conns=$((c1 - c0))
        [ "$ORIGIN" = nginx ] && conns=$((conns - 1))
    fi
    if [ -n "$pid" ]; then
        cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$requests" 'BEGIN {printf "%.2f", t / hz / n * 1e6}')
        rss=$(mem_kib "$pid" VmHWM)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$MODE" "$ORIGIN" "$ROUND" "$proxy" \
        "$requests" "$rps" "$p50" "$p99" "$errors" "$((t1 - t0))" "$cpu_us" "$rss" "$conns" "$BLOCK_CONNS" \
        >>"$WORKDIR/runs.tsv"
    if [ "$proxy" = lb ] && [ "$MODE" = workers2 ]; then
        join <(echo "$w0") <(echo "$w1") | while read -r w a0 r0 a1 r1; do
            printf '%s\t%s\t%s\t%s\t%s\n' "$ORIGIN" "$ROUND" "$w" $((a1 - a0)) $((r1 - r0)) >>"$WORKDIR/balance.tsv"
        done
    fi
    say "$(printf '%-9s %-6s c%-5s round %s %-8s %9s req/s  p50 %7s ms  p99 %7s ms  cpu %6s us/req  rss %6s KiB  origin conns %s  errors %s' \
        "$MODE" "$ORIGIN" "$BLOCK_CONNS" "$ROUND" "$proxy" "$rps" "$p50" "$p99" "${cpu_us:--}" "${rss:--}" "${conns:--}" "$errors")"
}

# ---------------------------------------------------------------------------------------------
# The blocks.

printf 'mode\torigin\tround\tproxy\trequests\trps\tp50_ms\tp99_ms\terrors\tcpu_ticks\tcpu_us_per_req\trss_kib\torigin_conns\tconns\n' \
    >"$WORKDIR/runs.tsv"
printf 'origin\tround\tworker\taccepted\trequests\n' >"$WORKDIR/balance.tsv"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

has() { [[ " $PROXIES " == *" $1 "* ]]; }

# run_block MODE ORIGIN [CONNECTIONS]: one block, wrk with CONNECTIONS (default $CONNECTIONS).
run_block() {
    MODE=$1 ORIGIN=$2 BLOCK_CONNS=${3:-$CONNECTIONS}
    local workers=1
    # The peers' connection limits and nginx's upstream keep-alive: at least the concurrency, so
    # that they keep an upstream connection per busy client connection as lb does.
    local maxconn=$((BLOCK_CONNS + 100 > 4096 ? BLOCK_CONNS + 100 : 4096))
    local keepalive=64 nginx_conns=4096
    if [ "$MODE" = conns ]; then
        keepalive=$((BLOCK_CONNS > 64 ? BLOCK_CONNS : 64))
        # nginx's worker_connections counts both sides of each proxied connection.
        nginx_conns=$((2 * maxconn))
    fi
    if [ "$MODE" = workers2 ]; then
        PINNED=0 workers=2
        PROXY_PIN=() ORIGIN_PIN=() LOAD_PIN=()
    else
        PINNED=1
        PROXY_PIN=("${PROXY_CPU[@]}") ORIGIN_PIN=("${LOAD_CPU[@]}") LOAD_PIN=("${LOAD_CPU[@]}")
    fi
    local ports
    read -r -a ports <<<"$(free_ports 10)"
    ORIGIN_A=${ports[0]} ORIGIN_B=${ports[1]} ORIGIN_STATUS=${ports[2]}
    local lb_port=${ports[3]} haproxy_port=${ports[5]} nginx_port=${ports[6]} cand_port=${ports[7]}
    local floor_port=${ports[9]}
    LB_ADMIN=${ports[4]} CAND_ADMIN=${ports[8]}
    [ "$MODE" = h2 ] && BLOCK_CONNS="${H2_CONNS}x$H2_STREAMS"
    say "block $MODE / origin $ORIGIN / $BLOCK_CONNS connections: origins :$ORIGIN_A :$ORIGIN_B, lb :$lb_port, haproxy :$haproxy_port, nginx :$nginx_port"
    "start_origin_$ORIGIN" "$ORIGIN_A" "$ORIGIN_B" "$ORIGIN_STATUS"
    local block_pids=("${ORIGIN_PIDS[@]}")
    local lb_pid="" cand_pid="" floor_pid="" proxies=$PROXIES
    # HTTP/2 towards the proxies: the HTTP/1.1 origins and the floor cannot take it.
    H2_BIND=""
    if [ "$MODE" = h2 ]; then
        proxies=${proxies/direct/} proxies=${proxies/floor/}
        H2_BIND=1
    fi
    # The floor opens an upstream connection per client connection: no floor with Connection: close.
    [ "$MODE" = close ] && proxies=${proxies/floor/}
    if [[ " $proxies " == *" floor "* ]]; then
        start_floor "$floor_port" "$workers" && floor_pid=$FLOOR_PID && block_pids+=("$floor_pid")
    fi
    if has lb; then start_lb "$lb_port" "$LB_ADMIN" "$workers" && lb_pid=$LB_PID && block_pids+=("$lb_pid"); fi
    if has candidate; then
        start_lb "$cand_port" "$CAND_ADMIN" "$workers" "$CANDIDATE" candidate && cand_pid=$LB_PID
        block_pids+=("$cand_pid")
    fi
    if has haproxy; then start_haproxy "$haproxy_port" "$workers" "$maxconn" && block_pids+=("$HAPROXY_PID"); fi
    if has nginx; then
        start_nginx "$nginx_port" "$workers" "$nginx_conns" "$keepalive" && block_pids+=("$NGINX_PID")
    fi
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        for proxy in $proxies; do
            case "$proxy" in
            direct) measure direct "http://127.0.0.1:$ORIGIN_A/" ;;
            floor) measure floor "http://127.0.0.1:$floor_port/" "$floor_pid" ;;
            lb) measure lb "http://127.0.0.1:$lb_port/" "$lb_pid" ;;
            candidate) measure candidate "http://127.0.0.1:$cand_port/" "$cand_pid" ;;
            haproxy) measure haproxy "http://127.0.0.1:$haproxy_port/" "$HAPROXY_PID" ;;
            nginx) measure nginx "http://127.0.0.1:$nginx_port/" "$NGINX_PID" ;;
            *) die "unknown proxy $proxy" ;;
            esac
        done
    done
    if [ "$HAVE_OHA" = 1 ] && [ "$MODE" = keepalive ] && [ "$ORIGIN" = nginx ]; then
        oha_block "$lb_port" "$haproxy_port" "$nginx_port" "$cand_port"
    fi
    stop_all "${block_pids[@]}"
}

# One oha run per proxy (keep-alive, nginx origin) as a cross-check of wrk's figures.
oha_block() {
    printf 'proxy\trps\tp50_ms\tp99_ms\n' >"$WORKDIR/oha.tsv"
    local proxy port
    for proxy in $PROXIES; do
        case "$proxy" in
        direct) port=$ORIGIN_A ;;
        lb) port=$1 ;;
        haproxy) port=$2 ;;
        nginx) port=$3 ;;
        candidate) port=$4 ;;
        *) continue ;;
        esac
        "${LOAD_PIN[@]}" oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNECTIONS" \
            "http://127.0.0.1:$port/" >"$WORKDIR/oha-$proxy.json" 2>"$WORKDIR/oha-$proxy.err" &
        local pid=$!
        PIDS+=("$pid")
        wait "$pid" || true
        forget "$pid"
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
rps = d["summary"]["requestsPerSec"]
p50, p99 = d["latencyPercentiles"]["p50"], d["latencyPercentiles"]["p99"]
print("%s\t%.0f\t%.3f\t%.3f" % (sys.argv[2], rps, p50 * 1000, p99 * 1000))' \
            "$WORKDIR/oha-$proxy.json" "$proxy" >>"$WORKDIR/oha.tsv" ||
            say "oha against $proxy failed: $(head -3 "$WORKDIR/oha-$proxy.err")"
    done
}

# Each proxy's memory with IDLE_CONNS idle keep-alive connections (pinned, 1 worker, nginx origin).
memory_block() {
    MODE=memory ORIGIN=nginx PINNED=1
    PROXY_PIN=("${PROXY_CPU[@]}") ORIGIN_PIN=("${LOAD_CPU[@]}") LOAD_PIN=("${LOAD_CPU[@]}")
    printf 'proxy\tconns\trss_kib\thwm_kib\n' >"$WORKDIR/memory.tsv"
    local ports proxy pid port client
    read -r -a ports <<<"$(free_ports 9)"
    ORIGIN_A=${ports[0]} ORIGIN_B=${ports[1]} ORIGIN_STATUS=${ports[2]} LB_ADMIN=${ports[4]} CAND_ADMIN=${ports[8]}
    start_origin_nginx "$ORIGIN_A" "$ORIGIN_B" "$ORIGIN_STATUS"
    local origin_pids=("${ORIGIN_PIDS[@]}")
    for proxy in $PROXIES; do
        case "$proxy" in
        lb) port=${ports[3]} && start_lb "$port" "$LB_ADMIN" 1 && pid=$LB_PID ;;
        candidate) port=${ports[7]} && start_lb "$port" "$CAND_ADMIN" 1 "$CANDIDATE" candidate && pid=$LB_PID ;;
        haproxy) port=${ports[5]} && start_haproxy "$port" 1 $((IDLE_CONNS + 100)) && pid=$HAPROXY_PID ;;
        nginx) port=${ports[6]} && start_nginx "$port" 1 $((IDLE_CONNS + 100)) && pid=$NGINX_PID ;;
        *) continue ;;
        esac
        spawn "idle-$proxy" "${LOAD_PIN[@]}" python3 "$ROOT/scripts/idle_conns.py" \
            --addr "127.0.0.1:$port" --conns "$IDLE_CONNS" --hold 120
        client=$SPAWNED
        local i
        for ((i = 0; i < 1200; i++)); do
            grep -q '^holding' "$WORKDIR/idle-$proxy.out" 2>/dev/null && break
            alive "$client" || break
            sleep 0.1
        done
        if grep -q '^holding' "$WORKDIR/idle-$proxy.out"; then
            sleep 2
            printf '%s\t%s\t%s\t%s\n' "$proxy" "$IDLE_CONNS" "$(mem_kib "$pid" VmRSS)" "$(mem_kib "$pid" VmHWM)" \
                >>"$WORKDIR/memory.tsv"
            say "memory $proxy: $(tail -1 "$WORKDIR/memory.tsv")  ($(cat "$WORKDIR/idle-$proxy.out"))"
        else
            say "memory $proxy: the idle client failed: $(tail -3 "$WORKDIR/idle-$proxy.err")"
        fi
        stop_all "$client" "$pid"
    done
    stop_all "${origin_pids[@]}"
}

# The sweep: the keep-alive block once per point, with the nginx origin (whose stub_status counts
# every connection a proxy opens). A proxy needs 2 descriptors per connection (client, upstream).
conns_sweep() {
    local point
    for point in $CONNS; do
        if [ $((2 * point + 200)) -gt "$(ulimit -n)" ]; then
            say "conns $point: skipped, ulimit -n is $(ulimit -n) (needs $((2 * point + 200)); NOFILE or the hard limit)"
            echo "conns $point: skipped, \`ulimit -n\` was $(ulimit -n), below the $((2 * point + 200)) a proxy needs." \
                >>"$WORKDIR/conns-note.txt"
            continue
        fi
        run_block conns nginx "$point"
    done
}

for mode in $MODES; do
    if [ "$mode" = tls ]; then
        tls_block
        continue
    fi
    if [ "$mode" = conns ]; then
        conns_sweep
        continue
    fi
    if [ "$mode" = bigbody ]; then
        bigbody_block
        continue
    fi
    for origin in $ORIGINS; do
        run_block "$mode" "$origin"
    done
done
if [ "$IDLE_CONNS" -gt 0 ]; then
    memory_block
fi
if [ "$OHA" = 1 ] && [ "$HAVE_OHA" = 0 ]; then
    echo "oha cross-check: skipped, oha is not installed (\`cargo install oha --locked\`)." >"$WORKDIR/oha-note.txt"
fi

# ---------------------------------------------------------------------------------------------
# Report.

LB_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
MODES_HAS_CONNS=""
[[ " $MODES " == *" conns "* ]] && MODES_HAS_CONNS=1
git diff --quiet HEAD -- crates 2>/dev/null || LB_COMMIT="$LB_COMMIT + uncommitted changes"
cat >"$WORKDIR/meta.txt" <<EOF
Run of $STARTED: \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS${MODES_HAS_CONNS:+ CONNS="$CONNS"} scripts/bench.sh\`
on $(nproc) vCPU ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r);
lb $LB_COMMIT${CANDIDATE:+ (candidate: $CANDIDATE)}, $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /'),
$(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}'). Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg).
${PEER_DEFER_ACCEPT:+Peers with deferred accept (HAProxy defer-accept, nginx deferred). }Medians of $ROUNDS rounds; ratios are medians of per-round ratios; CPU µs/req = proxy utime+stime
over the measured run ÷ requests; peak RSS = VmHWM summed over the proxy's processes (nginx:
master + workers); new origin conns/run: nginx origin = stub_status accepts, echo origin = the
proxy's own count (lb pool misses, HAProxy \`connect\`; nginx: not available).
EOF

CHART_OUT="$WORKDIR/bench.png"
if [ "$(wc -l <"$WORKDIR/runs.tsv")" -gt 1 ]; then
    python3 "$ROOT/scripts/bench_report.py" "$WORKDIR"
else
    : >"$WORKDIR/results.md"
fi
if [ -f "$WORKDIR/bigbody.md" ]; then
    { echo; cat "$WORKDIR/bigbody.md"; } >>"$WORKDIR/results.md"
fi
if [ -f "$WORKDIR/tls.md" ]; then
    { echo; cat "$WORKDIR/tls.md"; } >>"$WORKDIR/results.md"
fi
[ ! -f "$WORKDIR/chart.vars" ] || gnuplot -e "load '$WORKDIR/chart.vars'; datafile='$WORKDIR/chart.dat'; outfile='$CHART_OUT'; subtitle='$STARTED, $(nproc) vCPU, $ROUNDS rounds x ${DURATION}s, lb $LB_COMMIT'" \
    "$ROOT/scripts/bench_chart.gp" || say "gnuplot failed; no chart"

rm -rf "$ROOT/target/bench/last"
mkdir -p "$ROOT/target/bench/last"
cp "$WORKDIR"/*.tsv "$WORKDIR"/*.md "$WORKDIR"/meta.txt "$WORKDIR"/chart.dat "$ROOT/target/bench/last/" 2>/dev/null || true
[ -f "$CHART_OUT" ] && cp "$CHART_OUT" "$ROOT/target/bench/last/"
cp "$WORKDIR"/wrk-*.txt "$ROOT/target/bench/last/" 2>/dev/null || true

if [ "$WRITE_DOCS" = 1 ]; then
    mkdir -p "$(dirname "$CHART")"
    [ -f "$CHART_OUT" ] && cp "$CHART_OUT" "$CHART"
    python3 - "$DOC" "$WORKDIR/results.md" <<'EOF'
import sys
doc_path, results_path = sys.argv[1], sys.argv[2]
begin, end = "<!-- bench.sh results: begin -->", "<!-- bench.sh results: end -->"
results = open(results_path).read().rstrip() + "\n"
try:
    doc = open(doc_path).read()
except FileNotFoundError:
    doc = "# Benchmarks\n\n## Latest results\n\n" + begin + "\n" + end + "\n"
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc = head + begin + "\n" + results + end + tail
else:
    doc = doc.rstrip() + "\n\n## Latest results\n\n" + begin + "\n" + results + end + "\n"
open(doc_path, "w").write(doc)
EOF
    say "results written to docs/benchmarks.md and docs/img/bench.png"
fi
cat "$WORKDIR/results.md"
say "raw records in target/bench/last/"
