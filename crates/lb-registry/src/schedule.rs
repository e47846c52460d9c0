//! The weighted round-robin schedule of one route: which target each pick number goes to.
//!
//! The schedule is computed when a snapshot is published (off the request path) from the
//! weights of the route's healthy targets, and indexed on the request path by the route's
//! shared cursor: pick k goes to `slots[k mod len]`. The pick therefore stays one shared atomic
//! add, and the order is exact over all workers together.
//!
//! Invariants:
//! - Over one period (`len` consecutive picks) target i appears exactly `weights[i] / g` times,
//!   where g is the weights' greatest common divisor; so every window of `sum(weights)`
//!   consecutive picks gives each target exactly its weight (such a window is g whole periods).
//! - The order is nginx's smooth weighted round robin (5,1,1 gives `a a b a c a a`); dividing by
//!   g changes nothing of it, since smooth round robin over `g * w` repeats the sequence of `w`.
//! - Equal weights need no table: pick k goes to target `k mod n`, as without weights.
//! - A schedule whose smooth computation would cost more than [`SMOOTH_BUDGET`] steps (many
//!   targets with unequal weights) is built by the earliest-deadline interleave instead, which
//!   keeps the exact counts per period and spreads each target evenly, in `O(len log n)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Most steps (period length times targets) the smooth computation may take: about 30 ms on
/// one core; a publish stays well under that for every route a person configures by hand.
pub const SMOOTH_BUDGET: u64 = 1 << 25;

/// Which target each pick number goes to (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Target positions, one period; empty when the weights are equal (pick k -> `k mod n`).
    slots: Box<[u32]>,
}

impl Schedule {
    /// The schedule for targets with these weights, in their order. A weight of 0 counts as 1.
    pub fn new(weights: &[u16]) -> Self {
        let weights: Vec<u64> = weights.iter().map(|&w| u64::from(w.max(1))).collect();
        let Some(&first) = weights.first() else {
            return Schedule::default();
        };
        if weights.iter().all(|&w| w == first) {
            return Schedule::default();
        }
        let g = weights.iter().fold(0, |g, &w| gcd(g, w));
        let reduced: Vec<u64> = weights.iter().map(|w| w / g).collect();
        let len: u64 = reduced.iter().sum();
        let steps = len.saturating_mul(reduced.len() as u64);
        let slots = if steps <= SMOOTH_BUDGET {
            smooth(&reduced, len)
        } else {
            interleave(&reduced, len)
        };
        Schedule { slots }
    }

    /// The target position for pick number `k` among `n` targets (`n > 0`, the schedule's own
    /// target count when it has slots).
    #[inline]
    pub fn slot(&self, k: usize, n: usize) -> usize {
        if self.slots.is_empty() {
            return k % n;
        }
        // `as usize`: a u32 position always fits a usize on the 32- and 64-bit targets lb builds.
        self.slots[k % self.slots.len()] as usize
    }

    /// Picks in one period: `sum(weights) / gcd`, or 0 when the weights are equal.
    pub fn period(&self) -> usize {
        self.slots.len()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// nginx's smooth weighted round robin: every step each target's current weight grows by its
/// weight, the largest (the first of equals) is picked and loses the total.
fn smooth(weights: &[u64], len: u64) -> Box<[u32]> {
    // Current weights stay within (-total, total], and total <= 1000 * u32::MAX fits an i64.
    let total = i64::try_from(len).unwrap_or(i64::MAX);
    let weights: Vec<i64> = weights
        .iter()
        .map(|&w| i64::try_from(w).unwrap_or(i64::MAX))
        .collect();
    let mut current = vec![0i64; weights.len()];
    let mut slots = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for _ in 0..len {
        let mut best = 0;
        for i in 0..current.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        slots.push(position(best));
    }
    slots.into_boxed_slice()
}

/// The earliest-deadline interleave: the j-th pick (from 0) of a target of weight w is due at
/// `(2j + 1) / 2w` of the period; picks go in order of due time, the first target of equals
/// first. Exact per period like [`smooth`], in `O(len log n)`.
fn interleave(weights: &[u64], len: u64) -> Box<[u32]> {
    // Due times compared as fractions (2j + 1) / (2w), cross-multiplied in u128.
    let mut due: BinaryHeap<Reverse<Due>> = weights
        .iter()
        .enumerate()
        .map(|(target, &weight)| {
            Reverse(Due {
                num: 1,
                den: 2 * weight,
                target,
            })
        })
        .collect();
    let mut slots = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(Reverse(next)) = due.pop() {
        slots.push(position(next.target));
        let picked = next.num.div_ceil(2);
        if picked < next.den / 2 {
            due.push(Reverse(Due {
                num: next.num + 2,
                ..next
            }));
        }
    }
    slots.into_boxed_slice()
}

/// A target's next due time in [`interleave`]: `num / den` of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    num: u64,
    den: u64,
    target: usize,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
            .then(self.target.cmp(&other.target))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A target position as a slot; a route holds far fewer than `u32::MAX` targets.
fn position(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(weights: &[u16]) -> Vec<usize> {
        let s = Schedule::new(weights);
        let n = weights.len();
        let len = if s.period() == 0 { n } else { s.period() };
        (0..len).map(|k| s.slot(k, n)).collect()
    }

    #[test]
    fn smooth_order_is_nginx_order() {
        let table: &[(&[u16], &[usize])] = &[
            (&[5, 1, 1], &[0, 0, 1, 0, 2, 0, 0]),
            (&[1, 1, 1], &[0, 1, 2]),
            (&[2, 1], &[0, 1, 0]),
            (&[1, 2], &[1, 0, 1]),
            (&[10, 5, 5], &[0, 1, 2, 0]),
            (&[4, 2], &[0, 1, 0]),
            (&[3], &[0]),
            (&[0, 1], &[0, 1]),
        ];
        for (weights, want) in table {
            assert_eq!(period(weights), *want, "weights {weights:?}");
        }
    }

    #[test]
    fn equal_weights_need_no_table() {
        let s = Schedule::new(&[7, 7, 7]);
        assert_eq!(s.period(), 0);
        assert_eq!(
            (0..6).map(|k| s.slot(k, 3)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        assert_eq!(Schedule::new(&[]).period(), 0);
    }

    #[test]
    fn the_interleave_is_exact_and_spread() {
        let s = Schedule {
            slots: interleave(&[3, 1], 4),
        };
        assert_eq!(
            (0..4).map(|k| s.slot(k, 2)).collect::<Vec<_>>(),
            [0, 0, 1, 0]
        );
        let s = Schedule {
            slots: interleave(&[5, 1, 1], 7),
        };
        let counts = (0..3).map(|t| (0..7).filter(|&k| s.slot(k, 3) == t).count());
        assert_eq!(counts.collect::<Vec<_>>(), [5, 1, 1]);
    }

    #[test]
    fn many_unequal_targets_use_the_interleave_and_stay_exact() {
        let weights: Vec<u16> = (0..10_000)
            .map(|i| if i % 2 == 0 { 2 } else { 3 })
            .collect();
        let s = Schedule::new(&weights);
        assert_eq!(s.period(), 25_000);
        let mut counts = vec![0u16; weights.len()];
        for k in 0..s.period() {
            counts[s.slot(k, weights.len())] += 1;
        }
        assert_eq!(counts, weights);
    }

    proptest::proptest! {
        /// Every window of sum(weights) consecutive picks, wherever it starts, gives each target
        /// exactly its weight; and so does every period.
        #[test]
        fn every_window_is_exact(weights in proptest::collection::vec(1u16..=40, 1..12), start in 0usize..10_000) {
            let s = Schedule::new(&weights);
            let n = weights.len();
            let sum: usize = weights.iter().map(|&w| usize::from(w)).sum();
            let mut counts = vec![0u16; n];
            for k in start..start + sum {
                counts[s.slot(k, n)] += 1;
            }
            proptest::prop_assert_eq!(&counts, &weights);
        }

        /// The interleave (used past the smooth budget) is exact per period too.
        #[test]
        fn every_interleave_period_is_exact(weights in proptest::collection::vec(1u64..=40, 1..12)) {
            let len = weights.iter().sum();
            let s = Schedule { slots: interleave(&weights, len) };
            let mut counts = vec![0u64; weights.len()];
            for k in 0..s.period() {
                counts[s.slot(k, weights.len())] += 1;
            }
            proptest::prop_assert_eq!(counts, weights);
        }
    }
}
