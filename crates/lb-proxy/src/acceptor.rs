//! A worker's accept loop: accept on the clear-text listener -> spawn one `h1` connection task
//! (which hands an HTTP/2 connection to `h2`); accept on the TLS listener (when there is one) ->
//! spawn one `tls` connection task (handshake, then `h1` or `h2` as ALPN chose) -> at shutdown,
//! drain. Both listeners share the connection limit and the drain, and are asked in turn
//! ([`next_connection`]).
//!
//! Runs on the worker's own current-thread runtime inside a `LocalSet`: connections are
//! `spawn_local` tasks sharing this worker's [`Worker`] through `Rc`, with no locks.

use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::h1;
use crate::request_id::RequestIds;
use crate::route_latency::RouteClock;
use crate::splice::Splicer;
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
use std::task::Poll;
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
    let tls = match (tls, &cfg.tls) {
        (Some(listener), Some(config)) => Some((listener, TlsAcceptor::from(config.clone()))),
        (Some(_), None) => {
            warn!(
                worker = id,
                "TLS socket without a TLS configuration: not served"
            );
            None
        }
        (None, _) => None,
    };
    let drain_timeout = cfg.drain_timeout;
    let worker = Rc::new(Worker {
        pool: UpstreamPool::new(cfg.pool_idle_per_target, cfg.pool_idle_timeout),
        routes: RefCell::new(SnapshotCache::new(registry)),
        buffers: BufferPool::default(),
        splicer: Splicer::new(cfg.splice, stats.clone()),
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
            let mut tls_first = false;
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
                let tls_listener = tls.as_ref().map(|(listener, _)| listener);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    _ = sweep.tick() => worker.pool.sweep(worker.drain.active()),
                    accepted = next_connection(&http, tls_listener, &mut tls_first) => match accepted {
                        (Listener::Http, Ok((stream, peer))) => {
                            worker.drain.enter();
                            let active = Active(worker.clone());
                            tokio::task::spawn_local(async move {
                                h1::serve(&active.0, stream, peer, None).await;
                            });
                        }
                        (Listener::Tls, Ok((stream, peer))) => {
                            let Some((_, acceptor)) = &tls else { continue };
                            worker.drain.enter();
                            let active = Active(worker.clone());
                            let acceptor = acceptor.clone();
                            tokio::task::spawn_local(async move {
                                tls::serve(&active.0, &acceptor, stream, peer).await;
                            });
                        }
                        (_, Err(error)) => accept_failed(id, error).await,
                    },
                }
            }
            drop(http);
            drop(tls);
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

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Http,
    Tls,
}

/// The next connection on `http` or `tls`, asking them in turn (`tls_first` flips at every
/// poll), so a flood on one listener cannot keep the other's connections waiting.
fn next_connection<'a>(
    http: &'a TcpListener,
    tls: Option<&'a TcpListener>,
    tls_first: &'a mut bool,
) -> impl Future<Output = (Listener, std::io::Result<(TcpStream, SocketAddr)>)> + 'a {
    std::future::poll_fn(move |cx| {
        *tls_first = !*tls_first && tls.is_some();
        let order = if *tls_first {
            [(Listener::Tls, tls), (Listener::Http, Some(http))]
        } else {
            [(Listener::Http, Some(http)), (Listener::Tls, tls)]
        };
        for (kind, listener) in order {
            if let Some(Poll::Ready(accepted)) = listener.map(|l| l.poll_accept(cx)) {
                return Poll::Ready((kind, accepted));
            }
        }
        Poll::Pending
    })
}

/// Logs a failed `accept` (e.g. out of file descriptors) and backs off, so the loop does not spin.
async fn accept_failed(worker: usize, error: std::io::Error) {
    warn!(worker, %error, "accept failed; backing off");
    sleep(ACCEPT_BACKOFF).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With connections waiting on both listeners, they are served in turn.
    #[test]
    fn both_listeners_are_served_in_turn() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut clients = Vec::new();
            for listener in [&http, &tls] {
                for _ in 0..3 {
                    let addr = listener.local_addr().unwrap();
                    clients.push(TcpStream::connect(addr).await.unwrap());
                }
            }
            let mut tls_first = false;
            let mut kinds = Vec::new();
            for _ in 0..4 {
                let (kind, accepted) = next_connection(&http, Some(&tls), &mut tls_first).await;
                accepted.unwrap();
                kinds.push(kind);
            }
            use Listener::{Http, Tls};
            assert_eq!(kinds, [Tls, Http, Tls, Http]);
            // Without a TLS listener, only the clear-text one.
            let (kind, _) = next_connection(&http, None, &mut tls_first).await;
            assert_eq!(kind, Http);
        });
    }
}
