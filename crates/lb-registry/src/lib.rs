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
//! This crate is pure: no tokio, no sockets, no clock.

mod cursor;
mod registry;
mod router;
mod target;

pub use cursor::Cursor;
pub use registry::{
    normalize_prefix, Registered, Registry, RegistryError, SnapshotCache, TargetInfo,
};
pub use router::{Match, Route, Snapshot};
pub use target::Target;
