//! Settings from one source (the config file, or the command line), every one optional, and the
//! one function that stacks them: defaults, then the file, then the flags.
//!
//! Routes stack by prefix: a `--route` for a prefix the file also names (`/a` and `/a/` are
//! one prefix) replaces the file's route; every other route of either source is kept, file
//! routes first. The admin token stacks as one setting: a token or a token file from the flags
//! replaces either from the file. Stacking resolves host names and reads the token file
//! through a [`Lookup`], so the result holds only addresses and the token itself.

use crate::lookup::{read_token, resolve_routes};
use crate::{
    CertPair, Config, ConfigError, HostPort, Lookup, Resolved, StaticRoute, TlsVersion, Workers,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One source's settings; `None` / empty means "not said here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// See [`crate::RestartConfig::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`crate::RestartConfig::admin`].
    pub admin: Option<SocketAddr>,
    /// See [`crate::RestartConfig::workers`].
    pub workers: Option<Workers>,
    /// See [`crate::RestartConfig::pin`].
    pub pin: Option<bool>,
    /// See [`crate::RestartConfig::backlog`].
    pub backlog: Option<u32>,
    /// See [`crate::RestartConfig::defer_accept`].
    pub defer_accept: Option<Duration>,
    /// See [`crate::LiveConfig::routes`]; targets as written.
    pub routes: Vec<StaticRoute<HostPort>>,
    /// See [`crate::LiveConfig::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// See [`crate::LiveConfig::upstream_timeout`].
    pub upstream_timeout: Option<Duration>,
    /// See [`crate::LiveConfig::header_timeout`].
    pub header_timeout: Option<Duration>,
    /// See [`crate::LiveConfig::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// See [`crate::RestartConfig::drain_timeout`].
    pub drain_timeout: Option<Duration>,
    /// See [`crate::LiveConfig::max_body`].
    pub max_body: Option<u64>,
    /// See [`crate::RestartConfig::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`crate::RestartConfig::h2_max_streams`].
    pub h2_max_streams: Option<u32>,
    /// See [`crate::RestartConfig::access_log`].
    pub access_log: Option<bool>,
    /// See [`crate::HealthConfig::check`].
    pub health_check: Option<String>,
    /// See [`crate::HealthConfig::interval`].
    pub health_interval: Option<Duration>,
    /// See [`crate::HealthConfig::timeout`].
    pub health_timeout: Option<Duration>,
    /// See [`crate::HealthConfig::rise`].
    pub health_rise: Option<u32>,
    /// See [`crate::HealthConfig::fall`].
    pub health_fall: Option<u32>,
    /// See [`crate::HealthConfig::backoff`].
    pub health_backoff: Option<Duration>,
    /// See [`crate::RestartConfig::state`].
    pub state: Option<PathBuf>,
    /// See [`crate::RestartConfig::admin_token`].
    pub admin_token: Option<String>,
    /// A file holding the admin token (kept out of `ps`); one of this and `admin_token`.
    pub admin_token_file: Option<PathBuf>,
    /// See [`crate::RestartConfig::upgrade_socket`].
    pub upgrade_socket: Option<PathBuf>,
    /// See [`crate::ClusterConfig::etcd`]; empty: not said here.
    pub cluster_etcd: Vec<String>,
    /// See [`crate::ClusterConfig::prefix`].
    pub cluster_prefix: Option<String>,
    /// See [`crate::ClusterConfig::node_name`].
    pub node_name: Option<String>,
    /// See [`crate::TlsConfig::listen`].
    pub tls_listen: Option<SocketAddr>,
    /// See [`crate::TlsConfig::min_version`].
    pub tls_min_version: Option<TlsVersion>,
    /// See [`crate::TlsConfig::certs`]; a non-empty list replaces the one below it whole.
    pub tls_certs: Vec<CertPair>,
    /// See [`crate::TlsConfig::ticket_keys`].
    pub tls_ticket_keys: Option<PathBuf>,
    /// See [`Config::takeover`] (command line only).
    pub takeover: bool,
}

/// A stacked configuration and how its host names resolved (for the log).
#[derive(Debug, Clone)]
pub struct Layered {
    /// The configuration; not validated yet.
    pub config: Config,
    /// Each host name a route named, with its addresses.
    pub resolved: Vec<Resolved>,
}

impl Config {
    /// The configuration from the defaults, overridden by `file` (if any), overridden by
    /// `flags`, with host names resolved and the token file read through `lookup`. Not
    /// validated: call [`Config::validate`].
    pub fn layered(
        file: Option<&Layer>,
        flags: &Layer,
        lookup: &mut dyn Lookup,
    ) -> Result<Layered, ConfigError> {
        let mut config = Config::default();
        let mut routes: Vec<StaticRoute<HostPort>> = Vec::new();
        let mut token_file = None;
        for layer in file.into_iter().chain([flags]) {
            layer.check_duplicate_prefixes()?;
            layer.apply(&mut config);
            for route in &layer.routes {
                routes.retain(|r| !r.same_route(route));
                routes.push(route.clone());
            }
            if layer.admin_token.is_some() || layer.admin_token_file.is_some() {
                config.restart.admin_token.clone_from(&layer.admin_token);
                token_file.clone_from(&layer.admin_token_file);
            }
        }
        if let Some(path) = token_file {
            config.restart.admin_token = Some(read_token(&path, lookup)?);
        }
        let (routes, resolved) = resolve_routes(&routes, lookup)?;
        config.live.routes = routes;
        Ok(Layered { config, resolved })
    }
}

impl Layer {
    /// One source naming a prefix twice is a mistake, not an override: which one was meant?
    /// (The file reports its own, with lines, when it is parsed.)
    fn check_duplicate_prefixes(&self) -> Result<(), ConfigError> {
        for (i, later) in self.routes.iter().enumerate() {
            if let Some(first) = self.routes[..i].iter().find(|r| r.same_route(later)) {
                return Err(ConfigError(format!(
                    "--route {} and --route {} name the same prefix (a trailing `/` is ignored); \
                     expected each prefix once, with all its targets",
                    first.prefix, later.prefix
                )));
            }
        }
        Ok(())
    }

    fn apply(&self, c: &mut Config) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        fn set_some<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        let (live, restart) = (&mut c.live, &mut c.restart);
        set(&mut restart.listen, &self.listen);
        set(&mut restart.admin, &self.admin);
        set(&mut restart.workers, &self.workers);
        set(&mut restart.pin, &self.pin);
        set(&mut restart.backlog, &self.backlog);
        set(&mut restart.defer_accept, &self.defer_accept);
        set(&mut live.connect_timeout, &self.connect_timeout);
        set(&mut live.upstream_timeout, &self.upstream_timeout);
        set(&mut live.header_timeout, &self.header_timeout);
        set(&mut live.idle_timeout, &self.idle_timeout);
        set(&mut restart.drain_timeout, &self.drain_timeout);
        set_some(&mut live.max_body, &self.max_body);
        set(&mut restart.max_connections, &self.max_connections);
        set(&mut restart.h2_max_streams, &self.h2_max_streams);
        set(&mut restart.access_log, &self.access_log);
        set_some(&mut live.health.check, &self.health_check);
        set(&mut live.health.interval, &self.health_interval);
        set(&mut live.health.timeout, &self.health_timeout);
        set(&mut live.health.rise, &self.health_rise);
        set(&mut live.health.fall, &self.health_fall);
        set(&mut live.health.backoff, &self.health_backoff);
        set_some(&mut restart.state, &self.state);
        set_some(&mut restart.upgrade_socket, &self.upgrade_socket);
        if !self.cluster_etcd.is_empty() {
            restart.cluster.etcd.clone_from(&self.cluster_etcd);
        }
        set(&mut restart.cluster.prefix, &self.cluster_prefix);
        set_some(&mut restart.cluster.node_name, &self.node_name);
        set_some(&mut restart.tls.listen, &self.tls_listen);
        set(&mut restart.tls.min_version, &self.tls_min_version);
        set_some(&mut restart.tls.ticket_keys, &self.tls_ticket_keys);
        if !self.tls_certs.is_empty() {
            restart.tls.certs.clone_from(&self.tls_certs);
        }
        c.takeover |= self.takeover;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = Layer {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            workers: Some(Workers::Count(4)),
            connect_timeout: Some(Duration::from_millis(7)),
            routes: vec![
                "/a=10.0.0.1:1".parse().unwrap(),
                "/b=10.0.0.1:2".parse().unwrap(),
            ],
            admin_token_file: Some("token".into()),
            ..Layer::default()
        };
        let flags = Layer {
            workers: Some(Workers::Count(2)),
            routes: vec!["/a/=10.0.0.9:9".parse().unwrap()],
            admin_token: Some("flag".into()),
            ..Layer::default()
        };
        let c = Config::layered(Some(&file), &flags, &mut crate::LiteralsOnly)
            .unwrap()
            .config;
        assert_eq!(c.restart.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(c.restart.workers, Workers::Count(2));
        assert_eq!(c.live.connect_timeout, Duration::from_millis(7));
        assert_eq!(c.live.upstream_timeout, crate::DEFAULT_UPSTREAM_TIMEOUT);
        let routes: Vec<String> = c
            .live
            .routes
            .iter()
            .map(|r| format!("{}={}", r.prefix, r.targets[0]))
            .collect();
        assert_eq!(routes, vec!["/b=10.0.0.1:2", "/a/=10.0.0.9:9"]);
        assert_eq!(
            c.restart.admin_token.as_deref(),
            Some("flag"),
            "the flag's token replaces the file's token file, which is not read"
        );
        let c = Config::layered(None, &Layer::default(), &mut crate::LiteralsOnly)
            .unwrap()
            .config;
        assert_eq!(c.restart.workers, Workers::Auto);
    }

    #[test]
    fn one_source_naming_a_prefix_twice_is_an_error() {
        let flags = Layer {
            routes: vec![
                "/a=10.0.0.1:1".parse().unwrap(),
                "/b=10.0.0.1:2".parse().unwrap(),
                "/a/=10.0.0.1:3".parse().unwrap(),
            ],
            ..Layer::default()
        };
        let error = Config::layered(None, &flags, &mut crate::LiteralsOnly).unwrap_err();
        assert!(
            error
                .0
                .starts_with("--route /a and --route /a/ name the same prefix"),
            "{error}"
        );
    }
}
