//! The registry's table: every prefix with its cursor, options and holders, and its targets in
//! round-robin order with their holders and health; and every way a change may alter it.
//!
//! The methods here are the steps that changes ([`crate::Change`]) are made of; they apply the
//! holder rules ([`super::holders`]) and nothing else does. A [`Table`] is a plain value: the
//! control plane's "save first" runs a change on a copy to learn what the state file would hold
//! ([`crate::Registry::apply_saved`]), then on the registry's own table.
//!
//! A route is keyed by its name: its prefix, after its host when it is bound to one
//! ([`crate::route_name`]); the `prefix` parameters below are such names.
//!
//! Invariants: a route that nobody wants any more (no target, not the API's, not named by the
//! configuration) is removed by the step that left it so, its options and cursor with it; the
//! API's claim on a prefix goes with the API's last target there. Every
//! step that changes what workers route with sets the `republish` mark, which the registry's
//! one write path reads to publish a snapshot once per change; a step that changes only holders
//! (who would keep a target, not where requests go) does not.

use super::export::{
    held_by_api_from, CarriedTarget, Export, ExportedRoute, ExportedTarget, RegisteredTarget,
    Scope, StoredLease,
};
use super::holders::{Holder, Holders, RouteHolders};
use super::lease::{Lease, Terms, DEFAULT_WEIGHT};
use crate::cursor::Cursor;
use crate::health::{CheckOutcome, Health, HealthPolicy};
use crate::host::split_route;
use crate::router::RouteOptions;
use crate::target::Target;
use crate::Registered;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The mutable registry table; opaque outside this crate (see the module docs).
#[derive(Debug, Clone)]
pub struct Table {
    routes: BTreeMap<Arc<str>, RouteEntry>,
    /// Request counters each new target keeps (one per worker).
    workers: usize,
    /// Where a new route's cursor starts (cluster mode: an offset from the node's name, so
    /// that nodes do not all send a route's first request to its first target).
    cursor_start: usize,
    /// What workers route with changed since the last publish.
    republish: bool,
    /// What the registry's "some target is in a passive back-off" flag becomes after this
    /// write, when the write says.
    passive_down: Option<bool>,
}

/// One route.
#[derive(Debug, Clone)]
pub(crate) struct RouteEntry {
    /// Its name (see [`RouteEntry::name`]).
    prefix: Arc<str>,
    cursor: Arc<Cursor>,
    targets: Vec<Member>,
    /// Settings from the configuration (defaults for routes registered through the API).
    options: RouteOptions,
    holders: RouteHolders,
}

/// One target of one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    target: Arc<Target>,
    health: Health,
    holders: Holders,
    weight: u16,
    /// Set while the API holds it with a ttl.
    lease: Option<Lease>,
}

impl RouteEntry {
    /// The route's name: its prefix, after its host when it has one ([`crate::route_name`]).
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.prefix
    }

    pub(crate) fn cursor(&self) -> &Arc<Cursor> {
        &self.cursor
    }

    /// Its targets in round-robin order, healthy or not.
    pub(crate) fn members(&self) -> &[Member] {
        &self.targets
    }

    pub(crate) fn options(&self) -> RouteOptions {
        self.options
    }

    /// The API holds the prefix: it claimed it, or holds one of its targets.
    pub(crate) fn held_by_api(&self) -> bool {
        self.holders
            .held_by_api(self.targets.iter().map(|m| m.holders))
    }

    fn abandoned(&self) -> bool {
        self.holders.abandoned(self.targets.len())
    }

    /// The API's claim on the prefix goes when it holds none of its targets any more.
    fn withdraw_api_if_unserved(&mut self) {
        self.holders
            .withdraw_api_unless(self.targets.iter().map(|m| m.holders));
    }

    fn position(&self, addr: SocketAddr) -> Option<usize> {
        self.targets.iter().position(|m| m.target.addr() == addr)
    }
}

impl Member {
    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.target
    }

    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// Only the configuration holds it: a reload that drops it removes it, and a state file
    /// leaves it out.
    pub(crate) fn config_only(&self) -> bool {
        self.holders.only(Holder::Config)
    }

    pub(crate) fn weight(&self) -> u16 {
        self.weight
    }

    pub(crate) fn lease(&self) -> Option<Lease> {
        self.lease
    }

    fn new(target: Target, health: Health, holders: Holders) -> Self {
        Member {
            target: Arc::new(target),
            health,
            holders,
            weight: DEFAULT_WEIGHT,
            lease: None,
        }
    }

    /// The API registered it again at `now`: given terms replace the stored ones, and the
    /// lease (given or stored) starts afresh. `true` when anything stored changed.
    fn renew(&mut self, terms: Terms, now: SystemTime) -> bool {
        let weight = terms.weight.unwrap_or(self.weight);
        let lease = terms
            .ttl
            .or(self.lease.map(|l| l.ttl))
            .map(|ttl| Lease::starting(ttl, now));
        let changed = weight != self.weight || lease != self.lease;
        self.weight = weight;
        self.lease = lease;
        changed
    }

    /// The terms as a state file keeps them: `None` when they are the defaults.
    fn stored(&self) -> (Option<u16>, Option<StoredLease>) {
        (
            (self.weight != DEFAULT_WEIGHT).then_some(self.weight),
            self.lease.map(|l| StoredLease {
                ttl_s: l.ttl.as_secs(),
                expires_unix_ms: l.expires_unix_ms(),
            }),
        )
    }
}

impl Table {
    /// An empty table whose targets keep `workers` request counters.
    pub(crate) fn new(workers: usize) -> Self {
        Table {
            routes: BTreeMap::new(),
            workers,
            cursor_start: 0,
            republish: false,
            passive_down: None,
        }
    }

    /// Routes created from now on start their cursor at `start`.
    pub(crate) fn set_cursor_start(&mut self, start: usize) {
        self.cursor_start = start;
    }

    /// Every prefix, in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &RouteEntry> {
        self.routes.values()
    }

    /// Whether the last steps changed what workers route with; clears the mark.
    pub(crate) fn take_republish(&mut self) -> bool {
        std::mem::take(&mut self.republish)
    }

    /// The new value of the passive back-off flag, if the last steps set one; clears it.
    pub(crate) fn take_passive_down(&mut self) -> Option<bool> {
        self.passive_down.take()
    }

    /// `prefix`'s entry (normalized), created empty when missing.
    fn entry(&mut self, prefix: &str) -> &mut RouteEntry {
        let created = !self.routes.contains_key(prefix);
        self.republish |= created;
        let start = self.cursor_start;
        self.routes
            .entry(Arc::from(prefix))
            .or_insert_with_key(|key| RouteEntry {
                prefix: key.clone(),
                cursor: Arc::new(Cursor::starting_at(start)),
                targets: Vec::new(),
                options: RouteOptions::default(),
                holders: RouteHolders::default(),
            })
    }

    /// Removes `prefix`'s route when nobody wants it any more; `true` when it did.
    fn remove_if_abandoned(&mut self, prefix: &str) -> bool {
        let abandoned = self.routes.get(prefix).is_some_and(RouteEntry::abandoned);
        if abandoned {
            self.routes.remove(prefix);
            self.republish = true;
        }
        abandoned
    }

    /// `holder` asks for `addr` on the normalized `prefix`: appended (last in round-robin
    /// order) when new, else `holder` holds it too. Either way `holder` holds the prefix. An API
    /// registration brings its `renewal` (terms checked by the caller, and the time): it renews
    /// the target ([`Member::renew`]). The configuration's registrations bring none, so they
    /// never touch a weight or lease the API gave.
    pub(crate) fn register(
        &mut self,
        prefix: &str,
        addr: SocketAddr,
        holder: Holder,
        renewal: Option<(Terms, SystemTime)>,
    ) -> Registered {
        let workers = self.workers;
        let entry = self.entry(prefix);
        entry.holders.hold(holder);
        if let Some(at) = entry.position(addr) {
            let member = &mut entry.targets[at];
            let adopted = member.holders.hold(holder);
            let weight = member.weight;
            let renewed = renewal.is_some_and(|(terms, now)| member.renew(terms, now));
            // A new weight changes the route's schedule: workers must see it.
            self.republish |= member.weight != weight;
            return match (adopted, renewed) {
                (true, _) => Registered::Adopted,
                (false, true) => Registered::Renewed,
                (false, false) => Registered::Existing,
            };
        }
        let mut member = Member::new(
            Target::new(addr, workers),
            Health::default(),
            Holders::of(holder),
        );
        if let Some((terms, now)) = renewal {
            member.renew(terms, now);
        }
        entry.targets.push(member);
        self.republish = true;
        Registered::New
    }

    /// The configuration gives `addr` on `prefix` this weight: taken when only the
    /// configuration holds the target (the API's weight wins where it holds it too).
    pub(crate) fn weigh_configured(&mut self, prefix: &str, addr: SocketAddr, weight: u16) {
        let Some(entry) = self.routes.get_mut(prefix) else {
            return;
        };
        let Some(at) = entry.position(addr) else {
            return;
        };
        let member = &mut entry.targets[at];
        if member.holders.only(Holder::Config) && member.weight != weight {
            member.weight = weight;
            self.republish = true;
        }
    }

    /// `holder` withdraws its claim on `addr` in `prefix`; `true` when nobody held it any more
    /// and it left (and the route with it, when nobody wants that either).
    pub(crate) fn release(&mut self, prefix: &str, addr: SocketAddr, holder: Holder) -> bool {
        let Some(entry) = self.routes.get_mut(prefix) else {
            return false;
        };
        let Some(at) = entry.position(addr) else {
            return false;
        };
        if !entry.targets[at].holders.release(holder) {
            return false;
        }
        self.remove_target(prefix, at);
        true
    }

    /// Removes `addr` from `prefix` whoever holds it (the operator's explicit word beats the
    /// configuration's); `false` when it was not there.
    pub(crate) fn deregister(&mut self, prefix: &str, addr: SocketAddr) -> bool {
        let Some(entry) = self.routes.get_mut(prefix) else {
            return false;
        };
        let Some(at) = entry.position(addr) else {
            return false;
        };
        self.remove_target(prefix, at);
        true
    }

    /// Takes the target at position `at` out of `prefix`, and the API's claim on the prefix
    /// with it when that was the API's last target there; removes the route when nobody holds it
    /// any more.
    fn remove_target(&mut self, prefix: &str, at: usize) {
        if let Some(entry) = self.routes.get_mut(prefix) {
            entry.targets.remove(at);
            entry.withdraw_api_if_unserved();
            self.republish = true;
        }
        self.remove_if_abandoned(prefix);
    }

    /// Whether some lease ended by `now`.
    pub(crate) fn expiry_due(&self, now: SystemTime) -> bool {
        self.routes
            .values()
            .flat_map(|e| e.targets.iter())
            .any(|m| m.lease.is_some_and(|l| l.expired(now)))
    }

    /// Ends every lease that ran out by `now`: the API's claim on that target is withdrawn (it
    /// leaves unless the configuration names it too, then without a lease), and the route
    /// follows the deregistration rules. Returns the pairs that left, in order.
    pub(crate) fn expire(&mut self, now: SystemTime) -> Vec<(String, SocketAddr)> {
        let mut left = Vec::new();
        let mut ended_in = Vec::new();
        for entry in self.routes.values_mut() {
            let prefix = entry.prefix.clone();
            let mut ended = false;
            entry.targets.retain_mut(|m| {
                if !m.lease.is_some_and(|l| l.expired(now)) {
                    return true;
                }
                ended = true;
                m.lease = None;
                let leaves = m.holders.release(Holder::Api);
                if leaves {
                    left.push((prefix.to_string(), m.target.addr()));
                }
                !leaves
            });
            if ended {
                entry.withdraw_api_if_unserved();
                ended_in.push(prefix);
            }
        }
        for prefix in &ended_in {
            self.remove_if_abandoned(prefix);
        }
        self.republish |= !left.is_empty();
        left
    }

    /// The configuration names exactly the prefixes of `named`, with these options: each is
    /// created when missing (it answers 503 rather than falling through), a prefix it no longer
    /// names goes back to the default options and loses the configuration's claim. Removes the
    /// routes nobody wants any more and returns them, in order.
    pub(crate) fn name(&mut self, named: &BTreeMap<String, RouteOptions>) -> Vec<String> {
        for (prefix, &options) in named {
            let entry = self.entry(prefix);
            entry.holders.hold(Holder::Config);
            let changed = std::mem::replace(&mut entry.options, options) != options;
            self.republish |= changed;
        }
        let mut changed = false;
        for entry in self.routes.values_mut() {
            if !named.contains_key(&*entry.prefix) {
                entry.holders.unname();
                changed |= std::mem::take(&mut entry.options) != RouteOptions::default();
            }
        }
        let mut removed = Vec::new();
        self.routes.retain(|prefix, entry| {
            let abandoned = entry.abandoned();
            if abandoned {
                removed.push(prefix.to_string());
            }
            !abandoned
        });
        self.republish |= changed || !removed.is_empty();
        removed
    }

    /// Every target only the configuration holds that `wanted` (normalized pairs) does not name
    /// becomes the API's alone, and its prefix the API's: what an lb does at start with what
    /// the old lb's configuration held (see [`crate::InitialConfiguration`]). Routing is
    /// unchanged.
    pub(crate) fn hand_to_api_unless(&mut self, wanted: &[(String, SocketAddr)]) {
        for entry in self.routes.values_mut() {
            let prefix = &*entry.prefix;
            let mut handed = false;
            for member in &mut entry.targets {
                let addr = member.target.addr();
                if member.holders.only(Holder::Config)
                    && !wanted.iter().any(|(p, a)| p == prefix && *a == addr)
                {
                    member.holders.hold(Holder::Api);
                    member.holders.release(Holder::Config);
                    handed = true;
                }
            }
            if handed {
                entry.holders.hold(Holder::Api);
            }
        }
    }

    /// Installs one route of an export (a state file or another process), its prefix
    /// normalized and its targets checked by the caller. `next_pick` replaces the cursor when
    /// given; a target already there keeps its own counts and health and gains the export's
    /// holder; a new one is appended with the export's counts and health (`probed`: whether this
    /// process probes the route, see [`Health::from_carried`]) or fresh ones.
    pub(crate) fn install(
        &mut self,
        prefix: &str,
        route: &ExportedRoute,
        (now, wall): (Instant, SystemTime),
        probed: bool,
    ) {
        let workers = self.workers;
        let entry = self.entry(prefix);
        if let Some(next) = route.next_pick {
            entry.cursor = Arc::new(Cursor::starting_at(next));
        }
        let mut passive_down = false;
        for exported in &route.targets {
            let addr = exported.addr();
            let (weight, lease) = exported.terms();
            if lease.is_some_and(|l| l.expired(wall)) {
                continue;
            }
            if let Some(at) = entry.position(addr) {
                entry.targets[at].holders.hold(exported.holder());
                continue;
            }
            let (target, health) = match exported {
                ExportedTarget::Address(_) | ExportedTarget::Registered(_) => {
                    (Target::new(addr, workers), Health::default())
                }
                ExportedTarget::Carried(carried) => (
                    Target::with_counts(addr, workers, carried.requests, carried.responses),
                    Health::from_carried(carried.health.clone(), now, probed),
                ),
            };
            passive_down |= health.passive_down();
            let mut member = Member::new(target, health, Holders::of(exported.holder()));
            member.weight = weight.unwrap_or(DEFAULT_WEIGHT);
            member.lease = lease;
            entry.targets.push(member);
        }
        // The API holds the prefix only through a target of its own: an empty route from an
        // older state file, or one whose leases all ended, does not come back as a 503.
        if route.held_by_api()
            && entry
                .targets
                .iter()
                .any(|m| m.holders.is_held_by(Holder::Api))
        {
            entry.holders.hold(Holder::Api);
        }
        if passive_down {
            self.passive_down = Some(true);
        }
        self.republish = true;
        self.remove_if_abandoned(prefix);
    }

    /// Whether a passive failure of `addr` would change anything: some route has it and it is
    /// not in a back-off yet.
    pub(crate) fn would_mark_down(&self, addr: SocketAddr) -> bool {
        self.members_at(addr).any(|m| !m.health.passive_down())
    }

    fn members_at(&self, addr: SocketAddr) -> impl Iterator<Item = &Member> {
        self.routes
            .values()
            .flat_map(|e| e.targets.iter())
            .filter(move |m| m.target.addr() == addr)
    }

    /// A passive failure of `addr` at `now`: out of every pick list it is in for `backoff`;
    /// `true` when this took it out somewhere.
    pub(crate) fn mark_down(&mut self, addr: SocketAddr, now: Instant, backoff: Duration) -> bool {
        let mut changed = false;
        for entry in self.routes.values_mut() {
            for member in entry.targets.iter_mut().filter(|m| m.target.addr() == addr) {
                let was = member.health.healthy();
                member.health.mark_down(now, backoff);
                changed |= was;
            }
        }
        self.passive_down = Some(true);
        self.republish |= changed;
        changed
    }

    /// Ends every passive back-off that has run out by `now`; how many targets are healthy
    /// again.
    pub(crate) fn revive(&mut self, now: Instant) -> usize {
        let (mut revived, mut still_down) = (0, false);
        for entry in self.routes.values_mut() {
            for member in &mut entry.targets {
                if member.health.revive(now) {
                    revived += usize::from(member.health.healthy());
                }
                still_down |= member.health.passive_down();
            }
        }
        self.passive_down = Some(still_down);
        self.republish |= revived > 0;
        revived
    }

    /// One active probe of `addr` on `prefix`, ended at `at`: the target's new `healthy` value
    /// when it changed, `None` when it did not or the target is not there.
    pub(crate) fn record_check(
        &mut self,
        prefix: &str,
        addr: SocketAddr,
        outcome: CheckOutcome,
        policy: &HealthPolicy,
        at: SystemTime,
    ) -> Option<bool> {
        let entry = self.routes.get_mut(prefix)?;
        let index = entry.position(addr)?;
        let health = &mut entry.targets[index].health;
        let was = health.healthy();
        health.record_at(outcome, policy, at);
        let now = health.healthy();
        self.republish |= now != was;
        (now != was).then_some(now)
    }
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
                        .map(|m| match m.stored() {
                            (None, None) => ExportedTarget::Address(m.target().addr()),
                            (weight, lease) => ExportedTarget::Registered(RegisteredTarget {
                                addr: m.target().addr(),
                                weight,
                                lease,
                            }),
                        })
                        .collect(),
                    Scope::Carried(now) => e
                        .members()
                        .iter()
                        .map(|m| {
                            let (weight, lease) = m.stored();
                            ExportedTarget::Carried(CarriedTarget {
                                addr: m.target().addr(),
                                requests: m.target().requests(),
                                responses: m.target().responses(),
                                health: m.health().carry(now),
                                config_only: m.config_only(),
                                weight,
                                lease,
                            })
                        })
                        .collect(),
                };
                let held = e.held_by_api();
                let (host, path) = split_route(e.name());
                ExportedRoute {
                    host: host.map(str::to_string),
                    path: path.to_string(),
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
