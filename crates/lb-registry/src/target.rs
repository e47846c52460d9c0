//! One upstream address serving a route, with its per-worker request and response counters.
//!
//! Counters are one cache-padded slot per worker, written only by that worker (a plain load and
//! store, no RMW, no shared line), and summed when the control plane reads them. That keeps the
//! route cursor the only shared write on the request path of round robin and hash routes. A
//! `least_conn` route also counts its requests in flight on one shared, cache-padded counter
//! per target (an add when the request starts, a subtract when it ends): the policy needs the
//! number over all workers at once.

use crossbeam_utils::CachePadded;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Status classes counted per target: 1xx to 5xx.
pub const STATUS_CLASSES: usize = 5;

/// An upstream target.
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    counters: Box<[CachePadded<Counters>]>,
    /// Requests in flight over all workers, counted by `least_conn` routes only.
    in_flight: CachePadded<AtomicU64>,
    /// Consecutive failed answers, counted by routes with `max_fails` only.
    fails: CachePadded<AtomicU32>,
}

/// One worker's counters for one target: 48 bytes, one cache line.
#[derive(Debug, Default)]
struct Counters {
    /// Requests sent (attempts: a request retried on the next target counts on both).
    requests: AtomicU64,
    /// Responses by status class, lb's own 502/504 on the target's behalf included.
    responses: [AtomicU64; STATUS_CLASSES],
}

/// Adds one to a counter that only the calling worker writes: a relaxed load + store cannot
/// lose an update and costs no locked instruction.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The index of `status`'s class in a `[_; STATUS_CLASSES]` array; out-of-range codes clamp to
/// 1xx or 5xx.
#[inline]
pub fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1
}

impl Target {
    pub(crate) fn new(addr: SocketAddr, workers: usize) -> Self {
        Target {
            addr,
            counters: (0..workers.max(1))
                .map(|_| CachePadded::default())
                .collect(),
            in_flight: CachePadded::default(),
            fails: CachePadded::default(),
        }
    }

    /// A target whose counts start at `requests` and `responses` (carried over from another lb
    /// process). They go to worker 0's slot: nothing else can write it before the target is
    /// shared.
    pub(crate) fn with_counts(
        addr: SocketAddr,
        workers: usize,
        requests: u64,
        responses: [u64; STATUS_CLASSES],
    ) -> Self {
        let target = Target::new(addr, workers);
        if let Some(slot) = target.counters.first() {
            slot.requests.store(requests, Ordering::Relaxed);
            for (c, n) in slot.responses.iter().zip(responses) {
                c.store(n, Ordering::Relaxed);
            }
        }
        target
    }

    /// The address lb connects to.
    #[inline]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts one request sent by `worker`. Only worker `worker` calls this with its own index;
    /// an out-of-range index is ignored.
    #[inline]
    pub fn record_request(&self, worker: usize) {
        if let Some(slot) = self.counters.get(worker) {
            bump(&slot.requests);
        }
    }

    /// Counts one response with `status` that `worker` passed on (or answered on this target's
    /// behalf). Same single-writer rule as [`Target::record_request`].
    #[inline]
    pub fn record_response(&self, worker: usize, status: u16) {
        if let Some(slot) = self.counters.get(worker) {
            bump(&slot.responses[status_class(status)]);
        }
    }

    /// A request of a `least_conn` route starts on this target; the caller calls
    /// [`Target::finish_request`] exactly once when its exchange ends, however it ends (a
    /// guard's `Drop`). Relaxed: a count, read only to compare loads; nothing is published
    /// through it.
    #[inline]
    pub fn start_request(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// The request [`Target::start_request`] counted has ended.
    #[inline]
    pub fn finish_request(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests in flight on this target over all workers (counted for `least_conn` routes;
    /// 0 for targets that serve none).
    #[inline]
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Failure accounting ([`crate::MaxFails`]): one more answer, a failure or not. `true` when
    /// this failure is the `max_fails`-th in a row (the count starts again; the caller takes
    /// the target out). A success writes only when the count was not 0. Relaxed: a count whose
    /// exact interleaving between workers does not matter; nothing is published through it.
    #[inline]
    pub fn record_outcome(&self, failed: bool, max_fails: u16) -> bool {
        if !failed {
            if self.fails.load(Ordering::Relaxed) != 0 {
                self.fails.store(0, Ordering::Relaxed);
            }
            return false;
        }
        let count = self.fails.fetch_add(1, Ordering::Relaxed) + 1;
        let reached = count >= u32::from(max_fails);
        if reached {
            self.fails.store(0, Ordering::Relaxed);
        }
        reached
    }

    /// Requests sent to this target by all workers together.
    pub fn requests(&self) -> u64 {
        self.counters
            .iter()
            .map(|c| c.requests.load(Ordering::Relaxed))
            .sum()
    }

    /// Responses by status class (index 0 is 1xx), summed over workers.
    pub fn responses(&self) -> [u64; STATUS_CLASSES] {
        let mut sums = [0; STATUS_CLASSES];
        for slot in self.counters.iter() {
            for (sum, c) in sums.iter_mut().zip(&slot.responses) {
                *sum += c.load(Ordering::Relaxed);
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_over_workers_by_class() {
        let t = Target::new("10.0.0.1:80".parse().expect("addr"), 2);
        t.record_request(0);
        t.record_request(1);
        t.record_request(7);
        t.record_response(0, 200);
        t.record_response(1, 204);
        t.record_response(1, 503);
        t.record_response(0, 101);
        t.record_response(0, 999);
        t.record_response(0, 42);
        assert_eq!(t.requests(), 2);
        assert_eq!(t.responses(), [2, 2, 0, 0, 2]);
    }

    #[test]
    fn the_max_fails_th_consecutive_failure_is_reported_once() {
        let t = Target::new("10.0.0.1:80".parse().expect("addr"), 1);
        let outcomes = [true, true, false, true, true, true, true, true, true];
        let reached: Vec<bool> = outcomes.iter().map(|&f| t.record_outcome(f, 3)).collect();
        assert_eq!(
            reached,
            [false, false, false, false, false, true, false, false, true]
        );
    }
}
