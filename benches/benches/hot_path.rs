//! Criterion benchmarks of the per-request pieces of lb's data path: request-head parse + rewrite,
//! route lookup with 100 and 10,000 prefixes and with 10,000 routes over 1,000 virtual hosts
//! (for a host with routes, and for one without, which must cost what a lookup without virtual
//! hosts costs), the pick per policy (round robin, weighted, least connections, hash of a
//! 32-byte key) alone and with a second thread contending on the same route, the Maglev table
//! build for 1,000 targets, and response-head parse + rewrite. Two baselines put the pick in
//! context: a bare `fetch_add` on an atomic alone and with a second thread hammering the same
//! cache line (what one shared cursor costs, without the registry around it), and a ping-pong in
//! which every add must fetch the line from the other core (one cache-line transfer per add).
//!
//! With two or more CPUs, the measuring thread is pinned to the first allowed CPU and the
//! contending thread to the second, so "contending" means two cores really bouncing one line.
//!
//! `cargo bench -p lb-benches` runs them all; results are summarized in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_utils::CachePadded;
use lb_http::{
    parse_request, parse_response, write_request_head, write_response_head, ClientAddr, ClientSide,
    Version, EMPTY_HEADER, MAX_HEADERS,
};
use lb_registry::{
    Balance, InitialConfiguration, Maglev, Reconfiguration, Registry, RouteOptions, SnapshotCache,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

const REQUEST: &[u8] = b"GET /api/users/42?verbose=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive\r\nX-Request-Id: 0123456789abcdef\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Fri, 27 Nov 2026 12:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn registry_with(prefixes: usize) -> Arc<Registry> {
    let reg = Arc::new(Registry::new(2));
    for i in 0..prefixes {
        reg.register(
            &format!("/svc{}/v{}", i % 100, i / 100),
            addr(1000 + (i % 50) as u16),
        )
        .expect("valid prefix");
    }
    reg.register("/api", addr(9001)).expect("valid prefix");
    reg.register("/api", addr(9002)).expect("valid prefix");
    reg
}

fn request_head(c: &mut Criterion) {
    let client = ClientAddr::new([10, 0, 0, 7].into());
    let mut out = Vec::with_capacity(4096);
    c.bench_function("request_head/parse+rewrite", |b| {
        b.iter(|| {
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let req = parse_request(black_box(REQUEST), &mut headers)
                .expect("valid")
                .expect("complete");
            out.clear();
            write_request_head(
                &req,
                "",
                "/users/42?verbose=1",
                &client,
                b"0123456789abcdef-0-2a",
                &mut out,
            );
            black_box(out.len())
        })
    });
}

fn response_head(c: &mut Criterion) {
    let mut out = Vec::with_capacity(4096);
    let client = ClientSide {
        version: Version::Http11,
        keep_alive: true,
    };
    c.bench_function("response_head/parse+rewrite", |b| {
        b.iter(|| {
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let resp = parse_response(black_box(RESPONSE), &mut headers, false)
                .expect("valid")
                .expect("complete");
            out.clear();
            write_response_head(&resp, client, &mut out);
            black_box(out.len())
        })
    });
}

fn route_lookup(c: &mut Criterion) {
    for n in [100, 10_000] {
        let mut cache = SnapshotCache::new(registry_with(n));
        c.bench_function(&format!("route_lookup/{n}_prefixes"), |b| {
            b.iter(|| {
                let snap = cache.current();
                let m = snap
                    .lookup(black_box("/api/users/42?verbose=1"))
                    .expect("routed");
                black_box(m.rest.len())
            })
        });
    }
}

/// 10,000 routes over 1,000 hosts (`h0.example.com` ... with ten prefixes each), and the
/// host-less `/api`, registered as one change.
fn registry_with_hosts() -> Arc<Registry> {
    let reg = Arc::new(Registry::new(2));
    let mut targets: Vec<(String, SocketAddr)> = (0..10_000)
        .map(|i| {
            let route = format!("h{}.example.com/svc{}", i / 10, i % 10);
            (route, addr(1000 + (i % 50) as u16))
        })
        .collect();
    targets.push(("/api".to_string(), addr(9001)));
    let start = InitialConfiguration {
        weights: Vec::new(),
        targets,
        routes: Vec::new(),
    };
    reg.apply(&start).expect("valid routes");
    reg
}

fn route_lookup_hosts(c: &mut Criterion) {
    let mut cache = SnapshotCache::new(registry_with_hosts());
    let cases = [
        (
            "host_without_routes",
            "other.test",
            "/api/users/42?verbose=1",
        ),
        ("exact_host", "h500.example.com", "/svc5/users/42?verbose=1"),
    ];
    for (name, host, target) in cases {
        c.bench_function(
            &format!("route_lookup/10000_routes_1000_hosts/{name}"),
            |b| {
                b.iter(|| {
                    let snap = cache.current();
                    let m = snap
                        .lookup_host(Some(black_box(host)), black_box(target))
                        .expect("routed");
                    black_box(m.rest.len())
                })
            },
        );
    }
}

/// Pins the calling thread to the `i`-th CPU the process was allowed at start, when there are at
/// least two. The list is taken once, before any pinning: a thread spawned by a pinned thread
/// inherits its one-CPU mask, and asking again there would find a single CPU.
fn pin(i: usize) {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    let cores = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if cores.len() >= 2 {
        let _ = core_affinity::set_for_current(cores[i]);
    }
}

/// Runs `work` on a second thread (pinned to the second CPU) until the returned guard is dropped.
struct Rival {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Rival {
    fn start(mut work: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin(1);
                while !stop.load(Ordering::Relaxed) {
                    work();
                }
            })
        };
        Rival {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Rival {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn atomic_baseline(c: &mut Criterion) {
    pin(0);
    let counter = Arc::new(CachePadded::new(AtomicUsize::new(0)));
    c.bench_function("atomic_fetch_add/1_thread", |b| {
        b.iter(|| black_box(counter.fetch_add(1, Ordering::Relaxed)))
    });
    let rival = {
        let counter = counter.clone();
        Rival::start(move || {
            black_box(counter.fetch_add(1, Ordering::Relaxed));
        })
    };
    c.bench_function("atomic_fetch_add/2_threads_contending", |b| {
        b.iter(|| black_box(counter.fetch_add(1, Ordering::Relaxed)))
    });
    drop(rival);

    // Ping-pong: each thread adds only when the value has the other thread's parity, so every
    // add finds the line in the other core's cache. One iteration is a round trip (two line
    // transfers): the cost a pick pays when workers take turns, as they do at moderate load.
    let line = Arc::new(CachePadded::new(AtomicUsize::new(0)));
    let rival = {
        let line = line.clone();
        Rival::start(move || {
            if line.load(Ordering::Acquire) % 2 == 1 {
                line.fetch_add(1, Ordering::AcqRel);
            }
        })
    };
    c.bench_function("atomic_handoff/2_threads_round_trip", |b| {
        b.iter(|| {
            // No `spin_loop()` hint: on a KVM guest, PAUSE-loop exiting would deschedule the
            // spinning vCPU and measure the hypervisor instead.
            while line.load(Ordering::Acquire) % 2 == 1 {}
            black_box(line.fetch_add(1, Ordering::AcqRel))
        })
    });
    drop(rival);
}

fn pick(c: &mut Criterion) {
    pin(0);
    let reg = registry_with(0);
    let snap = reg.snapshot();
    let route = snap.lookup("/api").expect("routed").route;
    c.bench_function("round_robin_pick/1_thread", |b| {
        b.iter(|| black_box(route.pick().expect("target").addr()))
    });

    // A second thread hammers the same cursor, as a second worker would.
    let rival = {
        let snap = reg.snapshot();
        Rival::start(move || {
            let route = snap.lookup("/api").expect("routed").route;
            black_box(route.pick());
        })
    };
    c.bench_function("round_robin_pick/2_threads_contending", |b| {
        b.iter(|| black_box(route.pick().expect("target").addr()))
    });
    drop(rival);
}

/// A `/p` route over three targets with `balance`, one with weights 5,1,1 for round robin.
fn policy_registry(balance: Balance) -> Arc<Registry> {
    let reg = Arc::new(Registry::new(2));
    for (port, weight) in [(9001, 5), (9002, 1), (9003, 1)] {
        reg.register_weighted("/p", addr(port), Some(weight))
            .expect("valid registration");
    }
    let options = RouteOptions {
        balance,
        ..RouteOptions::default()
    };
    reg.reconfigure(&Reconfiguration {
        routes: vec![("/p".to_string(), options)],
        ..Reconfiguration::default()
    })
    .expect("valid options");
    reg
}

/// The pick per policy, alone and with a second thread picking on the same route: weighted
/// round robin (5,1,1), least connections (3 targets), and hash of a 32-byte key.
fn policy_pick(c: &mut Criterion) {
    pin(0);
    const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    let policies = [
        ("weighted_pick", Balance::RoundRobin, None),
        ("least_conn_pick", Balance::LeastConn, None),
        (
            "hash_pick",
            Balance::parse(Some("hash"), Some("header:X-User")).expect("valid"),
            Some(&KEY[..]),
        ),
    ];
    for (name, balance, key) in policies {
        let reg = policy_registry(balance);
        let snap = reg.snapshot();
        let found = snap.lookup("/p").expect("routed");
        c.bench_function(&format!("{name}/1_thread"), |b| {
            b.iter(|| black_box(found.pick_keyed(black_box(key)).expect("target").0))
        });
        let rival = {
            let snap = reg.snapshot();
            Rival::start(move || {
                let found = snap.lookup("/p").expect("routed");
                black_box(found.pick_keyed(key).map(|p| p.0));
            })
        };
        c.bench_function(&format!("{name}/2_threads_contending"), |b| {
            b.iter(|| black_box(found.pick_keyed(black_box(key)).expect("target").0))
        });
        drop(rival);
    }
}

/// Building the Maglev table of a `hash` route over 1,000 targets (off the request path; the
/// issue's budget is 10 ms).
fn maglev_build(c: &mut Criterion) {
    let targets: Vec<SocketAddr> = (0..1000u16)
        .map(|i| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 8080)))
        .collect();
    c.bench_function("maglev_build/1000_targets", |b| {
        b.iter(|| black_box(Maglev::new(black_box(&targets))))
    });
    // One of the 1,000 leaves: the table keeps the others' entries and refills the leaver's.
    let full = Maglev::new(&targets).expect("table");
    let rest: Vec<SocketAddr> = targets[1..].to_vec();
    c.bench_function("maglev_build/1000_targets_one_leaves", |b| {
        b.iter(|| black_box(Maglev::after(black_box(&full), &targets, black_box(&rest))))
    });
}

criterion_group!(
    benches,
    request_head,
    response_head,
    route_lookup,
    route_lookup_hosts,
    pick,
    policy_pick,
    maglev_build,
    atomic_baseline
);
criterion_main!(benches);
