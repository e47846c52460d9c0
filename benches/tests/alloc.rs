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

mod testbed;

use parking_lot::Mutex;
use std::backtrace::Backtrace;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testbed::{Heap, Testbed, WorkerAllocator};

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
// The count.

#[global_allocator]
static GLOBAL: WorkerAllocator = WorkerAllocator::new(count);

/// Allocations (including reallocations) counted on lb worker threads.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Bytes requested by those allocations.
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Backtraces of the first [`TRACES`] counted allocations.
static BACKTRACES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

fn count(event: Heap) {
    let size = match event {
        Heap::Alloc(size) | Heap::Realloc { new: size, .. } => size,
        Heap::Free(_) => return,
    };
    let n = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size, Ordering::Relaxed);
    if n < TRACES {
        BACKTRACES.lock().push((size, Backtrace::force_capture()));
    }
}

// ---------------------------------------------------------------------------------------------
// The client.

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
    testbed::arm();
    let _ = std::hint::black_box(vec![0u8; 100]);
    let probe = std::thread::Builder::new()
        .name("lb-worker-probe".to_string())
        .spawn(|| std::hint::black_box(vec![0u8; 100]).len())
        .expect("probe thread");
    let _ = probe.join();
    testbed::disarm();
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
    let lb = Testbed::start("/alloc");
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(lb.listen_addr()))
        .collect();

    rounds(&mut clients, WARMUP_ROUNDS);
    testbed::arm();
    rounds(&mut clients, MEASURED_ROUNDS);
    let requests = CONNECTIONS * MEASURED_ROUNDS;
    // A client has its answer a moment before lb ends the exchange (records its latency, pools
    // the upstream connection): count until lb says every exchange ended.
    let ended = (CONNECTIONS * (WARMUP_ROUNDS + MEASURED_ROUNDS)) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while lb.metric("lb_request_duration_seconds_count") < ended && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    testbed::disarm();

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

    assert_eq!(
        allocations, 0,
        "lb allocated {allocations} times ({bytes} bytes) over {requests} requests; first call \
         sites:\n{traces}"
    );
}
