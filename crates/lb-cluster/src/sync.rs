//! The sync loop: keeps this node's registry equal to what etcd holds under the prefix.
//!
//! Start: read the prefix at a revision R and apply the difference ([`crate::diff`]), then watch
//! from R+1 and apply every watch response, in revision order, as one registry change. The
//! watch lost (etcd down, connection cut): wait with back-off ([`backoff`]), then watch again
//! from the applied revision + 1, so nothing is read twice and no event is missed. The watch
//! canceled because that revision was compacted away, or etcd's revision is behind the applied
//! one (etcd was replaced by a new cluster): read again and apply the difference, which keeps
//! every route that did not change as it was (cursor, counts, health).
//!
//! Invariants: only this loop changes the registry in cluster mode (the control plane writes
//! to etcd and waits for this loop); the applied revision moves forward with the watch, only
//! after the registry holds that revision's state, and back only to a re-read's revision; the request path never waits on anything here.

use crate::diff::{api_held, diff, Held};
use crate::key::TargetKey;
use crate::status::Status;
use crate::steps::{Step, Steps};
use crate::value::StoredValue;
use crate::SaveHook;
use etcd_client::{Client, Event, EventType, GetOptions, KeyValue, WatchOptions};
use lb_registry::{Registry, Scope};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tracing::{info, warn};

/// The first wait after etcd was lost.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_millis(400);

/// The wait before attempt `failures` (1, 2, ...): 50 ms, doubling up to 400 ms, small enough
/// that a restarted etcd is followed within a second.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// The sync loop's state.
pub(crate) struct Sync {
    pub(crate) client: Client,
    pub(crate) prefix: String,
    pub(crate) registry: Arc<Registry>,
    pub(crate) save: Option<SaveHook>,
    pub(crate) status: Arc<Status>,
    /// Attempts since the last established watch.
    failures: u32,
    /// A watch was established once and lost since.
    lost: bool,
}

/// How a session ended.
enum Ended {
    /// The watch cannot deliver what this node misses (its revision was compacted away, or
    /// etcd's history is behind this node's: a new etcd cluster): read again.
    ReadAgain,
    /// etcd was lost; the text says how.
    Lost(String),
}

impl Sync {
    pub(crate) fn new(
        client: Client,
        prefix: String,
        registry: Arc<Registry>,
        save: Option<SaveHook>,
        status: Arc<Status>,
    ) -> Self {
        Sync {
            client,
            prefix,
            registry,
            save,
            status,
            failures: 0,
            lost: false,
        }
    }

    /// Runs until `stop` turns true (or its sender is gone).
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut read_first = true;
        loop {
            let ended = tokio::select! {
                ended = self.session(read_first) => ended,
                _ = stop.wait_for(|s| *s) => return,
            };
            match ended {
                Ended::ReadAgain => read_first = true,
                Ended::Lost(why) => {
                    if self.status.connected() || self.failures == 0 {
                        warn!(%why, "etcd lost; routing goes on with the registry this node has");
                    }
                    self.status.set_connected(false);
                    self.lost = true;
                    self.failures = self.failures.saturating_add(1);
                    // Never read yet: the start read is still owed.
                    read_first = self.status.revision() == 0;
                    tokio::select! {
                        () = tokio::time::sleep(backoff(self.failures)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    /// Reads (when `read_first`) and watches until the watch ends.
    async fn session(&mut self, read_first: bool) -> Ended {
        if read_first {
            if let Err(why) = self.resync().await {
                return Ended::Lost(why);
            }
        }
        let start = self.status.revision() + 1;
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let mut stream = match self
            .client
            .watch(TargetKey::range(&self.prefix), Some(options))
            .await
        {
            Ok(stream) => stream,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        loop {
            let answer = match stream.message().await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Ended::Lost("the watch stream ended".to_string()),
                Err(e) => return Ended::Lost(e.to_string()),
            };
            if answer.canceled() {
                if answer.compact_revision() > 0 {
                    info!(
                        from = start,
                        compacted = answer.compact_revision(),
                        "etcd compacted past this node's revision; reading the prefix again"
                    );
                    return Ended::ReadAgain;
                }
                return Ended::Lost(format!("watch canceled: {}", answer.cancel_reason()));
            }
            if answer.created() {
                self.established(start);
                let current = answer.header().map_or(0, |h| h.revision());
                if current < start - 1 {
                    warn!(
                        applied = start - 1,
                        current,
                        "etcd's revision is behind this node's (a new etcd cluster?); reading the prefix again"
                    );
                    return Ended::ReadAgain;
                }
            }
            self.apply_events(answer.events());
            // The events' own revisions, not the header's: a created or catching-up response's
            // header is etcd's current revision, which this node has not applied yet.
            let newest = answer
                .events()
                .iter()
                .filter_map(|e| e.kv())
                .map(KeyValue::mod_revision)
                .max();
            if let Some(revision) = newest {
                self.status.set_revision(revision);
            }
        }
    }

    fn established(&mut self, from: i64) {
        if self.lost {
            self.status.count_reconnect();
            info!(from, "etcd back; watching again from the applied revision");
        }
        self.failures = 0;
        self.status.set_connected(true);
    }

    /// Reads the whole prefix at one revision and applies the difference.
    async fn resync(&mut self) -> Result<(), String> {
        let began = Instant::now();
        let options = GetOptions::new().with_prefix();
        let answer = self
            .client
            .get(TargetKey::range(&self.prefix), Some(options))
            .await
            .map_err(|e| e.to_string())?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let desired: Held = answer
            .kvs()
            .iter()
            .filter_map(|kv| self.registration(kv))
            .map(|(key, value)| ((key.route(), key.addr), value.weight))
            .collect();
        let steps = diff(&api_held(&self.registry), &desired);
        self.apply(&steps);
        // Exactly the read's revision, even when lower than before (a new etcd cluster): the
        // registry now holds what etcd held then.
        self.status.reset_revision(revision);
        let took = began.elapsed();
        self.status.record_resync(took);
        info!(
            revision,
            targets = desired.len(),
            changed = steps.len(),
            elapsed_ms = took.as_millis() as u64,
            "registry resynchronised from etcd"
        );
        Ok(())
    }

    /// One watch response's events as one registry change.
    fn apply_events(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut steps = Vec::with_capacity(events.len());
        let mut newest = None;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            // etcd-client panics on an event type it does not know; etcd sends only two.
            let kind = std::panic::catch_unwind(AssertUnwindSafe(|| event.event_type()));
            match kind {
                Ok(EventType::Put) => {
                    if let Some((key, value)) = self.registration(kv) {
                        newest = Some(value.registered());
                        steps.push(Step::Register {
                            path: key.route(),
                            addr: key.addr,
                            weight: value.weight,
                        });
                    }
                }
                Ok(EventType::Delete) => {
                    if let Some(key) = self.key(kv) {
                        steps.push(Step::Release {
                            path: key.route(),
                            addr: key.addr,
                        });
                    }
                }
                Err(_) => warn!("etcd sent an event of an unknown type; skipped"),
            }
        }
        self.status.count_events(events.len());
        self.apply(&steps);
        if let Some(written) = newest {
            let lag = SystemTime::now()
                .duration_since(written)
                .unwrap_or(Duration::ZERO);
            self.status.record_lag(lag);
        }
    }

    /// `kv`'s key when it is a target key this build serves.
    fn key(&self, kv: &KeyValue) -> Option<TargetKey> {
        match TargetKey::decode(&self.prefix, kv.key()) {
            Ok(key) => Some(key),
            Err(why) => {
                warn!(%why, "key under the cluster prefix skipped");
                None
            }
        }
    }

    fn registration(&self, kv: &KeyValue) -> Option<(TargetKey, StoredValue)> {
        let key = self.key(kv)?;
        match StoredValue::decode(kv.value()) {
            Ok(value) => Some((key, value)),
            Err(why) => {
                warn!(path = %key.path, target = %key.addr, %why, "registration skipped");
                None
            }
        }
    }

    /// Applies `steps` as one change and saves the state file when it changed anything. A
    /// save that fails is logged and the change stays: etcd, not the file, is the truth here.
    fn apply(&self, steps: &[Step]) {
        if steps.is_empty() {
            return;
        }
        let changed = self.registry.apply(&Steps {
            steps,
            now: SystemTime::now(),
        });
        if !matches!(changed, Ok(n) if n > 0) {
            return;
        }
        if let Some(save) = &self.save {
            if let Err(why) = save(&self.registry.export(Scope::Saved)) {
                warn!(%why, "state file not saved after a cluster change");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let ms = |n| backoff(n).as_millis();
        let table = [
            (0, 50),
            (1, 50),
            (2, 100),
            (3, 200),
            (4, 400),
            (5, 400),
            (u32::MAX, 400),
        ];
        for (failures, wait) in table {
            assert_eq!(ms(failures), wait, "{failures}");
        }
    }
}
