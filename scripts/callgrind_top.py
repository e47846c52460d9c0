#!/usr/bin/env python3
"""Top functions of a callgrind dump by self cost, per request, plus the heaviest call edges.

    callgrind_top.py CALLGRIND_OUT REQUESTS [N]

Reads the callgrind format directly (callgrind_annotate attributes everything to `clone` for
dumps taken with `callgrind_control -d` of a multi-threaded process). Self cost is the cost
lines of a function; a cost line right after `calls=` is the inclusive cost of that call, which is
what the edge list shows. Standard library only.
"""

import collections
import re
import sys


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    names = {}

    def name(text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not m:
            return text
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), text)

    self_cost = collections.Counter()
    edges = collections.Counter()
    fn = callee = None
    call_pending = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name(line[3:])
                call_pending = False
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                call_pending = True
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if call_pending:
                    edges[(fn, callee)] += cost
                    call_pending = False
                else:
                    self_cost[fn] += cost
    total = sum(self_cost.values())
    print(f"total {total:,} instructions = {total / requests:,.0f} per request")
    print("\nself cost per request:")
    for f, c in self_cost.most_common(top):
        print(f"  {c / requests:8.0f}  {100 * c / total:5.1f}%  {f[:140]}")
    print("\nheaviest calls from lb's own code (inclusive cost per request):")
    shown = 0
    for (caller, callee), c in edges.most_common():
        if caller and caller.startswith(("lb_", "<lb_")) and not callee.startswith(("lb_", "<lb_")):
            print(f"  {c / requests:8.0f}  {caller[:70]} -> {callee[:70]}")
            shown += 1
            if shown == top // 2:
                break


if __name__ == "__main__":
    main()
