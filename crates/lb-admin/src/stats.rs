//! `GET /stats`: the JSON the status page (`GET /`) reads every second.
//!
//! Routes and targets are the rows of `GET /routes` and `GET /targets` (`listing`), read live
//! from the registry, so a registration shows at the next poll; the rates, the latency window and
//! the changes come from the sampler (`sampler`), at most one second old. Fields that later
//! features add to the listing rows (host, balance, weight, requests in flight) appear here with
//! them; the page renders what is present.
//!
//! Invariant: rendering reads the registry under its read lock once ([`Registry::listing`]) and
//! the sampler under its mutex once; it never writes either.

use crate::listing::{self, unix_ms, RouteRow, TargetRow};
use crate::response::Response;
use crate::sampler::{quantile, ChangeKind, Sampler};
use crate::ControlPlane;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// What the process is, for the page's header: fixed at start.
#[derive(Debug, Clone)]
pub struct About {
    /// The listeners, by kind (`http`, `admin`, ...).
    pub listeners: Vec<Listener>,
    /// CPUs this process may use.
    pub cpus: usize,
    /// The CPU each worker is pinned to (`None`: unpinned), by worker id.
    pub worker_cpus: Vec<Option<usize>>,
    /// The config file, when lb runs from one.
    pub config_file: Option<String>,
    /// When lb started.
    pub started: SystemTime,
}

impl About {
    /// Nothing known but the CPU count, started now (tests, and the runtime fills the rest).
    pub fn unknown() -> Self {
        About {
            listeners: Vec::new(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            worker_cpus: Vec::new(),
            config_file: None,
            started: SystemTime::now(),
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// What it serves: `http`, `admin`, ...
    pub kind: &'static str,
    /// Its address (the real port when lb was given port 0).
    pub addr: SocketAddr,
}

#[derive(Serialize)]
struct Stats<'a> {
    version: &'static str,
    now_ms: u64,
    started_ms: u64,
    uptime_s: u64,
    config_file: Option<&'a str>,
    listeners: &'a [Listener],
    cpus: usize,
    /// When the rates were sampled (null before the first sample).
    sampled_ms: Option<u64>,
    totals: Totals,
    workers: Vec<WorkerRow>,
    routes: Vec<StatsRoute<'a>>,
    changes: Vec<ChangeRow<'a>>,
    /// Cluster mode: the `GET /cluster` body; absent on a node that is not clustered.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Totals {
    targets: usize,
    healthy: usize,
    rps: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Serialize)]
struct WorkerRow {
    id: usize,
    cpu: Option<usize>,
    open: u64,
    accepted: u64,
    requests: u64,
    rps: f64,
}

/// A `GET /routes` row whose targets carry their rates, plus the route's own.
#[derive(Serialize)]
struct StatsRoute<'a> {
    #[serde(flatten)]
    route: RouteRow<'a, StatsTarget<'a>>,
    rps: f64,
    /// Requests per second over the last samples, oldest first (the last one is `rps`).
    rps_history: Vec<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// A `GET /targets` row plus what the sampler knows of it.
#[derive(Serialize)]
struct StatsTarget<'a> {
    #[serde(flatten)]
    row: TargetRow<'a>,
    /// When its health last changed (or it was first seen).
    since_ms: Option<u64>,
    rps: f64,
    /// Its part of the route's requests over the last second (null while the route has none).
    share: Option<f64>,
    rate_4xx: f64,
    rate_5xx: f64,
    /// Requests in flight over all workers, where the route counts them (`least_conn`); absent
    /// elsewhere, where counting would cost every request a second shared atomic.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight: Option<u64>,
}

#[derive(Serialize)]
struct ChangeRow<'a> {
    at_ms: u64,
    kind: ChangeKind,
    path: &'a str,
    target: SocketAddr,
}

/// `p` (0..=1) of `buckets` in milliseconds, rounded to microseconds.
fn percentile_ms(bounds: &[f64], buckets: &[u64], p: f64) -> Option<f64> {
    quantile(bounds, buckets, p).map(|s| (s * 1e6).round() / 1e3)
}

/// The `/stats` body as of `now`.
pub(crate) fn render(
    plane: &ControlPlane,
    sampler: &Sampler,
    now: SystemTime,
) -> Result<String, serde_json::Error> {
    let about = &plane.about;
    let listing = plane.registry.listing();
    let (bounds, window) = sampler.latency_window();
    let mut all = vec![0u64; bounds.len() + 1];
    for buckets in window.values() {
        for (sum, n) in all.iter_mut().zip(buckets) {
            *sum += n;
        }
    }
    let mut totals = Totals {
        targets: 0,
        healthy: 0,
        rps: 0.0,
        p50_ms: percentile_ms(bounds, &all, 0.5),
        p99_ms: percentile_ms(bounds, &all, 0.99),
    };
    let routes = listing
        .iter()
        .map(|r| {
            let mut targets: Vec<StatsTarget<'_>> = r
                .targets
                .iter()
                .map(|t| {
                    let key = (lb_registry::join_route(t.host.as_deref(), &t.path), t.addr);
                    let rates = sampler.target_rates(&key).unwrap_or_default();
                    StatsTarget {
                        row: listing::target_row(t, now),
                        since_ms: sampler.target(&key).map(|c| unix_ms(c.since)),
                        rps: rates.requests,
                        share: None,
                        rate_4xx: rates.client_errors,
                        rate_5xx: rates.server_errors,
                        in_flight: r.options.balance.counts_in_flight().then_some(t.in_flight),
                    }
                })
                .collect();
            let rps: f64 = targets.iter().map(|t| t.rps).sum();
            if rps > 0.0 {
                for t in &mut targets {
                    t.share = Some(t.rps / rps);
                }
            }
            totals.targets += r.targets.len();
            totals.healthy += r.targets.iter().filter(|t| t.healthy).count();
            totals.rps += rps;
            let name = lb_registry::join_route(r.host.as_deref(), &r.path);
            let latency = window.get(name.as_str());
            let percentile = |p| latency.and_then(|b| percentile_ms(bounds, b, p));
            StatsRoute {
                p50_ms: percentile(0.5),
                p99_ms: percentile(0.99),
                route: listing::route_row(r, targets),
                rps,
                rps_history: sampler.route_history(&name),
            }
        })
        .collect();
    let workers = sampler
        .workers()
        .into_iter()
        .enumerate()
        .map(|(id, (counts, rps))| WorkerRow {
            id,
            cpu: about.worker_cpus.get(id).copied().flatten(),
            open: counts.open,
            accepted: counts.accepted,
            requests: counts.requests,
            rps,
        })
        .collect();
    let stats = Stats {
        version: env!("CARGO_PKG_VERSION"),
        now_ms: unix_ms(now),
        started_ms: unix_ms(about.started),
        uptime_s: now
            .duration_since(about.started)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
        config_file: about.config_file.as_deref(),
        listeners: &about.listeners,
        cpus: about.cpus,
        sampled_ms: sampler.sampled_at().map(unix_ms),
        totals,
        workers,
        routes,
        cluster: plane
            .cluster
            .as_ref()
            .map(|cluster| cluster.status().json()),
        changes: sampler
            .changes()
            .map(|c| ChangeRow {
                at_ms: unix_ms(c.at),
                kind: c.kind,
                path: &c.path,
                target: c.target,
            })
            .collect(),
    };
    serde_json::to_string(&stats)
}

/// `GET /stats` as of `now`.
pub(crate) fn answer(plane: &ControlPlane, now: SystemTime) -> Response {
    match plane.stats_body(now) {
        Ok(body) => Response::text(200, "application/json", body),
        Err(e) => Response::error(500, &format!("cannot encode the stats: {e}")),
    }
}
