//! Heap held per idle keep-alive connection (issue 4: ≤ 64 MiB with 10,000 idle connections),
//! measured with a counting `#[global_allocator]` so that a regression shows in CI rather than only
//! in `scripts/bench.sh`.
//!
//! lb runs in-process (one worker) in front of an in-process `lb echo` origin. After a warm-up that
//! fills the worker's buffer free list, the allocator tracks the bytes allocated minus the bytes
//! freed **on lb's worker threads** (thread name `lb-worker*`) while 2,000 client connections each
//! send one request, read the answer and then stay open and idle. What is left is what lb keeps per
//! idle connection: its task (the connection future) and its reactor registration. Buffers are not
//! part of it: an idle connection gives them back.
//!
//! `cargo test -p lb-benches --test idle_memory -- --nocapture` prints the figure.

mod testbed;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use testbed::{Heap, Testbed, WorkerAllocator};

/// Idle connections measured.
const IDLE: usize = 2_000;
/// Connections opened (and answered) at a time, as a client fleet would.
const BATCH: usize = 100;
/// Ceiling per idle connection. The task was 5,232 bytes before 10be46c (a header array held
/// across an await) and ~1.2 KiB after; 64 MiB for 10,000 connections allows ~6.5 KiB in total,
/// kernel socket memory aside.
const MAX_BYTES_PER_IDLE_CONNECTION: isize = 3 * 1024;

const REQUEST: &[u8] = b"GET /idle HTTP/1.1\r\nHost: lb.test\r\n\r\n";

#[global_allocator]
static GLOBAL: WorkerAllocator = WorkerAllocator::new(count);

/// Bytes allocated minus bytes freed on lb worker threads while armed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(event: Heap) {
    let delta = match event {
        Heap::Alloc(n) => size(n),
        Heap::Realloc { old, new } => size(new) - size(old),
        Heap::Free(n) => -size(n),
    };
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

fn size(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// Waits up to 30 s (a loaded CI machine) for `done`; returns either way, the caller's
/// assertions say what was wrong.
fn until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() >= deadline {
            println!("not reached within 30 s: {what}");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Opens `n` connections in batches; each sends one request and reads its whole answer.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    let mut buf = [0u8; 4096];
    while all.len() < n {
        let batch: Vec<TcpStream> = (0..BATCH.min(n - all.len()))
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connect to lb");
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("read timeout");
                s.write_all(REQUEST).expect("send request");
                s
            })
            .collect();
        for mut s in batch {
            // The echo answer is small: read until the head and `NAME\n` body ("origin\n") are in.
            let mut got = Vec::new();
            while !got.ends_with(b"origin\n") {
                let k = s.read(&mut buf).expect("read answer");
                assert!(k > 0, "lb closed a connection");
                got.extend_from_slice(&buf[..k]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200 "), "not a 200");
            all.push(s);
        }
    }
    all
}

#[test]
fn an_idle_keep_alive_connection_holds_little_heap() {
    let lb = Testbed::start("/idle");

    // Warm-up: a full batch in flight fills the buffer free list and the upstream pool. Its
    // connections must be gone before counting starts, or their frees would hide growth.
    drop(open_idle(lb.listen_addr(), BATCH * 2));
    until(
        || lb.metric("lb_worker_connections_active") == 0,
        "the warm-up connections closed",
    );

    testbed::arm();
    let idle = open_idle(lb.listen_addr(), IDLE);
    // A connection gives its buffers back just after writing its answer, so on a loaded machine
    // the last few may still hold them when the client has read it: wait for the figure to
    // settle under the ceiling (it only goes down while the connections stay idle).
    until(
        || LIVE.load(Ordering::SeqCst) / size(IDLE) <= MAX_BYTES_PER_IDLE_CONNECTION,
        "the idle connections settled",
    );
    testbed::disarm();

    let live = LIVE.load(Ordering::SeqCst);
    let per_connection = live / size(IDLE);
    println!(
        "{IDLE} idle keep-alive connections: {live} bytes of heap kept on lb worker threads = \
         {per_connection} bytes per connection (ceiling {MAX_BYTES_PER_IDLE_CONNECTION})"
    );

    drop(idle);
    lb.shutdown();

    assert!(
        per_connection > 0,
        "the allocator saw no heap kept on lb worker threads: is it still watching them?"
    );
    assert!(
        per_connection <= MAX_BYTES_PER_IDLE_CONNECTION,
        "lb keeps {per_connection} bytes of heap per idle keep-alive connection (ceiling \
         {MAX_BYTES_PER_IDLE_CONNECTION}): look for a large local held across an `.await` in \
         lb-proxy's connection future (`cargo +nightly rustc -p lb-proxy --release -- \
         -Zprint-type-sizes`)"
    );
}
