#!/usr/bin/env python3
"""Turns the raw records of scripts/bench.sh into the results section of docs/benchmarks.md and
the data + gnuplot script of the chart.

    bench_report.py RUN_DIR            reads RUN_DIR/{runs,memory,oha,balance}.tsv, meta.txt and
                                       conns-note.txt (points the sweep skipped),
                                       writes RUN_DIR/results.md, chart.dat and chart.gp

Every ratio is taken round by round (same round, same machine state) and the median of those
per-round ratios is reported, which is steadier than a ratio of medians on a noisy machine.
Standard library only.
"""

import csv
import os
import statistics
import sys
from collections import defaultdict

PROXIES = ["direct", "floor", "lb", "candidate", "haproxy", "nginx"]
NAMES = {"direct": "direct", "floor": "floor (null_proxy)", "lb": "lb", "candidate": "lb candidate",
         "haproxy": "HAProxy", "nginx": "nginx"}
COLORS = {"direct": "#9e9e9e", "floor": "#c7c7c7", "lb": "#1f77b4", "candidate": "#9467bd",
          "haproxy": "#d62728", "nginx": "#2ca02c"}
PEERS = ["haproxy", "nginx"]
MODE_TITLES = {
    "keepalive": "Keep-alive, 1 worker/thread, proxy pinned to CPU 0, wrk + origin on CPU 1",
    "close": "`Connection: close` on every request, 1 worker/thread, same pinning",
    "workers2": "2 workers/threads, nothing pinned",
    "conns": "Connection sweep (`conns`): keep-alive, 1 worker/thread, same pinning, `wrk -t1 -cN`",
    "h2": "HTTP/2 (h2c), `h2load -t1 -c16 -m16`, 1 worker/thread, proxy pinned to CPU 0, h2load + origin on CPU 1",
}
ORIGIN_TITLES = {
    "nginx": "origin: nginx `return 200` (1 worker, two ports)",
    "echo": "origin: two `lb echo` processes",
}
MODE_SHORT = {"keepalive": "keep-alive", "close": "Connection: close", "workers2": "2 workers",
              "conns": "keep-alive", "h2": "HTTP/2 16x16"}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


class Block:
    """The runs of one (mode, origin, wrk connections): per proxy, per round."""

    def __init__(self, mode, origin, conns):
        self.mode = mode
        self.origin = origin
        self.conns = conns
        self.runs = defaultdict(dict)  # proxy -> round -> record

    def proxies(self):
        return [p for p in PROXIES if p in self.runs]

    def values(self, proxy, field):
        return [num(r[field]) for r in self.runs[proxy].values()]

    def ratio(self, proxy, other, field):
        """Median over rounds of proxy[field] / other[field], same round."""
        ratios = []
        for rnd, rec in self.runs[proxy].items():
            base = self.runs.get(other, {}).get(rnd)
            a, b = num(rec[field]), num(base[field]) if base else None
            if a is not None and b:
                ratios.append(a / b)
        return median(ratios)

    def best_peer(self, field):
        """The peer with the lowest median `field` (CPU per request, p99), or None."""
        peers = [p for p in PEERS if p in self.runs and median(self.values(p, field)) is not None]
        return min(peers, key=lambda p: median(self.values(p, field)), default=None)

    def stat(self, proxy):
        rps = self.values(proxy, "rps")
        rss = [v for v in self.values(proxy, "rss_kib") if v]
        conns = [v for v in self.values(proxy, "origin_conns") if v is not None]
        errors = sum(int(num(r["errors"]) or 0) for r in self.runs[proxy].values())
        return {
            "rps": median(rps),
            "rps_min": min((v for v in rps if v is not None), default=None),
            "rps_max": max((v for v in rps if v is not None), default=None),
            "p50": median(self.values(proxy, "p50_ms")),
            "p99": median(self.values(proxy, "p99_ms")),
            "cpu": median(self.values(proxy, "cpu_us_per_req")) if proxy != "direct" else None,
            "rss": max(rss) / 1024 if rss and proxy != "direct" else None,
            "conns_med": median(conns) if conns else None,
            "conns_max": max(conns) if conns else None,
            "errors": errors,
            "rounds": len(rps),
        }


def load_blocks(run_dir):
    blocks = {}
    for rec in read_tsv(os.path.join(run_dir, "runs.tsv")):
        # Only the sweep's blocks differ by connection count; older records have no column.
        conns = int(num(rec.get("conns")) or 0) if rec["mode"] == "conns" else 0
        key = (rec["mode"], rec["origin"], conns)
        blocks.setdefault(key, Block(*key)).runs[rec["proxy"]][rec["round"]] = rec
    order = {m: i for i, m in enumerate(MODE_TITLES)}
    return [blocks[k] for k in sorted(blocks, key=lambda k: (order.get(k[0], 9), k[1] != "nginx", k[2]))]


def sweep_table(sweep):
    """The `conns` blocks as one table: per point and proxy, the figures the issue-16 targets
    compare (CPU and p99 against the best peer at that point, peak RSS against HAProxy)."""
    if not sweep:
        return []
    lines = [
        f"#### {MODE_TITLES['conns']}; {ORIGIN_TITLES.get(sweep[0].origin, sweep[0].origin)}",
        "",
        "| connections | | req/s median | p50 / p99 ms | CPU µs/req | peak RSS | errors | "
        "new origin conns/run | CPU ÷ best peer | p99 ÷ best peer | RSS ÷ HAProxy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in sweep:
        cpu_peer, p99_peer = b.best_peer("cpu_us_per_req"), b.best_peer("p99_ms")
        for proxy in b.proxies():
            s = b.stat(proxy)
            mine = proxy not in PEERS and proxy != "direct"
            conns = "-"
            if s["conns_med"] is not None and proxy != "direct":
                conns = fmt(s["conns_med"]) + (f" (max {fmt(s['conns_max'])})"
                                               if s["conns_max"] != s["conns_med"] else "")
            hap_rss = b.stat("haproxy")["rss"] if "haproxy" in b.runs else None
            rss_vs = fmt(s["rss"] / hap_rss, 2, "×") if mine and s["rss"] and hap_rss else "-"
            cpu_vs = (fmt(b.ratio(proxy, cpu_peer, "cpu_us_per_req"), 2, f"× {cpu_peer}")
                      if mine and cpu_peer else "-")
            p99_vs = fmt(b.ratio(proxy, p99_peer, "p99_ms"), 2, f"× {p99_peer}") if mine and p99_peer else "-"
            name = "**lb**" if proxy == "lb" else NAMES[proxy]
            lines.append(
                f"| {b.conns:,} | {name} | {fmt(s['rps'])} | {fmt(s['p50'], 2)} / {fmt(s['p99'], 2)} | "
                f"{fmt(s['cpu'], 1)} | {fmt(s['rss'], 1, ' MiB')} | {s['errors']} | {conns} | "
                f"{cpu_vs} | {p99_vs} | {rss_vs} |"
            )
    return lines


def sweep_targets(sweep):
    """Issue 16's targets at every point of the sweep, each with its figure from this run."""
    rows = []
    for b in sweep:
        if "lb" not in b.runs:
            continue
        n = f"{b.conns:,} conns"
        peer = b.best_peer("cpu_us_per_req")
        if peer:
            r = b.ratio("lb", peer, "cpu_us_per_req")
            rows.append((f"{n}: CPU per request ≤ 0.8× best peer", f"{fmt(r, 2, '×')} {peer}",
                         "met" if r and r <= 0.8 else "**not met**"))
        peer = b.best_peer("p99_ms")
        if peer:
            r = b.ratio("lb", peer, "p99_ms")
            rows.append((f"{n}: p99 ≤ best peer", f"{fmt(r, 2, '×')} {peer}",
                         "met" if r and r <= 1.0 else "**not met**"))
        if "haproxy" in b.runs:
            mine, hap = b.stat("lb")["rss"], b.stat("haproxy")["rss"]
            r = mine / hap if mine and hap else None
            rows.append((f"{n}: peak RSS ≤ 0.8× HAProxy", fmt(r, 2, "×"),
                         "met" if r and r <= 0.8 else "**not met**"))
        errors = b.stat("lb")["errors"]
        rows.append((f"{n}: 0 errors", fmt(errors), "met" if errors == 0 else "**not met**"))
    return rows


def block_table(block):
    lines = [
        f"#### {MODE_TITLES.get(block.mode, block.mode)}; "
        f"{ORIGIN_TITLES.get(block.origin, block.origin)}",
        "",
        "| | req/s median | min-max | p50 / p99 ms | CPU µs/req | peak RSS | "
        "req/s ÷ HAProxy | p99 ÷ HAProxy | CPU ÷ HAProxy | req/s ÷ direct | new origin conns/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    has_haproxy = "haproxy" in block.runs
    for proxy in block.proxies():
        s = block.stat(proxy)
        vs = lambda field: (  # noqa: E731
            fmt(block.ratio(proxy, "haproxy", field), 2, "×")
            if has_haproxy and proxy not in ("haproxy", "direct") else "-"
        )
        cpu_vs = vs("cpu_us_per_req") if proxy != "direct" else "-"
        conns = "-"
        if s["conns_med"] is not None and proxy != "direct":
            conns = fmt(s["conns_med"]) + (f" (max {fmt(s['conns_max'])})"
                                           if s["conns_max"] != s["conns_med"] else "")
        name = {"direct": "wrk → origin (direct)", "floor": "floor: null_proxy (system calls only)",
                "lb": "**lb**", "candidate": "lb candidate", "haproxy": "HAProxy",
                "nginx": "nginx"}[proxy]
        if proxy == "candidate" and "lb" in block.runs:
            name += (f" (req/s {fmt(block.ratio(proxy, 'lb', 'rps'), 3, '×')} lb, CPU "
                     f"{fmt(block.ratio(proxy, 'lb', 'cpu_us_per_req'), 3, '×')} lb)")
        if s["errors"]:
            name += f" ({s['errors']} errors)"
        lines.append(
            f"| {name} | {fmt(s['rps'])} | {fmt(s['rps_min'])}-{fmt(s['rps_max'])} | "
            f"{fmt(s['p50'], 2)} / {fmt(s['p99'], 2)} | {fmt(s['cpu'], 1)} | "
            f"{fmt(s['rss'], 1, ' MiB')} | {vs('rps')} | {vs('p99_ms')} | {cpu_vs} | "
            f"{fmt(block.ratio(proxy, 'direct', 'rps'), 2, '×') if proxy != 'direct' else '-'} | "
            f"{conns} |"
        )
    return lines


def targets(blocks, memory):
    """The issue-4 targets, each with its figure from this run."""
    by_key = {(b.mode, b.origin): b for b in blocks}
    rows = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    def with_floor(block, field, other, figure):
        """The figure, and the floor's own ratio when the floor ran: what no proxy can beat."""
        if "floor" not in block.runs:
            return figure
        return f"{figure} (floor: {fmt(block.ratio('floor', other, field), 2, '×')})"

    ka = by_key.get(("keepalive", "nginx"))
    if ka and "lb" in ka.runs and "haproxy" in ka.runs:
        r = ka.ratio("lb", "haproxy", "rps")
        rows.append(("keep-alive req/s ≥ 1.25× HAProxy",
                     with_floor(ka, "rps", "haproxy", fmt(r, 2, "×")), verdict(r and r >= 1.25)))
        r = ka.ratio("lb", "haproxy", "p99_ms")
        rows.append(("keep-alive p99 ≤ 0.8× HAProxy", fmt(r, 2, "×"), verdict(r and r <= 0.8)))
        r = ka.ratio("lb", "haproxy", "cpu_us_per_req")
        rows.append(("CPU per request ≤ 0.7× HAProxy",
                     with_floor(ka, "cpu_us_per_req", "haproxy", fmt(r, 2, "×")),
                     verdict(r and r <= 0.7)))
        rss = ka.stat("lb")["rss"]
        rows.append(("peak RSS ≤ 12 MiB with 50 connections", fmt(rss, 1, " MiB"),
                     verdict(rss is not None and rss <= 12)))
    for rec in memory:
        if rec["proxy"] == "lb":
            hwm = num(rec["hwm_kib"]) / 1024
            rows.append((f"peak RSS ≤ 64 MiB with {rec['conns']} idle keep-alive connections",
                         fmt(hwm, 1, " MiB"), verdict(hwm <= 64)))
    for mode, need, label in (("close", 1.0, "`Connection: close` req/s ≥ best peer"),
                              ("workers2", 1.2, "2 workers req/s ≥ 1.2× best peer")):
        b = by_key.get((mode, "nginx"))
        if not b or "lb" not in b.runs:
            continue
        peers = [p for p in PEERS if p in b.runs]
        if not peers:
            continue
        best = max(peers, key=lambda p: b.stat(p)["rps"] or 0)
        r = b.ratio("lb", best, "rps")
        rows.append((label, with_floor(b, "rps", best, f"{fmt(r, 2, '×')} {best}"),
                     verdict(r and r >= need)))
    return rows


def memory_table(memory):
    if not memory:
        return []
    lines = [
        "| proxy | idle keep-alive connections | RSS while idle | peak RSS (VmHWM) |",
        "|---|---:|---:|---:|",
    ]
    for rec in memory:
        lines.append(
            f"| {rec['proxy']} | {int(num(rec['conns'])):,} | "
            f"{num(rec['rss_kib']) / 1024:.1f} MiB | {num(rec['hwm_kib']) / 1024:.1f} MiB |"
        )
    return lines


def oha_table(oha):
    if not oha:
        return []
    lines = ["| proxy | req/s (oha) | p50 / p99 ms |", "|---|---:|---:|"]
    for rec in oha:
        lines.append(f"| {rec['proxy']} | {fmt(num(rec['rps']))} | "
                     f"{fmt(num(rec['p50_ms']), 2)} / {fmt(num(rec['p99_ms']), 2)} |")
    return lines


def balance_table(balance):
    if not balance:
        return []
    per_round = defaultdict(dict)
    for rec in balance:
        per_round[(rec["origin"], rec["round"])][rec["worker"]] = (
            int(num(rec["accepted"])), int(num(rec["requests"])))
    lines = ["| origin, round | connections accepted per worker | requests per worker |",
             "|---|---:|---:|"]
    for (origin, rnd), workers in sorted(per_round.items()):
        acc = " / ".join(str(workers[w][0]) for w in sorted(workers))
        req = " / ".join(f"{workers[w][1]:,}" for w in sorted(workers))
        lines.append(f"| {origin}, {rnd} | {acc} | {req} |")
    return lines


def chart(run_dir, blocks):
    """chart.dat (one row per block, value/min/max/CPU per proxy) and chart.vars (the proxies'
    names and colours, for scripts/bench_chart.gp)."""
    present = [p for p in PROXIES if any(p in b.runs for b in blocks)]
    with open(os.path.join(run_dir, "chart.vars"), "w") as f:
        f.write(f'nproxies = {len(present)}\n')
        f.write('names = "' + " ".join(NAMES[p].replace(" ", "_") for p in present) + '"\n')
        f.write('colors = "' + " ".join(COLORS[p] for p in present) + '"\n')
        f.write(f'first_cpu = {2 if present and present[0] == "direct" else 1}\n')
    dat = os.path.join(run_dir, "chart.dat")
    with open(dat, "w") as f:
        f.write("# block " + " ".join(f"{p} {p}_min {p}_max {p}_cpu" for p in present) + "\n")
        for b in blocks:
            label = f"{MODE_SHORT.get(b.mode, b.mode)}\\n{b.origin} origin"
            if b.mode == "conns":
                label = f"{b.conns} conns\\n{b.origin} origin"
            cols = []
            for p in present:
                if p in b.runs:
                    s = b.stat(p)
                    cols += [s["rps"], s["rps_min"], s["rps_max"], s["cpu"]]
                else:
                    cols += [None] * 4
            f.write(f'"{label}" ' + " ".join("?" if v is None else f"{v:.2f}" for v in cols) + "\n")
    return dat


def main():
    run_dir = sys.argv[1]
    meta = open(os.path.join(run_dir, "meta.txt")).read().strip() \
        if os.path.exists(os.path.join(run_dir, "meta.txt")) else ""
    blocks = load_blocks(run_dir)
    memory = read_tsv(os.path.join(run_dir, "memory.tsv"))
    oha = read_tsv(os.path.join(run_dir, "oha.tsv"))
    balance = read_tsv(os.path.join(run_dir, "balance.tsv"))
    out = []
    if meta:
        out += [meta, ""]
    sweep = [b for b in blocks if b.mode == "conns"]
    rows = targets([b for b in blocks if b.mode != "conns"], memory)
    if rows:
        out += ["#### Issue-4 targets in this run", "", "| target | this run | |", "|---|---:|---|"]
        out += [f"| {t} | {v} | {ok} |" for t, v, ok in rows]
        out.append("")
    rows = sweep_targets(sweep)
    if rows:
        out += ["#### Issue-16 targets in this run (connection sweep)", "", "| target | this run | |",
                "|---|---:|---|"]
        out += [f"| {t} | {v} | {ok} |" for t, v, ok in rows]
        out.append("")
    for b in blocks:
        if b.mode != "conns":
            out += block_table(b) + [""]
    if sweep:
        out += sweep_table(sweep) + [""]
    conns_note = os.path.join(run_dir, "conns-note.txt")
    if os.path.exists(conns_note):
        out += [open(conns_note).read().strip(), ""]
    if memory:
        out += ["#### Memory with idle keep-alive connections", ""] + memory_table(memory) + [""]
    if balance:
        out += ["#### lb with 2 workers: how `SO_REUSEPORT` spread wrk's connections", ""]
        out += balance_table(balance) + [""]
    oha_note = os.path.join(run_dir, "oha-note.txt")
    if oha:
        out += ["#### Cross-check with oha (keep-alive, nginx origin, one run each)", ""]
        out += oha_table(oha) + [""]
    elif os.path.exists(oha_note):
        out += [open(oha_note).read().strip(), ""]
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    chart(run_dir, blocks)


if __name__ == "__main__":
    main()
