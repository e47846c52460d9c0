//! Resynchronisation: what must change so that the registry holds exactly what etcd holds.
//!
//! After a re-read (start, or a watch whose revision was compacted away) the node applies the
//! DIFFERENCE between what the API holds in its registry and what etcd holds, never a reset: a
//! target present on both sides is untouched, so its route keeps its round-robin cursor, its
//! counters and its health. [`diff`] is pure; [`api_held`] reads the registry's side.
//!
//! Only the API's registrations are compared: targets only the configuration holds are local
//! to each node and never leave because etcd does not know them.

use crate::steps::Step;
use lb_registry::{join_route, Registry};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Registrations by (prefix, target), with their weight.
pub type Held = BTreeMap<(String, SocketAddr), u16>;

/// The steps that turn `current` into `desired`: releases first (in key order), then
/// registrations of what is missing or has another weight (in `desired`'s order).
pub fn diff(current: &Held, desired: &Held) -> Vec<Step> {
    let releases = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .map(|(path, addr)| Step::Release {
            path: path.clone(),
            addr: *addr,
        });
    let registrations = desired
        .iter()
        .filter(|(k, weight)| current.get(*k) != Some(*weight))
        .map(|((path, addr), weight)| Step::Register {
            path: path.clone(),
            addr: *addr,
            weight: *weight,
        });
    releases.chain(registrations).collect()
}

/// What the API holds in `registry` (targets the configuration holds too included: the API's
/// hold on them is what etcd knows about).
pub fn api_held(registry: &Registry) -> Held {
    let config_only: std::collections::BTreeSet<(String, SocketAddr)> = registry
        .routes()
        .into_iter()
        .flat_map(|r| {
            let path = r.path;
            r.config_only.into_iter().map(move |a| (path.clone(), a))
        })
        .collect();
    registry
        .targets()
        .into_iter()
        .map(|t| ((join_route(t.host.as_deref(), &t.path), t.addr), t.weight))
        .filter(|(k, _)| !config_only.contains(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(rows: &[(&str, u16, u16)]) -> Held {
        rows.iter()
            .map(|(p, port, w)| {
                (
                    (p.to_string(), SocketAddr::from(([10, 0, 0, 1], *port))),
                    *w,
                )
            })
            .collect()
    }

    fn reg(p: &str, port: u16, weight: u16) -> Step {
        Step::Register {
            path: p.into(),
            addr: SocketAddr::from(([10, 0, 0, 1], port)),
            weight,
        }
    }

    fn rel(p: &str, port: u16) -> Step {
        Step::Release {
            path: p.into(),
            addr: SocketAddr::from(([10, 0, 0, 1], port)),
        }
    }

    /// Each row: what the registry holds, what etcd holds, the steps.
    #[test]
    fn diff_table() {
        let table = [
            (held(&[]), held(&[]), vec![]),
            (held(&[("/a", 1, 1)]), held(&[("/a", 1, 1)]), vec![]),
            (
                held(&[]),
                held(&[("/a", 1, 1), ("/b", 2, 5)]),
                vec![reg("/a", 1, 1), reg("/b", 2, 5)],
            ),
            (
                held(&[("/a", 1, 1), ("/a", 2, 1)]),
                held(&[("/a", 2, 1)]),
                vec![rel("/a", 1)],
            ),
            (
                held(&[("/a", 1, 1)]),
                held(&[("/a", 1, 4)]),
                vec![reg("/a", 1, 4)],
            ),
            (
                held(&[("/a", 1, 1)]),
                held(&[("/b", 1, 1)]),
                vec![rel("/a", 1), reg("/b", 1, 1)],
            ),
        ];
        for (current, desired, steps) in table {
            assert_eq!(
                diff(&current, &desired),
                steps,
                "{current:?} -> {desired:?}"
            );
        }
    }

    proptest! {
        /// Applying the diff to `current` as a map gives `desired`, and nothing present on both
        /// sides with the same weight is touched.
        #[test]
        fn diff_reaches_desired(current in proptest::collection::btree_map(("/[a-c]", 1u16..4), 1u16..3, 0..8),
                                desired in proptest::collection::btree_map(("/[a-c]", 1u16..4), 1u16..3, 0..8)) {
            let to = |m: BTreeMap<(String, u16), u16>| -> Held {
                m.into_iter().map(|((p, port), w)| ((p, SocketAddr::from(([10, 0, 0, 1], port))), w)).collect()
            };
            let (current, desired) = (to(current), to(desired));
            let steps = diff(&current, &desired);
            let mut reached = current.clone();
            for step in &steps {
                match step {
                    Step::Register { path, addr, weight } => {
                        prop_assert!(current.get(&(path.clone(), *addr)) != Some(weight));
                        reached.insert((path.clone(), *addr), *weight);
                    }
                    Step::Release { path, addr } => {
                        reached.remove(&(path.clone(), *addr));
                    }
                }
            }
            prop_assert_eq!(reached, desired);
        }
    }
}
