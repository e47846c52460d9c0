//! A worker's accept loop: accept on the clear-text listener -> spawn one `h1` connection task;
//! accept on the TLS listener (when there is one) -> spawn one `tls` connection task (handshake,
//! then `h1`) -> at shutdown, drain. Both listeners share the connection limit and the drain.
//!
//! Runs on the worker's own current-thread runtime inside a `LocalSet`: connections are
//! `spawn_local` tasks sharing this worker's [`Worker`] through `Rc`, with no locks.

use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::h1;
use crate::request_id::RequestIds;
use crate::route_latency::RouteClock;
use crate::stats::WorkerStats;
use crate::tls;
use crate::upstream_pool::UpstreamPool;
use crate::worker::{Worker, WorkerConfig};
use lb_registry::{Registry, SnapshotCache};
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::LocalSet;
use tokio::time::{interval, sleep, timeout, MissedTickBehavior};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// The listening sockets one worker accepts on.
#[derive(Debug)]
pub struct WorkerListeners {
    /// Clear-text HTTP.
    pub http: TcpListener,
    /// HTTPS (served with [`WorkerConfig::tls`]); `None` without TLS.
    pub tls: Option<TcpListener>,
}

impl From<TcpListener> for WorkerListeners {
    fn from(http: TcpListener) -> Self {
        WorkerListeners { http, tls: None }
    }
}

/// Back-off after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Keeps one connection counted as active from accept until its task ends or is dropped.
struct Active(Rc<Worker>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.drain.leave();
    }
}

/// Accepts and serves connections on `listeners` until `shutdown` resolves, then stops accepting
/// and drains: idle connections close, busy ones finish their exchange, bounded by the drain
/// timeout. Must run on a current-thread runtime (it creates its own `LocalSet`). Set
/// `TCP_NODELAY` on the listeners: accepted connections inherit it, so the worker does not pay a
/// system call per connection for it. Returns how many connections the drain timeout cut (the
/// supervisor logs the total over all workers).
pub async fn serve(
    listeners: WorkerListeners,
    registry: Arc<Registry>,
    cfg: WorkerConfig,
    stats: Arc<WorkerStats>,
    shutdown: impl Future<Output = ()>,
) -> usize {
    let id = cfg.id;
    let WorkerListeners { http, tls } = listeners;
    let (tls_listener, tls) = match (tls, &cfg.tls) {
        (Some(listener), Some(config)) => (Some(listener), Some(TlsAcceptor::from(config.clone()))),
        (Some(_), None) => {
            warn!(
                worker = id,
                "TLS socket without a TLS configuration: not served"
            );
            (None, None)
        }
        (None, _) => (None, None),
    };
    let drain_timeout = cfg.drain_timeout;
    let worker = Rc::new(Worker {
        pool: UpstreamPool::new(cfg.pool_idle_per_target, cfg.pool_idle_timeout),
        routes: RefCell::new(SnapshotCache::new(registry)),
        buffers: BufferPool::default(),
        drain: Drain::default(),
        stats,
        ids: RequestIds::start(),
        route_clock: RouteClock::default(),
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
                    _ = sweep.tick() => worker.pool.sweep(worker.drain.active()),
                    accepted = http.accept() => match accepted {
                        Ok((stream, peer)) => {
                            worker.drain.enter();
                            let active = Active(worker.clone());
                            tokio::task::spawn_local(async move {
                                h1::serve(&active.0, stream, peer, None).await;
                            });
                        }
                        Err(error) => accept_failed(id, error).await,
                    },
                    accepted = accept_on(tls_listener.as_ref()) => match (accepted, &tls) {
                        (Ok((stream, peer)), Some(acceptor)) => {
                            worker.drain.enter();
                            let active = Active(worker.clone());
                            let acceptor = acceptor.clone();
                            tokio::task::spawn_local(async move {
                                tls::serve(&active.0, &acceptor, stream, peer).await;
                            });
                        }
                        (Ok(_), None) => {}
                        (Err(error), _) => accept_failed(id, error).await,
                    },
                }
            }
            drop(http);
            drop(tls_listener);
            debug!(worker = id, "stopped accepting; draining");
            if timeout(drain_timeout, worker.drain.drain()).await.is_err() {
                // The connections still active are dropped with the LocalSet: their requests
                // are cut, and the operator should know how many.
                let cut = worker.drain.active();
                warn!(
                    worker = id,
                    cut,
                    drain_timeout_ms = drain_timeout.as_millis(),
                    "drain timeout reached; closing {cut} remaining connections"
                );
                cut
            } else {
                info!(worker = id, "drained");
                0
            }
        })
        .await
}

/// The next connection on `listener`; never, without one.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Logs a failed `accept` (e.g. out of file descriptors) and backs off, so the loop does not spin.
async fn accept_failed(worker: usize, error: std::io::Error) {
    warn!(worker, %error, "accept failed; backing off");
    sleep(ACCEPT_BACKOFF).await;
}
