//! Zero heap allocations per proxied request in steady state (issue 4), checked with a counting
//! `#[global_allocator]`.
//!
//! lb runs in-process (one worker, `lb_runtime::start` on `127.0.0.1:0`) in front of an in-process
//! `lb echo` origin; a raw client keeps 8 keep-alive connections busy (8 requests in flight at a
//! time, so the buffer free list and the upstream pool work as under load). After a warm-up, the
//! allocator counts allocations (and reallocations) made **on lb's worker threads** (thread name
//! `lb-worker*`) while a fixed number of requests go through; the client, the origin and the admin
//! thread are not counted. The first few counted allocations keep a backtrace, printed when the
//! test fails, so the call site can be fixed.
//!
//! `cargo test -p lb-benches --test alloc -- --nocapture` prints the figures.
#![allow(unsafe_code)] // A global allocator is an `unsafe impl GlobalAlloc`; nothing else is unsafe.

use lb_config::{Config, StaticRoute, Workers};
use parking_lot::Mutex;
use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Client keep-alive connections, each with one request in flight at a time.
const CONNECTIONS: usize = 8;
/// Requests per connection before counting starts (fills lb's buffer free list and pool).
const WARMUP_ROUNDS: usize = 500;
/// Requests per connection while counting.
const MEASURED_ROUNDS: usize = 1_250;
/// Backtraces kept from the first counted allocations.
const TRACES: usize = 8;

const REQUEST: &[u8] =
    b"GET /alloc/test?x=1 HTTP/1.1\r\nHost: lb.test\r\nUser-Agent: alloc-test\r\nAccept: */*\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// The counting allocator.

/// Forwards to the system allocator; while [`ARMED`], counts allocations made on lb worker threads.
struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counting is on (only between warm-up and the end of the measured requests).
static ARMED: AtomicBool = AtomicBool::new(false);
/// Allocations (including reallocations) counted on lb worker threads.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Bytes requested by those allocations.
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Backtraces of the first [`TRACES`] counted allocations.
static BACKTRACES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

thread_local! {
    /// 0: not classified yet, 1: an lb worker thread, 2: any other thread.
    static THREAD_KIND: Cell<u8> = const { Cell::new(0) };
    /// Set while this thread is inside `record`: allocations made by the bookkeeping itself
    /// (thread name lookup, backtrace capture) are neither counted nor recursed into.
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

fn record(size: usize) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let _ = IN_RECORD.try_with(|busy| {
        if busy.replace(true) {
            return;
        }
        if on_lb_worker() {
            let n = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(size, Ordering::Relaxed);
            if n < TRACES {
                BACKTRACES.lock().push((size, Backtrace::force_capture()));
            }
        }
        busy.set(false);
    });
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping in `record` never touches the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's `layout` obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

// ---------------------------------------------------------------------------------------------
// The origin, lb, and the client.

/// An `lb echo` origin on its own thread and runtime; dropping the sender stops it.
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

/// A keep-alive client connection with a fixed buffer: no allocation per request.
struct Client {
    stream: TcpStream,
    buf: [u8; 4096],
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to lb");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Client {
            stream,
            buf: [0; 4096],
        }
    }

    fn send(&mut self) {
        self.stream.write_all(REQUEST).expect("send request");
    }

    /// Reads one whole response (head + Content-Length body) and checks it is a 200.
    fn receive(&mut self) {
        let mut filled = 0;
        loop {
            let n = self.stream.read(&mut self.buf[filled..]).expect("read");
            assert!(n > 0, "lb closed the connection");
            filled += n;
            let data = &self.buf[..filled];
            let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(data.starts_with(b"HTTP/1.1 200 "), "not a 200: {data:?}");
            if filled >= head_end + 4 + content_length(&data[..head_end]) {
                return;
            }
        }
    }
}

/// The Content-Length of a response head (0 when absent).
fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .find_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            name.eq_ignore_ascii_case(b"content-length").then(|| {
                value[1..]
                    .iter()
                    .filter(|b| b.is_ascii_digit())
                    .fold(0, |n, &b| n * 10 + usize::from(b - b'0'))
            })
        })
        .unwrap_or(0)
}

fn rounds(clients: &mut [Client], rounds: usize) {
    for _ in 0..rounds {
        for c in clients.iter_mut() {
            c.send();
        }
        for c in clients.iter_mut() {
            c.receive();
        }
    }
}

/// Checks that the allocator sees an allocation made on a thread named like an lb worker (and
/// not one made on this thread), then clears the counters.
fn check_the_counter() {
    ARMED.store(true, Ordering::SeqCst);
    let _ = std::hint::black_box(vec![0u8; 100]);
    let probe = std::thread::Builder::new()
        .name("lb-worker-probe".to_string())
        .spawn(|| std::hint::black_box(vec![0u8; 100]).len())
        .expect("probe thread");
    let _ = probe.join();
    ARMED.store(false, Ordering::SeqCst);
    assert!(
        ALLOCATIONS.load(Ordering::SeqCst) >= 1,
        "the counting allocator missed an allocation on an lb-worker thread"
    );
    ALLOCATIONS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    BACKTRACES.lock().clear();
}

#[test]
fn proxied_requests_do_not_allocate_in_steady_state() {
    check_the_counter();
    let (origin, stop_origin, origin_thread) = start_origin();
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: Workers::Count(1),
        pin: false,
        // Parsed like `--route`, so that fields added to `StaticRoute` keep their defaults here.
        routes: vec![format!("/alloc={origin}")
            .parse::<StaticRoute>()
            .expect("valid route")],
        ..Config::default()
    };
    let lb = lb_runtime::start(config).expect("lb starts");
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(lb.listen_addr()))
        .collect();

    rounds(&mut clients, WARMUP_ROUNDS);
    ARMED.store(true, Ordering::SeqCst);
    rounds(&mut clients, MEASURED_ROUNDS);
    // lb may still be finishing the last exchanges (pooling the upstream connection).
    std::thread::sleep(Duration::from_millis(100));
    ARMED.store(false, Ordering::SeqCst);

    let requests = CONNECTIONS * MEASURED_ROUNDS;
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    let bytes = BYTES.load(Ordering::SeqCst);
    println!(
        "{requests} proxied requests: {allocations} allocations ({bytes} bytes) on lb worker \
         threads = {:.3} per request",
        allocations as f64 / requests as f64
    );
    let traces: String = BACKTRACES
        .lock()
        .iter()
        .enumerate()
        .map(|(i, (size, trace))| format!("--- allocation {i} ({size} bytes):\n{trace}\n"))
        .collect();
    if !traces.is_empty() {
        println!("{traces}");
    }

    drop(clients);
    lb.shutdown();
    let _ = stop_origin.send(());
    let _ = origin_thread.join();

    assert_eq!(
        allocations, 0,
        "lb allocated {allocations} times ({bytes} bytes) over {requests} requests; first call \
         sites:\n{traces}"
    );
}
