//! [`RestartConfig`]: the part of the configuration a running lb cannot change, and the one
//! function that says which of its keys a reload would have changed.
//!
//! These settings shape sockets, threads and the control plane as they are created (addresses,
//! worker count and pinning, socket options, the drain and pool settings the workers start
//! with, the access log writer, the state file, the admin token, the upgrade socket). A reload
//! keeps them and names each one that changed in the file; an upgrade applies them without
//! downtime.
//!
//! Invariant: [`RestartConfig::changed`] destructures the whole struct, so a field added here
//! does not compile until it is compared and given its key.

use crate::{
    ClusterConfig, TlsConfig, Workers, DEFAULT_ADMIN, DEFAULT_BACKLOG, DEFAULT_DEFER_ACCEPT,
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_H2_MAX_STREAMS, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_IDLE_PER_TARGET, DEFAULT_POOL_IDLE_TIMEOUT,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What only a restart (or an upgrade) changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartConfig {
    /// Data-plane address every worker binds with `SO_REUSEPORT`. Port 0 picks a free port once.
    pub listen: SocketAddr,
    /// Control-plane address.
    pub admin: SocketAddr,
    /// Number of workers.
    pub workers: Workers,
    /// Pin each worker to one allowed CPU.
    pub pin: bool,
    /// Listen backlog for each worker's socket.
    pub backlog: u32,
    /// See [`DEFAULT_DEFER_ACCEPT`].
    pub defer_accept: Duration,
    /// See [`DEFAULT_DRAIN_TIMEOUT`].
    pub drain_timeout: Duration,
    /// See [`DEFAULT_POOL_IDLE_PER_TARGET`].
    pub pool_idle_per_target: usize,
    /// See [`DEFAULT_POOL_IDLE_TIMEOUT`].
    pub pool_idle_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`DEFAULT_H2_MAX_STREAMS`].
    pub h2_max_streams: u32,
    /// One log line per request (through `tracing`, target `lb::access`); off by default.
    pub access_log: bool,
    /// State file: the registry is saved there on every change and loaded at start.
    pub state: Option<PathBuf>,
    /// When set, every control-plane call except `/healthz` and the status page `/` needs
    /// `Authorization: Bearer TOKEN`.
    pub admin_token: Option<String>,
    /// Unix socket on which this lb hands its listening sockets and registry to a successor
    /// (zero-downtime upgrade).
    pub upgrade_socket: Option<PathBuf>,
    /// Cluster mode (off while it names no etcd URL).
    pub cluster: ClusterConfig,
    /// TLS termination (off without `tls.listen`). SIGHUP re-reads the certificate files named
    /// here at start; changing the list or the listener takes a restart.
    pub tls: TlsConfig,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            listen: crate::parse_default(DEFAULT_LISTEN),
            admin: crate::parse_default(DEFAULT_ADMIN),
            workers: Workers::Auto,
            pin: true,
            backlog: DEFAULT_BACKLOG,
            defer_accept: DEFAULT_DEFER_ACCEPT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            pool_idle_per_target: DEFAULT_POOL_IDLE_PER_TARGET,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            h2_max_streams: DEFAULT_H2_MAX_STREAMS,
            access_log: false,
            state: None,
            admin_token: None,
            upgrade_socket: None,
            cluster: ClusterConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl RestartConfig {
    /// The keys (as the config file names them) whose value differs in `new`, in file order.
    pub fn changed(&self, new: &RestartConfig) -> Vec<&'static str> {
        // Every field, so that a new one must be listed here to compile.
        let RestartConfig {
            listen,
            admin,
            workers,
            pin,
            backlog,
            defer_accept,
            drain_timeout,
            pool_idle_per_target,
            pool_idle_timeout,
            max_connections,
            h2_max_streams,
            access_log,
            state,
            admin_token,
            upgrade_socket,
            cluster,
            tls,
        } = self;
        [
            ("listen", *listen != new.listen),
            ("admin", *admin != new.admin),
            ("workers", *workers != new.workers),
            ("pin", *pin != new.pin),
            ("backlog", *backlog != new.backlog),
            ("timeouts.defer_accept", *defer_accept != new.defer_accept),
            ("timeouts.drain", *drain_timeout != new.drain_timeout),
            // No file key or flag sets the pool yet; named for when one does.
            (
                "pool_idle_per_target",
                *pool_idle_per_target != new.pool_idle_per_target,
            ),
            (
                "pool_idle_timeout",
                *pool_idle_timeout != new.pool_idle_timeout,
            ),
            ("max_connections", *max_connections != new.max_connections),
            ("h2_max_streams", *h2_max_streams != new.h2_max_streams),
            ("access_log", *access_log != new.access_log),
            ("state", *state != new.state),
            ("admin_token", *admin_token != new.admin_token),
            ("upgrade_socket", *upgrade_socket != new.upgrade_socket),
            ("cluster", *cluster != new.cluster),
            ("tls.listen", tls.listen != new.tls.listen),
            ("tls.min_version", tls.min_version != new.tls.min_version),
            ("tls.cert", tls.certs != new.tls.certs),
            ("tls.ticket_keys", tls.ticket_keys != new.tls.ticket_keys),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One change per key: each is reported alone, under its file key.
    #[test]
    fn every_restart_only_key_that_differs_is_reported() {
        type Change = fn(&mut RestartConfig);
        let table: [(&str, Change); 16] = [
            ("listen", |c| c.listen = "127.0.0.1:1".parse().unwrap()),
            ("admin", |c| c.admin = "127.0.0.1:2".parse().unwrap()),
            ("workers", |c| c.workers = Workers::Count(3)),
            ("pin", |c| c.pin = !c.pin),
            ("backlog", |c| c.backlog += 1),
            ("timeouts.defer_accept", |c| {
                c.defer_accept += Duration::from_secs(1)
            }),
            ("timeouts.drain", |c| {
                c.drain_timeout += Duration::from_secs(1)
            }),
            ("pool_idle_per_target", |c| c.pool_idle_per_target += 1),
            ("pool_idle_timeout", |c| {
                c.pool_idle_timeout += Duration::from_secs(1)
            }),
            ("max_connections", |c| c.max_connections += 1),
            ("h2_max_streams", |c| c.h2_max_streams += 1),
            ("access_log", |c| c.access_log = !c.access_log),
            ("state", |c| c.state = Some("/tmp/state.json".into())),
            ("admin_token", |c| c.admin_token = Some("t".into())),
            ("upgrade_socket", |c| {
                c.upgrade_socket = Some("/tmp/up.sock".into())
            }),
            ("cluster", |c| {
                c.cluster.etcd = vec!["http://127.0.0.1:2379".into()]
            }),
        ];
        let old = RestartConfig::default();
        assert_eq!(old.changed(&old.clone()), Vec::<&str>::new());
        let mut all = old.clone();
        for (key, change) in table {
            let mut new = old.clone();
            change(&mut new);
            assert_eq!(old.changed(&new), [key], "{key}");
            change(&mut all);
        }
        assert_eq!(
            old.changed(&all),
            table.map(|(key, _)| key),
            "all of them, in file order"
        );
    }
}
