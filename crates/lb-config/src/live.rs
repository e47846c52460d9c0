//! [`LiveConfig`]: the part of the configuration a running lb applies without a restart.
//!
//! A reload (SIGHUP) replaces this part whole, so a setting added here reloads without anyone
//! adding it to a list; a setting that cannot change in a running process belongs in
//! [`RestartConfig`](crate::RestartConfig) instead.

use crate::{
    HealthConfig, StaticRoute, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_UPSTREAM_TIMEOUT,
};
use std::time::Duration;

/// What a reload replaces: routes, health checks, the request timeouts and the body limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Routes registered at start-up and re-applied (as a diff) on reload.
    pub routes: Vec<StaticRoute>,
    /// See [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`DEFAULT_UPSTREAM_TIMEOUT`].
    pub upstream_timeout: Duration,
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Largest request body accepted (413 beyond); `None` is unlimited.
    pub max_body: Option<u64>,
    /// Health checks.
    pub health: HealthConfig,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            routes: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body: None,
            health: HealthConfig::default(),
        }
    }
}
