//! Route and pick: which target a request goes to, and where it goes when that target fails.
//!
//! Routing reads the worker's cached snapshot (one atomic load when nothing changed), chooses the
//! route by the request's host and path (the host lower-cased into a stack buffer), and makes the
//! one shared write of the request path, the route cursor's `fetch_add`. The request head is
//! rewritten for the route by the caller's closure while the match (which borrows the snapshot and
//! the request target) is at hand, so nothing of the head is copied or parsed twice. Never
//! allocates.

use crate::worker::Worker;
use lb_http::{ErrorKind, HttpError};
use lb_registry::{request_host, PinnedSnapshot, Slot, MAX_HOST};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const NO_ROUTE: HttpError = HttpError::new(ErrorKind::NoRoute, "no route matches the request path");

const NO_TARGET: HttpError = HttpError::new(
    ErrorKind::NoTarget,
    "no healthy target is registered for this route",
);

/// The target a request was routed to, found again through the snapshot it was routed with
/// (kept alive by a worker-local `Rc`) to count the response on the target's series.
#[derive(Debug)]
pub(crate) struct Picked {
    /// The target's address: the upstream pool's key.
    pub(crate) addr: SocketAddr,
    snapshot: PinnedSnapshot,
    slot: Slot,
    worker: usize,
}

impl Picked {
    /// Picks another target of the same route in the same snapshot, for a retry after the
    /// target accepted the connection but closed it without answering
    /// ([`lb_registry::Snapshot::repick`]); counts the request on it.
    pub(crate) fn repick(&self) -> Option<Picked> {
        let (slot, target) = self.snapshot.repick(self.slot)?;
        target.record_request(self.worker);
        Some(Picked {
            addr: target.addr(),
            snapshot: self.snapshot.clone(),
            slot,
            worker: self.worker,
        })
    }

    /// Picks the next healthy target of the same route (same prefix) in the registry's newest
    /// snapshot, for a retry after a failed connect marked this target down; counts the request on
    /// it. `None` when the route has no other healthy target, or is gone. The request head was
    /// rewritten for this prefix, so it goes to the same prefix's targets and to no other.
    pub(crate) fn reroute(&self, worker: &Worker) -> Option<Picked> {
        let name = self.snapshot.route_of(self.slot)?.name_shared();
        let snapshot = worker.routes.borrow_mut().current().clone();
        let (slot, target) = snapshot.pick_named(name)?;
        if target.addr() == self.addr {
            return None;
        }
        target.record_request(self.worker);
        let addr = target.addr();
        Some(Picked {
            addr,
            snapshot,
            slot,
            worker: self.worker,
        })
    }

    /// The name of the route this target was picked from (the route label of its metrics: the
    /// prefix, after the host for a host-bound route), as the registry shares it between
    /// snapshots ([`lb_registry::Route::name_shared`]).
    pub(crate) fn prefix(&self) -> Option<&Arc<str>> {
        Some(self.snapshot.route_of(self.slot)?.name_shared())
    }

    /// Counts the status the client gets for this request on the picked target.
    pub(crate) fn answered(&self, status: u16) {
        if let Some(target) = self.snapshot.target(self.slot) {
            target.record_response(self.worker, status);
        }
    }
}

/// A routed request: its target and the route's timeouts.
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) picked: Picked,
    /// The route's connect timeout, or the process-wide one.
    pub(crate) connect_timeout: Duration,
    /// The route's upstream response timeout, or the process-wide one.
    pub(crate) upstream_timeout: Duration,
}

/// Routes a request to `host` (its Host value or absolute-form authority, as sent) for
/// `target` (its origin-form path and query) and picks the route's next healthy target; `rewrite(lead, rest)` then writes the upstream head (forward `lead + rest`:
/// the prefix stripped, see [`lb_registry::Match::lead`]). No route, or no healthy target: the
/// error lb answers with.
pub(crate) fn route(
    worker: &Worker,
    host: Option<&[u8]>,
    target: &str,
    rewrite: impl FnOnce(&'static str, &str),
) -> Result<Routed, HttpError> {
    let snapshot = worker.routes.borrow_mut().current().clone();
    let mut buf = [0; MAX_HOST];
    let host = host.and_then(|raw| request_host(raw, &mut buf));
    let found = snapshot.lookup_host(host, target).ok_or(NO_ROUTE)?;
    let (slot, picked) = found.pick().ok_or(NO_TARGET)?;
    picked.record_request(worker.cfg.id);
    let addr = picked.addr();
    let options = *found.route.options();
    rewrite(found.lead(), found.rest);
    let tuning = &worker.cfg.tuning;
    Ok(Routed {
        picked: Picked {
            addr,
            slot,
            worker: worker.cfg.id,
            snapshot,
        },
        connect_timeout: options.connect_timeout.unwrap_or_else(|| tuning.connect()),
        upstream_timeout: options
            .upstream_timeout
            .unwrap_or_else(|| tuning.upstream()),
    })
}
