//! The mutable registry behind a `parking_lot::RwLock`, and the worker-side snapshot cache.
//!
//! Writers (the control plane) change the table, publish a new [`Snapshot`] and then bump the
//! generation with `Release`. A worker's [`SnapshotCache`] compares the generation (`Acquire`)
//! once per request and takes the read lock only when it moved, so a registration is seen by the
//! very next request on every worker, and steady-state requests touch no lock.
//!
//! Health goes through the same door: a target that is down stays in the table (and in
//! [`Registry::targets`]) but is left out of the published snapshot's pick list, so
//! [`Route::pick`] stays `k mod n` over the healthy targets and a health change costs the request
//! path nothing beyond the generation check it already makes.
//!
//! Each target remembers who asked for it ([`Source`]): the configuration, the control plane (or
//! the state file, which replays it), or both. A configuration reload withdraws only the
//! configuration's claim ([`Registry::release`]), so a target the operator also registered
//! through the API stays; an API deregistration removes the target whoever asked for it. A
//! prefix is the API's once the API registered a target there: a state file keeps it, also after
//! its targets all left, and leaves out a prefix only the configuration created.
//!
//! A route stays while anyone wants it: it has a target, the API holds the prefix, or the
//! configuration names it. A route none of these hold is removed in the change that left it so
//! ([`Registry::reconfigure`] when a reload drops the prefix from the file), so its requests
//! fall through to the longest remaining prefix, as after an nginx or HAProxy reload.
//!
//! A control-plane change that cannot be saved is undone exactly ([`Undo`]): the same holders,
//! the same place in round-robin order, and no route left behind that the change created.

pub(crate) mod carry;
pub(crate) mod configuration;
pub(crate) mod undo;

use crate::cursor::Cursor;
use crate::health::{CheckOutcome, Health, HealthPolicy};
use crate::router::{Route, RouteOptions, Snapshot};
use crate::target::{Target, STATUS_CLASSES};
use crossbeam_utils::CachePadded;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Why a registry change was refused. The registry is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The path is not a valid route prefix; the text says why in one sentence.
    InvalidPath(String),
    /// The target address cannot be used (port 0, unspecified address).
    InvalidTarget(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::InvalidPath(m) | RegistryError::InvalidTarget(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The target was added.
    New,
    /// The target was already registered on that prefix by the same source; nothing changed.
    Existing,
    /// The target was already served on that prefix because of the other source; routing is
    /// unchanged, but it is now held by this source too (what a state file saves changes).
    Adopted,
}

/// Who asked for a target to serve a route. A target stays while at least one source holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The control plane (`POST /register`) or the state file, which replays its registrations.
    Api,
    /// The configuration: `--route` flags and the config file's routes.
    Config,
}

/// The sources holding one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Holders {
    api: bool,
    config: bool,
}

impl Holders {
    /// Held by `source` alone.
    fn of(source: Source) -> Self {
        let mut holders = Holders::default();
        holders.hold(source);
        holders
    }

    fn slot(&mut self, source: Source) -> &mut bool {
        match source {
            Source::Api => &mut self.api,
            Source::Config => &mut self.config,
        }
    }

    /// Adds `source`; `true` when it did not hold the target before.
    fn hold(&mut self, source: Source) -> bool {
        !std::mem::replace(self.slot(source), true)
    }

    /// Withdraws `source`; `true` when no source holds the target any more.
    fn release(&mut self, source: Source) -> bool {
        *self.slot(source) = false;
        !self.api && !self.config
    }

    /// Held by the configuration alone: a reload that drops it removes it.
    fn config_only(self) -> bool {
        self.config && !self.api
    }
}

/// One row of the registry listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// The route prefix.
    pub path: String,
    /// The target address.
    pub addr: SocketAddr,
    /// Requests sent to this target, summed over workers.
    pub requests: u64,
    /// Responses by status class (index 0 is 1xx), summed over workers.
    pub responses: [u64; STATUS_CLASSES],
    /// In round robin: neither a failed connect (back-off) nor the active checks hold it down.
    pub healthy: bool,
    /// The last active probe's result, if any probe ran.
    pub last_check: Option<CheckOutcome>,
}

/// One prefix and its targets in round-robin order, as persisted in a state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTargets {
    /// The normalized prefix.
    pub path: String,
    /// Its targets, in round-robin order (may be empty: the prefix still answers 503).
    pub targets: Vec<SocketAddr>,
    /// Those of `targets` that only the configuration holds (see [`Source`]): a state file
    /// leaves them out, the configuration brings them back.
    pub config_only: Vec<SocketAddr>,
    /// The API holds the prefix: it registered a target there (it may have left since). A
    /// state file keeps only these prefixes; one that only the configuration created would
    /// otherwise come back after a restart as an empty route answering 503, even when the
    /// configuration no longer names it.
    pub held_by_api: bool,
}

/// Checks a route prefix and returns its normalized form: must start with `/`, no `?`, `#`,
/// whitespace or control characters; trailing `/` removed except for the root `/`.
pub fn normalize_prefix(path: &str) -> Result<String, RegistryError> {
    if !path.starts_with('/') {
        return Err(RegistryError::InvalidPath(
            "path must start with `/`".to_string(),
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(RegistryError::InvalidPath(format!(
            "path must not contain {c:?}"
        )));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

fn check_target(addr: SocketAddr) -> Result<(), RegistryError> {
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
struct Member {
    target: Arc<Target>,
    health: Health,
    holders: Holders,
}

#[derive(Debug)]
struct RouteEntry {
    prefix: Arc<str>,
    cursor: Arc<Cursor>,
    targets: Vec<Member>,
    /// Settings from the configuration (defaults for routes registered through the API).
    options: RouteOptions,
    /// The API registered here (or a state file or an upgrade said so), see
    /// [`RouteTargets::held_by_api`]. Only an [`Undo`] clears it.
    api_claimed: bool,
    /// The configuration names this prefix: it registered a target or set options here. Only
    /// [`Registry::reconfigure`] clears it, when the configuration no longer names the prefix.
    config_named: bool,
}

impl RouteEntry {
    /// The API holds the prefix: it claimed it, or holds one of its targets.
    fn held_by_api(&self) -> bool {
        self.api_claimed || self.targets.iter().any(|m| m.holders.api)
    }

    /// Nobody wants the route any more: no target, the API does not hold the prefix and the
    /// configuration does not name it. Such a route is removed (see [`State::routes`]).
    fn abandoned(&self) -> bool {
        self.targets.is_empty() && !self.held_by_api() && !self.config_named
    }
}

#[derive(Debug)]
struct State {
    /// A route stays while it has a target, the API holds its prefix, or the configuration
    /// names it: a prefix whose last target left answers 503 then, rather than letting its
    /// traffic fall through to a shorter prefix's service, and keeps its cursor. A route none of
    /// these hold ([`RouteEntry::abandoned`]) is removed by the change that left it so: a reload
    /// that stops naming a prefix only the configuration held, or the [`Undo`] of a change that
    /// created it (as far as anyone was told, it never existed). Its options and cursor go with
    /// it: a prefix registered again starts with the defaults at its first target.
    routes: BTreeMap<Arc<str>, RouteEntry>,
    snapshot: Arc<Snapshot>,
    policy: HealthPolicy,
}

/// The process-wide registry.
#[derive(Debug)]
pub struct Registry {
    generation: CachePadded<AtomicU64>,
    state: RwLock<State>,
    workers: usize,
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
                routes: BTreeMap::new(),
                snapshot: Arc::new(Snapshot::default()),
                policy,
            }),
            workers,
            passive_down: AtomicBool::new(false),
        }
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

    /// Adds `addr` to `path`'s targets on behalf of the control plane (appended: it is last in
    /// round-robin order). Same as [`Registry::register_as`] with [`Source::Api`].
    pub fn register(&self, path: &str, addr: SocketAddr) -> Result<Registered, RegistryError> {
        self.register_as(path, addr, Source::Api)
    }

    /// Adds `addr` to `path`'s targets on behalf of `source` (appended: it is last in
    /// round-robin order), or records that `source` holds it too when it is already there.
    pub fn register_as(
        &self,
        path: &str,
        addr: SocketAddr,
        source: Source,
    ) -> Result<Registered, RegistryError> {
        self.add(path, addr, source).map(|added| added.registered)
    }

    /// [`Registry::register_as`], also saying what the route was before, for an [`Undo`].
    fn add(&self, path: &str, addr: SocketAddr, source: Source) -> Result<Added, RegistryError> {
        let prefix = normalize_prefix(path)?;
        check_target(addr)?;
        let mut state = self.state.write();
        let route_claimed = state.routes.get(prefix.as_str()).map(|e| e.api_claimed);
        let registered = self.add_locked(&mut state, &prefix, addr, source);
        if registered == Registered::New {
            self.publish(&mut state);
        }
        Ok(Added {
            prefix,
            registered,
            route_claimed,
        })
    }

    /// Adds `addr` to the normalized `prefix` for `source`, under the write lock, without
    /// publishing (the caller does, when it is [`Registered::New`]).
    fn add_locked(
        &self,
        state: &mut State,
        prefix: &str,
        addr: SocketAddr,
        source: Source,
    ) -> Registered {
        let entry = route_entry(state, prefix);
        match source {
            Source::Api => entry.api_claimed = true,
            Source::Config => entry.config_named = true,
        }
        if let Some(member) = entry.targets.iter_mut().find(|m| m.target.addr() == addr) {
            return if member.holders.hold(source) {
                Registered::Adopted
            } else {
                Registered::Existing
            };
        }
        entry.targets.push(Member {
            target: Arc::new(Target::new(addr, self.workers)),
            health: Health::default(),
            holders: Holders::of(source),
        });
        Registered::New
    }

    /// Creates `path` as a route without targets (it answers 503) unless it exists, and records
    /// that the API holds it ([`RouteTargets::held_by_api`]); `Ok(true)` when it was created.
    /// Used to restore a persisted registry exactly: every prefix a state file holds is the
    /// API's.
    pub fn ensure_route(&self, path: &str) -> Result<bool, RegistryError> {
        let prefix = normalize_prefix(path)?;
        let mut state = self.state.write();
        let created = !state.routes.contains_key(prefix.as_str());
        route_entry(&mut state, &prefix).api_claimed = true;
        if created {
            self.publish(&mut state);
        }
        Ok(created)
    }

    /// Removes `addr` from `path`'s targets whoever holds it (the operator's explicit word beats
    /// the configuration's); `Ok(false)` when it was not registered there.
    pub fn deregister(&self, path: &str, addr: SocketAddr) -> Result<bool, RegistryError> {
        self.deregister_undoable(path, addr)
            .map(|undo| undo.is_some())
    }

    /// Every registered target, ordered by prefix, then round-robin order.
    pub fn targets(&self) -> Vec<TargetInfo> {
        let state = self.state.read();
        state
            .routes
            .values()
            .flat_map(|e| {
                e.targets.iter().map(|m| TargetInfo {
                    path: e.prefix.to_string(),
                    addr: m.target.addr(),
                    requests: m.target.requests(),
                    responses: m.target.responses(),
                    healthy: m.health.healthy(),
                    last_check: m.health.last_check().cloned(),
                })
            })
            .collect()
    }

    /// Every prefix with its targets in round-robin order, healthy or not, and which of them
    /// only the configuration holds: what an upgrade hands over and a state file keeps.
    pub fn routes(&self) -> Vec<RouteTargets> {
        let state = self.state.read();
        state
            .routes
            .values()
            .map(|e| RouteTargets {
                path: e.prefix.to_string(),
                targets: e.targets.iter().map(|m| m.target.addr()).collect(),
                config_only: e
                    .targets
                    .iter()
                    .filter(|m| m.holders.config_only())
                    .map(|m| m.target.addr())
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
        let pending = |state: &State| {
            state.routes.values().any(|e| {
                e.targets
                    .iter()
                    .any(|m| m.target.addr() == addr && !m.health.passive_down())
            })
        };
        if !pending(&self.state.read()) {
            return false;
        }
        let mut state = self.state.write();
        let backoff = state.policy.backoff;
        let mut changed = false;
        for entry in state.routes.values_mut() {
            for member in entry.targets.iter_mut().filter(|m| m.target.addr() == addr) {
                let was = member.health.healthy();
                member.health.mark_down(now, backoff);
                changed |= was;
            }
        }
        // Relaxed: set and cleared only under the write lock; a reader that misses it looks
        // again on its next tick.
        self.passive_down.store(true, Ordering::Relaxed);
        if changed {
            self.publish(&mut state);
        }
        changed
    }

    /// Ends every passive back-off that has run out by `now` and publishes the targets that are
    /// healthy again; returns how many came back. Takes no lock when nothing is held down.
    pub fn revive_due(&self, now: Instant) -> usize {
        if !self.passive_down.load(Ordering::Relaxed) {
            return 0;
        }
        let mut state = self.state.write();
        let (mut revived, mut still_down) = (0, false);
        for entry in state.routes.values_mut() {
            for member in &mut entry.targets {
                if member.health.revive(now) {
                    revived += usize::from(member.health.healthy());
                }
                still_down |= member.health.passive_down();
            }
        }
        self.passive_down.store(still_down, Ordering::Relaxed);
        if revived > 0 {
            self.publish(&mut state);
        }
        revived
    }

    /// Active health: the probe of `addr` on route `path` gave `outcome`. Returns the target's
    /// new `healthy` value when it changed (and the snapshot was republished), `None` when it
    /// did not or the target is no longer registered there.
    pub fn record_check(
        &self,
        path: &str,
        addr: SocketAddr,
        outcome: CheckOutcome,
    ) -> Option<bool> {
        let mut state = self.state.write();
        let policy = state.policy;
        let entry = state.routes.get_mut(path)?;
        let member = entry.targets.iter_mut().find(|m| m.target.addr() == addr)?;
        let was = member.health.healthy();
        member.health.record(outcome, &policy);
        let now = member.health.healthy();
        if now != was {
            self.publish(&mut state);
            Some(now)
        } else {
            None
        }
    }

    /// Builds and installs the snapshot for the current table, then moves the generation.
    fn publish(&self, state: &mut State) {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let routes = state
            .routes
            .values()
            .map(|e| {
                let healthy = e
                    .targets
                    .iter()
                    .filter(|m| m.health.healthy())
                    .map(|m| m.target.clone())
                    .collect();
                Route::new(e.prefix.clone(), e.cursor.clone(), healthy, e.options)
            })
            .collect();
        state.snapshot = Arc::new(Snapshot::new(generation, routes));
        // Release: the snapshot above is visible to whoever sees this generation.
        self.generation.store(generation, Ordering::Release);
    }
}

/// `prefix`'s entry and the place of `addr` in its round-robin order, when it is registered
/// there.
fn find_target<'s>(
    state: &'s mut State,
    prefix: &str,
    addr: SocketAddr,
) -> Option<(&'s mut RouteEntry, usize)> {
    let entry = state.routes.get_mut(prefix)?;
    let at = entry.targets.iter().position(|m| m.target.addr() == addr)?;
    Some((entry, at))
}

/// Removes `prefix`'s route when nobody wants it any more ([`RouteEntry::abandoned`]). The
/// caller publishes.
fn remove_if_abandoned(state: &mut State, prefix: &str) {
    if state.routes.get(prefix).is_some_and(RouteEntry::abandoned) {
        state.routes.remove(prefix);
    }
}

/// `prefix`'s entry, created empty when missing.
fn route_entry<'s>(state: &'s mut State, prefix: &str) -> &'s mut RouteEntry {
    state
        .routes
        .entry(Arc::from(prefix))
        .or_insert_with_key(|key| RouteEntry {
            prefix: key.clone(),
            cursor: Arc::default(),
            targets: Vec::new(),
            options: RouteOptions::default(),
            api_claimed: false,
            config_named: false,
        })
}

/// What [`Registry::add`] did.
struct Added {
    /// The normalized prefix.
    prefix: String,
    registered: Registered,
    /// The route's [`RouteEntry::api_claimed`] before; `None` when this created the route.
    route_claimed: Option<bool>,
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
