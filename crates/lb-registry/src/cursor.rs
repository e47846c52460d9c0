//! The round-robin cursor shared by every worker for one route prefix.
//!
//! Invariant: the cursor only ever moves forward by one per pick, so picks are numbered 0, 1, 2, ...
//! across the whole process, and pick k goes to target `k mod n` (or to slot `k mod period` of
//! the route's weighted schedule). The cursor belongs to the prefix, not to a snapshot, so
//! target changes continue the order instead of restarting it at target 0.
//! A zero-downtime upgrade continues it too: the next lb process starts its cursor at the number
//! the old one had reached ([`Cursor::starting_at`]).

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One prefix's pick counter, alone on its cache line so that two routes' counters never
/// invalidate each other's line.
#[derive(Debug, Default)]
pub struct Cursor {
    next: CachePadded<AtomicUsize>,
}

impl Cursor {
    /// A cursor whose next pick is number `next` (an order carried over from another process).
    pub fn starting_at(next: usize) -> Self {
        Cursor {
            next: CachePadded::new(AtomicUsize::new(next)),
        }
    }

    /// Takes the next pick number. Relaxed: the RMW on this one location already gives every pick
    /// a unique, totally ordered number, and no other memory is published through it.
    #[inline]
    pub fn next(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The number the next pick will take (for tests and metrics).
    pub fn peek(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}
