//! Where the configuration comes from, and what a reload (SIGHUP) changes.
//!
//! [`ConfigSource`] is the config file (optional) plus the command-line [`Layer`] on top; it is
//! read again on every reload, so flags keep overriding the file. A reload applies what can
//! change without a restart: the routes given by the configuration (a registry diff applied in
//! one step, [`Reconfiguration`]: targets the new configuration adds are registered, those
//! it no longer names lose the configuration's claim and leave unless the control plane or the
//! state file holds them too, and a prefix it no longer names goes when no target is left and
//! the API does not hold it), the health-check settings, the connect/upstream/header/idle
//! timeouts and the body limit (shared with the workers, taking effect for the next wait that
//! starts). Everything else (listen, admin, workers, drain timeout, connection limit, state,
//! admin token) needs a restart or an upgrade, and a reload that changes it says so in the log.
//! An invalid file changes nothing.
//!
//! No connection is touched: workers see the new routes through the registry generation.

use crate::health::ProbePlan;
use crate::listener::plain;
use crate::supervisor::{health_policy, route_options, Handle, RunError};
use lb_config::{parse_file, Config, Layer};
use lb_registry::{
    normalize_prefix, Export, InitialConfiguration, Reconfiguration, Reconfigured, Registry,
    RouteOptions,
};
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

/// Every prefix `config` names, with its route's options.
fn named_routes(config: &Config) -> Vec<(String, RouteOptions)> {
    config
        .routes
        .iter()
        .map(|r| (r.prefix.clone(), route_options(r)))
        .collect()
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

/// Puts `config`'s routes into `registry` at start, on top of what the state file or the old lb
/// of an upgrade gave (see [`InitialConfiguration`] for who then holds what).
pub(crate) fn configure(registry: &Registry, config: &Config) -> Result<(), RunError> {
    check_routes(config).map_err(RunError::Config)?;
    let start = InitialConfiguration {
        targets: route_pairs(config),
        routes: named_routes(config),
    };
    let done = registry
        .apply(&start)
        .map_err(|e| RunError::Config(format!("routes: {e}")))?;
    log_removed_routes(&done);
    Ok(())
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
    // Only what the file changed: a target the operator deregistered through the API stays
    // out until the file names it anew (or lb restarts), whatever else the reload changes.
    let change = Reconfiguration {
        register: after
            .iter()
            .filter(|p| !before.contains(p))
            .cloned()
            .collect(),
        release: before
            .iter()
            .filter(|p| !after.contains(p))
            .cloned()
            .collect(),
        routes: named_routes(&new),
    };
    // Saved before it applies, as a control-plane change is, so that the two never interleave;
    // only what the API holds is saved, so a removed prefix (the configuration's alone) leaves
    // the file as it was. A reload that cannot be saved still applies: the file is the
    // configuration's to give.
    let save = |export: &Export| {
        if let Some(state) = &handle.state {
            if let Err(e) = state.save_export(export) {
                error!(error = %e, "the reloaded routes could not be saved");
            }
        }
        Ok::<(), std::convert::Infallible>(())
    };
    let done = match registry.apply_saved(&change, save) {
        Ok(done) => done,
        Err(e) => {
            // `load` checked every route as the registry does, so this is not expected.
            error!(error = %e, "configuration reload rejected; the running configuration stays");
            return;
        }
    };
    log_removed_routes(&done);
    let Reconfigured { added, removed, .. } = done;
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

/// Logs each prefix the configuration stopped naming and nobody else held: its requests now go
/// to the longest remaining prefix.
fn log_removed_routes(done: &Reconfigured) {
    for route in &done.routes_removed {
        info!(
            %route,
            "route removed: the configuration no longer names it and no target or API registration holds it"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateFile;
    use lb_registry::{ExportedRoute, Holder, ListedRoute, Scope};

    fn config(routes: &[&str]) -> Config {
        Config {
            routes: routes.iter().map(|r| r.parse().unwrap()).collect(),
            ..Config::default()
        }
    }

    fn ports(registry: &Registry) -> Vec<u16> {
        registry.targets().iter().map(|t| t.addr.port()).collect()
    }

    /// Targets 1, 2 and 4 from the configuration, 3 through the API, 2 also through the API.
    fn running() -> Registry {
        let registry = Registry::new(1);
        configure(
            &registry,
            &config(&["/a=127.0.0.1:1,127.0.0.1:2,127.0.0.1:4"]),
        )
        .unwrap();
        registry
            .register("/a", "127.0.0.1:3".parse().unwrap())
            .unwrap();
        registry
            .register("/a", "127.0.0.1:2".parse().unwrap())
            .unwrap();
        registry
    }

    /// The registry a new lb gets from `old` in an upgrade manifest of `version` 1 or 2.
    fn handed_over(old: &Registry, version: u32) -> Registry {
        let new = Registry::new(1);
        let now = std::time::Instant::now();
        let mut export = old.export(Scope::Carried(now));
        if version == 1 {
            export.routes = export
                .routes
                .iter()
                .map(|r| ExportedRoute::from(ListedRoute::from(r)))
                .collect();
        }
        new.import(export, now, |_| false).unwrap();
        new
    }

    #[test]
    fn an_upgrade_hands_over_who_holds_each_target_and_loses_none() {
        for version in [1, 2] {
            check_handover(version);
        }
    }

    fn check_handover(version: u32) {
        let new = handed_over(&running(), version);
        assert_eq!(ports(&new), vec![1, 2, 4, 3], "round-robin order kept");
        configure(&new, &config(&["/a=127.0.0.1:1,127.0.0.1:3"])).unwrap();
        assert_eq!(ports(&new), vec![1, 2, 4, 3], "nothing lost");
        let release = |port| {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            new.release("/a", addr, Holder::Config).unwrap()
        };
        assert!(
            release(1),
            "both configurations' alone: a reload may remove it"
        );
        assert!(
            !release(4),
            "the new configuration drops it: kept as a registration"
        );
        assert!(!release(3), "3 is held by the API too");
        assert!(!release(2), "2 is held by the API too");
        assert_eq!(ports(&new), vec![2, 4, 3]);
    }

    /// An old lb whose configuration named `/b`, whose one target the operator deregistered:
    /// the empty prefix goes to the new lb, which keeps it only if its configuration names it
    /// too, as a reload would.
    #[test]
    fn a_start_removes_a_handed_over_prefix_nobody_holds_any_more() {
        let old = Registry::new(1);
        configure(&old, &config(&["/a=127.0.0.1:1", "/b=127.0.0.1:2"])).unwrap();
        old.deregister("/b", "127.0.0.1:2".parse().unwrap())
            .unwrap();
        let paths =
            |r: &Registry| -> Vec<String> { r.routes().into_iter().map(|r| r.path).collect() };
        assert_eq!(paths(&old), ["/a", "/b"], "the old configuration names /b");

        let new = handed_over(&old, 2);
        configure(&new, &config(&["/a=127.0.0.1:1"])).unwrap();
        assert_eq!(paths(&new), ["/a"]);
        let new = handed_over(&old, 2);
        configure(&new, &config(&["/a=127.0.0.1:1", "/b=127.0.0.1:3"])).unwrap();
        assert_eq!(paths(&new), ["/a", "/b"]);
    }

    #[test]
    fn the_state_file_keeps_what_the_api_holds() {
        let dir = std::env::temp_dir().join(format!("lb-reload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = StateFile::new(dir.join("state.json"));
        file.save(&running()).unwrap();
        let copy = Registry::new(1);
        assert!(file.load_into(&copy).unwrap());
        assert_eq!(
            ports(&copy),
            vec![2, 3],
            "1 comes back from the configuration"
        );
        assert_eq!(copy.routes()[0].config_only, Vec::<SocketAddr>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
