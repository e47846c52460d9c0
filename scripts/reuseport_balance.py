#!/usr/bin/env python3
"""How SO_REUSEPORT spreads a few long-lived connections over lb's workers.

Starts `lb echo` and `lb run --workers W --no-pin` on loopback (port 0), then, for each connection
count N, runs TRIALS trials: open N keep-alive connections (fresh source ports), send one request on
each, read lb's per-worker `lb_worker_connections_accepted_total` from /metrics, close them. Prints
a markdown table: the busiest worker's share of the connections (mean and worst), how often one
worker got every connection, and what a uniform random hash predicts for the latter.

    scripts/reuseport_balance.py [--lb target/release/lb] [--workers 2] [--conns 2,4,8,16,50]
                                 [--trials 40]

Standard library only. Every process it starts is stopped on exit, error or Ctrl-C.
"""

import argparse
import math
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def start(cmd, pattern, procs):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return m
    raise RuntimeError(f"{cmd[0]} did not start")


def accepted(admin):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    counts = {}
    for m in re.finditer(r'^lb_worker_connections_accepted_total\{worker="(\d+)"\} (\d+)', text, re.M):
        counts[int(m.group(1))] = int(m.group(2))
    return counts


def one_trial(addr, admin, n):
    before = accepted(admin)
    host, port = addr.rsplit(":", 1)
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed")
            data += chunk
    after = accepted(admin)
    for s in socks:
        s.close()
    return [after[w] - before.get(w, 0) for w in sorted(after)]


def expected_share(n, w):
    """Mean share of the busiest worker under a uniform random hash (exact for 2 workers)."""
    if w != 2:
        return None
    return sum(math.comb(n, k) * max(k, n - k) for k in range(n + 1)) / 2**n / n


def p_all_on_one(n, w):
    """Probability that a uniform random hash puts all n connections on one of w workers."""
    return w * (1 / w) ** n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lb", default="target/release/lb")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--conns", default="2,4,8,16,50")
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()

    procs = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        origin = start([args.lb, "echo", "--listen", "127.0.0.1:0", "--name", "o"],
                       r"listening on (\S+)", procs).group(1)
        m = start([args.lb, "run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                   "--workers", str(args.workers), "--no-pin", "--route", f"/={origin}"],
                  r"listening on (\S+) \(admin ([^,]+),", procs)
        addr, admin = m.group(1), m.group(2)
        print(f"lb --workers {args.workers} on {addr}; {args.trials} trials per row\n")
        print("| connections | busiest worker's share: mean (uniform hash predicts) | worst "
              "| all on one worker (uniform hash predicts) |")
        print("|---:|---:|---:|---:|")
        for n in (int(x) for x in args.conns.split(",")):
            shares, all_one, worst = [], 0, 0.0
            for _ in range(args.trials):
                counts = one_trial(addr, admin, n)
                total = sum(counts)
                if total != n:
                    raise RuntimeError(f"expected {n} accepted connections, counted {total}")
                share = max(counts) / n
                shares.append(share)
                worst = max(worst, share)
                all_one += max(counts) == n
            mean = sum(shares) / len(shares)
            predicted = expected_share(n, args.workers)
            predicted = f" ({predicted:.0%})" if predicted is not None else ""
            print(f"| {n} | {mean:.0%}{predicted} | {worst:.0%} | {all_one / args.trials:.0%} "
                  f"({p_all_on_one(n, args.workers):.1%}) |")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
