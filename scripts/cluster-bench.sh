#!/usr/bin/env bash
# cluster-bench.sh: the cluster-mode figures of issue 14 on loopback, single etcd member.
#
#   1. etcd's own put-to-watch p99 and lb's "registered on node A -> applied on node B" p99 over
#      N registrations (scripts/cluster_bench.py); the issue's target: lb's p99 <= etcd's + 2 ms.
#   2. ROUTES (10,000) routes read and applied by a node at once: ROUTES keys are written in one
#      etcd transaction, then a node C starts and reads them; its lb_cluster_resync_seconds is the
#      figure (the same read-diff-apply a node runs after a compaction); the target is <= 50 ms.
#
# Usage: scripts/cluster-bench.sh            N=100 ROUTES=10000, release build
#        N=5 ROUTES=100 LB=target/debug/lb scripts/cluster-bench.sh     a quick check of the script
# Needs etcd (Debian etcd-server), python3, curl, and `cargo build --release -p lb` unless LB is
# given. Every process it starts is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-100}
ROUTES=${ROUTES:-10000}
LB=${LB:-target/release/lb}
[[ -x $LB ]] || { echo "cluster-bench: $LB missing (cargo build --release -p lb)" >&2; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client=$(free_port); peer=$(free_port)
etcd --name bench --data-dir "$dir/etcd" --log-level warn \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" --max-txn-ops 100000 --max-request-bytes 67108864 \
    2>"$dir/etcd.log" &
pids+=($!)
for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$client/health" | grep -q '"true"' && break
    sleep 0.1
done
etcd_url="http://127.0.0.1:$client"

# A node, started in this shell (not in a $(...) subshell, so that its PID reaches `pids` and
# the cleanup stops it); its admin address is left in $node_admin once its watch is up.
start_node() {
    local name=$1
    node_admin=127.0.0.1:$(free_port)
    "$LB" --listen 127.0.0.1:0 --admin "$node_admin" --workers 1 --no-pin \
        --cluster-etcd "$etcd_url" --node-name "$name" >"$dir/$name.out" 2>"$dir/$name.err" &
    pids+=($!)
    for _ in $(seq 300); do
        curl -fs "http://$node_admin/cluster" 2>/dev/null | grep -q '"connected":true' && break
        sleep 0.05
    done
}
start_node a; a=$node_admin
start_node b; b=$node_admin
backend=$(free_port)
python3 scripts/cluster_bench.py "$etcd_url" "$a" "$b" "$N" "$backend"

python3 - "$client" "$ROUTES" "$backend" <<'PY'
import base64, http.client, json, sys
port, n, backend = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
b64 = lambda t: base64.b64encode(t.encode()).decode()
ops = [{"request_put": {"key": b64("/lb/targets/_/%%2Froute%d/127.0.0.1:%d" % (i, backend)),
                        "value": b64('{"weight":1}')}} for i in range(n)]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
conn.request("POST", "/v3/kv/txn", json.dumps({"success": ops}), {"Content-Type": "application/json"})
assert conn.getresponse().status == 200
PY
start_node c; c=$node_admin
seconds=$(curl -fs "http://$c/metrics" | awk '$1 == "lb_cluster_resync_seconds" {print $2}')
python3 -c "
s = float('$seconds')
print('%d routes read and applied by a node at once: %.1f ms (target <= 50 ms: %s)' % ($ROUTES, s * 1e3, 'met' if s <= 0.05 else 'NOT met'))"
