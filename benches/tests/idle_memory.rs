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
#![allow(unsafe_code)] // A global allocator is an `unsafe impl GlobalAlloc`; nothing else is unsafe.

use lb_config::{Config, StaticRoute, Workers};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Idle connections measured.
const IDLE: usize = 2_000;
/// Connections opened (and answered) at a time, as a client fleet would.
const BATCH: usize = 100;
/// Ceiling per idle connection. The task was 5,232 bytes before 10be46c (a header array held
/// across an await) and ~1.2 KiB after; 64 MiB for 10,000 connections allows ~6.5 KiB in total,
/// kernel socket memory aside.
const MAX_BYTES_PER_IDLE_CONNECTION: isize = 3 * 1024;

const REQUEST: &[u8] = b"GET /idle HTTP/1.1\r\nHost: lb.test\r\n\r\n";

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed on lb worker threads while armed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// 0: not classified yet, 1: an lb worker thread, 2: any other thread.
    static THREAD_KIND: Cell<u8> = const { Cell::new(0) };
    static IN_RECORD: Cell<bool> = const { Cell::new(false) };
}

fn on_lb_worker() -> bool {
    THREAD_KIND
        .try_with(|kind| match kind.get() {
            1 => true,
            2 => false,
            _ => {
                let worker = std::thread::current()
                    .name()
                    .is_some_and(|name| name.starts_with("lb-worker"));
                kind.set(if worker { 1 } else { 2 });
                worker
            }
        })
        .unwrap_or(false)
}

fn record(delta: isize) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let _ = IN_RECORD.try_with(|busy| {
        if busy.replace(true) {
            return;
        }
        if on_lb_worker() {
            LIVE.fetch_add(delta, Ordering::Relaxed);
        }
        busy.set(false);
    });
}

fn size(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping in `record` never touches the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(size(layout.size()));
        // SAFETY: the caller's `layout` obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(size(layout.size()));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(size(new_size) - size(layout.size()));
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-size(layout.size()));
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// An `lb echo` origin on its own thread and runtime; sending on the returned channel stops it.
fn start_origin() -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("echo-origin".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("origin runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("origin binds");
                addr_tx
                    .send(listener.local_addr().expect("origin address"))
                    .expect("test waits for the address");
                lb_echo::serve(listener, Arc::from("origin"), async move {
                    let _ = stop_rx.await;
                })
                .await;
            });
        })
        .expect("origin thread");
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("origin started");
    (addr, stop_tx, thread)
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
    let (origin, stop_origin, origin_thread) = start_origin();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: Workers::Count(1),
        pin: false,
        // Parsed like `--route`, so that fields added to `StaticRoute` keep their defaults here.
        routes: vec![format!("/idle={origin}")
            .parse::<StaticRoute>()
            .expect("valid route")],
        ..Config::default()
    };
    let lb = lb_runtime::start(config).expect("lb starts");

    // Warm-up: a full batch in flight fills the buffer free list and the upstream pool.
    drop(open_idle(lb.listen_addr(), BATCH * 2));
    std::thread::sleep(Duration::from_millis(200));

    ARMED.store(true, Ordering::SeqCst);
    let idle = open_idle(lb.listen_addr(), IDLE);
    std::thread::sleep(Duration::from_millis(200));
    ARMED.store(false, Ordering::SeqCst);

    let live = LIVE.load(Ordering::SeqCst);
    let per_connection = live / size(IDLE);
    println!(
        "{IDLE} idle keep-alive connections: {live} bytes of heap kept on lb worker threads = \
         {per_connection} bytes per connection (ceiling {MAX_BYTES_PER_IDLE_CONNECTION})"
    );

    drop(idle);
    lb.shutdown();
    let _ = stop_origin.send(());
    let _ = origin_thread.join();

    assert!(
        per_connection <= MAX_BYTES_PER_IDLE_CONNECTION,
        "lb keeps {per_connection} bytes of heap per idle keep-alive connection (ceiling \
         {MAX_BYTES_PER_IDLE_CONNECTION}): look for a large local held across an `.await` in \
         lb-proxy's connection future (`cargo +nightly rustc -p lb-proxy --release -- \
         -Zprint-type-sizes`)"
    );
}
