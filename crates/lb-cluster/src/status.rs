//! What a node knows about its cluster link: connected or not, the revision it applied, and the
//! counters behind `lb_cluster_*` metrics and `GET /cluster`.
//!
//! Written by the sync loop only, read by the control plane at any time. The applied revision is
//! also a `tokio::sync::watch` so that a `/register` can wait until this node's own watch
//! applied its write (any runtime may wait on it).

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The shared cluster state of one node.
#[derive(Debug)]
pub struct Status {
    node: String,
    etcd: Vec<String>,
    connected: AtomicBool,
    revision: watch::Sender<i64>,
    reconnects: AtomicU64,
    events: AtomicU64,
    resyncs: AtomicU64,
    last_resync_us: AtomicU64,
    watch_lag_us: AtomicU64,
}

// Every atomic here is a standalone gauge or counter: Relaxed, nothing else is published through
// them (the revision goes through the watch channel, which synchronizes itself).
impl Status {
    pub(crate) fn new(node: String, etcd: Vec<String>) -> Self {
        Status {
            node,
            etcd,
            connected: AtomicBool::new(false),
            revision: watch::Sender::new(0),
            reconnects: AtomicU64::new(0),
            events: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            last_resync_us: AtomicU64::new(0),
            watch_lag_us: AtomicU64::new(0),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the watch on etcd is established.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The etcd revision the registry reflects (0 before the first read).
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    /// Waits until the applied revision reaches `revision`, at most `limit`; `true` when it did.
    pub async fn applied(&self, revision: i64, limit: Duration) -> bool {
        let mut seen = self.revision.subscribe();
        let reached = async { seen.wait_for(|r| *r >= revision).await.is_ok() };
        tokio::time::timeout(limit, reached).await.unwrap_or(false)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub(crate) fn set_revision(&self, revision: i64) {
        self.revision.send_if_modified(|r| {
            let moved = revision > *r;
            if moved {
                *r = revision;
            }
            moved
        });
    }

    /// The revision a full re-read applied, even when it is lower than before.
    pub(crate) fn reset_revision(&self, revision: i64) {
        self.revision.send_replace(revision);
    }

    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_events(&self, n: usize) {
        self.events.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_resync(&self, took: Duration) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        self.last_resync_us.store(micros(took), Ordering::Relaxed);
    }

    pub(crate) fn record_lag(&self, lag: Duration) {
        self.watch_lag_us.store(micros(lag), Ordering::Relaxed);
    }

    /// The body of `GET /cluster`.
    pub fn json(&self) -> Value {
        json!({
            "node": self.node,
            "etcd": self.etcd,
            "connected": self.connected(),
            "revision": self.revision(),
        })
    }

    /// The `lb_cluster_*` series in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let seconds = |us: &AtomicU64| us.load(Ordering::Relaxed) as f64 / 1e6;
        let series: [(&str, &str, &str, String); 7] = [
            (
                "lb_cluster_connected",
                "gauge",
                "1 while the watch on etcd is established.",
                u8::from(self.connected()).to_string(),
            ),
            (
                "lb_cluster_revision",
                "gauge",
                "The etcd revision this node's registry reflects.",
                self.revision().to_string(),
            ),
            (
                "lb_cluster_reconnects_total",
                "counter",
                "Watches re-established after etcd was lost.",
                self.reconnects.load(Ordering::Relaxed).to_string(),
            ),
            (
                "lb_cluster_events_total",
                "counter",
                "etcd events applied from the watch.",
                self.events.load(Ordering::Relaxed).to_string(),
            ),
            (
                "lb_cluster_resyncs_total",
                "counter",
                "Full re-reads of the prefix (start, compaction).",
                self.resyncs.load(Ordering::Relaxed).to_string(),
            ),
            (
                "lb_cluster_resync_seconds",
                "gauge",
                "How long the last re-read took, read and apply.",
                seconds(&self.last_resync_us).to_string(),
            ),
            (
                "lb_cluster_watch_lag_seconds",
                "gauge",
                "From a registration's write to its application here, last event.",
                seconds(&self.watch_lag_us).to_string(),
            ),
        ];
        for (name, kind, help, value) in series {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
