"""bench_tls_report.py TLS_TSV HZ: the tls section of bench.sh's results (scripts/bench_tls.sh).

Medians by kind and proxy, and lb's ratios to HAProxy (medians of per-round ratios) against the
targets of issue 11, as markdown on stdout.
"""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
hz = float(sys.argv[2])
runs = defaultdict(dict)  # (kind, round) -> proxy -> figures
for r in rows:
    ops, secs, ticks = int(r["requests"]), float(r["seconds"]), int(r["cpu_ticks"])
    if ops == 0:
        continue
    cpu = ticks / hz
    runs[(r["kind"], r["round"])][r["proxy"]] = {
        "rate": ops / secs,
        "cpu_us": cpu / ops * 1e6,
        "bytes_per_cpu": int(r["bytes"]) / cpu if cpu else float("nan"),
        "resumed": int(r["resumed"]) / max(int(r["handshakes"]), 1),
        "errors": int(r["errors"]),
    }
kinds = [k for k in ["full", "resumed", "keepalive", "big"] if any(k == kk for kk, _ in runs)]
proxies = [p for p in ["lb", "haproxy", "nginx"] if any(p in v for v in runs.values())]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


print("### TLS termination (`MODES=tls`)\n")
print("TLS 1.3, ECDSA P-256, one worker/thread pinned to CPU 0; `tls_load` (rustls) and the nginx origin on CPU 1.")
print("ops: connections (full, resumed: handshake + one request + close) or requests (keepalive; big: 1 MiB answers).\n")
print("| kind | proxy | ops/s | proxy CPU µs/op | MB per CPU-second | resumed | errors |")
print("|---|---|---:|---:|---:|---:|---:|")
for k in kinds:
    for p in proxies:
        f = [v[p] for (kk, _), v in runs.items() if kk == k and p in v]
        if not f:
            continue
        mb = "%.0f" % (med([x["bytes_per_cpu"] for x in f]) / 1e6) if k == "big" else "-"
        print(f"| {k} | {p} | {med([x['rate'] for x in f]):,.0f} | {med([x['cpu_us'] for x in f]):.1f} | "
              f"{mb} | {med([x['resumed'] for x in f]):.0%} | {sum(x['errors'] for x in f)} |")

# kind -> [(figure, target, higher is better)]
targets = {
    "full": [("rate", 2.0, True), ("cpu_us", 0.5, False)],
    "resumed": [("rate", 2.0, True)],
    "keepalive": [("cpu_us", 0.8, False)],
    "big": [("bytes_per_cpu", 1.2, True)],
}
print("\nlb / HAProxy, medians of per-round ratios (issue 11 targets):\n")
print("| kind | figure | lb / HAProxy | target | met |")
print("|---|---|---:|---:|---|")
for k in kinds:
    for fig, want, higher in targets[k]:
        ratios = [v["lb"][fig] / v["haproxy"][fig] for (kk, _), v in runs.items()
                  if kk == k and "lb" in v and "haproxy" in v and v["haproxy"][fig]]
        if not ratios:
            continue
        r = med(ratios)
        met = r >= want if higher else r <= want
        print(f"| {k} | {fig} | {r:.2f} | {'>=' if higher else '<='} {want} | {'yes' if met else 'no'} |")
