# bench_bigbody.sh: the `bigbody` mode of scripts/bench.sh (issue 16 target 4): large response
# bodies through each proxy, measured as body bytes moved per CPU-second of the proxy. Sourced by
# bench.sh, never run; it uses bench.sh's helpers (measure's cousins: run_wrk, cpu_ticks, to_ms,
# HZ) and bench_lib.sh's processes, ports and proxies.
#
# The block: an nginx origin serving files of BIGBODY_SIZES MiB with sendfile (the origin costs
# the kernel's floor); the proxies pinned to CPU 0, wrk and the origin on CPU 1, as in keepalive;
# `wrk -t1 -c$BIGBODY_CONNS` asking for one file size at a time, in alternating rounds over
# BIGBODY_PROXIES:
#   lb               lb as built (splice(2) for large clear-text bodies)
#   lb-copy          the same binary with LB_SPLICE=off: lb's copy path (a benchmark knob)
#   haproxy          HAProxy as in the other modes
#   haproxy-splice   the same with `option splice-response`
#   nginx            nginx with `proxy_buffering off`
# Per run it records the bytes wrk read, the proxy's CPU ticks and so bytes per CPU-second into
# bigbody.tsv; scripts/bigbody_report.py turns that into bigbody.md (medians of per-round ratios).

BIGBODY_SIZES="${BIGBODY_SIZES:-1 10}"
BIGBODY_CONNS="${BIGBODY_CONNS:-8}"
BIGBODY_PROXIES="${BIGBODY_PROXIES:-lb lb-copy haproxy haproxy-splice nginx}"

# Origin nginx serving $WORKDIR/origin-files/<N>m.bin on ports $1 $2 with sendfile; stub_status
# on $3. Sets ORIGIN_PIDS.
start_origin_files() {
    local dir="$WORKDIR/origin-files" size
    mkdir -p "$dir/www"
    for size in $BIGBODY_SIZES; do
        head -c "$((size * 1024 * 1024))" /dev/urandom >"$dir/www/${size}m.bin"
    done
    # nginx started as root serves files as its worker user: the files must be readable by it
    # (mktemp makes WORKDIR private).
    chmod a+rx "$WORKDIR" "$dir" "$dir/www"
    chmod a+r "$dir"/www/*.bin
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
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
        root $dir/www;
    }
    server {
        listen 127.0.0.1:$3;
        location / { stub_status; }
    }
}
EOF
    spawn origin-files "${ORIGIN_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    ORIGIN_PIDS=("$SPAWNED")
    wait_port "$1" "$SPAWNED" origin-files
    wait_port "$3" "$SPAWNED" origin-files
}

# One measured bigbody run: PROXY URL PROXY_PID SIZE_MIB; appends a record to bigbody.tsv.
measure_bigbody() {
    local proxy=$1 url=$2 pid=$3 size=$4 wrk_args=(-t1 "-c$BIGBODY_CONNS" --latency --timeout 30s)
    local out="$WORKDIR/wrk-bigbody-${size}m-$ROUND-$proxy.txt"
    run_wrk "$out.warmup" "${wrk_args[@]}" -d "${WARMUP}s" "$url"
    local t0 t1
    t0=$(cpu_ticks "$pid")
    run_wrk "$out" "${wrk_args[@]}" -d "${DURATION}s" "$url"
    t1=$(cpu_ticks "$pid")
    local requests errors p99 bytes per_cpu_s
    requests=$(awk '/requests in/ {print $1}' "$out")
    errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
        say "bigbody ${size} MiB round $ROUND $proxy: wrk finished no request: $(cat "$out")"
        return 0
    fi
    # Body bytes: every finished response carried the whole file.
    bytes=$((requests * size * 1024 * 1024))
    per_cpu_s=$(awk -v b="$bytes" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.0f", (t > 0 ? b / (t / hz) : 0)}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$ROUND" "$proxy" "$requests" "$bytes" \
        "$((t1 - t0))" "$per_cpu_s" "$p99" "$errors" >>"$WORKDIR/bigbody.tsv"
    say "$(printf 'bigbody %3s MiB round %s %-15s %6s responses  %6.2f GB/CPU-s  p99 %8s ms  errors %s' \
        "$size" "$ROUND" "$proxy" "$requests" "$(awk -v v="$per_cpu_s" 'BEGIN {print v / 1e9}')" "$p99" "$errors")"
}

# The block: origin, the proxies, then ROUNDS alternating rounds per size.
bigbody_block() {
    MODE=bigbody ORIGIN=files PINNED=1
    PROXY_PIN=("${PROXY_CPU[@]}") ORIGIN_PIN=("${LOAD_CPU[@]}") LOAD_PIN=("${LOAD_CPU[@]}")
    printf 'size_mib\tround\tproxy\trequests\tbytes\tcpu_ticks\tbytes_per_cpu_s\tp99_ms\terrors\n' \
        >"$WORKDIR/bigbody.tsv"
    local ports
    read -r -a ports <<<"$(free_ports 10)"
    ORIGIN_A=${ports[0]} ORIGIN_B=${ports[1]} ORIGIN_STATUS=${ports[2]}
    local -A port=([lb]=${ports[3]} [lb-copy]=${ports[5]} [haproxy]=${ports[6]} \
        [haproxy-splice]=${ports[7]} [nginx]=${ports[8]})
    local -A pid=()
    say "block bigbody: sizes $BIGBODY_SIZES MiB, $BIGBODY_CONNS connections, proxies $BIGBODY_PROXIES"
    start_origin_files "$ORIGIN_A" "$ORIGIN_B" "$ORIGIN_STATUS"
    local block_pids=("${ORIGIN_PIDS[@]}") proxy
    # lb's copy path: the same binary with the benchmark knob, under its own name.
    printf '#!/bin/sh\nLB_SPLICE=off exec "%s" "$@"\n' "$LB" >"$WORKDIR/lb-copy"
    chmod +x "$WORKDIR/lb-copy"
    for proxy in $BIGBODY_PROXIES; do
        case "$proxy" in
        lb) start_lb "${port[lb]}" "${ports[4]}" 1 && pid[lb]=$LB_PID ;;
        lb-copy) start_lb "${port[lb-copy]}" "${ports[9]}" 1 "$WORKDIR/lb-copy" lb-copy && pid[lb-copy]=$LB_PID ;;
        haproxy) start_haproxy "${port[haproxy]}" 1 4096 && pid[haproxy]=$HAPROXY_PID ;;
        haproxy-splice)
            start_haproxy "${port[haproxy-splice]}" 1 4096 haproxy-splice splice-response
            pid[haproxy-splice]=$HAPROXY_PID
            ;;
        nginx) start_nginx "${port[nginx]}" 1 4096 64 'proxy_buffering off;' && pid[nginx]=$NGINX_PID ;;
        *) die "bigbody: unknown proxy $proxy" ;;
        esac
        block_pids+=("${pid[$proxy]}")
    done
    local size
    for size in $BIGBODY_SIZES; do
        for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
            for proxy in $BIGBODY_PROXIES; do
                measure_bigbody "$proxy" "http://127.0.0.1:${port[$proxy]}/${size}m.bin" "${pid[$proxy]}" "$size"
            done
        done
    done
    stop_all "${block_pids[@]}"
    python3 "$ROOT/scripts/bigbody_report.py" "$WORKDIR"
}
