//! lb's target registry: which prefixes exist, which targets serve them, and in what order.
//!
//! The control plane changes the registry through [`Registry`] (a `parking_lot::RwLock` around the
//! mutable table). Every change publishes a new immutable [`Snapshot`] and bumps a generation
//! counter; workers keep an `Arc<Snapshot>` in a [`SnapshotCache`] and take the lock only when the
//! generation moved, so the request path never contends on a lock.
//!
//! Per request the only shared write is one relaxed `fetch_add` on the route's cache-padded
//! [`Cursor`]: the k-th pick for a prefix, counted over all workers, goes to target `k mod n`.
//!
//! Health ([`HealthPolicy`], [`CheckOutcome`]) lives here too: a target that is down stays
//! registered but leaves the snapshot's pick list, so round robin is exact over the healthy ones.
//!
//! The configuration's routes go in through [`Registry::reconfigure`], at start and on every
//! reload, in one step; a prefix only the configuration held leaves when it stops naming it.
//!
//! A zero-downtime upgrade carries cursors, request counts and health to the next lb process
//! ([`Registry::export`], [`Registry::import`]).
//!
//! This crate is pure: no tokio, no sockets, and no clock except in [`Registry::mark_down`],
//! which reads it once so the data path can call it with just an address.

#![forbid(unsafe_code)]

mod cursor;
mod health;
mod registry;
mod router;
mod target;

pub use cursor::Cursor;
pub use health::{
    CarriedHealth, CheckOutcome, HealthPolicy, DEFAULT_BACKOFF, DEFAULT_FALL, DEFAULT_RISE,
};
pub use registry::carry::{CarriedRoute, CarriedTarget};
pub use registry::configuration::{Reconfiguration, Reconfigured};
pub use registry::undo::Undo;
pub use registry::{
    normalize_prefix, PinnedSnapshot, Registered, Registry, RegistryError, RouteTargets,
    SnapshotCache, Source, TargetInfo,
};
pub use router::{Match, Route, RouteOptions, Slot, Snapshot};
pub use target::{status_class, Target, STATUS_CLASSES};
