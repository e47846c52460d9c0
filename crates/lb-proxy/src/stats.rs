//! Per-worker counters, written only by their worker and summed by the control plane at scrape.
//!
//! Each worker owns one `WorkerStats` (its own cache lines) and is its only writer, so a relaxed
//! load + store replaces a locked RMW: no shared write on the hot path besides the route cursor.

use crossbeam_utils::CachePadded;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    inner: CachePadded<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    requests: AtomicU64,
    status: [AtomicU64; 5],
    pool_hits: AtomicU64,
    pool_misses: AtomicU64,
}

/// Adds `n` to a counter that only the calling worker writes. Relaxed: readers want a recent
/// value, not an ordering with other memory.
#[inline]
fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerStats {
    pub(crate) fn accepted(&self) {
        add(&self.inner.accepted, 1);
        add(&self.inner.active, 1);
    }

    pub(crate) fn closed(&self) {
        add(&self.inner.active, u64::MAX);
    }

    pub(crate) fn request(&self) {
        add(&self.inner.requests, 1);
    }

    pub(crate) fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        add(&self.inner.status[class], 1);
    }

    pub(crate) fn pool(&self, hit: bool) {
        add(
            if hit {
                &self.inner.pool_hits
            } else {
                &self.inner.pool_misses
            },
            1,
        );
    }

    /// Connections this worker accepted so far (shows `SO_REUSEPORT` balance between workers).
    pub fn accepted_total(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Requests this worker read so far.
    pub fn requests_total(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Appends this worker's counters in Prometheus text format (no HELP/TYPE lines: the caller
    /// writes those once for all workers via [`WorkerStats::render_all`]).
    fn render(&self, worker: usize, out: &mut String) {
        let c = &self.inner;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "lb_worker_connections_accepted_total{{worker=\"{worker}\"}} {}",
            load(&c.accepted)
        );
        let _ = writeln!(
            out,
            "lb_worker_connections_active{{worker=\"{worker}\"}} {}",
            load(&c.active)
        );
        let _ = writeln!(
            out,
            "lb_worker_requests_total{{worker=\"{worker}\"}} {}",
            load(&c.requests)
        );
        for (i, s) in c.status.iter().enumerate() {
            let _ = writeln!(
                out,
                "lb_worker_responses_total{{worker=\"{worker}\",class=\"{}xx\"}} {}",
                i + 1,
                load(s)
            );
        }
        let _ = writeln!(
            out,
            "lb_worker_upstream_pool_hits_total{{worker=\"{worker}\"}} {}",
            load(&c.pool_hits)
        );
        let _ = writeln!(
            out,
            "lb_worker_upstream_pool_misses_total{{worker=\"{worker}\"}} {}",
            load(&c.pool_misses)
        );
    }

    /// Appends every worker's counters in Prometheus text format.
    pub fn render_all(workers: &[std::sync::Arc<WorkerStats>], out: &mut String) {
        out.push_str("# TYPE lb_worker_connections_accepted_total counter\n");
        out.push_str("# TYPE lb_worker_connections_active gauge\n");
        out.push_str("# TYPE lb_worker_requests_total counter\n");
        out.push_str("# TYPE lb_worker_responses_total counter\n");
        out.push_str("# TYPE lb_worker_upstream_pool_hits_total counter\n");
        out.push_str("# TYPE lb_worker_upstream_pool_misses_total counter\n");
        for (i, w) in workers.iter().enumerate() {
            w.render(i, out);
        }
    }
}
