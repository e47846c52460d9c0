//! The cluster part: in cluster mode, the etcd link ([`lb_cluster`]) and the thread that keeps
//! the registry in step with etcd; absent otherwise.
//!
//! Started after the registry holds the state file and the configured routes, so a node that
//! starts while etcd is down serves from its last saved registry and catches up once etcd
//! answers; lb never waits for etcd to start. The watch saves the state file after each change
//! it applies. Stopped with the process (the sync thread ends, no registry change after it).

use crate::error::RunError;
use crate::state::StateFile;
use lb_cluster::{Cluster, ClusterThread, SaveHook, Settings};
use lb_config::ClusterConfig;
use lb_registry::Registry;
use std::sync::Arc;
use tracing::info;

/// A running cluster link.
#[derive(Debug)]
pub(crate) struct ClusterLink {
    cluster: Arc<Cluster>,
    thread: ClusterThread,
}

/// The cluster settings `config` gives, `None` when cluster mode is off.
pub(crate) fn settings(config: &ClusterConfig) -> Option<Settings> {
    (!config.etcd.is_empty()).then(|| Settings {
        etcd: config.etcd.clone(),
        prefix: config.prefix.clone(),
        node: config
            .node_name
            .clone()
            .unwrap_or_else(lb_cluster::host_name),
    })
}

impl ClusterLink {
    /// Starts the sync thread into `registry`, saving to `state` after each applied change.
    pub(crate) fn start(
        settings: Settings,
        registry: Arc<Registry>,
        state: Option<Arc<StateFile>>,
    ) -> Result<Self, RunError> {
        let save = state.map(|state| {
            let hook: SaveHook = Arc::new(move |export| state.save_export(export));
            hook
        });
        info!(node = %settings.node, etcd = ?settings.etcd, prefix = %settings.prefix, "cluster mode");
        let (cluster, thread) = lb_cluster::start(settings, registry, save)
            .map_err(|e| RunError::Runtime(format!("cluster mode: {e}")))?;
        Ok(ClusterLink { cluster, thread })
    }

    /// The link the control plane writes through.
    pub(crate) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Stops the sync thread.
    pub(crate) fn stop(&mut self) {
        self.thread.stop();
    }
}
