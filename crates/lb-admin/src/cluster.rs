//! The control plane in cluster mode: `/register` and `/deregister` write to etcd instead of the
//! local registry, and `GET /cluster` shows the node's link.
//!
//! A write is answered once etcd acknowledged it, and then once this node's own watch applied
//! it too (so a `GET /targets` right after a `201` shows the target here), at most
//! [`APPLY_WAIT`]: past it the answer still says what etcd did (the change is durable and every
//! node will apply it), with `"applied": false` saying this node has not yet. etcd unreachable:
//! `503` with a JSON error, and nothing changed anywhere. Nothing here touches the registry.

use crate::payload::TargetSpec;
use crate::response::Response;
use lb_cluster::{Cluster, TargetKey, WriteError, Written};
use lb_registry::Terms;
use serde_json::Value;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// The longest a write waits for this node's watch to apply it.
pub(crate) const APPLY_WAIT: Duration = Duration::from_secs(2);

/// `POST /register` in cluster mode.
pub(crate) async fn register(spec: TargetSpec, cluster: &Cluster) -> Response {
    let key = spec.key();
    match cluster.register(&key, spec.terms, SystemTime::now()).await {
        Ok(written) => {
            let (status, word) = if written.created {
                info!(route = %spec.route, target = %spec.addr, "target registered in the cluster");
                (201, "registered")
            } else {
                (200, "already registered")
            };
            answer(status, spec.reply(word), written, cluster).await
        }
        Err(error) => refused(&spec, &error),
    }
}

/// `POST /deregister` in cluster mode.
pub(crate) async fn deregister(spec: TargetSpec, cluster: &Cluster) -> Response {
    if spec.terms != Terms::default() {
        return Response::error(400, "weight and ttl belong to /register, not /deregister");
    }
    let key = spec.key();
    match cluster.deregister(&key).await {
        Ok(written) => {
            info!(route = %spec.route, target = %spec.addr, "target deregistered in the cluster");
            answer(200, spec.reply("deregistered"), written, cluster).await
        }
        Err(error) => refused(&spec, &error),
    }
}

/// `GET /cluster`.
pub(crate) fn status(cluster: Option<&Cluster>) -> Response {
    match cluster {
        Some(cluster) => Response::json(200, &cluster.status().json()),
        None => Response::error(
            404,
            "this node does not run in cluster mode (see --cluster-etcd)",
        ),
    }
}

/// The reply once this node applied `written` (or [`APPLY_WAIT`] passed).
impl TargetSpec {
    /// This registration's etcd key: host, prefix and target.
    fn key(&self) -> TargetKey {
        TargetKey {
            host: self.host.clone(),
            ..TargetKey::new(&self.path, self.addr)
        }
    }
}

async fn answer(status: u16, mut reply: Value, written: Written, cluster: &Cluster) -> Response {
    if let Some(revision) = written.revision {
        reply["revision"] = revision.into();
        if !cluster.status().applied(revision, APPLY_WAIT).await {
            warn!(
                revision,
                "etcd took the change; this node's watch has not applied it yet"
            );
            reply["applied"] = false.into();
        }
    }
    Response::json(status, &reply)
}

fn refused(spec: &TargetSpec, error: &WriteError) -> Response {
    match error {
        WriteError::NotFound => Response::error(
            404,
            &format!(
                "{} is not registered on {} in the cluster",
                spec.addr, spec.path
            ),
        ),
        WriteError::Unreachable(why) => {
            warn!(route = %spec.route, target = %spec.addr, %why, "cluster write refused: etcd is unreachable");
            Response::error(503, &error.to_string())
        }
        WriteError::Contended => {
            warn!(route = %spec.route, target = %spec.addr, %error, "cluster write refused");
            Response::error(503, &error.to_string())
        }
    }
}
