//! The once-a-second sampler behind `GET /stats`: cumulative counts in, rates, a latency window
//! and recent registry changes out.
//!
//! Why the server samples rather than the page computing rates from counter deltas: every client
//! (the page, `curl`, a script) then sees the same rates and the same 10 s latency window without
//! keeping state of its own, and the cost is fixed whatever the number of open pages (one sample
//! a second, cheaper than one `/stats` answer: see docs/benchmarks.md). The ring is small: the
//! latency counts of the last [`WINDOW`] seconds, and the per-target counts of the newest two
//! samples only (a rate needs no more).
//!
//! Registry changes (registered, deregistered, down, up) are found by comparing consecutive
//! samples of the registry's listing, so every source of change is seen in one place (the API,
//! ttl expiry, reloads, active and passive health, later an etcd watch) without a hook in each;
//! the price is a one-second resolution: a target that flaps down and up within one second is not
//! listed. The changes are kept in a bounded ring ([`CHANGES`]).
//!
//! Pure: the caller passes the time and the counts ([`Sampler::record`]); nothing here reads a
//! clock or a socket.

use lb_registry::TargetInfo;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the control plane samples.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// Seconds of latency the window covers (p50/p99 "over the last 10 s").
pub(crate) const WINDOW: usize = 10;

/// Registry changes kept for the page.
pub(crate) const CHANGES: usize = 100;

/// One worker's counters at a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Client connections it accepted since it started.
    pub accepted: u64,
    /// Client connections it serves now.
    pub open: u64,
    /// Requests it read since it started.
    pub requests: u64,
}

/// What the data plane counts, read at each sample (the runtime provides it: lb-admin does not
/// know the workers).
#[derive(Debug, Clone, Default)]
pub struct DataPlaneCounts {
    /// Per worker, by worker id.
    pub workers: Vec<WorkerCounts>,
    /// Upper bounds (seconds) of the latency buckets; one more bucket (`+Inf`) follows.
    pub latency_bounds: &'static [f64],
    /// Per route prefix: its cumulative request-duration bucket counts, non-cumulative across
    /// buckets, `+Inf` last.
    pub route_latency: Vec<(String, Vec<u64>)>,
}

/// Reads the data plane's counts (called once per sample, on the control-plane thread).
pub type CountsSource = Arc<dyn Fn() -> DataPlaneCounts + Send + Sync>;

/// A target as samples know it: its prefix and address.
pub(crate) type TargetKey = (String, SocketAddr);

/// One target's counts at a sample, and since when its health is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetCounts {
    requests: u64,
    client_errors: u64,
    server_errors: u64,
    healthy: bool,
    /// When `healthy` last changed, or when the target was first seen.
    pub(crate) since: SystemTime,
}

/// What happened to a target between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChangeKind {
    Registered,
    Deregistered,
    Down,
    Up,
}

/// One registry change, as seen by the sample that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) at: SystemTime,
    pub(crate) kind: ChangeKind,
    pub(crate) path: String,
    pub(crate) target: SocketAddr,
}

/// Per-second rates of one target or worker between the newest two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) requests: f64,
    pub(crate) client_errors: f64,
    pub(crate) server_errors: f64,
}

struct Sample {
    at: SystemTime,
    /// Empty in every sample but the newest two (see the module doc).
    targets: HashMap<TargetKey, TargetCounts>,
    /// Requests sent to each prefix's targets so far (for the rate history).
    routes: HashMap<String, u64>,
    data: DataPlaneCounts,
}

/// The ring of samples and the ring of changes.
#[derive(Default)]
pub(crate) struct Sampler {
    /// Oldest first, at most `WINDOW + 1`.
    samples: VecDeque<Sample>,
    /// Oldest first, at most [`CHANGES`].
    changes: VecDeque<Change>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("samples", &self.samples.len())
            .field("changes", &self.changes.len())
            .finish()
    }
}

impl Sampler {
    /// Takes the sample of `now`: the registry's `targets` and the data plane's counts.
    pub(crate) fn record(
        &mut self,
        now: SystemTime,
        targets: &[TargetInfo],
        data: DataPlaneCounts,
    ) {
        let previous = self.samples.back().map(|s| &s.targets);
        let mut next = HashMap::with_capacity(targets.len());
        let mut routes: HashMap<String, u64> = HashMap::new();
        for t in targets {
            let route = lb_registry::join_route(t.host.as_deref(), &t.path);
            *routes.entry(route.clone()).or_default() += t.requests;
            let key = (route, t.addr);
            let since = match previous.and_then(|p| p.get(&key)) {
                Some(before) if before.healthy == t.healthy => before.since,
                _ => now,
            };
            let counts = TargetCounts {
                requests: t.requests,
                client_errors: t.responses[3],
                server_errors: t.responses[4],
                healthy: t.healthy,
                since,
            };
            next.insert(key, counts);
        }
        if let Some(previous) = previous {
            for (kind, (path, target)) in changes(previous, &next) {
                if self.changes.len() == CHANGES {
                    self.changes.pop_front();
                }
                self.changes.push_back(Change {
                    at: now,
                    kind,
                    path,
                    target,
                });
            }
        }
        if self.samples.len() > WINDOW {
            self.samples.pop_front();
        }
        if let Some(older) = self.samples.len().checked_sub(2) {
            self.samples[older].targets = HashMap::new();
        }
        self.samples.push_back(Sample {
            at: now,
            targets: next,
            routes,
            data,
        });
    }

    /// `path`'s requests per second between each two consecutive samples of the ring, oldest
    /// first (at most [`WINDOW`]): the start of the page's sparkline.
    pub(crate) fn route_history(&self, path: &str) -> Vec<f64> {
        let pairs = self.samples.iter().zip(self.samples.iter().skip(1));
        pairs
            .filter_map(|(old, new)| {
                let seconds = new.at.duration_since(old.at).ok()?.as_secs_f64();
                let (before, after) = (old.routes.get(path)?, new.routes.get(path)?);
                (seconds > 0.0).then(|| after.saturating_sub(*before) as f64 / seconds)
            })
            .collect()
    }

    /// When the newest sample was taken.
    pub(crate) fn sampled_at(&self) -> Option<SystemTime> {
        self.samples.back().map(|s| s.at)
    }

    /// The newest two samples and the seconds between them.
    fn last_two(&self) -> Option<(&Sample, &Sample, f64)> {
        let n = self.samples.len();
        let (old, new) = (
            self.samples.get(n.checked_sub(2)?)?,
            self.samples.get(n - 1)?,
        );
        let seconds = new.at.duration_since(old.at).ok()?.as_secs_f64();
        (seconds > 0.0).then_some((old, new, seconds))
    }

    /// `key`'s counts at the newest sample.
    pub(crate) fn target(&self, key: &TargetKey) -> Option<&TargetCounts> {
        self.samples.back()?.targets.get(key)
    }

    /// `key`'s rates between the newest two samples (`None` before the second sample, or for a
    /// target the older one did not have).
    pub(crate) fn target_rates(&self, key: &TargetKey) -> Option<Rates> {
        let (old, new, seconds) = self.last_two()?;
        let (a, b) = (old.targets.get(key)?, new.targets.get(key)?);
        // A target registered anew starts from zero: saturate rather than wrap.
        let per_second = |x: u64, y: u64| y.saturating_sub(x) as f64 / seconds;
        Some(Rates {
            requests: per_second(a.requests, b.requests),
            client_errors: per_second(a.client_errors, b.client_errors),
            server_errors: per_second(a.server_errors, b.server_errors),
        })
    }

    /// Each worker's counts at the newest sample, with its request rate (0 before the second).
    pub(crate) fn workers(&self) -> Vec<(WorkerCounts, f64)> {
        let Some(newest) = self.samples.back() else {
            return Vec::new();
        };
        let before = self.last_two();
        newest
            .data
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let rate = before
                    .and_then(|(old, _, seconds)| {
                        let was = old.data.workers.get(i)?;
                        Some(w.requests.saturating_sub(was.requests) as f64 / seconds)
                    })
                    .unwrap_or(0.0);
                (*w, rate)
            })
            .collect()
    }

    /// Bucket counts of the requests answered over the window (newest minus oldest sample), by
    /// route prefix, with the buckets' bounds.
    pub(crate) fn latency_window(&self) -> (&'static [f64], HashMap<&str, Vec<u64>>) {
        let (Some(oldest), Some(newest)) = (self.samples.front(), self.samples.back()) else {
            return (&[], HashMap::new());
        };
        if self.samples.len() < 2 {
            return (newest.data.latency_bounds, HashMap::new());
        }
        let before: HashMap<&str, &Vec<u64>> = oldest
            .data
            .route_latency
            .iter()
            .map(|(p, b)| (p.as_str(), b))
            .collect();
        let window = newest
            .data
            .route_latency
            .iter()
            .map(|(prefix, now)| {
                let delta = match before.get(prefix.as_str()) {
                    Some(then) => now
                        .iter()
                        .zip(then.iter().chain(std::iter::repeat(&0)))
                        .map(|(n, t)| n.saturating_sub(*t))
                        .collect(),
                    // A prefix first served within the window: all it counted is in it.
                    None => now.clone(),
                };
                (prefix.as_str(), delta)
            })
            .collect();
        (newest.data.latency_bounds, window)
    }

    /// The changes kept, newest first.
    pub(crate) fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().rev()
    }
}

/// What changed between two samples' targets: those that appeared, left, went down or came up,
/// ordered by prefix and address so that the ring reads the same on every run.
fn changes(
    before: &HashMap<TargetKey, TargetCounts>,
    after: &HashMap<TargetKey, TargetCounts>,
) -> Vec<(ChangeKind, TargetKey)> {
    let mut found: Vec<(ChangeKind, TargetKey)> = Vec::new();
    for (key, now) in after {
        match before.get(key) {
            None => found.push((ChangeKind::Registered, key.clone())),
            Some(was) if was.healthy && !now.healthy => found.push((ChangeKind::Down, key.clone())),
            Some(was) if !was.healthy && now.healthy => found.push((ChangeKind::Up, key.clone())),
            Some(_) => {}
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        found.push((ChangeKind::Deregistered, key.clone()));
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

/// The `q`-quantile (0..=1) of the observations counted in `buckets` (non-cumulative, one per
/// bound and `+Inf` last), in seconds: linear within the bucket it falls in, as Prometheus'
/// `histogram_quantile` estimates; one in `+Inf` reads as the highest bound. `None` without
/// observations.
pub(crate) fn quantile(bounds: &[f64], buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in buckets.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = (rank - below as f64) / count as f64;
            return Some(lower + (upper - lower) * within);
        }
        below += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn target(path: &str, port: u16, requests: u64, healthy: bool) -> TargetInfo {
        TargetInfo {
            host: None,
            path: path.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            requests,
            in_flight: 0,
            responses: [0, requests, 0, 1, 2],
            healthy,
            last_check: None,
            last_check_at: None,
            weight: 1,
            lease: None,
        }
    }

    fn key(path: &str, port: u16) -> TargetKey {
        (path.to_string(), SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let bounds = [0.001, 0.01, 0.1];
        let table: [(&[u64], f64, Option<f64>); 6] = [
            (&[0, 0, 0, 0], 0.5, None),
            (&[10, 0, 0, 0], 0.5, Some(0.0005)),
            (&[0, 10, 0, 0], 0.5, Some(0.0055)),
            (&[0, 10, 0, 0], 1.0, Some(0.01)),
            (&[50, 0, 49, 1], 0.99, Some(0.1)),
            (&[0, 0, 0, 4], 0.5, Some(0.1)),
        ];
        for (buckets, q, want) in table {
            let got = quantile(&bounds, buckets, q);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{buckets:?} q{q}: {g}"),
                _ => assert_eq!(got, want, "{buckets:?} q{q}"),
            }
        }
    }

    #[test]
    fn changes_between_samples() {
        let counts = |healthy| TargetCounts {
            requests: 0,
            client_errors: 0,
            server_errors: 0,
            healthy,
            since: at(0),
        };
        let before: HashMap<_, _> = [
            (key("/a", 1), counts(true)),
            (key("/a", 2), counts(true)),
            (key("/b", 3), counts(false)),
            (key("/b", 4), counts(true)),
        ]
        .into();
        let after: HashMap<_, _> = [
            (key("/a", 1), counts(true)),
            (key("/a", 2), counts(false)),
            (key("/b", 3), counts(true)),
            (key("/c", 5), counts(true)),
        ]
        .into();
        assert_eq!(
            changes(&before, &after),
            vec![
                (ChangeKind::Down, key("/a", 2)),
                (ChangeKind::Up, key("/b", 3)),
                (ChangeKind::Deregistered, key("/b", 4)),
                (ChangeKind::Registered, key("/c", 5)),
            ]
        );
        assert!(changes(&after, &after).is_empty());
    }

    #[test]
    fn rates_since_and_the_ring_over_samples() {
        let mut s = Sampler::default();
        let data = |requests: u64, latency: u64| DataPlaneCounts {
            workers: vec![WorkerCounts {
                accepted: 1,
                open: 1,
                requests,
            }],
            latency_bounds: &[0.001, 0.01],
            route_latency: vec![("/a".to_string(), vec![latency, 0, 0])],
        };
        s.record(at(100), &[target("/a", 1, 10, true)], data(10, 4));
        assert_eq!(
            s.target_rates(&key("/a", 1)),
            None,
            "one sample has no rate"
        );
        assert_eq!(s.workers()[0].1, 0.0);
        assert_eq!(
            s.changes().count(),
            0,
            "what the first sample sees is no change"
        );
        s.record(
            at(102),
            &[target("/a", 1, 30, false), target("/a", 2, 0, true)],
            data(50, 10),
        );
        let rates = s.target_rates(&key("/a", 1)).expect("two samples");
        assert_eq!(rates.requests, 10.0);
        assert_eq!(s.workers()[0].1, 20.0);
        assert_eq!(s.target(&key("/a", 1)).map(|t| t.since), Some(at(102)));
        assert_eq!(s.target(&key("/a", 2)).map(|t| t.since), Some(at(102)));
        let kinds: Vec<_> = s.changes().map(|c| (c.kind, c.at)).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Registered, at(102)),
                (ChangeKind::Down, at(102))
            ]
        );
        assert_eq!(s.latency_window().1["/a"], vec![6, 0, 0]);
        for i in 0..20 {
            s.record(at(103 + i), &[target("/a", 1, 30, false)], data(50, 10 + i));
        }
        assert_eq!(s.samples.len(), WINDOW + 1);
        assert_eq!(
            s.latency_window().1["/a"],
            vec![WINDOW as u64, 0, 0],
            "the window spans the last {WINDOW} seconds only"
        );
        assert!(
            s.samples.iter().rev().skip(2).all(|x| x.targets.is_empty()),
            "only the newest two samples keep targets"
        );
        assert_eq!(s.target(&key("/a", 1)).map(|t| t.since), Some(at(102)));
        assert_eq!(
            s.changes().next().map(|c| c.kind),
            Some(ChangeKind::Deregistered)
        );
        assert_eq!(s.route_history("/a"), vec![0.0; WINDOW]);
        assert!(s.route_history("/nope").is_empty());
    }

    #[test]
    fn the_route_history_is_the_rate_between_consecutive_samples() {
        let mut s = Sampler::default();
        for (i, requests) in [0, 10, 30, 30].into_iter().enumerate() {
            let targets = [
                target("/a", 1, requests, true),
                target("/a", 2, requests, true),
            ];
            s.record(at(i as u64 * 2), &targets, DataPlaneCounts::default());
        }
        assert_eq!(s.route_history("/a"), vec![10.0, 20.0, 0.0]);
    }

    #[test]
    fn the_change_ring_is_bounded() {
        let mut s = Sampler::default();
        for i in 0..CHANGES as u16 + 10 {
            let targets = [target("/a", 1 + i % 2, 0, true)];
            s.record(at(u64::from(i)), &targets, DataPlaneCounts::default());
        }
        assert_eq!(s.changes().count(), CHANGES);
    }
}
