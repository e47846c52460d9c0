//! The registry's run-time state, carried across a zero-downtime upgrade to the next lb process:
//! per route its round-robin position, per target its request and response counts and health.
//!
//! Without it the new process would restart every route's order at its first target (the
//! global order would jump at each upgrade), send traffic again to targets the old process had
//! found down, and reset `GET /targets`' counts.
//!
//! [`Registry::export`] reads it as of one instant; [`Registry::import`] installs it in the new
//! process before its workers start. What the old process routes after the export is not in
//! it: the operations guide ("Zero-downtime upgrade") says what that means for the order.
//! Route options are not carried, nor which prefixes the old configuration named: the new
//! process's configuration gives both. A carried route that nobody holds there (no target, not
//! the API's, not named by the new configuration) is removed when that configuration is applied
//! at start ([`Registry::reconfigure`]), as a reload would remove it; until then it is kept.

use super::{
    check_target, normalize_prefix, route_entry, Holders, Member, Registry, RegistryError, Source,
};
use crate::cursor::Cursor;
use crate::health::{CarriedHealth, Health};
use crate::target::{Target, STATUS_CLASSES};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// One route as carried to the next process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedRoute {
    /// The normalized prefix.
    pub path: String,
    /// The number the route's next pick takes (its cursor).
    pub next_pick: usize,
    /// Its targets in round-robin order, healthy or not (may be empty: the prefix answers 503).
    pub targets: Vec<CarriedTarget>,
    /// Whether the API holds the prefix ([`crate::RouteTargets::held_by_api`]). Absent, it is
    /// told by the targets: held when one of them is the API's or there is none. It is sent
    /// only where that would be wrong (rare), so a manifest stays readable by an lb that does
    /// not know this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_api: Option<bool>,
}

/// Whether the API holds a prefix, as far as its targets tell: when it has an API target, or no
/// target at all (who created it is unknown, and keeping it as the API's loses nothing). Wrong
/// only for a prefix whose API targets all left while configured ones remain, and for one the
/// configuration created (and still names) whose targets all left: [`CarriedRoute::held_by_api`]
/// says so then, so that the new process removes it unless its own configuration names it.
fn held_by_api_from(targets: &[CarriedTarget]) -> bool {
    targets.is_empty() || targets.iter().any(|t| !t.config_only)
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
    /// Only the old process's configuration held it (see [`Source`]); absent (false) from an
    /// lb that did not track sources, which makes it a registration: nothing is lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_only: bool,
}

impl Registry {
    /// Every route with its cursor position and its targets' counts and health, as of `now`.
    /// Cursors are read under the read lock but keep moving with the requests still routed.
    pub fn export(&self, now: Instant) -> Vec<CarriedRoute> {
        let state = self.state.read();
        state
            .routes
            .values()
            .map(|e| {
                let targets: Vec<CarriedTarget> = e
                    .targets
                    .iter()
                    .map(|m| CarriedTarget {
                        addr: m.target.addr(),
                        requests: m.target.requests(),
                        responses: m.target.responses(),
                        health: m.health.carry(now),
                        config_only: m.holders.config_only(),
                    })
                    .collect();
                let held = e.held_by_api();
                CarriedRoute {
                    path: e.prefix.to_string(),
                    next_pick: e.cursor.peek(),
                    held_by_api: (held != held_by_api_from(&targets)).then_some(held),
                    targets,
                }
            })
            .collect()
    }

    /// Installs `routes` exported by another process, as of `now` here; `probed(prefix)` tells
    /// whether this process probes that route (where it does not, the active health state is
    /// dropped: no probe here would ever bring the target back). Meant for a new registry,
    /// before workers use it: each route's cursor is replaced, and a target already registered
    /// keeps its own count and health. Everything is checked first: on error the registry is
    /// unchanged.
    pub fn import(
        &self,
        routes: Vec<CarriedRoute>,
        now: Instant,
        probed: impl Fn(&str) -> bool,
    ) -> Result<(), RegistryError> {
        let mut checked = Vec::with_capacity(routes.len());
        for route in routes {
            let prefix = normalize_prefix(&route.path)?;
            for target in &route.targets {
                check_target(target.addr)?;
            }
            checked.push((prefix, route));
        }
        let mut state = self.state.write();
        let mut passive_down = false;
        for (prefix, route) in checked {
            let probed = probed(&prefix);
            let entry = route_entry(&mut state, &prefix);
            entry.cursor = Arc::new(Cursor::starting_at(route.next_pick));
            entry.api_claimed |= route
                .held_by_api
                .unwrap_or_else(|| held_by_api_from(&route.targets));
            for target in route.targets {
                if entry.targets.iter().any(|m| m.target.addr() == target.addr) {
                    continue;
                }
                let health = Health::from_carried(target.health, now, probed);
                passive_down |= health.passive_down();
                entry.targets.push(Member {
                    target: Arc::new(Target::with_counts(
                        target.addr,
                        self.workers,
                        target.requests,
                        target.responses,
                    )),
                    health,
                    holders: Holders::of(if target.config_only {
                        Source::Config
                    } else {
                        Source::Api
                    }),
                });
            }
        }
        if passive_down {
            // Relaxed: written under the write lock, as in `mark_down_at`.
            self.passive_down.store(true, Ordering::Relaxed);
        }
        self.publish(&mut state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckOutcome, HealthPolicy};
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
        let carried = old.export(t0 + Duration::from_secs(4));
        assert_eq!(carried.len(), 2);
        assert_eq!(carried[0].next_pick, 4);
        // Through the wire format, as an upgrade sends it.
        let json = serde_json::to_vec(&carried).unwrap();
        let carried: Vec<CarriedRoute> = serde_json::from_slice(&json).unwrap();

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
        new.import(old.export(Instant::now()), Instant::now(), |_| false)
            .unwrap();
        assert_eq!(picks(&new, "/", 3), [2, 3, 1]);
    }

    #[test]
    fn an_unprobed_route_drops_the_active_state_but_keeps_the_back_off() {
        let t0 = Instant::now();
        let old = old_registry(t0);
        let new = Registry::new(1);
        new.import(old.export(t0), t0, |prefix| prefix != "/a")
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
        old.register_as("/config", addr(2), Source::Config).unwrap();
        old.register_as("/emptied", addr(3), Source::Config)
            .unwrap();
        old.release("/emptied", addr(3), Source::Config).unwrap();
        old.ensure_route("/restored").unwrap();
        old.register_as("/was-api", addr(4), Source::Config)
            .unwrap();
        old.register("/was-api", addr(5)).unwrap();
        old.deregister("/was-api", addr(5)).unwrap();
        let carried = old.export(Instant::now());
        let sent: Vec<_> = carried
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
        let mut bad = old_registry(Instant::now()).export(Instant::now());
        bad[0].targets[1].addr = SocketAddr::from(([0, 0, 0, 0], 80));
        assert!(new.import(bad, Instant::now(), |_| true).is_err());
        let bad_path = vec![CarriedRoute {
            path: "no-slash".to_string(),
            next_pick: 0,
            targets: Vec::new(),
            held_by_api: None,
        }];
        assert!(new.import(bad_path, Instant::now(), |_| true).is_err());
        assert_eq!(new.routes().len(), 1);
        assert_eq!(new.targets()[0].requests, 0);

        let good = old_registry(Instant::now()).export(Instant::now());
        new.import(good, Instant::now(), |_| true).unwrap();
        let now = new.targets();
        assert_eq!(now[0].requests, 0, "already registered: kept as it was");
        assert!(now[0].healthy);
        assert_eq!(now[1].addr, addr(2));
        assert_eq!(now[1].requests, 1);
    }
}
