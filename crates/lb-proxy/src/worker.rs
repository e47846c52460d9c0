//! One worker's settings and the state its connections share.
//!
//! The state lives on the worker's own thread: connections (`h1`, `h2`, and each HTTP/2 stream)
//! are `spawn_local` tasks of the accept loop (`acceptor`) sharing one [`Worker`] through `Rc`,
//! with no locks.

use crate::access_log::AccessLog;
use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::request_id::RequestIds;
use crate::route_latency::RouteClock;
use crate::splice::Splicer;
use crate::stats::WorkerStats;
use crate::tuning::Tuning;
use crate::upstream_pool::UpstreamPool;
use lb_registry::SnapshotCache;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::ServerConfig;

/// What a worker starts with and keeps until it ends (a restart or an upgrade changes it), as
/// the supervisor hands it over; the live values are in [`Tuning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How long a drain waits for in-flight exchanges.
    pub drain_timeout: Duration,
    /// Hard cap on idle upstream connections kept per target; below it the pool follows the
    /// worker's open client connections.
    pub pool_idle_per_target: usize,
    /// Age at which idle upstream connections are closed.
    pub pool_idle_timeout: Duration,
    /// Client connections served at once; at the limit the worker stops accepting.
    pub max_connections: usize,
    /// See [`WorkerConfig::read_at_accept`].
    pub read_at_accept: bool,
    /// See [`WorkerConfig::splice`].
    pub splice: bool,
    /// HTTP/2 towards clients.
    pub h2: H2Settings,
}

/// The settings one worker runs with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Index of this worker (0-based): names its counters and logs.
    pub id: usize,
    /// Timeouts and the body limit, shared by all workers and changed by a reload.
    pub tuning: Arc<Tuning>,
    /// How long a drain waits for in-flight exchanges.
    pub drain_timeout: Duration,
    /// Hard cap on idle upstream connections kept per target; below it the pool follows the
    /// worker's open client connections.
    pub pool_idle_per_target: usize,
    /// Age at which idle upstream connections are closed.
    pub pool_idle_timeout: Duration,
    /// Client connections served at once; at the limit the worker stops accepting.
    pub max_connections: usize,
    /// Read a new connection's first request right after accept, before any readiness event:
    /// on when the listener defers accepts (`TCP_DEFER_ACCEPT`), which makes the request
    /// almost always be there already. Without it the read would mostly come back empty.
    pub read_at_accept: bool,
    /// Move large clear-text bodies with `splice(2)` (`body_path`); off only to measure the
    /// copy path (`LB_SPLICE=off`, a benchmark knob).
    pub splice: bool,
    /// HTTP/2 towards clients.
    pub h2: H2Settings,
    /// Where access log lines go; `None` (the default) logs nothing.
    pub access_log: Option<AccessLog>,
    /// The TLS configuration every worker's handshakes share (certificates, tickets, session
    /// cache); `None` without TLS.
    pub tls: Option<Arc<ServerConfig>>,
}

impl WorkerConfig {
    /// Worker `id`'s `settings`, with the process-wide `tuning`.
    pub fn new(id: usize, settings: WorkerSettings, tuning: Arc<Tuning>) -> Self {
        let WorkerSettings {
            drain_timeout,
            pool_idle_per_target,
            pool_idle_timeout,
            max_connections,
            read_at_accept,
            splice,
            h2,
        } = settings;
        WorkerConfig {
            id,
            tuning,
            drain_timeout,
            pool_idle_per_target,
            pool_idle_timeout,
            max_connections,
            read_at_accept,
            splice,
            h2,
            access_log: None,
            tls: None,
        }
    }

    /// The same settings, serving the TLS listener with `config`.
    pub fn with_tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The same settings, logging every request to `log`.
    pub fn with_access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }
}

/// What every connection of one worker shares.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) cfg: WorkerConfig,
    pub(crate) routes: RefCell<SnapshotCache>,
    pub(crate) pool: UpstreamPool,
    pub(crate) buffers: BufferPool,
    /// Pipes for the zero-copy body path.
    pub(crate) splicer: Splicer,
    pub(crate) drain: Drain,
    pub(crate) stats: Arc<WorkerStats>,
    /// Where this run's own `X-Request-ID`s come from.
    pub(crate) ids: RequestIds,
    /// This worker's way to its histograms by route (in `stats`).
    pub(crate) route_clock: RouteClock,
}

/// HTTP/2 settings of a worker, fixed for its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Settings {
    /// Concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS); `h2` refuses
    /// streams beyond it with RST_STREAM(REFUSED_STREAM).
    pub max_streams: u32,
}

impl H2Settings {
    /// `--h2-max-streams`' default, nginx's `http2_max_concurrent_streams` default too.
    pub const DEFAULT_MAX_STREAMS: u32 = 128;
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_streams: Self::DEFAULT_MAX_STREAMS,
        }
    }
}
