#!/usr/bin/env python3
"""cluster_bench.py: the figures of issue 14, measured against running processes.

Arguments: ETCD_URL A_ADMIN B_ADMIN N BACKEND_PORT
  1. etcd's own put-to-watch latency: a watch on a scratch prefix through etcd's JSON gateway
     (POST /v3/watch, one JSON object per event), N puts (POST /v3/kv/put), each timed from
     the put being sent to its event arriving.
  2. lb: N registrations on node A (POST /register), each timed from the request being sent
     to node B's GET /cluster showing the revision A answered with (B applied it).
Prints p50/p99 of 1 and 2 and the issue's check (2's p99 <= 1's p99 + 2 ms).
"""
import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse


def b64(text):
    return base64.b64encode(text.encode()).decode()


def post(addr, path, body):
    host, port = addr
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, json.loads(data) if data else None


def get_json(addr, path):
    host, port = addr
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path)
    data = conn.getresponse().read()
    conn.close()
    return json.loads(data)


def hostport(url):
    parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    return parsed.hostname, parsed.port


def pct(samples, p):
    s = sorted(samples)
    return s[max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))]


def etcd_put_to_watch(etcd, n):
    seen = {}
    ready = threading.Event()
    prefix = "/cluster-bench/%d/" % time.time_ns()

    def watch():
        conn = http.client.HTTPConnection(*etcd, timeout=60)
        body = {"create_request": {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0")}}
        conn.request("POST", "/v3/watch", json.dumps(body), {"Content-Type": "application/json"})
        answer = conn.getresponse()
        decoder = json.JSONDecoder()
        buf = ""
        while len(seen) < n:
            chunk = answer.read1(65536).decode()
            if not chunk:
                return
            buf += chunk
            while buf.strip():
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                result = obj.get("result", {})
                if result.get("created"):
                    ready.set()
                for event in result.get("events", []):
                    key = base64.b64decode(event["kv"]["key"]).decode()
                    seen.setdefault(key, time.perf_counter())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(10)
    took = []
    for i in range(n):
        key = "%s%d" % (prefix, i)
        began = time.perf_counter()
        post(etcd, "/v3/kv/put", {"key": b64(key), "value": b64("x")})
        while key not in seen:
            time.sleep(0.0001)
        took.append(seen[key] - began)
    return took


def lb_a_to_b(a, b, n, backend_port):
    took = []
    stamp = time.time_ns()
    for i in range(n):
        began = time.perf_counter()
        status, reply = post(a, "/register", {"path": "/bench%d-%d" % (stamp, i), "ip": "127.0.0.1", "port": backend_port})
        assert status in (200, 201), (status, reply)
        revision = reply["revision"]
        while get_json(b, "/cluster")["revision"] < revision:
            time.sleep(0.0001)
        took.append(time.perf_counter() - began)
    return took


def main():
    etcd, a, b = hostport(sys.argv[1]), hostport(sys.argv[2]), hostport(sys.argv[3])
    n = int(sys.argv[4])
    backend_port = int(sys.argv[5])
    ms = lambda s: "%.2f ms" % (s * 1e3)
    watch = etcd_put_to_watch(etcd, n)
    lb = lb_a_to_b(a, b, n, backend_port)
    print("etcd put-to-watch over %d puts:          p50 %s  p99 %s" % (n, ms(pct(watch, 50)), ms(pct(watch, 99))))
    print("lb register on A -> applied on B (%d):   p50 %s  p99 %s" % (n, ms(pct(lb, 50)), ms(pct(lb, 99))))
    bound = pct(watch, 99) + 0.002
    verdict = "met" if pct(lb, 99) <= bound else "NOT met"
    print("issue 14 target (lb p99 <= etcd p99 + 2 ms = %s): %s" % (ms(bound), verdict))


if __name__ == "__main__":
    main()
