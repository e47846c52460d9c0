//! An upstream connection for one attempt: an idle one from the worker's pool, or a new one
//! within the route's connect timeout.
//!
//! Passive health lives here and only here: whoever asks, a connect that fails (refused,
//! unreachable, timed out) takes the target out for its back-off, so no retry path can forget it.

use crate::route::Picked;
use crate::upstream_pool::Upstream;
use crate::worker::Worker;
use lb_http::{ErrorKind, HttpError};
use std::io;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A connection for `picked`'s target, and whether it came from the pool: a pooled one unless
/// `fresh` (a pooled connection just went stale), else a new one. A failed connect marks the
/// target down and says why, as the status lb answers with.
pub(crate) async fn connect(
    worker: &Worker,
    picked: &Picked,
    connect_timeout: Duration,
    fresh: bool,
) -> Result<(Upstream, bool), HttpError> {
    let target = picked.addr;
    if !fresh {
        if let Some(stream) = worker.pool.take(target) {
            worker.stats.pool(true);
            return Ok((stream, true));
        }
    }
    worker.stats.pool(false);
    let error = match timeout(connect_timeout, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            return Ok((Upstream::new(stream, &worker.stats), false));
        }
        Err(_) => HttpError::new(
            ErrorKind::ConnectTimeout,
            "timed out connecting to the upstream",
        ),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => HttpError::new(
            ErrorKind::UpstreamConnect,
            "the upstream refused the connection",
        ),
        Ok(Err(_)) => HttpError::new(
            ErrorKind::UpstreamConnect,
            "could not connect to the upstream",
        ),
    };
    worker.routes.borrow().registry().mark_down(target);
    Err(error)
}
