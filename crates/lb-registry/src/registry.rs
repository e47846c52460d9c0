//! The mutable registry behind a `parking_lot::RwLock`, and the worker-side snapshot cache.
//!
//! Writers (the control plane) change the table, publish a new [`Snapshot`] and then bump the
//! generation with `Release`. A worker's [`SnapshotCache`] compares the generation (`Acquire`)
//! once per request and takes the read lock only when it moved, so a registration is seen by the
//! very next request on every worker, and steady-state requests touch no lock.

use crate::cursor::Cursor;
use crate::router::{Route, Snapshot};
use crate::target::Target;
use crossbeam_utils::CachePadded;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// The target was already registered on that prefix; nothing changed.
    Existing,
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
struct RouteEntry {
    prefix: Arc<str>,
    cursor: Arc<Cursor>,
    targets: Vec<Arc<Target>>,
}

#[derive(Debug)]
struct State {
    /// Routes stay once created: a prefix whose last target left answers 503 rather than letting
    /// its traffic fall through to a shorter prefix's service, and keeps its cursor.
    routes: BTreeMap<Arc<str>, RouteEntry>,
    snapshot: Arc<Snapshot>,
}

/// The process-wide registry.
#[derive(Debug)]
pub struct Registry {
    generation: CachePadded<AtomicU64>,
    state: RwLock<State>,
    workers: usize,
}

impl Registry {
    /// An empty registry whose targets keep one request counter per worker.
    pub fn new(workers: usize) -> Self {
        Registry {
            generation: CachePadded::new(AtomicU64::new(0)),
            state: RwLock::new(State {
                routes: BTreeMap::new(),
                snapshot: Arc::new(Snapshot::default()),
            }),
            workers,
        }
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

    /// Adds `addr` to `path`'s targets (appended: it is last in round-robin order).
    pub fn register(&self, path: &str, addr: SocketAddr) -> Result<Registered, RegistryError> {
        let prefix = normalize_prefix(path)?;
        check_target(addr)?;
        let mut state = self.state.write();
        let entry = state
            .routes
            .entry(Arc::from(prefix.as_str()))
            .or_insert_with_key(|key| RouteEntry {
                prefix: key.clone(),
                cursor: Arc::default(),
                targets: Vec::new(),
            });
        if entry.targets.iter().any(|t| t.addr() == addr) {
            return Ok(Registered::Existing);
        }
        entry
            .targets
            .push(Arc::new(Target::new(addr, self.workers)));
        self.publish(&mut state);
        Ok(Registered::New)
    }

    /// Removes `addr` from `path`'s targets; `Ok(false)` when it was not registered there.
    pub fn deregister(&self, path: &str, addr: SocketAddr) -> Result<bool, RegistryError> {
        let prefix = normalize_prefix(path)?;
        let mut state = self.state.write();
        let Some(entry) = state.routes.get_mut(prefix.as_str()) else {
            return Ok(false);
        };
        let before = entry.targets.len();
        entry.targets.retain(|t| t.addr() != addr);
        if entry.targets.len() == before {
            return Ok(false);
        }
        self.publish(&mut state);
        Ok(true)
    }

    /// Every registered target, ordered by prefix, then round-robin order.
    pub fn targets(&self) -> Vec<TargetInfo> {
        let state = self.state.read();
        state
            .routes
            .values()
            .flat_map(|e| {
                e.targets.iter().map(|t| TargetInfo {
                    path: e.prefix.to_string(),
                    addr: t.addr(),
                    requests: t.requests(),
                })
            })
            .collect()
    }

    /// Builds and installs the snapshot for the current table, then moves the generation.
    fn publish(&self, state: &mut State) {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let routes = state
            .routes
            .values()
            .map(|e| Route::new(e.prefix.clone(), e.cursor.clone(), e.targets.clone().into()))
            .collect();
        state.snapshot = Arc::new(Snapshot::new(generation, routes));
        // Release: the snapshot above is visible to whoever sees this generation.
        self.generation.store(generation, Ordering::Release);
    }
}

/// A worker's view of the registry: the last snapshot it read and that snapshot's generation.
#[derive(Debug)]
pub struct SnapshotCache {
    registry: Arc<Registry>,
    snapshot: Arc<Snapshot>,
}

impl SnapshotCache {
    /// A cache holding the registry's current snapshot.
    pub fn new(registry: Arc<Registry>) -> Self {
        let snapshot = registry.snapshot();
        SnapshotCache { registry, snapshot }
    }

    /// The up-to-date snapshot: one atomic load per call, the read lock only after a change.
    #[inline]
    pub fn current(&mut self) -> &Snapshot {
        if self.registry.generation() != self.snapshot.generation() {
            self.snapshot = self.registry.snapshot();
        }
        &self.snapshot
    }

    /// The registry this cache follows.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}
