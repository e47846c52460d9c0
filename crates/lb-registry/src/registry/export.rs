//! The registry as a value that leaves the process: the one shape ([`Export`]) that a state file
//! holds and that a zero-downtime upgrade carries to the next lb.
//!
//! An export is JSON, versioned (`{"version":1,"routes":[...]}`), unknown fields refused. Each
//! route is its prefix and its targets in round-robin order; what else is known is optional, so
//! that what a state file keeps is exactly the file lb has always written:
//!
//! - a target is its address (`"10.0.0.5:9001"`: held by the API, fresh counts and health, weight
//!   1, no ttl); or, when the API gave it a weight or a ttl, an object with these
//!   ([`RegisteredTarget`]: `{"addr":"10.0.0.5:9001","weight":5,"lease":{"ttl_s":30,
//!   "expires_unix_ms":...}}`, the lease's end as wall-clock time so that a restart honours it);
//!   or an object with its counts, health and whether only the configuration holds it
//!   ([`CarriedTarget`]);
//! - `next_pick` is the route's round-robin position (absent: the order starts at the first
//!   target);
//! - `held_by_api` says whether the API holds the prefix, written only where the targets do not
//!   tell ([`ExportedRoute::held_by_api`]).
//!
//! Two [`Scope`]s read the table: [`Scope::Saved`] is what a state file keeps (the prefixes the
//! API holds, with the API's targets, no run-time state: a restart starts counts and health
//! afresh, and what only the configuration holds comes back from the configuration);
//! [`Scope::Carried`] is everything, with per route its position and per target its counts
//! and health, as of one instant (the new process goes on where the old one stopped).
//!
//! Older shapes still read: a state file of version 1 is this shape; the upgrade manifest's
//! routes are this shape in its version 2 and [`ListedRoute`]s in its version 1 (converted with
//! `From`). An export is installed through [`crate::Import`], which checks it all first.

use super::holders::Holder;
use super::lease::Lease;
use crate::health::CarriedHealth;
use crate::host::split_route;
use crate::target::STATUS_CLASSES;
use serde::{Deserialize, Serialize, Serializer};
use std::net::SocketAddr;
use std::time::Instant;

/// The export format's version; another one is refused.
pub const EXPORT_VERSION: u32 = 1;

/// The registry as a state file holds it or an upgrade carries it (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Versioned<Vec<ExportedRoute>>")]
pub struct Export {
    /// Every exported prefix, in order.
    pub routes: Vec<ExportedRoute>,
}

/// An export as written: the version first.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Versioned<R> {
    version: u32,
    routes: R,
}

impl TryFrom<Versioned<Vec<ExportedRoute>>> for Export {
    type Error = String;

    fn try_from(read: Versioned<Vec<ExportedRoute>>) -> Result<Self, String> {
        if read.version != EXPORT_VERSION {
            return Err(format!(
                "version {} is not supported, this lb writes version {EXPORT_VERSION}",
                read.version
            ));
        }
        Ok(Export {
            routes: read.routes,
        })
    }
}

impl Serialize for Export {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Versioned {
            version: EXPORT_VERSION,
            routes: &self.routes,
        }
        .serialize(serializer)
    }
}

/// One prefix and its targets in round-robin order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedRoute {
    /// The host the route is bound to; absent for a host-less route (and in files written
    /// before virtual hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The prefix (normalized when exported; checked when installed).
    pub path: String,
    /// The number the route's next pick takes (its cursor); absent, the order starts afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_pick: Option<usize>,
    /// Its targets in round-robin order, healthy or not (may be empty: the prefix answers 503).
    pub targets: Vec<ExportedTarget>,
    /// Whether the API holds the prefix, when its targets do not tell (see
    /// [`ExportedRoute::held_by_api`]). Written only then, so that an lb that does not know
    /// the field reads what it always read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_api: Option<bool>,
}

impl ExportedRoute {
    /// Whether the API holds the prefix: as written, else as its targets tell: when one of them
    /// is the API's, or it has none (who created it is unknown, and keeping it as the API's
    /// loses nothing). They tell wrong only for a prefix whose API targets all left while
    /// configured ones remain, and for one the configuration created whose targets all left:
    /// the field is written for those.
    pub fn held_by_api(&self) -> bool {
        self.held_by_api
            .unwrap_or_else(|| held_by_api_from(&self.targets))
    }
}

pub(crate) fn held_by_api_from(targets: &[ExportedTarget]) -> bool {
    targets.is_empty() || targets.iter().any(|t| t.holder() == Holder::Api)
}

/// One exported target: its address alone, or with what the old process knew of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExportedTarget {
    /// Held by the API; counts and health start afresh (what a state file keeps).
    Address(SocketAddr),
    /// With its counts, health and holders (what an upgrade carries).
    Carried(CarriedTarget),
    /// Held by the API with a weight or a lease (what a state file keeps of such a target).
    Registered(RegisteredTarget),
}

impl ExportedTarget {
    /// The target address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            ExportedTarget::Address(addr) => *addr,
            ExportedTarget::Carried(carried) => carried.addr,
            ExportedTarget::Registered(registered) => registered.addr,
        }
    }

    /// Its weight and lease, when it has other than the defaults.
    pub fn terms(&self) -> (Option<u16>, Option<Lease>) {
        let (weight, lease) = match self {
            ExportedTarget::Address(_) => (None, None),
            ExportedTarget::Carried(c) => (c.weight, c.lease),
            ExportedTarget::Registered(r) => (r.weight, r.lease),
        };
        (
            weight,
            lease.map(|l| Lease::from_unix_ms(l.ttl_s, l.expires_unix_ms)),
        )
    }

    /// Who holds it once installed.
    pub fn holder(&self) -> Holder {
        match self {
            ExportedTarget::Carried(CarriedTarget {
                config_only: true, ..
            }) => Holder::Config,
            _ => Holder::Api,
        }
    }
}

/// One target as carried to the next process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedTarget {
    /// The target address.
    pub addr: SocketAddr,
    /// Requests sent to it so far, summed over workers.
    pub requests: u64,
    /// Responses by status class so far (index 0 is 1xx), summed over workers.
    pub responses: [u64; STATUS_CLASSES],
    /// Its health state.
    pub health: CarriedHealth,
    /// Only the old process's configuration held it (see [`crate::Holder`]); absent (false)
    /// from an lb that did not track holders, which makes it a registration: nothing is lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_only: bool,
    /// Its weight, when not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Its lease, when registered with a ttl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<StoredLease>,
}

/// One target the API registered with a weight or a ttl, as a state file keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredTarget {
    /// The target address.
    pub addr: SocketAddr,
    /// Its weight, when not 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Its lease, when registered with a ttl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<StoredLease>,
}

/// A lease as exported: its length, and its end as wall-clock time (a restart honours it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredLease {
    /// The ttl, in seconds.
    pub ttl_s: u64,
    /// When the lease ends unless renewed, in milliseconds since the Unix epoch.
    pub expires_unix_ms: u64,
}

/// One route as an upgrade manifest of version 1 lists it: its targets in round-robin order,
/// and those only the configuration holds. Only for reading from and writing to an lb that
/// predates the run-time state in the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedRoute {
    /// The route's name: the prefix, after its host when it has one (an lb that predates
    /// virtual hosts refuses such a route).
    pub path: String,
    /// Its targets, in round-robin order.
    pub targets: Vec<SocketAddr>,
    /// Those of `targets` only the configuration holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_only: Vec<SocketAddr>,
}

impl From<ListedRoute> for ExportedRoute {
    /// The same targets and holders; fresh counts and health, and the order from the start.
    fn from(listed: ListedRoute) -> Self {
        let targets = listed
            .targets
            .iter()
            .map(|&addr| {
                if listed.config_only.contains(&addr) {
                    ExportedTarget::Carried(CarriedTarget {
                        addr,
                        requests: 0,
                        responses: [0; STATUS_CLASSES],
                        health: CarriedHealth::default(),
                        config_only: true,
                        weight: None,
                        lease: None,
                    })
                } else {
                    ExportedTarget::Address(addr)
                }
            })
            .collect();
        let (host, path) = split_route(&listed.path);
        ExportedRoute {
            host: host.map(str::to_string),
            path: path.to_string(),
            next_pick: None,
            targets,
            held_by_api: None,
        }
    }
}

impl From<&ExportedRoute> for ListedRoute {
    fn from(route: &ExportedRoute) -> Self {
        let config_only = route
            .targets
            .iter()
            .filter(|t| t.holder() == Holder::Config)
            .map(ExportedTarget::addr)
            .collect();
        ListedRoute {
            path: match &route.host {
                Some(host) => format!("{host}{}", route.path),
                None => route.path.clone(),
            },
            targets: route.targets.iter().map(ExportedTarget::addr).collect(),
            config_only,
        }
    }
}

/// Which part of the registry an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// What a state file keeps: the prefixes the API holds, with the targets it holds.
    Saved,
    /// Everything, with positions, counts and health as of this instant: what an upgrade
    /// hands over.
    Carried(Instant),
}
