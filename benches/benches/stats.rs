//! What the status page costs lb: `GET /stats` rendered for 1,000 targets (100 routes of 10),
//! and the once-a-second sample it is computed from. Polled once a second by one page, lb pays
//! one of each per second; the budget is 0.5% of one core, 5 ms per second.
//!
//! `cargo bench -p lb-benches --bench stats`; figures in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use lb_admin::{ControlPlane, CountsSource, DataPlaneCounts, MetricsSource, WorkerCounts};
use lb_registry::Registry;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const ROUTES: usize = 100;
const TARGETS: usize = 1000;

/// Latency bucket bounds as lb-proxy has them (seconds).
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A control plane over 1,000 targets, with two workers and a latency histogram per route.
fn plane() -> ControlPlane {
    let registry = Arc::new(Registry::new(2));
    for i in 0..TARGETS {
        let addr = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 8000));
        registry
            .register(&format!("/svc{}", i % ROUTES), addr)
            .expect("valid");
    }
    let metrics: MetricsSource = Arc::new(|_: &mut String| {});
    let mut plane = ControlPlane::new(registry, metrics);
    let counts: CountsSource = Arc::new(|| DataPlaneCounts {
        workers: vec![
            WorkerCounts {
                accepted: 1000,
                open: 10,
                requests: 100_000,
            };
            2
        ],
        latency_bounds: &BOUNDS,
        route_latency: (0..ROUTES)
            .map(|r| (format!("/svc{r}"), vec![r as u64; BOUNDS.len() + 1]))
            .collect(),
    });
    plane.counts = Some(counts);
    plane
}

fn stats(c: &mut Criterion) {
    let plane = plane();
    let start = SystemTime::now();
    // A full ring: the window and the rates are computed as in steady state.
    for s in 0..12 {
        plane.sample(start + Duration::from_secs(s));
    }
    let now = start + Duration::from_secs(12);
    let body = plane.stats_body(now).expect("encodes");
    println!("/stats for {TARGETS} targets: {} bytes", body.len());
    c.bench_function("stats/render_1000_targets", |b| {
        b.iter(|| black_box(plane.stats_body(now).expect("encodes").len()))
    });
    let mut t = 12;
    c.bench_function("stats/sample_1000_targets", |b| {
        b.iter(|| {
            t += 1;
            plane.sample(start + Duration::from_secs(t));
        })
    });
}

criterion_group!(benches, stats);
criterion_main!(benches);
