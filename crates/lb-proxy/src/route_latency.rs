//! Request duration by route prefix and status class (`lb_route_request_duration_seconds`).
//!
//! The label set is bounded: prefixes, never paths, and at most [`MAX_ROUTES`] of them per
//! worker (any further prefix is counted as [`OTHER`]). Each worker writes only its own
//! histograms ([`crate::histogram`]: relaxed load and store, no shared write); the scraper sums
//! them over workers. A worker finds a prefix's histograms in a map of its own ([`RouteClock`])
//! without a lock; the list shared with the scraper is locked only when a worker meets a prefix
//! for the first time, and at scrape. Prefixes stay listed once seen, as a Prometheus client's
//! series do, until the process ends.

use crate::histogram::{Histogram, Values};
use lb_registry::{escape_label, status_class, STATUS_CLASSES};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
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
#[derive(Debug, Default)]
pub(crate) struct RouteClock {
    seen: RefCell<HashMap<Box<str>, Arc<ByClass>>>,
}

impl RouteClock {
    /// Counts a request to `prefix` answered with `status` after `elapsed`, in `shared` (this
    /// worker's list). Allocates only the first time this worker meets `prefix`.
    pub(crate) fn observe(
        &self,
        shared: &RouteLatencies,
        prefix: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let mut seen = self.seen.borrow_mut();
        let by_class = match seen.get(prefix) {
            Some(found) => found,
            None => seen
                .entry(prefix.into())
                .or_insert_with(|| shared.histograms(prefix)),
        };
        by_class.0[status_class(status)].observe(elapsed);
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
        c0.observe(&w0, "/api", 200, ms(2));
        c1.observe(&w1, "/api", 204, ms(20));
        c1.observe(&w1, "/api", 502, ms(1));
        c0.observe(&w0, "/a\"b", 503, ms(1));
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
    fn prefixes_beyond_the_bound_count_as_other() {
        let shared = RouteLatencies::default();
        let clock = RouteClock::default();
        for i in 0..MAX_ROUTES + 5 {
            clock.observe(&shared, &format!("/r{i}"), 200, Duration::from_millis(1));
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
}
