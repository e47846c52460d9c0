//! The registry as a value that leaves the process: the one shape ([`Export`]) that a state file
//! holds and that a zero-downtime upgrade carries to the next lb.
//!
//! An export is JSON, versioned (`{"version":1,"routes":[...]}`), unknown fields refused. Each
//! route is its prefix and its targets in round-robin order; what else is known is optional, so
//! that what a state file keeps is exactly the file lb has always written:
//!
//! - a target is its address (`"10.0.0.5:9001"`: held by the API, fresh counts and health), or
//!   an object with its counts, health and whether only the configuration holds it
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
use super::table::Table;
use crate::health::CarriedHealth;
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

fn held_by_api_from(targets: &[ExportedTarget]) -> bool {
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
}

impl ExportedTarget {
    /// The target address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            ExportedTarget::Address(addr) => *addr,
            ExportedTarget::Carried(carried) => carried.addr,
        }
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
}

/// One route as an upgrade manifest of version 1 lists it: its targets in round-robin order,
/// and those only the configuration holds. Only for reading from and writing to an lb that
/// predates the run-time state in the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedRoute {
    /// The prefix.
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
                    })
                } else {
                    ExportedTarget::Address(addr)
                }
            })
            .collect();
        ExportedRoute {
            path: listed.path,
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
            path: route.path.clone(),
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

impl Table {
    /// The table as `scope` exports it (see the module docs).
    pub(crate) fn export(&self, scope: Scope) -> Export {
        let routes = self
            .entries()
            .filter(|e| scope != Scope::Saved || e.held_by_api())
            .map(|e| {
                let targets: Vec<ExportedTarget> = match scope {
                    Scope::Saved => e
                        .members()
                        .iter()
                        .filter(|m| !m.config_only())
                        .map(|m| ExportedTarget::Address(m.target().addr()))
                        .collect(),
                    Scope::Carried(now) => e
                        .members()
                        .iter()
                        .map(|m| {
                            ExportedTarget::Carried(CarriedTarget {
                                addr: m.target().addr(),
                                requests: m.target().requests(),
                                responses: m.target().responses(),
                                health: m.health().carry(now),
                                config_only: m.config_only(),
                            })
                        })
                        .collect(),
                };
                let held = e.held_by_api();
                ExportedRoute {
                    path: e.prefix().to_string(),
                    next_pick: match scope {
                        Scope::Saved => None,
                        Scope::Carried(_) => Some(e.cursor().peek()),
                    },
                    held_by_api: (held != held_by_api_from(&targets)).then_some(held),
                    targets,
                }
            })
            .collect();
        Export { routes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckOutcome, HealthPolicy, Registry};
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn picks(registry: &Registry, path: &str, n: usize) -> Vec<u16> {
        let snapshot = registry.snapshot();
        let route = snapshot.lookup(path).expect("route").route;
        (0..n)
            .map(|_| route.pick().expect("a target").addr().port())
            .collect()
    }

    /// A registry with "/a" -> [1, 2, 3] after four picks, target 2 down by its probes, target 3
    /// in a passive back-off, and an empty "/gone".
    fn old_registry(t0: Instant) -> Registry {
        let old = Registry::with_policy(
            2,
            HealthPolicy {
                rise: 2,
                fall: 1,
                backoff: Duration::from_secs(10),
            },
        );
        for port in [1, 2, 3] {
            old.register("/a", addr(port)).unwrap();
        }
        old.ensure_route("/gone").unwrap();
        assert_eq!(picks(&old, "/a", 4), [1, 2, 3, 1]);
        for target in old.snapshot().lookup("/a").unwrap().route.targets() {
            target.record_request(1);
            target.record_response(1, 200);
        }
        old.record_check("/a", addr(2), CheckOutcome::status(503));
        old.mark_down_at(addr(3), t0);
        old
    }

    #[test]
    fn the_next_process_continues_the_order_counts_and_health() {
        let t0 = Instant::now();
        let old = old_registry(t0);
        let carried = old.export(Scope::Carried(t0 + Duration::from_secs(4)));
        assert_eq!(carried.routes.len(), 2);
        assert_eq!(carried.routes[0].next_pick, Some(4));
        // Through the wire format, as an upgrade sends it.
        let json = serde_json::to_vec(&carried).unwrap();
        let carried: Export = serde_json::from_slice(&json).unwrap();

        let t1 = t0 + Duration::from_secs(1_000);
        let new = Registry::with_policy(3, old.policy());
        new.import(carried, t1, |_| true).unwrap();
        assert_eq!(new.routes(), old.routes(), "same routes and order");
        let (was, now) = (old.targets(), new.targets());
        assert_eq!(now, was, "same counts, health and last checks");
        assert_eq!(
            now.iter().map(|t| t.requests).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert!(now.iter().all(|t| t.responses == [0, 1, 0, 0, 0]));
        // Only 1 is healthy; pick 4 of the old order continues on the healthy list.
        assert_eq!(
            new.snapshot().lookup("/a").unwrap().route.targets().len(),
            1
        );
        // The back-off has its 6 s left from the import on.
        assert_eq!(new.revive_due(t1 + Duration::from_millis(5_999)), 0);
        assert_eq!(new.revive_due(t1 + Duration::from_secs(6)), 1);
        assert_eq!(
            picks(&new, "/a", 4),
            [1, 3, 1, 3],
            "picks 4, 5, 6, 7 of [1, 3]"
        );
        // Target 2 comes back when this process's probes say so (rise 2).
        new.record_check("/a", addr(2), CheckOutcome::status(200));
        assert_eq!(
            new.record_check("/a", addr(2), CheckOutcome::status(200)),
            Some(true)
        );
        assert_eq!(
            picks(&new, "/a", 3),
            [3, 1, 2],
            "picks 8, 9, 10 of [1, 2, 3]"
        );
    }

    #[test]
    fn all_healthy_targets_continue_at_the_next_position() {
        let old = Registry::new(1);
        for port in [1, 2, 3] {
            old.register("/", addr(port)).unwrap();
        }
        assert_eq!(picks(&old, "/", 4), [1, 2, 3, 1]);
        let new = Registry::new(1);
        new.import(
            old.export(Scope::Carried(Instant::now())),
            Instant::now(),
            |_| false,
        )
        .unwrap();
        assert_eq!(picks(&new, "/", 3), [2, 3, 1]);
    }

    #[test]
    fn an_unprobed_route_drops_the_active_state_but_keeps_the_back_off() {
        let t0 = Instant::now();
        let old = old_registry(t0);
        let new = Registry::new(1);
        new.import(old.export(Scope::Carried(t0)), t0, |prefix| prefix != "/a")
            .unwrap();
        let healthy: Vec<_> = new.targets().iter().map(|t| t.healthy).collect();
        assert_eq!(healthy, [true, true, false], "2 is up, 3 still backs off");
        assert!(new.targets().iter().all(|t| t.last_check.is_none()));
        assert_eq!(new.revive_due(t0 + Duration::from_secs(10)), 1);
    }

    /// Which prefixes the API holds goes across, so that the new process's state file saves the
    /// same ones; it is written out only where the targets do not tell.
    #[test]
    fn which_prefixes_the_api_holds_goes_across() {
        let old = Registry::new(1);
        old.register("/api", addr(1)).unwrap();
        old.register_as("/config", addr(2), Holder::Config).unwrap();
        old.register_as("/emptied", addr(3), Holder::Config)
            .unwrap();
        old.release("/emptied", addr(3), Holder::Config).unwrap();
        old.ensure_route("/restored").unwrap();
        old.register_as("/was-api", addr(4), Holder::Config)
            .unwrap();
        old.register("/was-api", addr(5)).unwrap();
        old.deregister("/was-api", addr(5)).unwrap();
        let carried = old.export(Scope::Carried(Instant::now()));
        let sent: Vec<_> = carried
            .routes
            .iter()
            .map(|r| (r.path.as_str(), r.held_by_api))
            .collect();
        assert_eq!(
            sent,
            [
                ("/api", None),
                ("/config", None),
                ("/emptied", Some(false)),
                ("/restored", None),
                ("/was-api", Some(true)),
            ]
        );
        let new = Registry::new(1);
        new.import(carried, Instant::now(), |_| false).unwrap();
        assert_eq!(new.routes(), old.routes());
        let held: Vec<_> = new.routes().iter().map(|r| r.held_by_api).collect();
        assert_eq!(held, [true, false, false, true, true]);
    }

    #[test]
    fn an_invalid_import_changes_nothing_and_existing_targets_keep_their_state() {
        let new = Registry::new(1);
        new.register("/a", addr(1)).unwrap();
        let mut bad = old_registry(Instant::now()).export(Scope::Carried(Instant::now()));
        bad.routes[0].targets[1] = ExportedTarget::Address(SocketAddr::from(([0, 0, 0, 0], 80)));
        assert!(new.import(bad, Instant::now(), |_| true).is_err());
        let bad_path = Export {
            routes: vec![ExportedRoute {
                path: "no-slash".to_string(),
                next_pick: Some(0),
                targets: Vec::new(),
                held_by_api: None,
            }],
        };
        assert!(new.import(bad_path, Instant::now(), |_| true).is_err());
        assert_eq!(new.routes().len(), 1);
        assert_eq!(new.targets()[0].requests, 0);

        let good = old_registry(Instant::now()).export(Scope::Carried(Instant::now()));
        new.import(good, Instant::now(), |_| true).unwrap();
        let now = new.targets();
        assert_eq!(now[0].requests, 0, "already registered: kept as it was");
        assert!(now[0].healthy);
        assert_eq!(now[1].addr, addr(2));
        assert_eq!(now[1].requests, 1);
    }
}
