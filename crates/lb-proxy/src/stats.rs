//! Per-worker counters, written only by their worker and summed by the control plane at scrape.
//!
//! Each worker owns one `WorkerStats` (its own cache lines) and is its only writer, so a relaxed
//! load + store replaces a locked RMW: no shared write on the hot path besides the route cursor.
//! The same holds for its histograms by route ([`crate::route_latency`]).

use crate::histogram::{add, Histogram, BOUNDS};
use crate::route_latency::RouteLatencies;
use crate::tls_stats::TlsCounters;
use crossbeam_utils::CachePadded;
use lb_registry::{status_class, STATUS_CLASSES};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct WorkerStats {
    inner: CachePadded<Counters>,
    /// Request durations by route prefix and status class.
    pub(crate) routes: RouteLatencies,
    /// Handshakes and their failures on the TLS listener.
    pub(crate) tls: TlsCounters,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    requests: AtomicU64,
    status: [AtomicU64; STATUS_CLASSES],
    pool_hits: AtomicU64,
    pool_misses: AtomicU64,
    upstream_open: AtomicU64,
    spliced: AtomicU64,
    /// Of `accepted`, the connections that spoke HTTP/2; of `requests`, its streams.
    h2_accepted: AtomicU64,
    h2_active: AtomicU64,
    h2_streams: AtomicU64,
    latency: Histogram,
}

/// Picks one counter out of a worker's counters.
type Field = fn(&Counters) -> &AtomicU64;

impl WorkerStats {
    pub(crate) fn accepted(&self) {
        add(&self.inner.accepted, 1);
        add(&self.inner.active, 1);
    }

    pub(crate) fn closed(&self) {
        add(&self.inner.active, u64::MAX);
    }

    /// A connection (already counted as accepted) turned out to speak HTTP/2.
    pub(crate) fn h2_connection(&self) {
        add(&self.inner.h2_accepted, 1);
        add(&self.inner.h2_active, 1);
    }

    pub(crate) fn h2_closed(&self) {
        add(&self.inner.h2_active, u64::MAX);
    }

    /// A routed HTTP/2 stream: of the requests [`WorkerStats::request`] counts, one that came
    /// as an HTTP/2 stream.
    pub(crate) fn h2_stream(&self) {
        add(&self.inner.h2_streams, 1);
    }

    pub(crate) fn request(&self) {
        add(&self.inner.requests, 1);
    }

    pub(crate) fn response(&self, status: u16) {
        add(&self.inner.status[status_class(status)], 1);
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

    pub(crate) fn upstream_opened(&self) {
        add(&self.inner.upstream_open, 1);
    }

    pub(crate) fn upstream_closed(&self) {
        add(&self.inner.upstream_open, u64::MAX);
    }

    /// Counts body bytes moved with `splice(2)`.
    pub(crate) fn spliced(&self, bytes: u64) {
        add(&self.inner.spliced, bytes);
    }

    /// Records the time from a complete request head to the end of its response.
    pub(crate) fn latency(&self, elapsed: std::time::Duration) {
        self.inner.latency.observe(elapsed);
    }

    /// Forgets the connections of a worker that died: the supervisor calls this before a
    /// respawned worker takes over these counters, since a dead worker's connections are gone.
    pub fn reset_active(&self) {
        self.inner.active.store(0, Ordering::Relaxed);
        self.inner.h2_active.store(0, Ordering::Relaxed);
    }

    /// Connections this worker accepted so far (shows `SO_REUSEPORT` balance between workers).
    pub fn accepted_total(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Requests this worker read so far.
    pub fn requests_total(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Client connections this worker serves now.
    pub fn active_now(&self) -> u64 {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Upper bounds (seconds) of the latency histograms' buckets; one more bucket, `+Inf`,
    /// follows the last.
    pub fn latency_bounds() -> &'static [f64] {
        &BOUNDS
    }

    /// Each route prefix's request-duration bucket counts (non-cumulative, one per
    /// [`WorkerStats::latency_bounds`] and `+Inf` last), summed over status classes and
    /// `workers`; prefixes in order. Locks each worker's list of prefixes briefly, as a scrape
    /// does.
    pub fn route_latency_all(workers: &[std::sync::Arc<WorkerStats>]) -> Vec<(String, Vec<u64>)> {
        RouteLatencies::buckets_all(workers.iter().map(|w| &w.routes))
            .into_iter()
            .map(|(prefix, buckets)| (prefix.into_string(), buckets.to_vec()))
            .collect()
    }

    /// Appends every worker's counters in Prometheus text format, one metric family at a time
    /// (the format wants each family's samples together), labelled by worker.
    pub fn render_all(workers: &[std::sync::Arc<WorkerStats>], out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let simple: [(&str, &str, &str, Field); 10] = [
            (
                "lb_worker_connections_accepted_total",
                "counter",
                "Client connections a worker accepted.",
                |c| &c.accepted,
            ),
            (
                "lb_worker_connections_active",
                "gauge",
                "Client connections a worker serves now.",
                |c| &c.active,
            ),
            (
                "lb_worker_http2_connections_accepted_total",
                "counter",
                "Client connections a worker accepted that spoke HTTP/2.",
                |c| &c.h2_accepted,
            ),
            (
                "lb_worker_http2_connections_active",
                "gauge",
                "HTTP/2 client connections a worker serves now.",
                |c| &c.h2_active,
            ),
            (
                "lb_worker_http2_streams_total",
                "counter",
                "Requests a worker read that came as HTTP/2 streams.",
                |c| &c.h2_streams,
            ),
            (
                "lb_worker_requests_total",
                "counter",
                "Requests a worker read.",
                |c| &c.requests,
            ),
            (
                "lb_worker_upstream_pool_hits_total",
                "counter",
                "Upstream requests sent on a pooled connection.",
                |c| &c.pool_hits,
            ),
            (
                "lb_worker_upstream_pool_misses_total",
                "counter",
                "Upstream requests that needed a new connection.",
                |c| &c.pool_misses,
            ),
            (
                "lb_worker_upstream_connections_open",
                "gauge",
                "Upstream connections a worker holds open (busy or pooled).",
                |c| &c.upstream_open,
            ),
            (
                "lb_worker_spliced_bytes_total",
                "counter",
                "Body bytes a worker moved with splice(2), kernel to kernel.",
                |c| &c.spliced,
            ),
        ];
        for (name, kind, help, field) in simple {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (w, stats) in workers.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{worker=\"{w}\"}} {}",
                    load(field(&stats.inner))
                );
            }
        }
        out.push_str(
            "# HELP lb_worker_responses_total Responses a worker sent, by status class.\n\
             # TYPE lb_worker_responses_total counter\n",
        );
        for (w, stats) in workers.iter().enumerate() {
            for (i, count) in stats.inner.status.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lb_worker_responses_total{{worker=\"{w}\",class=\"{}xx\"}} {}",
                    i + 1,
                    load(count)
                );
            }
        }
        out.push_str(
            "# HELP lb_request_duration_seconds Time from a complete request head to the end \
             of its response, per worker.\n\
             # TYPE lb_request_duration_seconds histogram\n",
        );
        for (w, stats) in workers.iter().enumerate() {
            let labels = format!("worker=\"{w}\",");
            stats
                .inner
                .latency
                .values()
                .render("lb_request_duration_seconds", &labels, out);
        }
        RouteLatencies::render_all(workers.iter().map(|w| &w.routes), out);
        TlsCounters::render_all(workers.iter().map(|w| &w.tls), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn families_are_grouped_and_histogram_is_cumulative() {
        let workers = vec![
            Arc::new(WorkerStats::default()),
            Arc::new(WorkerStats::default()),
        ];
        workers[0].request();
        workers[1].request();
        workers[1].request();
        workers[0].latency(Duration::from_micros(300));
        workers[0].latency(Duration::from_millis(3));
        workers[0].latency(Duration::from_secs(60));
        let mut out = String::new();
        WorkerStats::render_all(&workers, &mut out);
        assert!(out.contains(
            "lb_worker_requests_total{worker=\"0\"} 1\nlb_worker_requests_total{worker=\"1\"} 2\n"
        ));
        assert!(out.contains("lb_request_duration_seconds_bucket{worker=\"0\",le=\"0.0005\"} 1\n"));
        assert!(out.contains("lb_request_duration_seconds_bucket{worker=\"0\",le=\"0.005\"} 2\n"));
        assert!(out.contains("lb_request_duration_seconds_bucket{worker=\"0\",le=\"10\"} 2\n"));
        assert!(out.contains("lb_request_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("lb_request_duration_seconds_count{worker=\"0\"} 3\n"));
        // Each family has exactly one TYPE line, before its samples.
        for family in ["lb_worker_requests_total", "lb_request_duration_seconds"] {
            assert_eq!(
                out.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
    }
}
