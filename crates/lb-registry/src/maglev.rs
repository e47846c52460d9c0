//! The Maglev lookup table of a `hash` route (Eisenbud et al., NSDI 2016; Envoy's default size).
//!
//! Built when a snapshot is published (off the request path) from the route's healthy targets;
//! a pick hashes the request's key once and reads one entry. Each target fills the table's
//! entries along its own permutation (offset and skip from its address), one entry per target
//! per round, so:
//! - every target holds `TABLE_SIZE / n` entries, give or take one (balance);
//! - a target's permutation depends on its address only (unless its skip collided with
//!   another's, see [`distinct_skips`]);
//! - removing targets moves only the keys they held ([`Maglev::after`] keeps every other
//!   entry and hands the freed ones out in Maglev's turns), so removing one of n moves `1/n`
//!   of the keys; adding one rebuilds the table, the full set's table whatever came before.
//!
//! The hash ([`key_hash`]) is FNV-1a with murmur3's 64-bit finalizer: fixed, with no per-process seed,
//! so two lb processes (an upgrade, a cluster) send the same key to the same target.

use std::net::SocketAddr;

/// Entries in every table: a prime, so that every skip in `1..TABLE_SIZE` visits them all.
pub const TABLE_SIZE: usize = 65_537;

/// A filled Maglev table: entry -> position of a target in the route's healthy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    entries: Box<[u32]>,
}

impl Maglev {
    /// The table for `targets`, in their order; `None` when there are none.
    pub fn new(targets: &[SocketAddr]) -> Option<Self> {
        if targets.is_empty() {
            return None;
        }
        let mut entries = vec![EMPTY; TABLE_SIZE];
        fill(&mut entries, &permutations(targets));
        Some(Maglev {
            entries: entries.into_boxed_slice(),
        })
    }

    /// The table for `targets` after `previous`, the table of `before`. When `targets` only
    /// lost some of `before` (a deregistration, a target going down), every entry of a target
    /// that stayed is kept and only the entries of those that left are handed out again, in
    /// Maglev's turns along each remaining target's permutation: exactly the keys of the
    /// leavers move, and the balance stays within one entry per turn. Any other change (a target
    /// added or back) builds the table anew ([`Maglev::new`]), which is what the full set's
    /// table is whatever happened before: a target that went down and comes back gets exactly
    /// its old entries back.
    pub fn after(previous: &Maglev, before: &[SocketAddr], targets: &[SocketAddr]) -> Option<Self> {
        let position: std::collections::HashMap<SocketAddr, u32> = targets
            .iter()
            .enumerate()
            .map(|(i, addr)| (*addr, u32::try_from(i).unwrap_or(EMPTY - 1)))
            .collect();
        let was: std::collections::HashSet<&SocketAddr> = before.iter().collect();
        let only_removed = targets.len() < before.len()
            && targets.iter().all(|a| was.contains(a))
            && position.len() == targets.len();
        if !only_removed || targets.is_empty() {
            return Maglev::new(targets);
        }
        let mut entries: Vec<u32> = previous
            .entries
            .iter()
            .map(|&old| {
                before
                    .get(old as usize)
                    .and_then(|addr| position.get(addr))
                    .copied()
                    .unwrap_or(EMPTY)
            })
            .collect();
        fill(&mut entries, &permutations(targets));
        Some(Maglev {
            entries: entries.into_boxed_slice(),
        })
    }

    /// The target position for a key whose hash is `hash` ([`key_hash`]).
    #[inline]
    pub fn lookup(&self, hash: u64) -> usize {
        // `% TABLE_SIZE` < 2^17 fits a usize; an entry is a position below the target count.
        let at = (hash % TABLE_SIZE as u64) as usize;
        self.entries.get(at).map_or(0, |&i| i as usize)
    }
}

/// An entry no target holds yet.
const EMPTY: u32 = u32::MAX;

/// Each target's `(offset, skip)` through the table, from its address (see [`distinct_skips`]).
fn permutations(targets: &[SocketAddr]) -> Vec<(u64, u64)> {
    let m = TABLE_SIZE as u64;
    let mut permutations: Vec<(u64, u64)> = targets
        .iter()
        .map(|addr| {
            let name = addr.to_string();
            let offset = seeded_hash(name.as_bytes(), OFFSET_SEED) % m;
            (offset, skip_of(name.as_bytes(), 0))
        })
        .collect();
    distinct_skips(targets, &mut permutations);
    permutations
}

/// Fills the [`EMPTY`] entries of `entries`: target after target, each takes the next empty
/// entry along its own permutation (Maglev's population loop), until none is empty.
fn fill(entries: &mut [u32], permutations: &[(u64, u64)]) {
    let m = TABLE_SIZE as u64;
    let mut empty = entries.iter().filter(|&&e| e == EMPTY).count();
    let mut next = vec![0u64; permutations.len()];
    while empty > 0 {
        for (i, &(offset, skip)) in permutations.iter().enumerate() {
            let slot = loop {
                // < TABLE_SIZE, so it fits a usize.
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if entries[c] == EMPTY {
                    break c;
                }
            };
            entries[slot] = u32::try_from(i).unwrap_or(EMPTY - 1);
            empty -= 1;
            if empty == 0 {
                return;
            }
        }
    }
}

const OFFSET_SEED: u64 = 0x9e37_79b9;
const SKIP_SEED: u64 = 0x85eb_ca6b;

/// A target's skip, from its name and how many times it had to give way.
fn skip_of(name: &[u8], attempt: u64) -> u64 {
    let m = TABLE_SIZE as u64;
    seeded_hash(name, SKIP_SEED.wrapping_add(attempt)) % (m - 1) + 1
}

/// Two targets with the same skip walk the same cycle of entries and take each other's
/// entries whenever the turns change (a third target leaving would move most of theirs). A
/// skip only has 65,536 values, so such pairs happen (about one pair in 65,536); the target
/// with the higher address takes the next skip of its own sequence until it is unique. Only a
/// target that gave way can change when another leaves.
fn distinct_skips(targets: &[SocketAddr], permutations: &mut [(u64, u64)]) {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| targets[i]);
    let mut taken = std::collections::HashSet::with_capacity(targets.len());
    for i in order {
        let name = targets[i].to_string();
        let mut attempt = 0;
        while !taken.insert(permutations[i].1) {
            attempt += 1;
            permutations[i].1 = skip_of(name.as_bytes(), attempt);
        }
    }
}

/// The hash of a request's key value (see the module docs).
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    seeded_hash(key, 0)
}

/// FNV-1a, then `seed` mixed in and murmur3's 64-bit finalizer applied twice, so that the
/// hashes of one name under two seeds (a target's offset and skip) are independent.
#[inline]
fn seeded_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix(fmix(h) ^ seed)
}

/// murmur3's 64-bit finalizer: every input bit reaches every output bit.
#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|&p| SocketAddr::from(([10, 0, (p >> 8) as u8, p as u8], 8000 + p)))
            .collect()
    }

    fn counts(table: &Maglev, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &e in table.entries.iter() {
            c[e as usize] += 1;
        }
        c
    }

    #[test]
    fn one_target_takes_every_entry_and_none_gives_no_table() {
        let t = Maglev::new(&addrs(&[1])).expect("table");
        assert_eq!(counts(&t, 1), [TABLE_SIZE]);
        assert!(Maglev::new(&[]).is_none());
        assert_eq!(t.lookup(u64::MAX), 0);
    }

    #[test]
    fn a_thousand_targets_build_quickly_and_evenly() {
        let ports: Vec<u16> = (0..1000).collect();
        let started = std::time::Instant::now();
        let t = Maglev::new(&addrs(&ports)).expect("table");
        let took = started.elapsed();
        let c = counts(&t, ports.len());
        let (lo, hi) = (c.iter().min().copied(), c.iter().max().copied());
        assert!(
            hi.zip(lo).is_some_and(|(h, l)| h - l <= 1),
            "{lo:?}..{hi:?}"
        );
        // The 10 ms budget holds for an optimized build; a debug build gets 20 times that.
        let budget = if cfg!(debug_assertions) { 200 } else { 10 };
        assert!(took.as_millis() <= budget, "built in {took:?}");
    }

    proptest! {
        /// Every target holds its share of the entries within 5%.
        #[test]
        fn targets_share_the_table_within_five_percent(
            ports in proptest::collection::btree_set(0u16..5000, 2..60)
        ) {
            let ports: Vec<u16> = ports.into_iter().collect();
            let t = Maglev::new(&addrs(&ports)).expect("table");
            let share = TABLE_SIZE as f64 / ports.len() as f64;
            for c in counts(&t, ports.len()) {
                prop_assert!((c as f64 - share).abs() <= share * 0.05, "{c} vs {share}");
            }
        }

        /// Removing one of n targets (2 to 60) moves exactly the keys it held, about 1/n
        /// (within the 1/n + 1%), the others keep theirs, the table stays balanced
        /// within 5%, and the target coming back restores the table of the full set.
        #[test]
        fn removing_one_target_moves_only_its_keys_and_coming_back_restores_them(
            ports in proptest::collection::btree_set(0u16..5000, 2..60),
            gone in any::<proptest::sample::Index>(),
        ) {
            let before: Vec<SocketAddr> = addrs(&ports.into_iter().collect::<Vec<_>>());
            let gone = gone.index(before.len());
            let after: Vec<SocketAddr> =
                before.iter().enumerate().filter(|&(i, _)| i != gone).map(|(_, a)| *a).collect();
            let t0 = Maglev::new(&before).expect("table");
            let t1 = Maglev::after(&t0, &before, &after).expect("table");
            let mut moved = 0;
            for (&a, &b) in t0.entries.iter().zip(t1.entries.iter()) {
                let (was, is) = (before[a as usize], after[b as usize]);
                if was != is {
                    prop_assert_eq!(was, before[gone], "only the leaver's keys move");
                    moved += 1;
                }
            }
            let bound = TABLE_SIZE as f64 * (1.0 / before.len() as f64 + 0.01);
            prop_assert!(moved as f64 <= bound, "moved {moved} of {TABLE_SIZE}, bound {bound}");
            let share = TABLE_SIZE as f64 / after.len() as f64;
            for (i, c) in counts(&t1, after.len()).into_iter().enumerate() {
                prop_assert!((c as f64 - share).abs() <= share * 0.05 + 1.0, "target {i}: {c} of {share}");
            }
            let back = Maglev::after(&t1, &after, &before).expect("table");
            prop_assert_eq!(back, t0, "a target coming back gets exactly its entries back");
        }
    }
}
