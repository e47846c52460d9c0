//! The timeouts and the body limit a running lb can change (SIGHUP) without touching a
//! connection.
//!
//! One `Tuning` is shared by every worker. It is written only by a reload and read with relaxed
//! loads on the request path: the cache line stays shared in every core's cache, so reading it
//! costs no more than reading a private copy. A new value applies to the next wait that starts;
//! a wait already running keeps its deadline.

use lb_config::Config;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// The values of `config`.
    pub fn new(config: &Config) -> Self {
        let tuning = Tuning {
            connect_ms: AtomicU64::new(0),
            upstream_ms: AtomicU64::new(0),
            header_ms: AtomicU64::new(0),
            idle_ms: AtomicU64::new(0),
            max_body: AtomicU64::new(UNLIMITED),
        };
        tuning.update(config);
        tuning
    }

    /// Takes the values of `config` (a reload).
    pub fn update(&self, config: &Config) {
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.connect_ms, millis(config.connect_timeout));
        set(&self.upstream_ms, millis(config.upstream_timeout));
        set(&self.header_ms, millis(config.header_timeout));
        set(&self.idle_ms, millis(config.idle_timeout));
        set(&self.max_body, config.max_body.unwrap_or(UNLIMITED));
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
        let mut config = Config::default();
        let tuning = Tuning::new(&config);
        assert_eq!(tuning.connect(), config.connect_timeout);
        assert_eq!(tuning.max_body(), None);
        config.connect_timeout = Duration::from_millis(250);
        config.upstream_timeout = Duration::from_millis(1500);
        config.header_timeout = Duration::from_millis(700);
        config.idle_timeout = Duration::from_millis(900);
        config.max_body = Some(1024);
        tuning.update(&config);
        assert_eq!(tuning.connect(), Duration::from_millis(250));
        assert_eq!(tuning.upstream(), Duration::from_millis(1500));
        assert_eq!(tuning.header(), Duration::from_millis(700));
        assert_eq!(tuning.idle(), Duration::from_millis(900));
        assert_eq!(tuning.max_body(), Some(1024));
    }
}
