//! Route and pick: which target a request goes to, and where it goes when that target fails.
//!
//! Routing reads the worker's cached snapshot (one atomic load when nothing changed), chooses the
//! route by the request's host and path (the host lower-cased into a stack buffer), and makes the
//! one shared write of the request path, the route cursor's `fetch_add`. The request head is
//! rewritten for the route by the caller's closure while the match (which borrows the snapshot and
//! the request target) is at hand, so nothing of the head is copied or parsed twice. Never
//! allocates.

use crate::hash_key::{key_value, peer_bytes};
use crate::worker::Worker;
use lb_http::{ErrorKind, HttpError, RequestHead};
use lb_registry::{request_host, Balance, PinnedSnapshot, Slot, Target, MAX_HOST};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const NO_ROUTE: HttpError = HttpError::new(ErrorKind::NoRoute, "no route matches the request path");

const NO_TARGET: HttpError = HttpError::new(
    ErrorKind::NoTarget,
    "no healthy target is registered for this route",
);

/// The target a request was routed to, found again through the snapshot it was routed with
/// (kept alive by a worker-local `Rc`) to count the response on the target's series.
///
/// On a `least_conn` route it is also the guard of the target's in-flight count: counted when
/// made, ended when dropped, so the count goes down however the exchange ends (answered,
/// failed, retried elsewhere, or its future dropped when the client went away).
#[derive(Debug)]
pub(crate) struct Picked {
    /// The target's address: the upstream pool's key.
    pub(crate) addr: SocketAddr,
    snapshot: PinnedSnapshot,
    slot: Slot,
    worker: usize,
    /// The target's in-flight count includes this request.
    in_flight: bool,
}

impl Drop for Picked {
    fn drop(&mut self) {
        if self.in_flight {
            if let Some(target) = self.snapshot.target(self.slot) {
                target.finish_request();
            }
        }
    }
}

impl Picked {
    /// The pick of `target` at `slot` of `snapshot` by `worker`: counts the request on the
    /// target, and in flight when the route's policy needs it.
    fn new(snapshot: PinnedSnapshot, slot: Slot, target: &Target, worker: usize) -> Picked {
        target.record_request(worker);
        let in_flight = snapshot
            .route_of(slot)
            .is_some_and(|r| r.options().balance.counts_in_flight());
        if in_flight {
            target.start_request();
        }
        Picked {
            addr: target.addr(),
            snapshot,
            slot,
            worker,
            in_flight,
        }
    }

    /// Picks another target of the same route in the same snapshot, for a retry after the
    /// target accepted the connection but closed it without answering
    /// ([`lb_registry::Snapshot::repick`]); counts the request on it.
    pub(crate) fn repick(&self) -> Option<Picked> {
        let (slot, target) = self.snapshot.repick(self.slot)?;
        Some(Picked::new(
            self.snapshot.clone(),
            slot,
            target,
            self.worker,
        ))
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
        let target = target.clone();
        Some(Picked::new(snapshot, slot, &target, self.worker))
    }

    /// The name of the route this target was picked from (the route label of its metrics: the
    /// prefix, after the host for a host-bound route), as the registry shares it between
    /// snapshots ([`lb_registry::Route::name_shared`]).
    pub(crate) fn prefix(&self) -> Option<&Arc<str>> {
        Some(self.snapshot.route_of(self.slot)?.name_shared())
    }

    /// Counts the status the client gets for this request on the picked target, and on a
    /// route with `max_fails` whether it was a failure: the `max_fails`-th in a row takes the
    /// target out for the back-off, as a refused connect does ([`lb_registry::MaxFails`]).
    pub(crate) fn answered(&self, worker: &Worker, status: u16) {
        let Some(route) = self.snapshot.route_of(self.slot) else {
            return;
        };
        let Some(target) = self.snapshot.target(self.slot) else {
            return;
        };
        target.record_response(self.worker, status);
        let accounting = route.options().max_fails;
        if accounting.enabled()
            && target.record_outcome(accounting.is_failure(status), accounting.max_fails)
        {
            worker.routes.borrow().registry().mark_down(target.addr());
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
    /// How many other targets the request may be sent on to when one fails where that is
    /// safe ([`crate::policy::retry`]).
    pub(crate) retries: u8,
}

/// Routes `req` (its host, its origin-form target, and for a `hash` route its key: a header,
/// a cookie, or `peer`) and picks the route's next healthy target; `rewrite(lead, rest)` then
/// writes the upstream head (forward `lead + rest`: the prefix stripped, see
/// [`lb_registry::Match::lead`]). No route, or no healthy target: the error lb answers with.
pub(crate) fn route(
    worker: &Worker,
    req: &RequestHead<'_, '_>,
    peer: IpAddr,
    rewrite: impl FnOnce(&'static str, &str),
) -> Result<Routed, HttpError> {
    let snapshot = worker.routes.borrow_mut().current().clone();
    let mut buf = [0; MAX_HOST];
    let host = req.host.and_then(|raw| request_host(raw, &mut buf));
    let found = snapshot.lookup_host(host, req.target).ok_or(NO_ROUTE)?;
    let options = *found.route.options();
    let mut ip = [0; 16];
    let key = match &options.balance {
        Balance::Hash(key) => key_value(key, req.headers, peer_bytes(peer, &mut ip)),
        Balance::RoundRobin | Balance::LeastConn => None,
    };
    let (slot, picked) = found.pick_keyed(key).ok_or(NO_TARGET)?;
    let picked = Picked::new(snapshot.clone(), slot, picked, worker.cfg.id);
    rewrite(found.lead(), found.rest);
    let tuning = &worker.cfg.tuning;
    Ok(Routed {
        picked,
        connect_timeout: options.connect_timeout.unwrap_or_else(|| tuning.connect()),
        upstream_timeout: options
            .upstream_timeout
            .unwrap_or_else(|| tuning.upstream()),
        retries: options.retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_registry::{Balance, Reconfiguration, Registry, RouteOptions};
    use std::future::Future;
    use std::rc::Rc;

    /// A `least_conn` route over one target, and that snapshot pinned as a worker pins it.
    fn least_conn() -> (Registry, PinnedSnapshot) {
        let reg = Registry::new(1);
        reg.register("/", "127.0.0.1:9".parse().expect("addr"))
            .expect("registered");
        let options = RouteOptions {
            balance: Balance::LeastConn,
            ..RouteOptions::default()
        };
        reg.reconfigure(&Reconfiguration {
            routes: vec![("/".to_string(), options)],
            ..Reconfiguration::default()
        })
        .expect("reconfigured");
        let snapshot = Rc::new(reg.snapshot());
        (reg, snapshot)
    }

    fn pick(snapshot: &PinnedSnapshot) -> Picked {
        let (slot, target) = snapshot.lookup("/").and_then(|m| m.pick()).expect("picked");
        Picked::new(snapshot.clone(), slot, target, 0)
    }

    #[test]
    fn a_pick_counts_in_flight_until_dropped_even_when_its_future_is() {
        let (_reg, snapshot) = least_conn();
        let target = snapshot.lookup("/").expect("route").route.targets()[0].clone();
        let first = pick(&snapshot);
        let second = pick(&snapshot);
        assert_eq!(target.in_flight(), 2);
        drop(first);
        assert_eq!(target.in_flight(), 1);
        // An exchange cancelled mid-way (polled once, waiting, then its future dropped, as when
        // the client goes away) drops its pick with it.
        let mut exchange = Box::pin(async move {
            let _held = second;
            std::future::pending::<()>().await;
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(exchange.as_mut().poll(&mut cx).is_pending());
        assert_eq!(target.in_flight(), 1);
        drop(exchange);
        assert_eq!(target.in_flight(), 0);
    }
}
