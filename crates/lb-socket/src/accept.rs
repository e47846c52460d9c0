//! The accept loop and graceful drain shared by lb's small servers: the control plane
//! (`lb-admin`) and the built-in backend (`lb-echo`). The proxy's data plane has its own loop,
//! tuned for its workers.
//!
//! [`serve`] accepts until shutdown, runs each connection as a task, then tells the connections
//! to stop and gives them [`DRAIN_GRACE`] to finish before aborting the rest; [`linger`] is the
//! polite close both servers use after their last answer. The two servers stay independent of
//! each other: each brings its own connection handler and only shares this plumbing.
//!
//! Invariants: `serve` never returns with a connection task still running, and nothing a client
//! does (including never closing) can hold up shutdown beyond the grace period.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// How long connections may take to finish once shutdown began (an admin answer in progress is
/// completed with `Connection: close`); whatever still runs after it is aborted, so shutdown
/// never hangs on a slow client.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin while
/// the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a closing connection keeps reading (and discarding) what the client still sends, so
/// that closing with unread data does not reset the connection before the client has read the
/// answer (RFC 9112 §9.6).
pub const LINGER: Duration = Duration::from_secs(1);

/// Most bytes discarded while lingering.
pub const LINGER_BYTES: usize = 1024 * 1024;

/// Tells connections that shutdown began: it turns `true` once and stays so. A connection stops
/// whenever it would wait for the client (`stop.wait_for(|&stop| stop)`); an error from the
/// watch means the server is gone, which is a stop as well.
pub type Stop = watch::Receiver<bool>;

/// Accepts connections on `listener` until `shutdown` resolves, running
/// `connection(stream, peer, stop)` as a `tokio::spawn`ed task for each; `name` (`"admin"`,
/// `"echo"`) starts the log messages.
///
/// Runs on the caller's tokio runtime, which needs its IO and time drivers enabled. When
/// `shutdown` resolves, no new connection is accepted, `stop` turns true in every connection, the
/// connections get [`DRAIN_GRACE`] to finish, and then `serve` returns with no task left behind.
pub async fn serve<C, F>(
    name: &'static str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut connection: C,
) where
    C: FnMut(TcpStream, SocketAddr, Stop) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, stop_rx.clone()));
                }
                Err(error) => {
                    warn!(%error, "{name} accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    warn!(%error, "{name} connection task failed");
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
            "{name} connections aborted after the drain grace period"
        );
    }
    // Dropping the set aborts any connection still running.
}

/// Half-closes `stream`, then discards what the client still sends until it closes too, for at
/// most [`LINGER`] or [`LINGER_BYTES`], or until shutdown, which must not wait on it.
pub async fn linger(stream: &mut TcpStream, stop: &mut Stop) -> io::Result<()> {
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut discarded = 0;
    let drain = async {
        while discarded < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    };
    // Running out of time is the expected end for a client that keeps the socket open.
    tokio::select! {
        _ = tokio::time::timeout(LINGER, drain) => {}
        _ = stop.wait_for(|&stop| stop) => {}
    }
    Ok(())
}
