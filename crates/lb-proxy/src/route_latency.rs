//! Request duration by route prefix and status class (`lb_route_request_duration_seconds`).
//!
//! The label set is bounded: prefixes, never paths, and at most [`MAX_ROUTES`] of them per
//! worker (any further prefix is counted as [`OTHER`]). Each worker writes only its own
//! histograms ([`crate::histogram`]: relaxed load and store, no shared write); the scraper sums
//! them over workers. A worker finds a prefix's histograms in a map of its own ([`RouteClock`])
//! without a lock; the list shared with the scraper is locked only when a worker meets a prefix
//! for the first time, and at scrape. Prefixes stay listed once seen, as a Prometheus client's
//! series do, until the process ends.

use crate::histogram::{Histogram, Values, BUCKETS};
use lb_registry::{escape_label, status_class, STATUS_CLASSES};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// Prefixes a worker keeps histograms for; beyond them, requests count as [`OTHER`].
pub(crate) const MAX_ROUTES: usize = 1024;

/// The route label of requests whose prefix came after [`MAX_ROUTES`] others (no prefix can be
/// this: prefixes start with `/`).
pub(crate) const OTHER: &str = "(other)";

/// One prefix's histograms, one per status class.
#[derive(Debug, Default)]
pub(crate) struct ByClass([Histogram; STATUS_CLASSES]);

/// One worker's histograms by prefix, as the scraper reads them.
#[derive(Debug, Default)]
pub(crate) struct RouteLatencies {
    routes: Mutex<Vec<(Box<str>, Arc<ByClass>)>>,
}

impl RouteLatencies {
    /// The histograms of `prefix`: found, created, or [`OTHER`]'s once [`MAX_ROUTES`] are listed.
    fn histograms(&self, prefix: &str) -> Arc<ByClass> {
        let mut routes = self.routes.lock();
        let name = if routes.len() < MAX_ROUTES {
            prefix
        } else {
            OTHER
        };
        if let Some((_, found)) = routes.iter().find(|(p, _)| &**p == name) {
            return found.clone();
        }
        let created = Arc::new(ByClass::default());
        routes.push((name.into(), created.clone()));
        created
    }

    /// Each prefix's bucket counts (non-cumulative, `+Inf` last), summed over status classes and
    /// `workers`: what the status page's latency window is computed from.
    pub(crate) fn buckets_all<'w>(
        workers: impl Iterator<Item = &'w RouteLatencies>,
    ) -> BTreeMap<Box<str>, [u64; BUCKETS]> {
        let mut sums: BTreeMap<Box<str>, [u64; BUCKETS]> = BTreeMap::new();
        for worker in workers {
            for (prefix, by_class) in worker.routes.lock().iter() {
                let sum = sums.entry(prefix.clone()).or_insert([0; BUCKETS]);
                for histogram in &by_class.0 {
                    for (total, n) in sum.iter_mut().zip(histogram.values().buckets()) {
                        *total = total.wrapping_add(*n);
                    }
                }
            }
        }
        sums
    }

    /// Appends the family, summed over `workers`: one histogram per prefix and status class
    /// that has counted a request.
    pub(crate) fn render_all<'w>(
        workers: impl Iterator<Item = &'w RouteLatencies>,
        out: &mut String,
    ) {
        let mut sums: BTreeMap<Box<str>, [Values; STATUS_CLASSES]> = BTreeMap::new();
        for worker in workers {
            for (prefix, by_class) in worker.routes.lock().iter() {
                let sum = sums.entry(prefix.clone()).or_default();
                for (values, histogram) in sum.iter_mut().zip(&by_class.0) {
                    values.add(histogram);
                }
            }
        }
        out.push_str(
            "# HELP lb_route_request_duration_seconds Time from a complete request head to the \
             end of its answer, by route prefix and status class, over all workers.\n\
             # TYPE lb_route_request_duration_seconds histogram\n",
        );
        let mut labels = String::new();
        for (prefix, by_class) in &sums {
            for (class, values) in by_class.iter().enumerate() {
                if values.count() == 0 {
                    continue;
                }
                labels.clear();
                labels.push_str("route=\"");
                escape_label(prefix, &mut labels);
                labels.push_str(&format!("\",class=\"{}xx\",", class + 1));
                values.render("lb_route_request_duration_seconds", &labels, out);
            }
        }
    }
}

/// A worker's way to its histograms by prefix: a lock-free lookup once a prefix was seen.
///
/// Keyed by the address of the registry's shared `Arc<str>` for the prefix
/// ([`lb_registry::Route::name_shared`]), which is the same in every snapshot: a lookup hashes
/// one word instead of the prefix's text. Each entry keeps its `Arc` alive, so no other prefix
/// can take the address while the entry exists. A prefix registered anew gets a new `Arc` and a
/// new entry that finds the same histograms by name; the map is emptied when such entries pile
/// up past [`MAX_SEEN`], and refilled from the shared list as prefixes come back.
#[derive(Debug, Default)]
pub(crate) struct RouteClock {
    seen: RefCell<HashMap<usize, Seen, BuildHasherDefault<WordHasher>>>,
}

/// One prefix's histograms, and the `Arc` whose address is their key (held so that it stays
/// unique).
#[derive(Debug)]
struct Seen {
    _prefix: Arc<str>,
    by_class: Arc<ByClass>,
}

/// Entries a worker's map holds before it starts afresh (prefixes that came and went).
const MAX_SEEN: usize = 4 * MAX_ROUTES;

/// Hashes the one word a key is (an address): multiplied by an odd constant, so that keys
/// differing in their alignment bits spread over the buckets.
#[derive(Debug, Default, Clone, Copy)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(32)
    }
}

impl RouteClock {
    /// Counts a request to `prefix` answered with `status` after `elapsed`, in `shared` (this
    /// worker's list). Allocates only the first time this worker meets `prefix`'s `Arc`.
    pub(crate) fn observe(
        &self,
        shared: &RouteLatencies,
        prefix: &Arc<str>,
        status: u16,
        elapsed: Duration,
    ) {
        let key = Arc::as_ptr(prefix).cast::<u8>() as usize;
        let mut seen = self.seen.borrow_mut();
        if !seen.contains_key(&key) && seen.len() >= MAX_SEEN {
            seen.clear();
        }
        let entry = seen.entry(key).or_insert_with(|| Seen {
            _prefix: prefix.clone(),
            by_class: shared.histograms(prefix),
        });
        entry.by_class.0[status_class(status)].observe(elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_summed_by_prefix_and_class_over_workers() {
        let (w0, w1) = (RouteLatencies::default(), RouteLatencies::default());
        let (c0, c1) = (RouteClock::default(), RouteClock::default());
        let ms = Duration::from_millis;
        let (api, quoted) = (Arc::from("/api"), Arc::from("/a\"b"));
        c0.observe(&w0, &api, 200, ms(2));
        c1.observe(&w1, &api, 204, ms(20));
        c1.observe(&w1, &api, 502, ms(1));
        c0.observe(&w0, &quoted, 503, ms(1));
        let mut out = String::new();
        RouteLatencies::render_all([&w0, &w1].into_iter(), &mut out);
        let api2 = "lb_route_request_duration_seconds_count{route=\"/api\",class=\"2xx\"} 2\n";
        assert!(out.contains(api2), "{out}");
        assert!(out
            .contains("lb_route_request_duration_seconds_count{route=\"/api\",class=\"5xx\"} 1\n"));
        assert!(
            out.contains("{route=\"/a\\\"b\",class=\"5xx\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        // Classes that counted nothing have no series.
        assert!(!out.contains("class=\"4xx\""), "{out}");
        assert_eq!(out.matches("# TYPE ").count(), 1);
    }

    #[test]
    fn bucket_counts_are_summed_over_classes_and_workers() {
        let (w0, w1) = (RouteLatencies::default(), RouteLatencies::default());
        let (c0, c1) = (RouteClock::default(), RouteClock::default());
        let api: Arc<str> = Arc::from("/api");
        c0.observe(&w0, &api, 200, Duration::from_micros(300));
        c1.observe(&w1, &api, 503, Duration::from_micros(400));
        c1.observe(&w1, &api, 200, Duration::from_secs(60));
        let sums = RouteLatencies::buckets_all([&w0, &w1].into_iter());
        let api = sums.get("/api").expect("listed");
        assert_eq!(api[0], 2, "both sub-0.5 ms requests, whatever their class");
        assert_eq!(api[BUCKETS - 1], 1, "the minute-long one is in +Inf");
        assert_eq!(api.iter().sum::<u64>(), 3);
    }

    #[test]
    fn prefixes_beyond_the_bound_count_as_other() {
        let shared = RouteLatencies::default();
        let clock = RouteClock::default();
        for i in 0..MAX_ROUTES + 5 {
            let prefix: Arc<str> = Arc::from(format!("/r{i}"));
            clock.observe(&shared, &prefix, 200, Duration::from_millis(1));
        }
        assert_eq!(shared.routes.lock().len(), MAX_ROUTES + 1);
        let mut out = String::new();
        RouteLatencies::render_all(std::iter::once(&shared), &mut out);
        assert!(
            out.contains(
                "lb_route_request_duration_seconds_count{route=\"(other)\",class=\"2xx\"} 5\n"
            ),
            "{out}"
        );
    }

    /// A prefix registered anew comes with a new `Arc`: its requests still count into the one
    /// series of that prefix, and the worker's map stays bounded however often that happens.
    #[test]
    fn a_prefix_registered_anew_keeps_its_series_and_the_map_stays_bounded() {
        let shared = RouteLatencies::default();
        let clock = RouteClock::default();
        for _ in 0..MAX_SEEN + 10 {
            let again: Arc<str> = Arc::from("/api");
            clock.observe(&shared, &again, 200, Duration::from_millis(1));
        }
        assert!(clock.seen.borrow().len() <= MAX_SEEN);
        assert_eq!(shared.routes.lock().len(), 1);
        let mut out = String::new();
        RouteLatencies::render_all(std::iter::once(&shared), &mut out);
        let count = format!(
            "lb_route_request_duration_seconds_count{{route=\"/api\",class=\"2xx\"}} {}\n",
            MAX_SEEN + 10
        );
        assert!(out.contains(&count), "{out}");
    }
}
