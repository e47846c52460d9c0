//! The data-plane listening sockets, by kind: one group of plain HTTP sockets and, with TLS, one
//! group of HTTPS sockets; each group one `SO_REUSEPORT` socket per worker, all on one port.
//!
//! The supervisor keeps these descriptors for the whole run: a respawned worker serves a
//! duplicate of its old sockets (nothing queued is lost) and an upgrade hands both groups to
//! the successor (the TLS group from upgrade manifest version 3 on; a successor that gets no
//! TLS sockets binds its own on the port). The groups do not know about each other.
//!
//! Invariant: worker `i` always serves `http.sockets[i]` (and `tls.sockets[i]`); a group never
//! shrinks while lb runs.

use crate::error::RunError;
use crate::upgrade::Inherited;
use lb_socket::{bind_reuseport, ensure_free, plain, set_defer_accept};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use tracing::warn;

/// Sockets of one kind, one per worker, all bound to `addr`.
#[derive(Debug)]
pub(crate) struct ListenerGroup {
    /// The resolved address (port 0 already replaced by the port the kernel chose).
    pub(crate) addr: SocketAddr,
    /// Worker `i`'s socket at index `i`.
    pub(crate) sockets: Vec<TcpListener>,
}

impl ListenerGroup {
    /// One `SO_REUSEPORT` socket per worker on `listen`; the first resolves port 0 for the
    /// others. With `check_free`, a port another process serves is an error rather than shared.
    fn bind(
        listen: SocketAddr,
        workers: usize,
        backlog: u32,
        check_free: bool,
    ) -> Result<Self, RunError> {
        let fail =
            |e: io::Error| RunError::Runtime(format!("cannot listen on {listen}: {}", plain(&e)));
        if check_free {
            ensure_free(listen).map_err(fail)?;
        }
        let first = bind_reuseport(listen, backlog).map_err(fail)?;
        let addr = first.local_addr().map_err(fail)?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_reuseport(addr, backlog).map_err(fail)?);
        }
        Ok(ListenerGroup { addr, sockets })
    }

    /// Duplicates of the sockets `inherited` (never empty), plus new ones on their port up to
    /// `workers`.
    fn inherit(inherited: &[TcpListener], workers: usize, backlog: u32) -> Result<Self, RunError> {
        let fail =
            |e: io::Error| RunError::Runtime(format!("inherited worker socket: {}", plain(&e)));
        let mut sockets = inherited
            .iter()
            .map(TcpListener::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let addr = sockets
            .first()
            .ok_or_else(|| RunError::Runtime("no inherited worker socket".to_string()))?
            .local_addr()
            .map_err(fail)?;
        while sockets.len() < workers {
            sockets.push(bind_reuseport(addr, backlog).map_err(fail)?);
        }
        Ok(ListenerGroup { addr, sockets })
    }

    fn for_worker(&self, id: usize) -> Result<TcpListener, RunError> {
        let fail = |why: String| RunError::Runtime(format!("worker {id} socket: {why}"));
        self.sockets
            .get(id)
            .ok_or_else(|| fail("no such worker".to_string()))?
            .try_clone()
            .map_err(|e| fail(plain(&e)))
    }
}

/// Every data-plane socket of this process.
#[derive(Debug)]
pub(crate) struct Listeners {
    /// Plain HTTP/1.1.
    pub(crate) http: ListenerGroup,
    /// HTTPS, when TLS is on.
    pub(crate) tls: Option<ListenerGroup>,
}

/// One worker's own descriptors of its sockets.
#[derive(Debug)]
pub(crate) struct WorkerSockets {
    pub(crate) http: TcpListener,
    pub(crate) tls: Option<TcpListener>,
}

impl Listeners {
    /// One `SO_REUSEPORT` socket per worker on `listen`, and on `tls` when set.
    pub(crate) fn bind(
        listen: SocketAddr,
        tls: Option<SocketAddr>,
        workers: usize,
        backlog: u32,
    ) -> Result<Self, RunError> {
        let http = ListenerGroup::bind(listen, workers, backlog, true)?;
        let tls = tls
            .map(|tls| ListenerGroup::bind(tls, workers, backlog, true))
            .transpose()?;
        Ok(Listeners { http, tls })
    }

    /// The sockets a running lb handed over, plus new ones on the same port when more workers
    /// are wanted. `inherited.workers` is never empty (the handover checks it). With TLS on
    /// (`tls`), the inherited TLS sockets, or, when the old lb sent none, new ones on `tls`.
    pub(crate) fn inherit(
        inherited: &Inherited,
        tls: Option<SocketAddr>,
        workers: usize,
        backlog: u32,
    ) -> Result<Self, RunError> {
        let http = ListenerGroup::inherit(&inherited.workers, workers, backlog)?;
        let tls = match (tls, inherited.tls.is_empty()) {
            (None, true) => None,
            (None, false) => {
                // Their queued connections are reset when the old lb closes its copies.
                warn!("TLS is off in this lb: the running lb's TLS sockets are not served");
                None
            }
            (Some(addr), true) => Some(ListenerGroup::bind(addr, workers, backlog, false)?),
            (Some(_), false) => Some(ListenerGroup::inherit(&inherited.tls, workers, backlog)?),
        };
        Ok(Listeners { http, tls })
    }

    /// Sets `TCP_DEFER_ACCEPT` to `wait` on every socket.
    pub(crate) fn defer_accept(&self, wait: Duration) -> Result<(), RunError> {
        let tls = self.tls.iter().flat_map(|group| &group.sockets);
        for socket in self.http.sockets.iter().chain(tls) {
            set_defer_accept(socket, wait)
                .map_err(|e| RunError::Runtime(format!("cannot defer accepts: {}", plain(&e))))?;
        }
        Ok(())
    }

    /// New descriptors of worker `id`'s sockets, for the worker thread to own.
    pub(crate) fn for_worker(&self, id: usize) -> Result<WorkerSockets, RunError> {
        Ok(WorkerSockets {
            http: self.http.for_worker(id)?,
            tls: self.tls.as_ref().map(|g| g.for_worker(id)).transpose()?,
        })
    }

    /// Closes the supervisor's descriptors: once the workers' own are closed too, new
    /// connections are refused.
    pub(crate) fn close(&mut self) {
        self.http.sockets.clear();
        if let Some(tls) = &mut self.tls {
            tls.sockets.clear();
        }
    }
}
