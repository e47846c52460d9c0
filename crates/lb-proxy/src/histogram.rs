//! A latency histogram written by one worker and read at scrape, and its Prometheus rendering.
//!
//! Single writer: each histogram belongs to one worker, which updates it with a relaxed load and
//! store (no locked RMW, no shared write). The control plane sums the workers' [`Values`] and
//! renders them, cumulative as the format wants. A leaf: it imports nothing of this crate.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the buckets; `+Inf` is implied.
pub(crate) const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets including `+Inf`.
pub(crate) const BUCKETS: usize = BOUNDS.len() + 1;

/// Adds `n` to a counter that only the calling worker writes. Relaxed: readers want a recent
/// value, not an ordering with other memory.
#[inline]
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// One worker's histogram.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Non-cumulative bucket counts (the last one is `+Inf`); made cumulative at render.
    buckets: [AtomicU64; BUCKETS],
    /// Sum of the observations in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation (by this histogram's worker only).
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(BOUNDS.len());
        add(&self.buckets[bucket], 1);
        add(
            &self.sum_us,
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        );
    }

    /// What it holds now.
    pub(crate) fn values(&self) -> Values {
        let mut v = Values::default();
        v.add(self);
        v
    }
}

/// Counts read out of one or more histograms (summed over workers).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Values {
    buckets: [u64; BUCKETS],
    sum_us: u64,
}

impl Values {
    /// Adds what `h` holds now.
    pub(crate) fn add(&mut self, h: &Histogram) {
        for (sum, bucket) in self.buckets.iter_mut().zip(&h.buckets) {
            *sum = sum.wrapping_add(bucket.load(Ordering::Relaxed));
        }
        self.sum_us = self.sum_us.wrapping_add(h.sum_us.load(Ordering::Relaxed));
    }

    /// The non-cumulative bucket counts, `+Inf` last.
    pub(crate) fn buckets(&self) -> &[u64; BUCKETS] {
        &self.buckets
    }

    /// Observations counted.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Appends the `_bucket`, `_sum` and `_count` samples of family `name`; `labels` (already
    /// escaped, `k="v",` each, may be empty) go before `le`.
    pub(crate) fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket;
            let _ = match BOUNDS.get(i) {
                Some(le) => writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}"),
                None => writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}"),
            };
        }
        let labels = labels.strip_suffix(',').unwrap_or(labels);
        let sum = self.sum_us as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_render_cumulative() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.observe(Duration::from_micros(300));
        a.observe(Duration::from_millis(3));
        b.observe(Duration::from_secs(60));
        let mut v = a.values();
        v.add(&b);
        assert_eq!(v.count(), 3);
        let mut out = String::new();
        v.render("h", "route=\"/a\",", &mut out);
        assert!(
            out.starts_with("h_bucket{route=\"/a\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{route=\"/a\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{route=\"/a\",le=\"10\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{route=\"/a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(
            out.ends_with("h_sum{route=\"/a\"} 60.0033\nh_count{route=\"/a\"} 3\n"),
            "{out}"
        );
        let mut out = String::new();
        Values::default().render("h", "", &mut out);
        assert!(out.ends_with("h_sum{} 0\nh_count{} 0\n"), "{out}");
    }
}
