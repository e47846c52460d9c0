#!/usr/bin/env python3
"""Turns the bigbody records of scripts/bench.sh (RUN_DIR/bigbody.tsv, written by
scripts/bench_bigbody.sh) into RUN_DIR/bigbody.md: per body size, each proxy's body bytes per
CPU-second and CPU per GB, and issue 16 target 4 checked as medians of per-round ratios.

    bigbody_report.py RUN_DIR

Standard library only.
"""

import csv
import os
import statistics
import sys
from collections import defaultdict

ORDER = ["lb", "lb-copy", "haproxy", "haproxy-splice", "nginx"]
NAMES = {"lb": "lb (splice)", "lb-copy": "lb, copy path (`LB_SPLICE=off`)", "haproxy": "HAProxy",
         "haproxy-splice": "HAProxy, `option splice-response`",
         "nginx": "nginx, `proxy_buffering off`"}
# Issue 16 target 4: (proxy compared against, least ratio of lb's bytes per CPU-second, sizes in
# MiB it applies to; None: every size).
TARGETS = [("haproxy-splice", 1.2, None), ("lb-copy", 2.5, {10})]


def main():
    run_dir = sys.argv[1]
    path = os.path.join(run_dir, "bigbody.tsv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    # size -> proxy -> round -> bytes per CPU-second
    rate = defaultdict(lambda: defaultdict(dict))
    p99 = defaultdict(lambda: defaultdict(list))
    errors = defaultdict(lambda: defaultdict(int))
    for r in rows:
        size, proxy = int(r["size_mib"]), r["proxy"]
        rate[size][proxy][r["round"]] = float(r["bytes_per_cpu_s"])
        p99[size][proxy].append(float(r["p99_ms"]) if r["p99_ms"] not in ("", "?") else 0.0)
        errors[size][proxy] += int(r["errors"] or 0)
    out = ["#### Large bodies (`bigbody`): body bytes per CPU-second of the proxy", ""]
    verdicts = []
    for size in sorted(rate):
        out += [f"{size} MiB responses:", "",
                "| proxy | GB per CPU-second | CPU ms per GB | lb's ratio | p99 ms | errors |",
                "|---|---:|---:|---:|---:|---|"]
        for proxy in [p for p in ORDER if p in rate[size]]:
            gbps = statistics.median(rate[size][proxy].values()) / 1e9
            ratio = per_round_ratio(rate[size], "lb", proxy)
            out.append("| %s | %.2f | %s | %s | %.1f | %d |" % (
                NAMES.get(proxy, proxy), gbps, "%.0f" % (1000 / gbps) if gbps else "-",
                "%.2fx" % ratio if ratio is not None and proxy != "lb" else "",
                statistics.median(p99[size][proxy]), errors[size][proxy]))
        out.append("")
        for other, least, sizes in TARGETS:
            ratio = per_round_ratio(rate[size], "lb", other)
            if ratio is None or (sizes is not None and size not in sizes):
                continue
            verdicts.append((f"lb's bytes per CPU-second >= {least}x {NAMES[other]} at {size} MiB",
                             "%.2fx" % ratio, "met" if ratio >= least else "**not met**"))
    if verdicts:
        out += ["Issue-16 target 4 in this run:", "", "| target | this run | |", "|---|---:|---|"]
        out += ["| %s | %s | %s |" % v for v in verdicts]
        out.append("")
    with open(os.path.join(run_dir, "bigbody.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def per_round_ratio(by_proxy, proxy, other):
    """Median over the rounds both ran of proxy's rate / other's rate."""
    a, b = by_proxy.get(proxy, {}), by_proxy.get(other, {})
    ratios = [a[r] / b[r] for r in a if r in b and b[r] > 0]
    return statistics.median(ratios) if ratios else None


if __name__ == "__main__":
    main()
