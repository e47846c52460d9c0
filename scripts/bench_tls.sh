# bench_tls.sh: the `tls` mode of bench.sh (sourced by it; uses its helpers and settings).
#
# lb, HAProxy and nginx terminate TLS 1.3 with the same ECDSA P-256 certificate (made for the run)
# in front of the nginx origin, one worker/thread each, pinned to CPU 0; the load generator
# (`tls_load`, benches/src/bin/tls_load.rs, a rustls client) and the origin on CPU 1. Four kinds
# of run, each proxy in turn within a round (lb haproxy nginx lb ...):
#   full       a new connection, a full handshake, one GET with `Connection: close`, close
#   resumed    the same, resuming the client thread's last session (TLS 1.3 ticket)
#   keepalive  GET after GET on open TLS connections
#   big        the same on /big, a 1 MiB answer (nginx origin, sendfile)
# Per run: operations/s (connections for full/resumed, requests for keepalive/big), the proxy's
# CPU time per operation (utime+stime over the run / operations), and for big the bytes moved per
# CPU-second. Ratios to HAProxy are taken round by round, then their median.
# Settings: TLS_CONNS (client threads, 16), TLS_KINDS ("full resumed keepalive big").

TLS_CONNS="${TLS_CONNS:-16}"
TLS_KINDS="${TLS_KINDS:-full resumed keepalive big}"
TLS_LOAD="$ROOT/target/release/tls_load"

# The run's certificate: $WORKDIR/tls/{cert,key,combined}.pem.
make_tls_cert() {
    local dir="$WORKDIR/tls"
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=lb.test -addext "subjectAltName=DNS:lb.test" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
    cat "$dir/cert.pem" "$dir/key.pem" >"$dir/combined.pem"
}

# The 1 MiB answer of the origin's /big (start_origin_nginx serves $WORKDIR/origin-nginx/big).
make_big_file() {
    mkdir -p "$WORKDIR/origin-nginx"
    head -c 1048576 /dev/urandom >"$WORKDIR/origin-nginx/big"
    # nginx started as root serves files as its worker user: let it through the private WORKDIR.
    chmod a+x "$WORKDIR" "$WORKDIR/origin-nginx"
    chmod a+r "$WORKDIR/origin-nginx/big"
}

start_lb_tls() {
    spawn lb-tls "${PROXY_PIN[@]}" env LB_LOG=warn "$LB" run --listen "127.0.0.1:$1" --admin "127.0.0.1:$2" \
        --workers 1 --route "/=127.0.0.1:$ORIGIN_A,127.0.0.1:$ORIGIN_B" \
        --tls-listen "127.0.0.1:$3" --tls-cert "$WORKDIR/tls/cert.pem" --tls-key "$WORKDIR/tls/key.pem"
    LB_PID=$SPAWNED
    wait_port "$3" "$LB_PID" lb-tls
}

start_haproxy_tls() {
    local dir="$WORKDIR/haproxy-tls"
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
    no strict-limits
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:$1 ssl crt $WORKDIR/tls/combined.pem alpn http/1.1
    http-request set-header X-Forwarded-Proto https
    default_backend origins

backend origins
    balance roundrobin
    server a 127.0.0.1:$ORIGIN_A
    server b 127.0.0.1:$ORIGIN_B
CFG
    spawn haproxy-tls "${PROXY_PIN[@]}" haproxy -db -f "$dir/haproxy.cfg"
    HAPROXY_PID=$SPAWNED
    wait_port "$1" "$HAPROXY_PID" haproxy-tls
}

start_nginx_tls() {
    local dir="$WORKDIR/nginx-tls"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CFG
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
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
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $WORKDIR/tls/cert.pem;
        ssl_certificate_key $WORKDIR/tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
        location / {
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
CFG
    spawn nginx-tls "${PROXY_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    NGINX_PID=$SPAWNED
    wait_port "$1" "$NGINX_PID" nginx-tls
}

# One tls_load run in the background (so a signal reaches the trap), waited for: OUT ARGS...
run_tls_load() {
    local out=$1
    shift
    "${LOAD_PIN[@]}" "$TLS_LOAD" "$@" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || true
    forget "$pid"
}

# measure_tls KIND PROXY PORT PID: appends a record to tls.tsv.
measure_tls() {
    local kind=$1 proxy=$2 port=$3 pid=$4 path=/ mode=$1
    if [ "$kind" = big ]; then path=/big mode=keepalive; fi
    local args=(--addr "127.0.0.1:$port" --mode "$mode" --conns "$TLS_CONNS" --path "$path" --tls13-only)
    local out="$WORKDIR/tls-$kind-$ROUND-$proxy.txt"
    run_tls_load "$out.warmup" "${args[@]}" --duration "$WARMUP"
    local t0 t1
    t0=$(cpu_ticks "$pid")
    run_tls_load "$out" "${args[@]}" --duration "$DURATION"
    t1=$(cpu_ticks "$pid")
    local line requests handshakes resumed bytes errors seconds
    line=$(grep '^requests=' "$out" || true)
    if [ -z "$line" ]; then
        say "tls $kind round $ROUND $proxy: tls_load failed: $(tail -3 "$out")"
        return 0
    fi
    read -r requests handshakes resumed bytes errors seconds <<<"$(echo "$line" | sed 's/[a-z]*=//g')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$ROUND" "$proxy" "$requests" "$handshakes" \
        "$resumed" "$bytes" "$errors" "$seconds" "$((t1 - t0))" >>"$WORKDIR/tls.tsv"
    say "$(printf 'tls %-9s round %s %-8s %8s ops in %ss  handshakes %s (resumed %s)  cpu %s ticks  errors %s' \
        "$kind" "$ROUND" "$proxy" "$requests" "$seconds" "$handshakes" "$resumed" "$((t1 - t0))" "$errors")"
}

tls_block() {
    MODE=tls ORIGIN=nginx PINNED=1
    PROXY_PIN=("${PROXY_CPU[@]}") ORIGIN_PIN=("${LOAD_CPU[@]}") LOAD_PIN=("${LOAD_CPU[@]}")
    if [ "$SKIP_BUILD" != 1 ] || [ ! -x "$TLS_LOAD" ]; then
        say "building the TLS load generator (cargo build --release -p lb-benches --bin tls_load)"
        cargo build --release -p lb-benches --bin tls_load >&2
    fi
    make_tls_cert
    make_big_file
    printf 'kind\tround\tproxy\trequests\thandshakes\tresumed\tbytes\terrors\tseconds\tcpu_ticks\n' >"$WORKDIR/tls.tsv"
    local ports
    read -r -a ports <<<"$(free_ports 8)"
    ORIGIN_A=${ports[0]} ORIGIN_B=${ports[1]} ORIGIN_STATUS=${ports[2]}
    local lb_port=${ports[3]} lb_tls=${ports[5]} haproxy_port=${ports[6]} nginx_port=${ports[7]}
    LB_ADMIN=${ports[4]}
    start_origin_nginx "$ORIGIN_A" "$ORIGIN_B" "$ORIGIN_STATUS"
    local block_pids=("${ORIGIN_PIDS[@]}") proxies=""
    if has lb; then start_lb_tls "$lb_port" "$LB_ADMIN" "$lb_tls" && block_pids+=("$LB_PID") && proxies+=" lb"; fi
    if has haproxy; then start_haproxy_tls "$haproxy_port" && block_pids+=("$HAPROXY_PID") && proxies+=" haproxy"; fi
    if has nginx; then start_nginx_tls "$nginx_port" && block_pids+=("$NGINX_PID") && proxies+=" nginx"; fi
    say "block tls: origins :$ORIGIN_A :$ORIGIN_B, lb :$lb_tls, haproxy :$haproxy_port, nginx :$nginx_port, $TLS_CONNS client threads"
    local kind proxy
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        for kind in $TLS_KINDS; do
            for proxy in $proxies; do
                case "$proxy" in
                lb) measure_tls "$kind" lb "$lb_tls" "$LB_PID" ;;
                haproxy) measure_tls "$kind" haproxy "$haproxy_port" "$HAPROXY_PID" ;;
                nginx) measure_tls "$kind" nginx "$nginx_port" "$NGINX_PID" ;;
                esac
            done
        done
    done
    stop_all "${block_pids[@]}"
    python3 "$ROOT/scripts/bench_tls_report.py" "$WORKDIR/tls.tsv" "$HZ" >"$WORKDIR/tls.md"
}
