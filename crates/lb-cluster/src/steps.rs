//! What the cluster does to the registry: a batch of [`Step`]s applied as one registry change.
//!
//! A watch response (many events) or a re-read (the difference, maybe 10,000 routes) is one
//! [`Steps`] change through the registry's one door, so workers get one new snapshot for the
//! whole batch instead of one per event, and the batch is applied in etcd's revision order.
//! A put is an API registration (the weight replaces the stored one; no local lease: etcd's
//! lease expires the key, and the delete comes through the watch); a delete releases the API's
//! hold only, so a target the node's configuration also names stays (config routes are local).

use lb_registry::{Change, Holder, Registration, RegistryError, Release, Table, Terms};
use std::net::SocketAddr;
use std::time::SystemTime;

/// One registry step the cluster asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `addr` serves `path` with `weight` (added last in round-robin order when new).
    Register {
        /// The normalized prefix.
        path: String,
        /// The target.
        addr: SocketAddr,
        /// Its weight.
        weight: u16,
    },
    /// The API's hold on `addr` in `path` ends.
    Release {
        /// The normalized prefix.
        path: String,
        /// The target.
        addr: SocketAddr,
    },
}

/// Steps applied in order as one change at `now`; the outcome counts those that did something.
#[derive(Debug)]
pub struct Steps<'a> {
    /// In etcd's revision order.
    pub steps: &'a [Step],
    /// The wall-clock time registrations are made at.
    pub now: SystemTime,
}

impl Change for Steps<'_> {
    type Outcome = usize;

    /// Each step is checked by the registry before it alters anything; one it refuses (only
    /// possible for a key the decoder let through by mistake) is skipped, not the batch: the
    /// node must follow etcd with every step it can apply.
    fn apply(&self, table: &mut Table) -> Result<usize, RegistryError> {
        let mut applied = 0;
        for step in self.steps {
            let changed = match step {
                Step::Register { path, addr, weight } => Registration {
                    path,
                    addr: *addr,
                    holder: Holder::Api,
                    terms: Terms {
                        weight: Some(*weight),
                        ttl: None,
                    },
                    now: self.now,
                }
                .apply(table)
                .map(|r| Registration::changed(&r)),
                Step::Release { path, addr } => Release {
                    path,
                    addr: *addr,
                    holder: Holder::Api,
                }
                .apply(table),
            };
            match changed {
                Ok(true) => applied += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(?step, %error, "cluster step refused by the registry"),
            }
        }
        Ok(applied)
    }

    fn changed(applied: &usize) -> bool {
        *applied > 0
    }
}
