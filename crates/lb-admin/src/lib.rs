//! lb's control plane: `POST /register`, `POST /deregister`, `GET /targets`, `GET /metrics` and
//! `GET /healthz` on the admin listener (see SPEC.md, "Control plane").
//!
//! Layout: [`serve`] accepts connections and drains them on shutdown; `connection` runs one
//! HTTP/1.1 keep-alive connection; `head` parses and frames a request head; `api` maps a request
//! to a [`Registry`] call and a response; `payload` validates the JSON body of `/register` and
//! `/deregister`; `metrics` renders the Prometheus text; `response` writes responses.
//!
//! Invariants: an invalid request (bad framing, bad JSON, bad field) is answered `400` with
//! `{"error":"<one plain sentence>"}` and never reaches the registry, so it changes nothing;
//! nothing a client sends can make this crate panic. The control plane never runs on the data
//! port: the runtime hands it its own listener.

mod api;
mod connection;
mod head;
mod metrics;
mod payload;
mod response;

use lb_registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// Extra Prometheus text appended to `/metrics` (per-worker counters, provided by the runtime).
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

/// How long connections may take to finish the request they are answering once shutdown began;
/// whatever is still running after it is aborted, so shutdown never hangs on a slow client.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin while
/// the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the control plane on `listener` until `shutdown` resolves.
///
/// Runs on the caller's tokio runtime, which needs its IO and time drivers enabled; each
/// connection is a `tokio::spawn`ed (`Send`) task. When `shutdown` resolves, no new connection is
/// accepted, idle connections close at once, a request being answered is finished (with
/// `Connection: close`) within a grace period (2 s), and then `serve` returns with no task left
/// behind.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    metrics: MetricsSource,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "admin connection accepted");
                    connections.spawn(connection::serve_connection(
                        stream,
                        registry.clone(),
                        metrics.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    warn!(%error, "admin connection task failed");
                }
            }
        }
    }
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            left = connections.len(),
            "admin connections aborted after the drain grace period"
        );
    }
    // Dropping the set aborts any connection still running.
}
