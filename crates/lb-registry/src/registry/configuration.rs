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
//! altogether when nobody else wants it: no target left (the API's stay) and not held by the API
//! (a prefix the API registered on keeps answering 503, see [`crate::RouteTargets::held_by_api`]).
//! Its requests then fall through to the longest remaining prefix, as after an nginx `location`
//! or HAProxy backend is removed and the proxy reloaded.
//!
//! Everything is checked before anything changes: on error the registry is as it was.
//!
//! The single-target step is here too: [`Registry::release`] (a source withdrawing its claim on
//! one target).

use super::{
    check_target, find_target, normalize_prefix, remove_if_abandoned, route_entry, Registered,
    Registry, RegistryError, Source, State,
};
use crate::router::RouteOptions;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What the configuration asks of the registry: at start its whole route list, on a reload the
/// difference from the previous one. Prefixes need not be normalized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfiguration {
    /// `(prefix, target)` pairs the configuration names and did not before: registered for
    /// [`Source::Config`].
    pub register: Vec<(String, SocketAddr)>,
    /// Pairs it named before and no longer does: its claim is withdrawn, so a target leaves
    /// unless the API holds it too ([`Registry::release`]).
    pub release: Vec<(String, SocketAddr)>,
    /// Every prefix the configuration names, with that route's options. A prefix missing from
    /// this list is no longer the configuration's (see the module docs).
    pub routes: Vec<(String, RouteOptions)>,
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
    /// Withdraws `source`'s claim on `addr` in `path`; the target leaves only when no other
    /// source holds it. `Ok(true)` when it was removed, and with it the route when nobody wants
    /// that any more: no target left, not held by the API, not named by the configuration. A
    /// configuration reload does this (through [`Registry::reconfigure`]), so a target also
    /// registered through the API survives the file dropping it.
    pub fn release(
        &self,
        path: &str,
        addr: SocketAddr,
        source: Source,
    ) -> Result<bool, RegistryError> {
        let prefix = normalize_prefix(path)?;
        let mut state = self.state.write();
        let removed = release_locked(&mut state, &prefix, addr, source);
        if removed {
            self.publish(&mut state);
        }
        Ok(removed)
    }

    /// Applies `change` at once (see the module docs): registrations, releases, the options of
    /// every route, and the removal of the routes the configuration alone held and no longer
    /// names. The snapshot is published once, and only when routing changed.
    pub fn reconfigure(&self, change: &Reconfiguration) -> Result<Reconfigured, RegistryError> {
        let register = normalized_pairs(&change.register)?;
        for &(_, addr) in &register {
            check_target(addr)?;
        }
        let release = normalized_pairs(&change.release)?;
        let mut named = BTreeMap::new();
        for (path, options) in &change.routes {
            named.insert(normalize_prefix(path)?, *options);
        }

        let mut state = self.state.write();
        let mut done = Reconfigured::default();
        for (prefix, addr) in register {
            if self.add_locked(&mut state, &prefix, addr, Source::Config) == Registered::New {
                done.added += 1;
            }
        }
        for (prefix, addr) in release {
            done.removed += usize::from(release_locked(&mut state, &prefix, addr, Source::Config));
        }
        // Whether routing changed beyond the targets: a route created, one's options.
        let mut changed = false;
        for (prefix, &options) in &named {
            // Created when missing, as the operator named it (its targets may all have been
            // deregistered through the API): it answers 503 rather than falling through.
            changed |= !state.routes.contains_key(prefix.as_str());
            let entry = route_entry(&mut state, prefix);
            entry.config_named = true;
            changed |= std::mem::replace(&mut entry.options, options) != options;
        }
        for entry in state.routes.values_mut() {
            if !named.contains_key(&*entry.prefix) {
                entry.config_named = false;
                changed |= std::mem::take(&mut entry.options) != RouteOptions::default();
            }
        }
        state.routes.retain(|prefix, entry| {
            let abandoned = entry.abandoned();
            if abandoned {
                done.routes_removed.push(prefix.to_string());
            }
            !abandoned
        });
        if changed || done.added + done.removed > 0 || !done.routes_removed.is_empty() {
            self.publish(&mut state);
        }
        Ok(done)
    }
}

/// Withdraws `source`'s claim on `addr` in the normalized `prefix`, under the write lock,
/// without publishing; `true` when the target left (and the route with it, if abandoned).
fn release_locked(state: &mut State, prefix: &str, addr: SocketAddr, source: Source) -> bool {
    let Some((entry, at)) = find_target(state, prefix, addr) else {
        return false;
    };
    if !entry.targets[at].holders.release(source) {
        return false;
    }
    entry.targets.remove(at);
    remove_if_abandoned(state, prefix);
    true
}

/// `pairs` with their prefixes normalized; the first invalid prefix is the error.
fn normalized_pairs(
    pairs: &[(String, SocketAddr)],
) -> Result<Vec<(String, SocketAddr)>, RegistryError> {
    pairs
        .iter()
        .map(|(path, addr)| Ok((normalize_prefix(path)?, *addr)))
        .collect()
}
