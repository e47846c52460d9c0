//! What the heap tests (`alloc`, `idle_memory`) share: lb in-process in front of an in-process
//! `lb echo` origin, and a global allocator that reports the heap events of lb's worker threads.
//!
//! Only threads named `lb-worker*` are watched, and only while [`arm`]ed: the test's client, the
//! origin and lb's other threads allocate freely. The allocator hands every event to the test's
//! own function and never touches the memory it hands out.
#![allow(unsafe_code)] // A global allocator is an `unsafe impl GlobalAlloc`; nothing else is unsafe.

use lb_config::{Config, LiveConfig, RestartConfig, StaticRoute, Workers};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------------------------
// The allocator.

/// One heap event on an lb worker thread, in bytes.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // Each test binary reads only the sizes it counts (`alloc`: not the freed ones).
pub enum Heap {
    /// An allocation (zeroed or not) of this size.
    Alloc(usize),
    /// A block grown or shrunk from `old` to `new` bytes.
    Realloc { old: usize, new: usize },
    /// A block of this size freed.
    Free(usize),
}

/// Forwards to the system allocator; while [`arm`]ed, passes the heap events of lb worker threads
/// to the function given to [`WorkerAllocator::new`].
#[derive(Debug)]
pub struct WorkerAllocator {
    on_worker: fn(Heap),
}

impl WorkerAllocator {
    /// `on_worker` runs on the allocating thread; what it allocates itself is not reported.
    pub const fn new(on_worker: fn(Heap)) -> Self {
        WorkerAllocator { on_worker }
    }

    fn report(&self, event: Heap) {
        if !ARMED.load(Ordering::Relaxed) {
            return;
        }
        let _ = IN_REPORT.try_with(|busy| {
            if busy.replace(true) {
                return;
            }
            if on_lb_worker() {
                (self.on_worker)(event);
            }
            busy.set(false);
        });
    }
}

/// Reporting is on (only while a test measures).
static ARMED: AtomicBool = AtomicBool::new(false);

/// Starts reporting heap events of lb worker threads.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops reporting.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}

thread_local! {
    /// 0: not classified yet, 1: an lb worker thread, 2: any other thread.
    static THREAD_KIND: Cell<u8> = const { Cell::new(0) };
    /// Set while this thread is inside `report`: allocations made by the bookkeeping itself
    /// (thread name lookup, the test's function) are neither reported nor recursed into.
    static IN_REPORT: Cell<bool> = const { Cell::new(false) };
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

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping in `report` never touches the memory handed out.
unsafe impl GlobalAlloc for WorkerAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.report(Heap::Alloc(layout.size()));
        // SAFETY: the caller's `layout` obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.report(Heap::Alloc(layout.size()));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.report(Heap::Realloc {
            old: layout.size(),
            new: new_size,
        });
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.report(Heap::Free(layout.size()));
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

// ---------------------------------------------------------------------------------------------
// lb and its origin.

/// lb with one unpinned worker on `127.0.0.1:0`, routing one prefix to an `lb echo` origin named
/// `origin` that runs on its own thread and runtime (thread `echo-origin`, so not watched).
#[derive(Debug)]
pub struct Testbed {
    lb: lb_runtime::Handle,
    stop_origin: oneshot::Sender<()>,
    origin: JoinHandle<()>,
}

impl Testbed {
    /// Starts the origin, then lb with `--route PREFIX=ORIGIN`.
    pub fn start(prefix: &str) -> Testbed {
        let (origin_addr, stop_origin, origin) = start_origin();
        let config = Config {
            restart: RestartConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                admin: SocketAddr::from(([127, 0, 0, 1], 0)),
                workers: Workers::Count(1),
                pin: false,
                ..RestartConfig::default()
            },
            live: LiveConfig {
                // Parsed like `--route`, so that fields added to `StaticRoute` keep their defaults
                // here.
                routes: vec![format!("{prefix}={origin_addr}")
                    .parse::<StaticRoute>()
                    .expect("valid route")],
                ..LiveConfig::default()
            },
            ..Config::default()
        };
        let lb = lb_runtime::start(config).expect("lb starts");
        Testbed {
            lb,
            stop_origin,
            origin,
        }
    }

    /// Where lb accepts client connections.
    pub fn listen_addr(&self) -> SocketAddr {
        self.lb.listen_addr()
    }

    /// The sum over workers of the `/metrics` series `name` (e.g.
    /// `lb_worker_connections_active`), read through the admin listener like a scraper would.
    pub fn metric(&self, name: &str) -> u64 {
        let mut admin = TcpStream::connect(self.lb.admin_addr()).expect("connect to the admin");
        admin
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .expect("send to the admin");
        let mut text = String::new();
        admin.read_to_string(&mut text).expect("read the metrics");
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Stops lb, then the origin, and waits for both.
    pub fn shutdown(self) {
        self.lb.shutdown();
        let _ = self.stop_origin.send(());
        let _ = self.origin.join();
    }
}

/// An `lb echo` origin on its own thread and runtime; sending on the returned channel stops it.
fn start_origin() -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
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
