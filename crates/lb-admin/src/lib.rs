//! lb's control plane: `POST /register`, `POST /deregister`, `GET /targets`, `GET /routes`,
//! `GET /cluster`, `GET /metrics`, `GET /healthz`, the status page `GET /` and its data
//! `GET /stats` on the admin listener (see SPEC.md, "Control plane" and "Control plane additions").
//!
//! Layout: [`serve`] accepts connections and drains them on shutdown (the loop lives in
//! `lb-socket`, shared with lb's echo backend); `connection` runs one HTTP/1.1 keep-alive
//! connection; `head` parses and frames a request head; `api` maps a request
//! to a [`Registry`] call and a response; `payload` validates the JSON body of `/register` and
//! `/deregister`; `listing` renders `/targets` and `/routes`; `cluster` writes registrations to etcd in
//! cluster mode and renders `/cluster`; `expiry` is the tick that ends
//! registrations whose ttl ran out; `metrics` renders the Prometheus text (`process`: the
//! `process_*` series and `lb_build_info`); `response` writes responses; `auth` checks the bearer
//! token. `sampler` takes a sample of the counts every second (rates, the latency window, recent
//! registry changes), `stats` renders `/stats` from it and the listing rows, and `status.html`
//! is the page (`GET /`), compiled in.
//!
//! What the runtime plugs in is one [`ControlPlane`] value: the registry, the extra metrics, and
//! optionally a persistence hook (the state file: a change is saved before it is applied, and
//! answered only then), an admin token, a debug-only panic hook, and the cluster link (then
//! `/register` and `/deregister` write to etcd and never to the registry).
//!
//! Invariants: an invalid request (bad framing, bad JSON, bad field) is answered `400` with
//! `{"error":"<one plain sentence>"}` and never reaches the registry, so it changes nothing;
//! nothing a client sends can make this crate panic. The control plane never runs on the data
//! port: the runtime hands it its own listener.

#![forbid(unsafe_code)]

mod api;
mod auth;
mod cluster;
mod connection;
mod expiry;
mod head;
mod listing;
mod metrics;
mod payload;
mod process;
mod response;
mod sampler;
mod stats;

pub use sampler::{CountsSource, DataPlaneCounts, WorkerCounts};
pub use stats::{About, Listener};

use lb_registry::{Export, Registry};
use parking_lot::Mutex;
use sampler::Sampler;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::time::MissedTickBehavior;
use tracing::debug;

/// Extra Prometheus text appended to `/metrics` (per-worker counters, provided by the runtime).
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Saves what the registry will hold after a change (the state file), given as the
/// [`Export`] the change would make. Called for every register/deregister that changes the
/// registry, before the change is applied; an `Err` (one plain sentence) leaves the registry
/// as it was and answers `500`.
pub type PersistHook = Arc<dyn Fn(&Export) -> Result<(), String> + Send + Sync>;

/// Debug builds only: `POST /debug/panic?worker=N` calls this with `N`; `false` when there is
/// no such worker. Lets tests make a worker panic to check that it is respawned.
pub type PanicHook = Arc<dyn Fn(usize) -> bool + Send + Sync>;

/// Everything the control plane works with.
#[derive(Clone)]
pub struct ControlPlane {
    /// The registry it changes and lists.
    pub registry: Arc<Registry>,
    /// Extra `/metrics` text.
    pub metrics: MetricsSource,
    /// Runs before each change is applied.
    pub persist: Option<PersistHook>,
    /// When set, every call except `GET /healthz` needs `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
    /// The debug panic hook (ignored in release builds).
    pub panic_hook: Option<PanicHook>,
    /// What `/stats` says about the process (listeners, CPUs, config file, start).
    pub about: About,
    /// The data plane's counts for `/stats` (workers, latency); none: `/stats` lists no
    /// worker and no latency.
    pub counts: Option<CountsSource>,
    /// The samples `/stats` is computed from; shared by every clone, so a pause keeps them.
    sampler: Arc<Mutex<Sampler>>,
    /// Cluster mode: registrations go to etcd, and this node's watch applies them.
    pub cluster: Option<Arc<lb_cluster::Cluster>>,
}

impl ControlPlane {
    /// A control plane over `registry` with no persistence, no token and no debug hook.
    pub fn new(registry: Arc<Registry>, metrics: MetricsSource) -> Self {
        ControlPlane {
            registry,
            metrics,
            persist: None,
            token: None,
            panic_hook: None,
            about: About::unknown(),
            counts: None,
            sampler: Arc::default(),
            cluster: None,
        }
    }

    /// Takes the sample of `now` (what the control plane does every second): the registry's
    /// targets and the data plane's counts. Public for the `/stats` cost benchmark.
    pub fn sample(&self, now: SystemTime) {
        let targets = self.registry.targets();
        let counts = self.counts.as_ref().map(|read| read()).unwrap_or_default();
        self.sampler.lock().record(now, &targets, counts);
    }

    /// The `GET /stats` body as of `now`. Public for the `/stats` cost benchmark.
    pub fn stats_body(&self, now: SystemTime) -> Result<String, serde_json::Error> {
        stats::render(self, &self.sampler.lock(), now)
    }
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("registry", &self.registry)
            .field("persist", &self.persist.is_some())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("panic_hook", &self.panic_hook.is_some())
            .field("about", &self.about)
            .field("sampler", &self.sampler)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Serves the control plane on `listener` until `shutdown` resolves.
///
/// Runs on the caller's tokio runtime, which needs its IO and time drivers enabled; each
/// connection is a `tokio::spawn`ed (`Send`) task. When `shutdown` resolves, no new connection is
/// accepted, idle connections close at once, a request being answered is finished (with
/// `Connection: close`) within a grace period (2 s), and then `serve` returns with no task left
/// behind. Meanwhile a tick ends the registrations whose ttl ran out (see `expiry`), and another
/// samples the counts for `/stats` once a second; both stop with the listener.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    metrics: MetricsSource,
    shutdown: impl Future<Output = ()>,
) {
    serve_plane(listener, ControlPlane::new(registry, metrics), shutdown).await;
}

/// [`serve`] with a full [`ControlPlane`] (persistence, token, debug hook).
pub async fn serve_plane(
    listener: TcpListener,
    plane: ControlPlane,
    shutdown: impl Future<Output = ()>,
) {
    let plane = Arc::new(plane);
    // Before the first call is answered: a registration it makes is then a change the next
    // sample lists, not part of what lb started with.
    plane.sample(SystemTime::now());
    let ticker = tokio::spawn(expiry::run(plane.clone()));
    let sampling = tokio::spawn(sample_every_second(plane.clone()));
    lb_socket::serve("admin", listener, shutdown, |stream, peer, stop| {
        debug!(%peer, "admin connection accepted");
        connection::serve_connection(stream, plane.clone(), stop)
    })
    .await;
    ticker.abort();
    sampling.abort();
    // Wait for it, so that no expiry runs once `serve_plane` returned (the pause invariant).
    let _cancelled = ticker.await;
    let _cancelled = sampling.await;
}

/// Samples the counts for `/stats` every [`sampler::TICK`], forever (the caller aborts it).
/// Read-only: it changes nothing, so pausing it loses only a sample.
async fn sample_every_second(plane: Arc<ControlPlane>) {
    let start = tokio::time::Instant::now() + sampler::TICK;
    let mut tick = tokio::time::interval_at(start, sampler::TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        plane.sample(SystemTime::now());
    }
}
