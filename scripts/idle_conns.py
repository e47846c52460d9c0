#!/usr/bin/env python3
"""Opens many keep-alive connections to an HTTP/1.1 server, sends one request on each, reads
each response, then holds every connection open and idle.

Used by scripts/bench.sh to measure a proxy's memory with 10,000 idle keep-alive clients:
the script waits for the line `holding N connections`, reads the proxy's VmRSS / VmHWM, then
stops this client (SIGTERM) or lets it end after --hold seconds.

Connections are opened in batches (--batch) so that at most that many requests are in flight at
once: the proxy then needs only a bounded number of upstream connections.

Standard library only. Exits 1 (with the reason on stderr) when a connection or a response fails.
"""

import argparse
import resource
import signal
import socket
import sys
import time


def read_response(sock: socket.socket) -> int:
    """Reads one response with a Content-Length body; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        body += chunk
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="HOST:PORT of the server")
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them idle")
    args = parser.parse_args()

    host, _, port = args.addr.rpartition(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            print(f"idle_conns: need {need} file descriptors, the hard limit is {hard}",
                  file=sys.stderr)
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    request = f"GET / HTTP/1.1\r\nHost: {args.addr}\r\nUser-Agent: idle_conns\r\n\r\n".encode()
    socks = []
    started = time.monotonic()
    try:
        while len(socks) < args.conns:
            batch = []
            for _ in range(min(args.batch, args.conns - len(socks))):
                s = socket.create_connection((host, int(port)), timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(request)
                batch.append(s)
            for s in batch:
                status = read_response(s)
                if status != 200:
                    raise ConnectionError(f"status {status}")
            socks.extend(batch)
    except (OSError, ValueError, IndexError) as e:
        print(f"idle_conns: after {len(socks)} connections: {e}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(f"holding {len(socks)} connections (opened in {elapsed:.1f} s)", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
