//! Cluster mode (issue 14): lb nodes sharing one registry through real etcd processes on
//! loopback. `sharing`: what one node registers, every node routes, ttls expire everywhere, a
//! node that was down catches up. `failures`: etcd stopped under load, a three-member cluster
//! losing a member, a compaction past a disconnected node's revision with 10,000 routes.
//! `handover`: a zero-downtime upgrade of a cluster node.

mod failures;
mod handover;
mod sharing;

use crate::lb;
use lb_testkit::serde_json::Value;
use lb_testkit::{poll_until, wait_until, Admin, LbProcess, WAIT};
use std::path::PathBuf;
use std::time::Duration;

/// The etcd binary, or `None` (NOT RUN) outside CI when it is missing.
pub fn etcd_bin() -> Option<PathBuf> {
    lb_testkit::tool::require("etcd", "etcd-server")
}

/// An lb node with 2 workers in cluster mode on `urls`, named `name`, once its watch is up.
pub fn node(urls: &str, name: &str, extra: &[&str]) -> LbProcess {
    let mut args = vec!["--cluster-etcd", urls, "--node-name", name];
    args.extend_from_slice(extra);
    let node = lb(2, &[], &args);
    wait_connected(&node.admin(), true);
    node
}

/// `GET /cluster` as JSON.
pub fn cluster(admin: &Admin) -> Value {
    let r = admin.call("GET", "/cluster", b"");
    assert_eq!(r.status, 200, "GET /cluster: {}", r.text());
    r.json()
}

/// Waits until `GET /cluster` says `connected`.
pub fn wait_connected(admin: &Admin, connected: bool) {
    wait_until(
        WAIT,
        &format!("{} connected = {connected}", admin.addr()),
        || cluster(admin)["connected"] == connected,
    );
}

/// Waits until the node applied etcd revision `revision`.
pub fn wait_revision(admin: &Admin, revision: i64) {
    poll_until(
        WAIT,
        &format!("{} at revision {revision}", admin.addr()),
        || {
            let seen = cluster(admin)["revision"].as_i64().unwrap_or(0);
            if seen >= revision {
                Ok(())
            } else {
                Err(seen)
            }
        },
    );
}

/// The revision a successful cluster write answered with.
pub fn written_at(r: &lb_testkit::Response) -> i64 {
    assert!(matches!(r.status, 200 | 201), "{} {}", r.status, r.text());
    r.json()["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {}", r.text()))
}

/// The `p`-th percentile (0-100) of `samples`.
pub fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    let at = (samples.len() * p).div_ceil(100).saturating_sub(1);
    samples[at.min(samples.len() - 1)]
}
