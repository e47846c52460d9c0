//! The registry behind a `parking_lot::RwLock`, its one write path, and the worker-side
//! snapshot cache.
//!
//! Every change to the table is a value ([`crate::Change`]) that goes through one door,
//! [`Registry::apply`] (or [`Registry::apply_saved`], which saves what the state file would hold
//! first and applies only when that worked): it runs under the write lock, then a new
//! [`Snapshot`] is published and the generation bumped with `Release`. A worker's
//! [`SnapshotCache`] compares the generation (`Acquire`) once per request and takes the read
//! lock only when it moved, so a registration is seen by the very next request on every worker,
//! and steady-state requests touch no lock.
//!
//! Health goes through the same write path (without waiting for the door): a target that is down
//! stays in the table (and in [`Registry::targets`]) but is left out of the published snapshot's
//! pick list, so [`Route::pick`] stays `k mod n` over the healthy targets and a health change
//! costs the request path nothing beyond the generation check it already makes.
//!
//! Each target remembers who holds it ([`Holder`]): the configuration, the control plane (or
//! the state file, which replays it), or both; each prefix whether the API holds it and whether
//! the configuration names it. The rules live in `holders` and the table's steps in `table`; no
//! caller outside this crate decides who holds what. A route stays while anyone wants it: it has
//! a target, the API holds the prefix, or the configuration names it; one none of these hold is
//! removed in the change that left it so, and its requests fall through to the longest
//! remaining prefix, as after an nginx or HAProxy reload.
//!
//! What leaves the process (the state file, an upgrade) is one versioned shape, `export`.

pub(crate) mod change;
pub(crate) mod configuration;
pub(crate) mod export;
pub(crate) mod holders;
pub(crate) mod lease;
pub(crate) mod table;

pub use crate::error::RegistryError;
use crate::health::{CheckOutcome, HealthPolicy};
pub use crate::host::normalize_prefix;
use crate::host::split_route;
use crate::router::{Route, RouteOptions, Snapshot};
use crate::target::STATUS_CLASSES;
use change::{Deregistration, Import, Registration, Release};
use crossbeam_utils::CachePadded;
use export::{Export, Scope};
pub use holders::Holder;
use lease::{Lease, Terms};
use parking_lot::{Mutex, RwLock};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use table::Table;

/// Outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The target was added.
    New,
    /// The target was already registered on that prefix by the same holder; nothing changed.
    Existing,
    /// The target was already registered on that prefix by the API, which registered it again:
    /// its lease started afresh, or its weight or ttl changed (what a state file saves
    /// changes; a new weight also changes the route's schedule).
    Renewed,
    /// The target was already served on that prefix because of the other holder; routing is
    /// unchanged, but it is now held by this one too (what a state file saves changes).
    Adopted,
}

/// One row of the registry listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// The host the route is bound to; `None` for a host-less route.
    pub host: Option<String>,
    /// The route prefix.
    pub path: String,
    /// The target address.
    pub addr: SocketAddr,
    /// Requests sent to this target, summed over workers.
    pub requests: u64,
    /// Requests in flight on it over all workers (counted on `least_conn` routes, else 0).
    pub in_flight: u64,
    /// Responses by status class (index 0 is 1xx), summed over workers.
    pub responses: [u64; STATUS_CLASSES],
    /// In round robin: neither a failed connect (back-off) nor the active checks hold it down.
    pub healthy: bool,
    /// The last active probe's result, if any probe ran.
    pub last_check: Option<CheckOutcome>,
    /// When that probe ended, when it ran in this process.
    pub last_check_at: Option<SystemTime>,
    /// Its weight: its share of the route's smooth weighted round robin.
    pub weight: u16,
    /// Its lease when it was registered with a ttl: it leaves routing unless registered again
    /// before the lease ends.
    pub lease: Option<Lease>,
}

impl TargetInfo {
    /// The name of its route, as changes and [`Registry::record_check`] take it: the prefix,
    /// after the host when there is one ([`crate::route_name`]).
    pub fn route(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}{}", self.path),
            None => self.path.clone(),
        }
    }
}

/// One prefix with its options and every target, healthy or not, in round-robin order: what
/// `GET /routes` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The host the route is bound to (`*.example.com` for a wildcard); `None` for a
    /// host-less route.
    pub host: Option<String>,
    /// The normalized prefix.
    pub path: String,
    /// Its settings.
    pub options: RouteOptions,
    /// Its targets (may be empty: a prefix the configuration names answers 503 then).
    pub targets: Vec<TargetInfo>,
}

/// One prefix and its targets in round-robin order, with who holds them: a read-only view (what
/// a state file keeps is an [`Export`] of [`Scope::Saved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTargets {
    /// The route's name: the normalized prefix, after its host when it has one
    /// ([`crate::route_name`]).
    pub path: String,
    /// Its targets, in round-robin order (may be empty: a prefix the configuration names
    /// still answers 503).
    pub targets: Vec<SocketAddr>,
    /// Those of `targets` that only the configuration holds (see [`Holder`]): a state file
    /// leaves them out, the configuration brings them back.
    pub config_only: Vec<SocketAddr>,
    /// The API holds the prefix: it holds a target there (its last one leaving withdraws the
    /// claim). A state file keeps only these prefixes; one that only the configuration created would
    /// otherwise come back after a restart as an empty route answering 503, even when the
    /// configuration no longer names it.
    pub held_by_api: bool,
}

pub(crate) fn check_target(addr: SocketAddr) -> Result<(), RegistryError> {
    if addr.port() == 0 {
        return Err(RegistryError::InvalidTarget(
            "port must be between 1 and 65535".to_string(),
        ));
    }
    if addr.ip().is_unspecified() {
        return Err(RegistryError::InvalidTarget(format!(
            "ip {} is not a host address",
            addr.ip()
        )));
    }
    Ok(())
}

#[derive(Debug)]
struct State {
    table: Table,
    snapshot: Arc<Snapshot>,
    policy: HealthPolicy,
}

/// The process-wide registry.
#[derive(Debug)]
pub struct Registry {
    generation: CachePadded<AtomicU64>,
    state: RwLock<State>,
    /// One change at a time (see [`crate::Change`]); health writes do not take it.
    door: Mutex<()>,
    /// Some target is held down by a passive failure: the health thread's periodic
    /// [`Registry::revive_due`] takes no lock while this is false.
    passive_down: AtomicBool,
}

impl Registry {
    /// An empty registry whose targets keep one request counter per worker, with the default
    /// [`HealthPolicy`].
    pub fn new(workers: usize) -> Self {
        Self::with_policy(workers, HealthPolicy::default())
    }

    /// An empty registry with the given health thresholds.
    pub fn with_policy(workers: usize, policy: HealthPolicy) -> Self {
        Registry {
            generation: CachePadded::new(AtomicU64::new(0)),
            state: RwLock::new(State {
                table: Table::new(workers),
                snapshot: Arc::new(Snapshot::default()),
                policy,
            }),
            door: Mutex::new(()),
            passive_down: AtomicBool::new(false),
        }
    }

    /// Routes created from now on start their round-robin cursor at `start` instead of 0 (a
    /// cluster node's offset; routes that exist keep their order). Set it before routes exist.
    pub fn set_cursor_start(&self, start: usize) {
        self.state.write().table.set_cursor_start(start);
    }

    /// The health thresholds in force.
    pub fn policy(&self) -> HealthPolicy {
        self.state.read().policy
    }

    /// Replaces the health thresholds (a configuration reload); they apply from the next probe
    /// or passive failure on.
    pub fn set_policy(&self, policy: HealthPolicy) {
        self.state.write().policy = policy;
    }

    /// The current generation; it moves on every change.
    #[inline]
    pub fn generation(&self) -> u64 {
        // Acquire pairs with the Release in `publish`: seeing the new number means the new
        // snapshot is already in place behind the lock.
        self.generation.load(Ordering::Acquire)
    }

    /// The current snapshot (takes the read lock; workers go through [`SnapshotCache`]).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.read().snapshot.clone()
    }

    /// [`Registry::apply`] of a control-plane [`Registration`] without weight or ttl, as of
    /// the wall clock now (a convenience: the control plane passes its own time).
    pub fn register(&self, path: &str, addr: SocketAddr) -> Result<Registered, RegistryError> {
        self.register_weighted(path, addr, None)
    }

    /// [`Registry::register`] with a weight (`None` keeps the stored one, 1 for a new target).
    pub fn register_weighted(
        &self,
        path: &str,
        addr: SocketAddr,
        weight: Option<u16>,
    ) -> Result<Registered, RegistryError> {
        let terms = Terms { weight, ttl: None };
        self.apply(&Registration::api(path, addr, terms, SystemTime::now()))
    }

    /// [`Registry::apply`] of a [`Registration`] by `holder`.
    pub fn register_as(
        &self,
        path: &str,
        addr: SocketAddr,
        holder: Holder,
    ) -> Result<Registered, RegistryError> {
        self.apply(&Registration {
            path,
            addr,
            holder,
            terms: Terms::default(),
            now: SystemTime::now(),
        })
    }

    /// [`Registry::apply`] of a [`Deregistration`]: `Ok(false)` when `addr` was not registered
    /// on `path`.
    pub fn deregister(&self, path: &str, addr: SocketAddr) -> Result<bool, RegistryError> {
        self.apply(&Deregistration { path, addr })
    }

    /// [`Registry::apply`] of a [`Release`]: `Ok(true)` when the target left.
    pub fn release(
        &self,
        path: &str,
        addr: SocketAddr,
        holder: Holder,
    ) -> Result<bool, RegistryError> {
        self.apply(&Release { path, addr, holder })
    }

    /// [`Registry::apply`] of an [`Import`] of `export`.
    pub fn import(
        &self,
        export: Export,
        now: Instant,
        probed: impl Fn(&str) -> bool,
    ) -> Result<(), RegistryError> {
        self.apply(&Import {
            export,
            now,
            wall: SystemTime::now(),
            probed: &probed,
        })
    }

    /// Whether some lease ended by `now`, so that an [`crate::Expiry`] would change something. Takes
    /// the read lock only, so a periodic tick costs nothing while no lease runs out.
    pub fn expiry_due(&self, now: SystemTime) -> bool {
        self.state.read().table.expiry_due(now)
    }

    /// The registry as `scope` exports it: what a state file keeps, or what an upgrade hands
    /// over (cursors are read under the read lock but keep moving with the requests still
    /// routed).
    pub fn export(&self, scope: Scope) -> Export {
        self.state.read().table.export(scope)
    }

    /// Every registered target, ordered by prefix, then round-robin order.
    pub fn targets(&self) -> Vec<TargetInfo> {
        self.listing().into_iter().flat_map(|r| r.targets).collect()
    }

    /// Every route, those without targets included, in order, with its options and targets.
    pub fn listing(&self) -> Vec<RouteInfo> {
        let state = self.state.read();
        state
            .table
            .entries()
            .map(|e| {
                let (host, path) = split_route(e.name());
                let host = host.map(str::to_string);
                RouteInfo {
                    host: host.clone(),
                    path: path.to_string(),
                    options: e.options(),
                    targets: e
                        .members()
                        .iter()
                        .map(|m| TargetInfo {
                            host: host.clone(),
                            path: path.to_string(),
                            addr: m.target().addr(),
                            requests: m.target().requests(),
                            in_flight: m.target().in_flight(),
                            responses: m.target().responses(),
                            healthy: m.health().healthy(),
                            last_check: m.health().last_check().cloned(),
                            last_check_at: m.health().checked_at(),
                            weight: m.weight(),
                            lease: m.lease(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Every prefix with its targets in round-robin order, healthy or not, and which of them
    /// only the configuration holds.
    pub fn routes(&self) -> Vec<RouteTargets> {
        let state = self.state.read();
        state
            .table
            .entries()
            .map(|e| RouteTargets {
                path: e.name().to_string(),
                targets: e.members().iter().map(|m| m.target().addr()).collect(),
                config_only: e
                    .members()
                    .iter()
                    .filter(|m| m.config_only())
                    .map(|m| m.target().addr())
                    .collect(),
                held_by_api: e.held_by_api(),
            })
            .collect()
    }

    /// Passive health: a connect to `addr` failed (refused or timed out). Takes `addr` out of the
    /// pick list of every route it serves for the back-off period ([`HealthPolicy::backoff`]);
    /// the health thread's [`Registry::revive_due`] brings it back. `true` when this call took it
    /// out, `false` when it was already out or is not registered.
    ///
    /// Cheap when repeated: the read lock tells that nothing would change, and only the first
    /// failure of a burst takes the write lock and publishes a snapshot. This is the registry's
    /// one reading of the clock; [`Registry::mark_down_at`] takes the time as a value.
    pub fn mark_down(&self, addr: SocketAddr) -> bool {
        self.mark_down_at(addr, Instant::now())
    }

    /// [`Registry::mark_down`] at a given instant.
    pub fn mark_down_at(&self, addr: SocketAddr, now: Instant) -> bool {
        if !self.state.read().table.would_mark_down(addr) {
            return false;
        }
        self.write(|table, policy| table.mark_down(addr, now, policy.backoff))
    }

    /// Ends every passive back-off that has run out by `now` and publishes the targets that are
    /// healthy again; returns how many came back. Takes no lock when nothing is held down.
    pub fn revive_due(&self, now: Instant) -> usize {
        if !self.passive_down.load(Ordering::Relaxed) {
            return 0;
        }
        self.write(|table, _| table.revive(now))
    }

    /// Active health: the probe of `addr` on route `path` gave `outcome`, as of the wall clock
    /// now (a convenience; [`Registry::record_check_at`] takes the time). Returns the target's
    /// new `healthy` value when it changed (and the snapshot was republished), `None` when it
    /// did not or the target is no longer registered there.
    pub fn record_check(
        &self,
        path: &str,
        addr: SocketAddr,
        outcome: CheckOutcome,
    ) -> Option<bool> {
        self.record_check_at(path, addr, outcome, SystemTime::now())
    }

    /// [`Registry::record_check`] of a probe that ended at `at` (listed as the check's time).
    pub fn record_check_at(
        &self,
        path: &str,
        addr: SocketAddr,
        outcome: CheckOutcome,
        at: SystemTime,
    ) -> Option<bool> {
        self.write(|table, policy| table.record_check(path, addr, outcome, policy, at))
    }

    /// The one way the table changes: `change` runs under the write lock, then one snapshot is
    /// published when it changed what workers route with.
    fn write<O>(&self, change: impl FnOnce(&mut Table, &HealthPolicy) -> O) -> O {
        let mut state = self.state.write();
        let state = &mut *state;
        let outcome = change(&mut state.table, &state.policy);
        if let Some(down) = state.table.take_passive_down() {
            // Relaxed: set and cleared only under the write lock; a reader that misses it looks
            // again on its next tick.
            self.passive_down.store(down, Ordering::Relaxed);
        }
        if state.table.take_republish() {
            self.publish(state);
        }
        outcome
    }

    /// Builds and installs the snapshot for the current table, then moves the generation.
    fn publish(&self, state: &mut State) {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let routes = state
            .table
            .entries()
            .map(|e| {
                let (healthy, weights): (Vec<_>, Vec<_>) = e
                    .members()
                    .iter()
                    .filter(|m| m.health().healthy())
                    .map(|m| (m.target().clone(), m.weight()))
                    .unzip();
                Route::new(
                    e.name().clone(),
                    e.cursor().clone(),
                    healthy.into(),
                    &weights,
                    e.options(),
                    state.snapshot.route_named(e.name()),
                )
            })
            .collect();
        state.snapshot = Arc::new(Snapshot::new(generation, routes));
        // Release: the snapshot above is visible to whoever sees this generation.
        self.generation.store(generation, Ordering::Release);
    }
}

/// A snapshot held by one worker thread. A request in flight keeps the snapshot it was routed
/// with (to count its response on the target it picked) by cloning this `Rc`, a plain increment,
/// where cloning the `Arc` would write a cache line that every worker shares.
#[allow(
    clippy::redundant_allocation,
    reason = "the Rc is the point: a worker-local count, allocated once per registry change"
)]
pub type PinnedSnapshot = Rc<Arc<Snapshot>>;

/// A worker's view of the registry: the last snapshot it read and that snapshot's generation.
#[derive(Debug)]
pub struct SnapshotCache {
    registry: Arc<Registry>,
    snapshot: PinnedSnapshot,
}

impl SnapshotCache {
    /// A cache holding the registry's current snapshot.
    pub fn new(registry: Arc<Registry>) -> Self {
        let snapshot = Rc::new(registry.snapshot());
        SnapshotCache { registry, snapshot }
    }

    /// The up-to-date snapshot: one atomic load per call, the read lock only after a change.
    #[inline]
    pub fn current(&mut self) -> &PinnedSnapshot {
        if self.registry.generation() != self.snapshot.generation() {
            self.snapshot = Rc::new(self.registry.snapshot());
        }
        &self.snapshot
    }

    /// The registry this cache follows.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}
