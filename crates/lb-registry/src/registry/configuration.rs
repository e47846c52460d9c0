//! The configuration's routes applied in one step, at start and on every reload (SIGHUP).
//!
//! [`Registry::reconfigure`] takes what the configuration changed (targets it names anew,
//! targets it no longer names) and every prefix it names with its options, and applies it under
//! one write lock with one published snapshot. Workers therefore never route with half a
//! reload: not with a prefix whose old targets left before its new ones arrived (a 503 that
//! neither the old nor the new file would give), nor with a dropped prefix's default options
//! applied to its last old targets, nor with a dropped prefix still answering 503 before it is
//! removed.
//!
//! A prefix the configuration no longer names goes back to the default options, and goes
//! altogether when nobody else wants it: no target left (the API's stay, and with them the API's
//! claim on the prefix, see [`crate::RouteTargets::held_by_api`]).
//! Its requests then fall through to the longest remaining prefix, as after an nginx `location`
//! or HAProxy backend is removed and the proxy reloaded.
//!
//! Everything is checked before anything changes: on error the registry is as it was.
//!
//! At start, [`InitialConfiguration`] applies the whole route list the same way, over what a
//! state file or the old lb of an upgrade gave.

use super::change::Change;
use super::holders::Holder;
use super::lease::check_weight;
use super::table::Table;
use super::{check_target, Registered, Registry, RegistryError};
use crate::host::normalize_route;
use crate::router::RouteOptions;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What the configuration asks of the registry: at start its whole route list, on a reload the
/// difference from the previous one. Prefixes need not be normalized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfiguration {
    /// `(prefix, target)` pairs the configuration names and did not before: registered for
    /// [`Holder::Config`].
    pub register: Vec<(String, SocketAddr)>,
    /// Pairs it named before and no longer does: its claim is withdrawn, so a target leaves
    /// unless the API holds it too ([`crate::Release`]).
    pub release: Vec<(String, SocketAddr)>,
    /// Every prefix the configuration names, with that route's options. A prefix missing from
    /// this list is no longer the configuration's (see the module docs).
    pub routes: Vec<(String, RouteOptions)>,
    /// The weight the configuration gives each of its targets (`(prefix, target, weight)`;
    /// a target not listed keeps its weight). It applies to a target only the configuration
    /// holds: one the API holds too keeps the weight the API gave it.
    pub weights: Vec<(String, SocketAddr, u16)>,
}

/// What [`Registry::reconfigure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Targets added ([`Registered::New`]; not those the API already served there).
    pub added: usize,
    /// Targets removed (not those the API holds too).
    pub removed: usize,
    /// Prefixes removed because nobody wants them any more, normalized, in order.
    pub routes_removed: Vec<String>,
}

impl Registry {
    /// Applies `change` at once (see the module docs): registrations, releases, the options of
    /// every route, and the removal of the routes the configuration alone held and no longer
    /// names. The snapshot is published once, and only when routing changed.
    pub fn reconfigure(&self, change: &Reconfiguration) -> Result<Reconfigured, RegistryError> {
        self.apply(change)
    }
}

impl Change for Reconfiguration {
    type Outcome = Reconfigured;

    fn apply(&self, table: &mut Table) -> Result<Reconfigured, RegistryError> {
        let register = normalized_pairs(&self.register)?;
        for &(_, addr) in &register {
            check_target(addr)?;
        }
        let release = normalized_pairs(&self.release)?;
        let mut named = BTreeMap::new();
        for (path, options) in &self.routes {
            named.insert(normalize_route(path)?, *options);
        }
        let mut weights = Vec::with_capacity(self.weights.len());
        for (path, addr, weight) in &self.weights {
            weights.push((
                normalize_route(path)?,
                *addr,
                check_weight(u64::from(*weight))?,
            ));
        }

        let mut done = Reconfigured::default();
        for (prefix, addr) in register {
            if table.register(&prefix, addr, Holder::Config, None) == Registered::New {
                done.added += 1;
            }
        }
        for (prefix, addr) in release {
            done.removed += usize::from(table.release(&prefix, addr, Holder::Config));
        }
        for (prefix, addr, weight) in weights {
            table.weigh_configured(&prefix, addr, weight);
        }
        done.routes_removed = table.name(&named);
        Ok(done)
    }

    /// Only what the API holds is saved, and a reconfiguration changes that only where it adds
    /// or removes a target.
    fn changed(done: &Reconfigured) -> bool {
        done.added + done.removed > 0
    }
}

/// The configuration's whole route list at start, applied over what a state file or the old lb
/// of an upgrade gave: its targets, held by [`Holder::Config`], and its routes' options, as a
/// [`Reconfiguration`] that registers every target the configuration names. A target the old
/// lb had only from its own configuration stays configuration-held when this one names it too;
/// otherwise it is kept as a registration (as if made through the API), because an upgrade
/// hands the whole registry over and loses nothing: the operator deregisters it if it must go.
/// A prefix the old lb's configuration alone held, left without targets, goes unless this
/// configuration names it, as a reload would remove it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitialConfiguration {
    /// Every `(prefix, target)` pair the configuration names.
    pub targets: Vec<(String, SocketAddr)>,
    /// Every prefix it names, with that route's options.
    pub routes: Vec<(String, RouteOptions)>,
    /// The weight it gives each of its targets (see [`Reconfiguration::weights`]).
    pub weights: Vec<(String, SocketAddr, u16)>,
}

impl Change for InitialConfiguration {
    type Outcome = Reconfigured;

    fn apply(&self, table: &mut Table) -> Result<Reconfigured, RegistryError> {
        let whole = Reconfiguration {
            register: self.targets.clone(),
            release: Vec::new(),
            routes: self.routes.clone(),
            weights: self.weights.clone(),
        };
        let done = whole.apply(table)?;
        // `whole` checked every pair: they normalize.
        let wanted = normalized_pairs(&self.targets)?;
        table.hand_to_api_unless(&wanted);
        Ok(done)
    }

    fn changed(done: &Reconfigured) -> bool {
        Reconfiguration::changed(done)
    }
}

/// `pairs` with their prefixes normalized; the first invalid prefix is the error.
fn normalized_pairs(
    pairs: &[(String, SocketAddr)],
) -> Result<Vec<(String, SocketAddr)>, RegistryError> {
    pairs
        .iter()
        .map(|(path, addr)| Ok((normalize_route(path)?, *addr)))
        .collect()
}
