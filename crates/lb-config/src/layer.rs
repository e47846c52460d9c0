//! Settings from one source (the config file, or the command line), every one optional, and the
//! one function that stacks them: defaults, then the file, then the flags.
//!
//! Routes stack by prefix: a `--route` for a prefix the file also names replaces the file's
//! route; every other route of either source is kept, file routes first.

use crate::{Config, StaticRoute, Workers};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One source's settings; `None` / empty means "not said here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// See [`Config::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Config::admin`].
    pub admin: Option<SocketAddr>,
    /// See [`Config::workers`].
    pub workers: Option<Workers>,
    /// See [`Config::pin`].
    pub pin: Option<bool>,
    /// See [`Config::backlog`].
    pub backlog: Option<u32>,
    /// See [`Config::defer_accept`].
    pub defer_accept: Option<Duration>,
    /// See [`Config::routes`].
    pub routes: Vec<StaticRoute>,
    /// See [`Config::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// See [`Config::upstream_timeout`].
    pub upstream_timeout: Option<Duration>,
    /// See [`Config::header_timeout`].
    pub header_timeout: Option<Duration>,
    /// See [`Config::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// See [`Config::drain_timeout`].
    pub drain_timeout: Option<Duration>,
    /// See [`Config::max_body`].
    pub max_body: Option<u64>,
    /// See [`Config::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`Config::access_log`].
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
    /// See [`Config::state`].
    pub state: Option<PathBuf>,
    /// See [`Config::admin_token`].
    pub admin_token: Option<String>,
    /// See [`Config::upgrade_socket`].
    pub upgrade_socket: Option<PathBuf>,
    /// See [`Config::takeover`] (command line only).
    pub takeover: bool,
}

impl Config {
    /// The configuration from the defaults, overridden by `file` (if any), overridden by
    /// `flags`. Not validated: call [`Config::validate`].
    pub fn layered(file: Option<&Layer>, flags: &Layer) -> Config {
        let mut config = Config::default();
        for layer in file.into_iter().chain([flags]) {
            layer.apply(&mut config);
        }
        config
    }
}

impl Layer {
    fn apply(&self, c: &mut Config) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut c.listen, &self.listen);
        set(&mut c.admin, &self.admin);
        set(&mut c.workers, &self.workers);
        set(&mut c.pin, &self.pin);
        set(&mut c.backlog, &self.backlog);
        set(&mut c.defer_accept, &self.defer_accept);
        set(&mut c.connect_timeout, &self.connect_timeout);
        set(&mut c.upstream_timeout, &self.upstream_timeout);
        set(&mut c.header_timeout, &self.header_timeout);
        set(&mut c.idle_timeout, &self.idle_timeout);
        set(&mut c.drain_timeout, &self.drain_timeout);
        if self.max_body.is_some() {
            c.max_body = self.max_body;
        }
        set(&mut c.max_connections, &self.max_connections);
        set(&mut c.access_log, &self.access_log);
        if self.health_check.is_some() {
            c.health.check = self.health_check.clone();
        }
        set(&mut c.health.interval, &self.health_interval);
        set(&mut c.health.timeout, &self.health_timeout);
        set(&mut c.health.rise, &self.health_rise);
        set(&mut c.health.fall, &self.health_fall);
        set(&mut c.health.backoff, &self.health_backoff);
        if self.state.is_some() {
            c.state = self.state.clone();
        }
        if self.admin_token.is_some() {
            c.admin_token = self.admin_token.clone();
        }
        if self.upgrade_socket.is_some() {
            c.upgrade_socket = self.upgrade_socket.clone();
        }
        c.takeover |= self.takeover;
        for route in &self.routes {
            c.routes.retain(|r| r.prefix != route.prefix);
            c.routes.push(route.clone());
        }
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
            ..Layer::default()
        };
        let flags = Layer {
            workers: Some(Workers::Count(2)),
            routes: vec!["/a=10.0.0.9:9".parse().unwrap()],
            ..Layer::default()
        };
        let c = Config::layered(Some(&file), &flags);
        assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(c.workers, Workers::Count(2));
        assert_eq!(c.connect_timeout, Duration::from_millis(7));
        assert_eq!(c.upstream_timeout, crate::DEFAULT_UPSTREAM_TIMEOUT);
        let routes: Vec<String> = c
            .routes
            .iter()
            .map(|r| format!("{}={}", r.prefix, r.targets[0]))
            .collect();
        assert_eq!(routes, vec!["/b=10.0.0.1:2", "/a=10.0.0.9:9"]);
        let c = Config::layered(None, &Layer::default());
        assert_eq!(c.workers, Workers::Auto);
    }
}
