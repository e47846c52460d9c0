//! Changes to the registry, and the one door they go through.
//!
//! A change is a value ([`Registration`], [`Deregistration`], [`Release`], [`crate::Expiry`],
//! [`crate::Reconfiguration`], [`crate::InitialConfiguration`], [`Import`]) whose
//! [`Change::apply`] is a pure function of the table. [`Registry::apply`] runs it under the
//! write lock and publishes one snapshot when routing changed; [`Registry::apply_saved`] first
//! runs it on a copy of the table, hands what the state file would then hold to `save`, and
//! applies it only when `save` succeeded. So a change that cannot be saved never happened: no
//! undo, and nobody ever routes with it.
//!
//! Invariants: one change at a time (the door's mutex), so the table a change was saved for is
//! the table it is applied to: health (probes, passive failures) may move meanwhile, but it is
//! not in a state file and no change depends on it. A change checks everything before it alters
//! anything: on error the registry is as it was. Health writes take the write lock without the
//! door, so a worker's passive failure never waits for a save.

use super::export::{Export, Scope};
use super::holders::Holder;
use super::lease::Terms;
use super::table::Table;
use super::{check_target, Registered, Registry, RegistryError};
use crate::host::{normalize_route, route_name};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// A change to the registry's table (see the module docs).
pub trait Change {
    /// What the change did.
    type Outcome;

    /// Applies the change to `table`, checking everything first: an error leaves it untouched.
    fn apply(&self, table: &mut Table) -> Result<Self::Outcome, RegistryError>;

    /// Whether `outcome` changed the table, so that the control plane saves it.
    fn changed(outcome: &Self::Outcome) -> bool;
}

/// Why [`Registry::apply_saved`] did not apply a change. The registry is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused<E> {
    /// The change is invalid.
    Invalid(RegistryError),
    /// Saving what the change would make failed.
    NotSaved(E),
}

impl<E: fmt::Display> fmt::Display for Refused<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Invalid(e) => e.fmt(f),
            Refused::NotSaved(e) => write!(f, "not saved: {e}"),
        }
    }
}

impl Registry {
    /// Applies `change` (see the module docs): one change at a time, one snapshot published
    /// when routing changed.
    pub fn apply<C: Change>(&self, change: &C) -> Result<C::Outcome, RegistryError> {
        let _one_change = self.door.lock();
        self.write(|table, _| change.apply(table))
    }

    /// What the state file would hold after `change`, and what `change` would do, without
    /// applying it: `current table + change -> new export`.
    pub fn plan<C: Change>(&self, change: &C) -> Result<(C::Outcome, Export), RegistryError> {
        let mut would_be = self.state.read().table.clone();
        let outcome = change.apply(&mut would_be)?;
        Ok((outcome, would_be.export(Scope::Saved)))
    }

    /// Saves what the state file would hold after `change` with `save` (when the change
    /// changes anything), then applies it; when `save` fails, nothing is applied. No lock is
    /// held while `save` runs, so workers and health checks go on; other changes wait.
    pub fn apply_saved<C: Change, E>(
        &self,
        change: &C,
        save: impl FnOnce(&Export) -> Result<(), E>,
    ) -> Result<C::Outcome, Refused<E>> {
        let _one_change = self.door.lock();
        let (planned, would_be) = self.plan(change).map_err(Refused::Invalid)?;
        if C::changed(&planned) {
            save(&would_be).map_err(Refused::NotSaved)?;
        }
        self.write(|table, _| change.apply(table))
            .map_err(Refused::Invalid)
    }
}

/// `holder` asks for `addr` to serve `path` (appended: last in round-robin order), or, when it
/// is already there, holds it too. An API registration of a target it already holds renews it:
/// the given [`Terms`] replace the stored ones, the omitted ones stay, and a lease starts
/// afresh at `now` (a heartbeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'a> {
    /// The route: its prefix, or its host then its prefix (`api.example.com/v1`, see
    /// [`crate::route_name`]); normalized here.
    pub path: &'a str,
    /// The target.
    pub addr: SocketAddr,
    /// Who asks.
    pub holder: Holder,
    /// Weight and ttl, when given.
    pub terms: Terms,
    /// The wall-clock time a lease starts at.
    pub now: SystemTime,
}

impl<'a> Registration<'a> {
    /// A control-plane registration (`POST /register`) at `now`.
    pub fn api(path: &'a str, addr: SocketAddr, terms: Terms, now: SystemTime) -> Self {
        Registration {
            path,
            addr,
            holder: Holder::Api,
            terms,
            now,
        }
    }
}

impl Change for Registration<'_> {
    type Outcome = Registered;

    fn apply(&self, table: &mut Table) -> Result<Registered, RegistryError> {
        let prefix = normalize_route(self.path)?;
        check_target(self.addr)?;
        self.terms.check()?;
        let renewal = (self.holder == Holder::Api).then_some((self.terms, self.now));
        Ok(table.register(&prefix, self.addr, self.holder, renewal))
    }

    fn changed(outcome: &Registered) -> bool {
        *outcome != Registered::Existing
    }
}

/// Removes `addr` from `path` whoever holds it (`POST /deregister`: the operator's explicit word
/// beats the configuration's). When no target of the API's is left there, the API's claim on the
/// prefix goes too: a prefix the configuration does not name then leaves, and its requests fall
/// through to the next shorter prefix. Outcome: whether it was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deregistration<'a> {
    /// The route: its prefix, or its host then its prefix (`api.example.com/v1`, see
    /// [`crate::route_name`]); normalized here.
    pub path: &'a str,
    /// The target.
    pub addr: SocketAddr,
}

impl Change for Deregistration<'_> {
    type Outcome = bool;

    fn apply(&self, table: &mut Table) -> Result<bool, RegistryError> {
        let prefix = normalize_route(self.path)?;
        Ok(table.deregister(&prefix, self.addr))
    }

    fn changed(removed: &bool) -> bool {
        *removed
    }
}

/// `holder` withdraws its claim on `addr` in `path`; the target leaves only when nobody else
/// holds it, and the route with it when nobody wants that any more. Outcome: whether it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    /// The route: its prefix, or its host then its prefix (`api.example.com/v1`, see
    /// [`crate::route_name`]); normalized here.
    pub path: &'a str,
    /// The target.
    pub addr: SocketAddr,
    /// Who withdraws.
    pub holder: Holder,
}

impl Change for Release<'_> {
    type Outcome = bool;

    fn apply(&self, table: &mut Table) -> Result<bool, RegistryError> {
        let prefix = normalize_route(self.path)?;
        Ok(table.release(&prefix, self.addr, self.holder))
    }

    fn changed(removed: &bool) -> bool {
        *removed
    }
}

/// Installs an export: a state file at start, or what the old lb of an upgrade carried, as of
/// `now` here. `probed(prefix)` tells whether this process probes that route (where it does
/// not, carried active health is dropped: no probe here would ever bring the target back).
/// Meant for a new registry, before workers use it: a route's cursor is replaced where the
/// export gives one, and a target already registered keeps its own counts and health. A target
/// whose lease ended by `wall` is left out (its heartbeat stopped while lb was down), and a
/// route left with no target and that nobody else wants is not installed.
pub struct Import<'a> {
    /// What to install.
    pub export: Export,
    /// This process's time, for the back-offs the export carries.
    pub now: Instant,
    /// The wall-clock time: a lease the export holds that ended by then is not installed.
    pub wall: SystemTime,
    /// Whether this process probes a prefix.
    pub probed: &'a dyn Fn(&str) -> bool,
}

impl fmt::Debug for Import<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Import")
            .field("export", &self.export)
            .field("now", &self.now)
            .field("wall", &self.wall)
            .finish_non_exhaustive()
    }
}

impl Change for Import<'_> {
    type Outcome = ();

    /// The error names the route (and the target) it is about.
    fn apply(&self, table: &mut Table) -> Result<(), RegistryError> {
        let mut checked = Vec::with_capacity(self.export.routes.len());
        for route in &self.export.routes {
            let in_route = |e: RegistryError| e.within(&format!("route {:?}", route.path));
            let prefix = route_name(route.host.as_deref(), &route.path).map_err(in_route)?;
            for target in &route.targets {
                let addr = target.addr();
                check_target(addr)
                    .map_err(|e| e.within(&format!("route {:?}, target {addr}", route.path)))?;
            }
            checked.push((prefix, route));
        }
        for (prefix, route) in checked {
            let probed = (self.probed)(&prefix);
            table.install(&prefix, route, (self.now, self.wall), probed);
        }
        Ok(())
    }

    fn changed(_: &()) -> bool {
        true
    }
}

/// Removes every API registration whose lease ended by `now` (see the module docs). Outcome:
/// the `(prefix, target)` pairs that left routing, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The wall-clock time to expire at.
    pub now: SystemTime,
}

impl Change for Expiry {
    type Outcome = Vec<(String, SocketAddr)>;

    fn apply(&self, table: &mut Table) -> Result<Self::Outcome, RegistryError> {
        Ok(table.expire(self.now))
    }

    fn changed(expired: &Self::Outcome) -> bool {
        !expired.is_empty()
    }
}
