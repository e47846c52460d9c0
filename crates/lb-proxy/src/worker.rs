//! A worker's accept loop and the state its connections share.
//!
//! Runs on the worker's own current-thread runtime inside a `LocalSet`: connections are
//! `spawn_local` tasks sharing this worker's [`Worker`] through `Rc`, with no locks.

use crate::access_log::AccessLog;
use crate::buffers::BufferPool;
use crate::conn;
use crate::drain::Drain;
use crate::stats::WorkerStats;
use crate::tuning::Tuning;
use crate::upstream_pool::UpstreamPool;
use lb_registry::{Registry, SnapshotCache};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::LocalSet;
use tokio::time::{interval, sleep, timeout, MissedTickBehavior};
use tracing::{debug, info, warn};

/// Back-off after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a worker starts with and keeps until it ends (a restart or an upgrade changes it), as
/// the supervisor hands it over; the live values are in [`Tuning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How long a drain waits for in-flight exchanges.
    pub drain_timeout: Duration,
    /// Idle upstream connections kept per target.
    pub pool_idle_per_target: usize,
    /// Age at which idle upstream connections are closed.
    pub pool_idle_timeout: Duration,
    /// Client connections served at once; at the limit the worker stops accepting.
    pub max_connections: usize,
    /// See [`WorkerConfig::read_at_accept`].
    pub read_at_accept: bool,
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
    /// Idle upstream connections kept per target.
    pub pool_idle_per_target: usize,
    /// Age at which idle upstream connections are closed.
    pub pool_idle_timeout: Duration,
    /// Client connections served at once; at the limit the worker stops accepting.
    pub max_connections: usize,
    /// Read a new connection's first request right after accept, before any readiness event:
    /// on when the listener defers accepts (`TCP_DEFER_ACCEPT`), which makes the request
    /// almost always be there already. Without it the read would mostly come back empty.
    pub read_at_accept: bool,
    /// Where access log lines go; `None` (the default) logs nothing.
    pub access_log: Option<AccessLog>,
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
        } = settings;
        WorkerConfig {
            id,
            tuning,
            drain_timeout,
            pool_idle_per_target,
            pool_idle_timeout,
            max_connections,
            read_at_accept,
            access_log: None,
        }
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
    pub(crate) drain: Drain,
    pub(crate) stats: Arc<WorkerStats>,
}

/// Keeps one connection counted as active from accept until its task ends or is dropped.
struct Active(Rc<Worker>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.drain.leave();
    }
}

/// Accepts and serves connections on `listener` until `shutdown` resolves, then stops accepting
/// and drains: idle connections close, busy ones finish their exchange, bounded by the drain
/// timeout. Must run on a current-thread runtime (it creates its own `LocalSet`). Set
/// `TCP_NODELAY` on `listener`: accepted connections inherit it, so the worker does not pay a
/// system call per connection for it.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    cfg: WorkerConfig,
    stats: Arc<WorkerStats>,
    shutdown: impl Future<Output = ()>,
) {
    let id = cfg.id;
    let drain_timeout = cfg.drain_timeout;
    let worker = Rc::new(Worker {
        pool: UpstreamPool::new(cfg.pool_idle_per_target, cfg.pool_idle_timeout),
        routes: RefCell::new(SnapshotCache::new(registry)),
        buffers: BufferPool::default(),
        drain: Drain::default(),
        stats,
        cfg,
    });
    let local = LocalSet::new();
    local
        .run_until(async {
            tokio::pin!(shutdown);
            let mut sweep = interval(worker.cfg.pool_idle_timeout.max(Duration::from_secs(2)) / 2);
            sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
            'accept: loop {
                // At the connection limit, stop accepting: the listen backlog holds new
                // connections until one of ours ends.
                while worker.drain.active() >= worker.cfg.max_connections {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break 'accept,
                        () = worker.drain.slot_freed() => {}
                    }
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    _ = sweep.tick() => worker.pool.sweep(),
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            worker.drain.enter();
                            let active = Active(worker.clone());
                            tokio::task::spawn_local(async move {
                                conn::serve(&active.0, stream, peer).await;
                            });
                        }
                        Err(error) => {
                            warn!(worker = id, %error, "accept failed; backing off");
                            sleep(ACCEPT_BACKOFF).await;
                        }
                    },
                }
            }
            drop(listener);
            debug!(worker = id, "stopped accepting; draining");
            if timeout(drain_timeout, worker.drain.drain()).await.is_err() {
                warn!(
                    worker = id,
                    "drain timeout reached; closing remaining connections"
                );
            } else {
                info!(worker = id, "drained");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection, idle ones included, holds its `conn::serve` future: its size is the
    /// per-connection memory floor (10,000 idle keep-alive connections x this). A header array
    /// kept across an await once made it 5,264 bytes.
    #[test]
    fn a_connection_future_stays_small() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let secs = Duration::from_secs;
            let settings = WorkerSettings {
                drain_timeout: secs(30),
                pool_idle_per_target: 64,
                pool_idle_timeout: secs(60),
                max_connections: 65_536,
                read_at_accept: true,
            };
            let tuning = Tuning::new(crate::tuning::TuningValues {
                connect: secs(5),
                upstream: secs(60),
                header: secs(10),
                idle: secs(60),
                max_body: None,
            });
            let worker = Worker {
                pool: UpstreamPool::new(1, Duration::from_secs(1)),
                routes: RefCell::new(SnapshotCache::new(Arc::new(Registry::new(1)))),
                buffers: BufferPool::default(),
                drain: Drain::default(),
                stats: Arc::default(),
                cfg: WorkerConfig::new(0, settings, Arc::new(tuning)),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let future = conn::serve(&worker, stream, addr);
            let size = std::mem::size_of_val(&future);
            assert!(size <= 2048, "conn::serve future is {size} bytes");
        });
    }
}
