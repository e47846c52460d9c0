//! Where the configuration comes from, and what a reload (SIGHUP) changes.
//!
//! [`ConfigSource`] is the config file (optional) plus the command-line [`Layer`] on top; it is
//! read again on every reload, so flags keep overriding the file. A reload applies what can
//! change without a restart: the routes given by the configuration (a registry diff: targets the
//! new configuration adds are registered, those it no longer names are deregistered; targets
//! registered through the control plane are left alone), the health-check settings, the
//! connect/upstream/header/idle timeouts and the body limit (shared with the workers, taking
//! effect for the next wait that starts). Everything else (listen, admin, workers, drain timeout,
//! connection limit, state, admin token) needs a restart or an upgrade, and a reload that changes
//! it says so in the log. An invalid file changes nothing.
//!
//! No connection is touched: workers see the new routes through the registry generation.

use crate::health::ProbePlan;
use crate::listener::plain;
use crate::supervisor::{health_policy, route_options, Handle, RunError};
use lb_config::{parse_file, Config, Layer};
use lb_registry::{normalize_prefix, RouteOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing::{error, info, warn};

/// The configuration's origin: an optional TOML file with the command-line flags on top.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config FILE.toml`.
    pub file: Option<PathBuf>,
    /// The flags given on the command line.
    pub flags: Layer,
}

impl ConfigSource {
    /// Reads the file (if any), stacks defaults, file and flags, and validates. Every problem is
    /// a [`RunError::Config`] (exit code 2) naming the file.
    pub fn load(&self) -> Result<Config, RunError> {
        let file = match &self.file {
            None => None,
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    RunError::Config(format!("cannot read the config file {name}: {}", plain(&e)))
                })?;
                Some(parse_file(&text, &name)?)
            }
        };
        let config = Config::layered(file.as_ref(), &self.flags);
        config.validate()?;
        check_routes(&config).map_err(RunError::Config)?;
        Ok(config)
    }
}

/// The configured routes as (normalized prefix, target) pairs, in order.
fn route_pairs(config: &Config) -> Vec<(String, SocketAddr)> {
    config
        .routes
        .iter()
        .flat_map(|r| {
            let prefix = normalize_prefix(&r.prefix).unwrap_or_else(|_| r.prefix.clone());
            r.targets.iter().map(move |&t| (prefix.clone(), t))
        })
        .collect()
}

/// What the registry would refuse, found before anything is changed.
fn check_routes(config: &Config) -> Result<(), String> {
    for route in &config.routes {
        normalize_prefix(&route.prefix).map_err(|e| format!("route {}: {e}", route.prefix))?;
        if let Some(t) = route.targets.iter().find(|t| t.ip().is_unspecified()) {
            return Err(format!(
                "route {}: {} is not a host address",
                route.prefix,
                t.ip()
            ));
        }
    }
    Ok(())
}

/// Reloads from `source` into the running lb; an invalid configuration is logged and ignored.
pub(crate) fn reload(handle: &mut Handle, source: &ConfigSource) {
    let new = match source.load() {
        Ok(new) => new,
        Err(e) => {
            error!(error = %e, "configuration reload rejected; the running configuration stays");
            return;
        }
    };
    let old = handle.config.clone();
    let (before, after) = (route_pairs(&old), route_pairs(&new));
    let registry = handle.registry().clone();
    let (mut removed, mut added) = (0, 0);
    for (prefix, target) in before.iter().filter(|p| !after.contains(p)) {
        if matches!(registry.deregister(prefix, *target), Ok(true)) {
            removed += 1;
        }
    }
    for (prefix, target) in after.iter().filter(|p| !before.contains(p)) {
        match registry.register(prefix, *target) {
            Ok(lb_registry::Registered::New) => added += 1,
            Ok(lb_registry::Registered::Existing) => {}
            Err(e) => warn!(route = %prefix, %target, error = %e, "route target not registered"),
        }
    }
    if added + removed > 0 {
        if let Some(state) = &handle.state {
            if let Err(e) = state.save(&registry) {
                error!(error = %e, "the reloaded routes could not be saved");
            }
        }
    }
    // Prefixes the file no longer configures go back to the defaults.
    for route in old
        .routes
        .iter()
        .filter(|r| !new.routes.iter().any(|n| n.prefix == r.prefix))
    {
        let _ = registry.set_route_options(&route.prefix, RouteOptions::default());
    }
    for route in &new.routes {
        if let Err(e) = registry.set_route_options(&route.prefix, route_options(route)) {
            warn!(route = %route.prefix, error = %e, "route options not applied");
        }
    }
    registry.set_policy(health_policy(&new.health));
    handle.tuning.update(&new);
    *handle.probe_plan.write() = ProbePlan::from_config(&new);
    for setting in needs_restart(&old, &new) {
        warn!(
            setting,
            "changed in the config file; it takes a restart or an upgrade to apply"
        );
    }
    info!(added, removed, "configuration reloaded");
    handle.config = Config {
        routes: new.routes,
        health: new.health,
        connect_timeout: new.connect_timeout,
        upstream_timeout: new.upstream_timeout,
        header_timeout: new.header_timeout,
        idle_timeout: new.idle_timeout,
        max_body: new.max_body,
        ..old
    };
}

/// Settings that differ between `old` and `new` and cannot change in a running lb.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("listen", old.listen != new.listen);
    check("admin", old.admin != new.admin);
    check("workers", old.workers != new.workers);
    check("pin", old.pin != new.pin);
    check("backlog", old.backlog != new.backlog);
    check(
        "timeouts.defer_accept",
        old.defer_accept != new.defer_accept,
    );
    check("timeouts.drain", old.drain_timeout != new.drain_timeout);
    check(
        "max_connections",
        old.max_connections != new.max_connections,
    );
    check("access_log", old.access_log != new.access_log);
    check("state", old.state != new.state);
    check("admin_token", old.admin_token != new.admin_token);
    check("upgrade_socket", old.upgrade_socket != new.upgrade_socket);
    changed
}
