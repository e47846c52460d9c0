//! Cluster mode: several lb nodes share one registry through etcd (SPEC.md, "Cluster mode").
//!
//! One key per registration under the prefix ([`TargetKey`], value [`StoredValue`]). The
//! control plane of any node writes a registration to etcd ([`Cluster::register`],
//! [`Cluster::deregister`]: one transaction each, a lease for a ttl) and never to its own
//! registry; every node, the writer included, applies what its etcd watch delivers, in
//! revision order, through the registry's one door (`sync`, as [`Steps`]). So all nodes hold
//! the same registrations, in the same order, and a ttl expires on every node at once because
//! etcd expires the key.
//!
//! Layout: `key` and `value` are the pure encodings; `diff` is the pure difference a re-read
//! applies; `steps` the batch change; `store` the writes; `sync` the read-then-watch loop with
//! its back-off; `status` what `GET /cluster` and the `lb_cluster_*` metrics show.
//!
//! Invariants: the request path never waits on etcd (workers read registry snapshots, and only
//! the sync loop's thread talks to etcd besides the control plane's writes); etcd unreachable
//! means routing goes on with what the node has, and writes fail, changing nothing; the node
//! reconnects and catches up by itself. Routes from a node's configuration file stay local.

#![forbid(unsafe_code)]

mod diff;
mod key;
mod status;
mod steps;
mod store;
mod sync;
mod value;

pub use diff::{api_held, diff, Held};
pub use key::TargetKey;
pub use status::Status;
pub use steps::{Step, Steps};
pub use store::{WriteError, Written};
pub use sync::backoff;
pub use value::{unix_ms, StoredValue};

use etcd_client::{Client, ConnectOptions};
use lb_registry::{Export, Registry, Terms};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tracing::error;

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "/lb/";
/// How long a connection attempt to an etcd member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one etcd request may take before a write answers 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 pings on the etcd connection: a member that stops answering is noticed in seconds.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Saves what the state file holds after a change the watch applied (`--state`).
pub type SaveHook = Arc<dyn Fn(&Export) -> Result<(), String> + Send + Sync>;

/// What cluster mode needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// etcd client URLs (`http://127.0.0.1:2379`).
    pub etcd: Vec<String>,
    /// The key prefix (ends with `/`).
    pub prefix: String,
    /// This node's name (`GET /cluster`, its cursors' start offset, who wrote a value).
    pub node: String,
}

/// The cursor start offset of a node called `node`: FNV-1a of the name, mixed by the
/// murmur3 finalizer (FNV's low bits alone leave `node-1`, `node-2`, `node-3` all at 1 mod 3),
/// below 2^16 so that a cursor never nears its wrap. Nodes start their round robin at
/// different targets; two names can still meet on one offset for a given target count.
pub fn cursor_seed(node: &str) -> usize {
    let mut h = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h & 0xffff) as usize
}

/// The host name (`/proc/sys/kernel/hostname`), or `lb` when it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "lb".to_string())
}

/// A node's link to etcd, shared by the control plane and the runtime.
pub struct Cluster {
    client: Client,
    settings: Settings,
    status: Arc<Status>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("settings", &self.settings)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClusterThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterThread").finish_non_exhaustive()
    }
}

impl Cluster {
    /// The node's cluster state.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Writes a registration to etcd (see `store`); answered when etcd acknowledged.
    pub async fn register(
        &self,
        key: &TargetKey,
        terms: Terms,
        now: SystemTime,
    ) -> Result<Written, WriteError> {
        store::register(
            &self.client,
            &self.settings.prefix,
            key,
            terms,
            &self.settings.node,
            now,
        )
        .await
    }

    /// Deletes a registration from etcd; answered when etcd acknowledged.
    pub async fn deregister(&self, key: &TargetKey) -> Result<Written, WriteError> {
        store::deregister(&self.client, &self.settings.prefix, key).await
    }
}

/// The thread running the sync loop (and the etcd client's connections); stopped on drop.
pub struct ClusterThread {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ClusterThread {
    /// Stops the sync loop and waits for the thread.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the cluster thread panicked");
            }
        }
    }
}

impl Drop for ClusterThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts thread `lb-cluster`: it makes the etcd client (connections are made lazily, so etcd
/// may be down) and runs the sync loop into `registry`, saving with `save` after each change.
/// Fails when the thread cannot start or an etcd URL is invalid.
pub fn start(
    settings: Settings,
    registry: Arc<Registry>,
    save: Option<SaveHook>,
) -> io::Result<(Arc<Cluster>, ClusterThread)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = watch::channel(false);
    let (made, client) = std::sync::mpsc::channel();
    let endpoints = settings.etcd.clone();
    let status = Arc::new(Status::new(settings.node.clone(), settings.etcd.clone()));
    let (sync_status, prefix) = (status.clone(), settings.prefix.clone());
    let thread = std::thread::Builder::new()
        .name("lb-cluster".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                let options = ConnectOptions::new()
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_keep_alive(KEEP_ALIVE, KEEP_ALIVE)
                    .with_keep_alive_while_idle(true);
                let client = match Client::connect(&endpoints, Some(options)).await {
                    Ok(client) => client,
                    Err(e) => {
                        let _ = made.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = made.send(Ok(client.clone()));
                sync::Sync::new(client, prefix, registry, save, sync_status)
                    .run(stopped)
                    .await;
            });
        })?;
    let mut thread = ClusterThread {
        stop,
        thread: Some(thread),
    };
    let client = match client.recv() {
        Ok(Ok(client)) => client,
        Ok(Err(why)) => {
            thread.stop();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("etcd client: {why}"),
            ));
        }
        Err(_) => {
            thread.stop();
            return Err(io::Error::other("the cluster thread ended at start"));
        }
    };
    Ok((
        Arc::new(Cluster {
            client,
            settings,
            status,
        }),
        thread,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: a name, its seed mod 3 (three targets) and mod 4.
    #[test]
    fn seeds_spread_names_over_the_targets() {
        let table = [
            ("a", 0, 3),
            ("b", 1, 0),
            ("c", 2, 2),
            ("lb-1", 2, 2),
            ("lb-2", 0, 1),
        ];
        for (name, mod3, mod4) in table {
            let seed = cursor_seed(name);
            assert!(seed < 1 << 16, "{name}");
            assert_eq!((seed % 3, seed % 4), (mod3, mod4), "{name}");
        }
    }
}
