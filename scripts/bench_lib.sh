# bench_lib.sh: what scripts/bench.sh and scripts/profile.sh share, so that both measure the same
# proxies configured alike. Sourced, never run, after setting ROOT (the repository):
# `source "$ROOT/scripts/bench_lib.sh"`.
#
# Gives: help_if_asked; say/die (prefixed with the script's name); WORKDIR (a fresh temporary
# directory, removed on exit unless KEEP_WORKDIR=1); PIDS, spawn, alive, stop_pid, stop_all,
# forget (every process started is stopped by its PID on exit, error or Ctrl-C: the EXIT/INT/TERM
# traps are set here); free_ports, wait_port; and the origin and proxies: start_origin_nginx,
# start_lb, start_floor, start_haproxy, start_nginx.
# The start_* functions read: LB (the lb binary), NULL_PROXY (the floor's binary), PINNED (1: lb
# keeps its CPU pinning),
# PROXY_PIN and ORIGIN_PIN (command prefixes, e.g. `taskset -c 0`, or empty arrays), ORIGIN_A and
# ORIGIN_B (the origin ports the proxies balance over) and, optionally, PEER_DEFER_ACCEPT and
# H2_BIND (1: HAProxy and nginx listen for HTTP/2 with prior knowledge, `proto h2` / `http2`; lb
# detects the preface on its one listener).

SCRIPT_NAME="$(basename "$0")"

# help_if_asked "$@": with -h or --help, prints the script's header comment and exits.
help_if_asked() {
    case "${1:-}" in
    -h | --help)
        sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$ROOT/scripts/$SCRIPT_NAME"
        exit 0
        ;;
    esac
}

say() { echo "$SCRIPT_NAME: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes: every one started here is recorded and stopped by PID (on exit, error or Ctrl-C).

PIDS=()
WORKDIR="$(mktemp -d -t "lb-${SCRIPT_NAME%.sh}.XXXXXX")"

# True while PID runs (a zombie waiting to be reaped counts as gone).
alive() {
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# Stops one process: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        say "process $pid ignored SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Removes PID from the list of processes to stop.
forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# Stops the given PIDs and forgets them.
stop_all() {
    local pid
    for pid in "$@"; do
        stop_pid "$pid"
        forget "$pid"
    done
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
        say "run files kept in $WORKDIR"
    else
        rm -rf "$WORKDIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn NAME CMD...: runs CMD in the background (stdout/stderr to $WORKDIR/NAME.out/.err) and
# sets SPAWNED to its PID.
spawn() {
    local name=$1
    shift
    "$@" >"$WORKDIR/$name.out" 2>"$WORKDIR/$name.err" &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# ---------------------------------------------------------------------------------------------
# Ports.

# N free loopback TCP ports.
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# wait_port PORT [PID NAME]: waits (up to 15 s) until something listens on 127.0.0.1:PORT; PID
# (started by `spawn NAME`) must stay alive meanwhile.
wait_port() {
    local port=$1 pid=${2:-} name=${3:-} i
    for ((i = 0; i < 150; i++)); do
        if ss -Hltn "sport = :$port" | grep -q .; then
            return 0
        fi
        [ -z "$pid" ] || alive "$pid" || die "$name exited: $(tail -5 "$WORKDIR/$name.err" "$WORKDIR/$name.out" 2>/dev/null)"
        sleep 0.1
    done
    die "${name:-nothing} does not listen on port $port: $(tail -5 "$WORKDIR/$name.err" 2>/dev/null)"
}

# ---------------------------------------------------------------------------------------------
# The origin and the proxies. Each start_* sets a PID variable and writes its config in $WORKDIR.

# Origin nginx: ports $1 $2 serve `return 200`, port $3 serves stub_status; sets ORIGIN_PIDS.
start_origin_nginx() {
    local dir="$WORKDIR/origin-nginx"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$1;
        listen 127.0.0.1:$2;
        location / { return 200 "ok\n"; }
        # bench.sh's tls mode writes a 1 MiB file here (make_big_file); 404 otherwise.
        location = /big { alias $dir/big; }
    }
    server {
        listen 127.0.0.1:$3;
        location / { stub_status; }
    }
}
EOF
    spawn origin-nginx "${ORIGIN_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    ORIGIN_PIDS=("$SPAWNED")
    wait_port "$1" "$SPAWNED" origin-nginx
    wait_port "$3" "$SPAWNED" origin-nginx
}

# start_lb PORT ADMIN_PORT WORKERS [BINARY NAME]: sets LB_PID.
start_lb() {
    local pin=() bin=${4:-$LB} name=${5:-lb}
    [ "$PINNED" = 1 ] || pin=(--no-pin)
    spawn "$name" "${PROXY_PIN[@]}" env LB_LOG=warn "$bin" run --listen "127.0.0.1:$1" --admin "127.0.0.1:$2" \
        --workers "$3" "${pin[@]}" --route "/=127.0.0.1:$ORIGIN_A,127.0.0.1:$ORIGIN_B"
    LB_PID=$SPAWNED
    wait_port "$1" "$LB_PID" "$name"
}

# start_floor PORT THREADS: the null proxy (benches/src/bin/null_proxy.rs, $NULL_PROXY), the
# kernel's floor under any proxy: the same system calls per keep-alive request and nothing else.
# Sets FLOOR_PID.
start_floor() {
    spawn floor "${PROXY_PIN[@]}" "$NULL_PROXY" --listen "127.0.0.1:$1" --threads "$2" \
        --upstream "127.0.0.1:$ORIGIN_A" --upstream "127.0.0.1:$ORIGIN_B"
    FLOOR_PID=$SPAWNED
    wait_port "$1" "$FLOOR_PID" floor
}

# start_haproxy PORT THREADS MAXCONN [NAME [OPTION]]: NAME (haproxy unless given) names its
# directory and log files, so two can run at once; OPTION is one more `option` line in
# `defaults` (e.g. splice-response). Sets HAPROXY_PID.
start_haproxy() {
    local name=${4:-haproxy}
    local dir="$WORKDIR/$name"
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread $2
    maxconn $3
    # The FD hard limit here may be below what HAProxy asks for with 10,000 connections: warn only.
    no strict-limits
    stats socket $dir/stats.sock mode 600 level admin

defaults
    mode http
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
${5:+    option $5
}
frontend fe
    bind 127.0.0.1:$1${PEER_DEFER_ACCEPT:+ defer-accept}${H2_BIND:+ proto h2}
    default_backend origins

backend origins
    balance roundrobin
    server a 127.0.0.1:$ORIGIN_A
    server b 127.0.0.1:$ORIGIN_B
EOF
    spawn "$name" "${PROXY_PIN[@]}" haproxy -db -f "$dir/haproxy.cfg"
    HAPROXY_PID=$SPAWNED
    wait_port "$1" "$HAPROXY_PID" "$name"
}

# start_nginx PORT WORKERS CONNECTIONS [KEEPALIVE [DIRECTIVE]]: KEEPALIVE idle upstream connections
# cached per worker (64 unless given); DIRECTIVE is one more line in its proxying location (e.g.
# `proxy_buffering off;`).
start_nginx() {
    local dir="$WORKDIR/nginx"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $2;
worker_rlimit_nofile $(($3 * 2 + 100));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $(($3 + 1000)); }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream origins {
        server 127.0.0.1:$ORIGIN_A;
        server 127.0.0.1:$ORIGIN_B;
        keepalive ${4:-64};
        keepalive_requests 1000000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$1${PEER_DEFER_ACCEPT:+ deferred}${H2_BIND:+ http2};
        location / {
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            ${5:-}
        }
    }
}
EOF
    spawn nginx "${PROXY_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    NGINX_PID=$SPAWNED
    wait_port "$1" "$NGINX_PID" nginx
}
