//! One upstream address serving a route, with its per-worker request counters.
//!
//! Counters are one cache-padded slot per worker, written only by that worker (a plain load and
//! store, no RMW, no shared line), and summed when the control plane reads them. That keeps the
//! route cursor the only shared write on the request path.

use crossbeam_utils::CachePadded;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// An upstream target.
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    requests: Box<[CachePadded<AtomicU64>]>,
}

impl Target {
    pub(crate) fn new(addr: SocketAddr, workers: usize) -> Self {
        Target {
            addr,
            requests: (0..workers.max(1))
                .map(|_| CachePadded::default())
                .collect(),
        }
    }

    /// The address lb connects to.
    #[inline]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts one request sent by `worker`. Only worker `worker` calls this with its own index, so
    /// a relaxed load + store cannot lose an update; an out-of-range index is ignored.
    #[inline]
    pub fn record_request(&self, worker: usize) {
        if let Some(slot) = self.requests.get(worker) {
            slot.store(slot.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Requests sent to this target by all workers together.
    pub fn requests(&self) -> u64 {
        self.requests
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}
