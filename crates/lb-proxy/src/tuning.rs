//! The timeouts and the body limit a running lb can change (SIGHUP) without touching a
//! connection.
//!
//! One `Tuning` is shared by every worker. It is written only by a reload and read with relaxed
//! loads on the request path: the cache line stays shared in every core's cache, so reading it
//! costs no more than reading a private copy. A new value applies to the next wait that starts;
//! a wait already running keeps its deadline.
//!
//! The values come in as one [`TuningValues`], the proxy's own settings type: this crate does
//! not know the configuration file, the supervisor converts into it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The values of a [`Tuning`], as a reload hands them over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuningValues {
    /// Time allowed to connect to an upstream.
    pub connect: Duration,
    /// Time allowed for an upstream's response head, and for each later upstream read.
    pub upstream: Duration,
    /// Deadline for a client's whole request head.
    pub header: Duration,
    /// Idle keep-alive wait, and inactivity limit for client reads and writes.
    pub idle: Duration,
    /// Largest request body accepted; `None` is unlimited.
    pub max_body: Option<u64>,
}

/// `max_body` when there is no limit.
const UNLIMITED: u64 = u64::MAX;

/// Live timeouts (milliseconds) and the request body limit.
#[derive(Debug)]
pub struct Tuning {
    connect_ms: AtomicU64,
    upstream_ms: AtomicU64,
    header_ms: AtomicU64,
    idle_ms: AtomicU64,
    max_body: AtomicU64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Relaxed: each value stands alone; no other memory is published with it.
fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Tuning {
    /// A `Tuning` holding `values`.
    pub fn new(values: TuningValues) -> Self {
        let tuning = Tuning {
            connect_ms: AtomicU64::new(0),
            upstream_ms: AtomicU64::new(0),
            header_ms: AtomicU64::new(0),
            idle_ms: AtomicU64::new(0),
            max_body: AtomicU64::new(UNLIMITED),
        };
        tuning.update(values);
        tuning
    }

    /// Takes `values`, all of them (a reload).
    pub fn update(&self, values: TuningValues) {
        // Destructured whole: a new value cannot be left out here.
        let TuningValues {
            connect,
            upstream,
            header,
            idle,
            max_body,
        } = values;
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.connect_ms, millis(connect));
        set(&self.upstream_ms, millis(upstream));
        set(&self.header_ms, millis(header));
        set(&self.idle_ms, millis(idle));
        set(&self.max_body, max_body.unwrap_or(UNLIMITED));
    }

    /// Time allowed to connect to an upstream.
    pub fn connect(&self) -> Duration {
        Duration::from_millis(get(&self.connect_ms))
    }

    /// Time allowed for an upstream's response head, and for each later upstream read.
    pub fn upstream(&self) -> Duration {
        Duration::from_millis(get(&self.upstream_ms))
    }

    /// Deadline for a client's whole request head.
    pub fn header(&self) -> Duration {
        Duration::from_millis(get(&self.header_ms))
    }

    /// Idle keep-alive wait, and inactivity limit for client reads and writes.
    pub fn idle(&self) -> Duration {
        Duration::from_millis(get(&self.idle_ms))
    }

    /// Largest request body accepted; `None` is unlimited.
    pub fn max_body(&self) -> Option<u64> {
        Some(get(&self.max_body)).filter(|&m| m != UNLIMITED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_replaces_every_value() {
        let ms = Duration::from_millis;
        let mut values = TuningValues {
            connect: ms(5_000),
            upstream: ms(60_000),
            header: ms(10_000),
            idle: ms(60_000),
            max_body: None,
        };
        let tuning = Tuning::new(values);
        assert_eq!(tuning.connect(), values.connect);
        assert_eq!(tuning.max_body(), None);
        values.connect = Duration::from_millis(250);
        values.upstream = Duration::from_millis(1500);
        values.header = Duration::from_millis(700);
        values.idle = Duration::from_millis(900);
        values.max_body = Some(1024);
        tuning.update(values);
        assert_eq!(tuning.connect(), Duration::from_millis(250));
        assert_eq!(tuning.upstream(), Duration::from_millis(1500));
        assert_eq!(tuning.header(), Duration::from_millis(700));
        assert_eq!(tuning.idle(), Duration::from_millis(900));
        assert_eq!(tuning.max_body(), Some(1024));
    }
}
