//! Undoing a control-plane change that could not be saved (the state file). The API answers
//! `500` ("undone"), so the registry must be exactly as it was: otherwise the next save writes
//! a change the operator was told did not happen, or turns a configured target into a
//! registration that a reload can no longer remove.
//!
//! [`Registry::register_undoable`] and [`Registry::deregister_undoable`] make the change and
//! return an [`Undo`] remembering what it replaced: whether the API held the target already, the
//! removed target itself (its holders, counts, health and place in round-robin order), and
//! whether the route existed and was the API's. [`Registry::undo`] puts that back.
//!
//! Only the control plane changes what the API holds, one change at a time; meanwhile a reload
//! may change what the configuration holds, and health checks change health. An undo restores
//! the API's part and keeps those: it never removes a target the configuration holds, nor a
//! route the configuration names. Like any change, it removes a route nobody wants any more
//! (no target, not the API's, not named by the configuration): the route an undone
//! registration created, or one whose prefix a reload stopped naming while the API held it
//! only through the change being undone.

use super::{
    find_target, normalize_prefix, remove_if_abandoned, Member, Registered, Registry,
    RegistryError, Source,
};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// How to undo one control-plane change; see the module docs.
#[derive(Debug)]
#[must_use = "a change that could not be saved must be undone"]
pub struct Undo {
    /// The normalized prefix.
    prefix: String,
    addr: SocketAddr,
    /// The route's `api_claimed` before the change; `None` when the change created the route.
    route_claimed: Option<bool>,
    target: Before,
}

/// The target before the change.
#[derive(Debug)]
enum Before {
    /// The change did not touch it (a registration the API already held).
    Unchanged,
    /// The API did not hold it: the change added it, or added the API's claim to a target the
    /// configuration held.
    NotHeldByApi,
    /// The change removed it from this place in round-robin order.
    Removed { at: usize, member: Member },
}

impl Registry {
    /// [`Registry::register`], and how to undo it.
    pub fn register_undoable(
        &self,
        path: &str,
        addr: SocketAddr,
    ) -> Result<(Registered, Undo), RegistryError> {
        let added = self.add(path, addr, Source::Api)?;
        let target = match added.registered {
            Registered::Existing => Before::Unchanged,
            Registered::New | Registered::Adopted => Before::NotHeldByApi,
        };
        let undo = Undo {
            prefix: added.prefix,
            addr,
            route_claimed: added.route_claimed,
            target,
        };
        Ok((added.registered, undo))
    }

    /// [`Registry::deregister`], and how to undo it; `Ok(None)` when `addr` was not registered
    /// on `path`.
    pub fn deregister_undoable(
        &self,
        path: &str,
        addr: SocketAddr,
    ) -> Result<Option<Undo>, RegistryError> {
        let prefix = normalize_prefix(path)?;
        let mut state = self.state.write();
        let Some((entry, at)) = find_target(&mut state, &prefix, addr) else {
            return Ok(None);
        };
        let member = entry.targets.remove(at);
        let route_claimed = Some(entry.api_claimed);
        // Rarely met: a prefix the configuration stops naming loses its configured targets in
        // the same step. But a target it held may come back through an `undo` meanwhile, and
        // its deregistration must not leave an empty route nobody holds.
        remove_if_abandoned(&mut state, &prefix);
        self.publish(&mut state);
        Ok(Some(Undo {
            prefix,
            addr,
            route_claimed,
            target: Before::Removed { at, member },
        }))
    }

    /// Puts back what `undo`'s change replaced: the API's claim on the target and the route as
    /// they were, a removed target with the same holders at the same place (its counts and
    /// health too), and no route that the change created.
    pub fn undo(&self, undo: Undo) {
        let mut state = self.state.write();
        let Some(entry) = state.routes.get_mut(undo.prefix.as_str()) else {
            // Removed meanwhile, so nobody held it: not the API, whose claim on a route outlives
            // its targets (a registration's until its undo). This undoes the deregistration of
            // a target the configuration alone held, on a prefix that a reload stopped naming
            // since: putting it back would revive what the reload withdrew.
            return;
        };
        let now_at = entry
            .targets
            .iter()
            .position(|m| m.target.addr() == undo.addr);
        match (undo.target, now_at) {
            (Before::Unchanged, _) | (Before::NotHeldByApi, None) => {}
            (Before::NotHeldByApi, Some(at)) => {
                if entry.targets[at].holders.release(Source::Api) {
                    entry.targets.remove(at);
                }
            }
            (Before::Removed { at, member }, None) => {
                if member.health.passive_down() {
                    // Relaxed: written under the write lock, as in `mark_down_at`.
                    self.passive_down.store(true, Ordering::Relaxed);
                }
                let at = at.min(entry.targets.len());
                entry.targets.insert(at, member);
            }
            (Before::Removed { member, .. }, Some(at)) => {
                // A reload named it again meanwhile: it keeps that place, with its old holders.
                let holders = &mut entry.targets[at].holders;
                holders.api |= member.holders.api;
                holders.config |= member.holders.config;
            }
        }
        // The route as it was; one the change created was not the API's (it did not exist). It
        // stays when a reload put a target there or named it meanwhile, as the configuration's.
        entry.api_claimed = undo.route_claimed.unwrap_or(false);
        remove_if_abandoned(&mut state, &undo.prefix);
        self.publish(&mut state);
    }
}
