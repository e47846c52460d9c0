//! The data-plane listening sockets, by kind: today one group of plain HTTP sockets, one
//! `SO_REUSEPORT` socket per worker, all on one port.
//!
//! The supervisor keeps these descriptors for the whole run: a respawned worker serves a
//! duplicate of its old socket (nothing queued is lost) and an upgrade hands them to the
//! successor. A second kind of listener (TLS) is a second [`ListenerGroup`] field beside
//! [`Listeners::http`]; the groups do not know about each other.
//!
//! Invariant: worker `i` always serves `http.sockets[i]`; a group never shrinks while lb runs.

use crate::error::RunError;
use lb_socket::{bind_reuseport, ensure_free, plain, set_defer_accept};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// Sockets of one kind, one per worker, all bound to `addr`.
#[derive(Debug)]
pub(crate) struct ListenerGroup {
    /// The resolved address (port 0 already replaced by the port the kernel chose).
    pub(crate) addr: SocketAddr,
    /// Worker `i`'s socket at index `i`.
    pub(crate) sockets: Vec<TcpListener>,
}

/// Every data-plane socket of this process.
#[derive(Debug)]
pub(crate) struct Listeners {
    /// Plain HTTP/1.1.
    pub(crate) http: ListenerGroup,
}

impl Listeners {
    /// One `SO_REUSEPORT` socket per worker on `listen`; the first resolves port 0 for the others.
    pub(crate) fn bind(listen: SocketAddr, workers: usize, backlog: u32) -> Result<Self, RunError> {
        let fail =
            |e: io::Error| RunError::Runtime(format!("cannot listen on {listen}: {}", plain(&e)));
        ensure_free(listen).map_err(fail)?;
        let first = bind_reuseport(listen, backlog).map_err(fail)?;
        let addr = first.local_addr().map_err(fail)?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_reuseport(addr, backlog).map_err(fail)?);
        }
        Ok(Listeners {
            http: ListenerGroup { addr, sockets },
        })
    }

    /// The sockets a running lb handed over, plus new ones on the same port when more workers
    /// are wanted. `inherited` is never empty (the handover checks it).
    pub(crate) fn inherit(
        inherited: &[TcpListener],
        workers: usize,
        backlog: u32,
    ) -> Result<Self, RunError> {
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
        Ok(Listeners {
            http: ListenerGroup { addr, sockets },
        })
    }

    /// Sets `TCP_DEFER_ACCEPT` to `wait` on every socket.
    pub(crate) fn defer_accept(&self, wait: Duration) -> Result<(), RunError> {
        for socket in &self.http.sockets {
            set_defer_accept(socket, wait)
                .map_err(|e| RunError::Runtime(format!("cannot defer accepts: {}", plain(&e))))?;
        }
        Ok(())
    }

    /// A new descriptor of worker `id`'s socket, for the worker thread to own.
    pub(crate) fn for_worker(&self, id: usize) -> Result<TcpListener, RunError> {
        let fail = |why: String| RunError::Runtime(format!("worker {id} socket: {why}"));
        self.http
            .sockets
            .get(id)
            .ok_or_else(|| fail("no such worker".to_string()))?
            .try_clone()
            .map_err(|e| fail(plain(&e)))
    }

    /// Closes the supervisor's descriptors: once the workers' own are closed too, new
    /// connections are refused.
    pub(crate) fn close(&mut self) {
        self.http.sockets.clear();
    }
}
