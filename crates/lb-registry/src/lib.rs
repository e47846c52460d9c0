//! lb's target registry: which prefixes exist, which targets serve them, and in what order.
//!
//! The control plane changes the registry through [`Registry`] (a `parking_lot::RwLock` around the
//! mutable table). Every change publishes a new immutable [`Snapshot`] and bumps a generation
//! counter; workers keep an `Arc<Snapshot>` in a [`SnapshotCache`] and take the lock only when the
//! generation moved, so the request path never contends on a lock.
//!
//! Per request the only shared write is one relaxed `fetch_add` on the route's cache-padded
//! [`Cursor`]: the k-th pick for a prefix, counted over all workers, goes to target `k mod n`,
//! or with unequal weights to the k-th slot (mod its period) of the route's smooth weighted
//! [`Schedule`], computed when the snapshot is published.
//!
//! Health ([`HealthPolicy`], [`CheckOutcome`]) lives here too: a target that is down stays
//! registered but leaves the snapshot's pick list, so round robin is exact over the healthy ones.
//!
//! Every change is a value ([`Change`]: a registration, a deregistration, a reconfiguration, an
//! import of a state file or of what an upgrade carried) applied through one door,
//! [`Registry::apply`]; [`Registry::apply_saved`] saves what the state file would hold first and
//! applies the change only when that worked. Who holds a target or a prefix ([`Holder`]) is
//! decided inside this crate only. The configuration's routes go in as one change at start
//! ([`InitialConfiguration`]) and on every reload ([`Reconfiguration`]); a prefix only the
//! configuration held leaves when it stops naming it.
//!
//! A registration may carry a weight and a ttl ([`Terms`]): a target with a ttl holds a
//! [`Lease`] and leaves routing when nobody registers it again in time ([`Expiry`], driven by
//! the caller's clock). The API's last target leaving a prefix takes the prefix with it unless
//! the configuration names it.
//!
//! The state file and a zero-downtime upgrade use one versioned shape, [`Export`] (see
//! [`Scope`]); an upgrade carries cursors, request counts and health to the next lb process.
//!
//! This crate is pure: no tokio, no sockets, and no clock except in [`Registry::mark_down`],
//! which reads it once so the data path can call it with just an address, and in the
//! conveniences [`Registry::register`], [`Registry::register_as`], [`Registry::import`] and
//! [`Registry::record_check`].

#![forbid(unsafe_code)]

mod balance;
mod cursor;
mod error;
mod failures;
mod health;
mod host;
mod label;
mod maglev;
mod registry;
mod router;
mod schedule;
mod target;

pub use balance::{Balance, HashKey, KeyName, MAX_KEY_NAME};
pub use cursor::Cursor;
pub use failures::{MaxFails, DEFAULT_FAIL_STATUSES};
pub use health::{
    CarriedHealth, CheckOutcome, HealthPolicy, DEFAULT_BACKOFF, DEFAULT_FALL, DEFAULT_RISE,
};
pub use host::{join_route, normalize_host, request_host, route_name, split_route, MAX_HOST};
pub use label::escape_label;
pub use maglev::{key_hash, Maglev, TABLE_SIZE};
pub use registry::change::{
    Change, Deregistration, Expiry, Import, Refused, Registration, Release,
};
pub use registry::configuration::{InitialConfiguration, Reconfiguration, Reconfigured};
pub use registry::export::{
    CarriedTarget, Export, ExportedRoute, ExportedTarget, ListedRoute, RegisteredTarget, Scope,
    StoredLease, EXPORT_VERSION,
};
pub use registry::lease::{
    check_ttl, check_weight, Lease, Terms, DEFAULT_WEIGHT, MAX_TTL, MAX_WEIGHT,
};
pub use registry::table::Table;
pub use registry::{
    normalize_prefix, Holder, PinnedSnapshot, Registered, Registry, RegistryError, RouteInfo,
    RouteTargets, SnapshotCache, TargetInfo,
};
pub use router::{Match, Route, RouteOptions, Slot, Snapshot, DEFAULT_RETRIES, MAX_RETRIES};
pub use schedule::Schedule;
pub use target::{status_class, Target, STATUS_CLASSES};
