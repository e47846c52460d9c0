//! The configuration's routes in the registry: put there at start ([`configure`]), changed by
//! a reload ([`reconfigure`]), and the registry's settings taken from the configuration.
//!
//! A start ([`InitialConfiguration`]) or a reload ([`Reconfiguration`]) changes the routes the
//! configuration gives in one registry step through the registry's one door: targets the new
//! configuration adds are registered, those it no longer names lose the configuration's claim
//! and leave unless the control plane or the state file holds them too, and a prefix it no
//! longer names goes when no target is left and the API does not hold it. A reload is saved
//! before it applies, as a control-plane change is, so the two never interleave. No connection
//! is touched: workers see the new routes through the registry generation.

use crate::error::RunError;
use lb_config::{LiveConfig, StaticRoute};
use lb_registry::{
    check_weight, route_name, Balance, Export, HealthPolicy, InitialConfiguration, MaxFails,
    Reconfiguration, Reconfigured, Registry, RouteOptions, DEFAULT_RETRIES, MAX_RETRIES,
};
use std::net::SocketAddr;
use tracing::info;

/// The registry's name of a configured route: its prefix, after its host when it has one
/// ([`route_name`]); as written when it is invalid, which [`check_routes`] reports first.
fn name_of(route: &StaticRoute) -> String {
    route_name(route.host.as_deref(), &route.prefix).unwrap_or_else(|_| route.prefix.clone())
}

/// Every route `config` names, with its options.
fn named_routes(config: &LiveConfig) -> Vec<(String, RouteOptions)> {
    config
        .routes
        .iter()
        .map(|r| (name_of(r), route_options(r)))
        .collect()
}

/// The configured routes as (route name, target) pairs, in order.
fn route_pairs(config: &LiveConfig) -> Vec<(String, SocketAddr)> {
    config
        .routes
        .iter()
        .flat_map(|r| {
            let name = name_of(r);
            r.targets.iter().map(move |&t| (name.clone(), t))
        })
        .collect()
}

/// The weight `config` gives each of its targets, as (route name, target, weight): 1 unless
/// written `{ addr = ..., weight = N }`.
fn route_weights(config: &LiveConfig) -> Vec<(String, SocketAddr, u16)> {
    config
        .routes
        .iter()
        .flat_map(|r| {
            let name = name_of(r);
            r.targets.iter().map(move |&t| {
                let weight = r
                    .weights
                    .iter()
                    .find(|(a, _)| *a == t)
                    .map_or(1, |&(_, w)| w);
                (name.clone(), t, weight)
            })
        })
        .collect()
}

/// Puts `config`'s routes into `registry` at start, on top of what the state file or the old lb
/// of an upgrade gave (see [`InitialConfiguration`] for who then holds what).
pub(crate) fn configure(registry: &Registry, config: &LiveConfig) -> Result<(), RunError> {
    check_routes(config).map_err(RunError::Config)?;
    let start = InitialConfiguration {
        weights: route_weights(config),
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
pub(crate) fn check_routes(config: &LiveConfig) -> Result<(), String> {
    for route in &config.routes {
        route_name(route.host.as_deref(), &route.prefix)
            .map_err(|e| format!("route {}: {e}", route.prefix))?;
        balance_of(route).map_err(|e| format!("route {}: {e}", route.prefix))?;
        max_fails_of(route).map_err(|e| format!("route {}: {e}", route.prefix))?;
        if let Some(retries) = route.retries.filter(|&r| r > MAX_RETRIES) {
            return Err(format!(
                "route {}: retries {retries} is more than {MAX_RETRIES}",
                route.prefix
            ));
        }
        for &(target, weight) in &route.weights {
            check_weight(u64::from(weight))
                .map_err(|e| format!("route {}, target {target}: {e}", route.prefix))?;
        }
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

/// Applies the routes `new` gives in place of those of `old` (a reload): only what the file
/// changed, in one registry step, handed to `save` (the state file) before it applies. A reload
/// whose save fails still applies: the routes are the configuration's to give, and `save` logs
/// its failure. The error is the registry's refusal, which [`check_routes`] makes unexpected.
pub(crate) fn reconfigure(
    registry: &Registry,
    old: &LiveConfig,
    new: &LiveConfig,
    save: impl FnOnce(&Export),
) -> Result<Reconfigured, String> {
    let (before, after) = (route_pairs(old), route_pairs(new));
    // Only what the file changed: a target the operator deregistered through the API stays
    // out until the file names it anew (or lb restarts), whatever else the reload changes.
    let change = Reconfiguration {
        weights: route_weights(new),
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
        routes: named_routes(new),
    };
    let save = |export: &Export| {
        save(export);
        Ok::<(), std::convert::Infallible>(())
    };
    let done = registry
        .apply_saved(&change, save)
        .map_err(|e| e.to_string())?;
    log_removed_routes(&done);
    Ok(done)
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

/// The registry's health thresholds from the configuration.
pub(crate) fn health_policy(health: &lb_config::HealthConfig) -> HealthPolicy {
    HealthPolicy {
        rise: health.rise,
        fall: health.fall,
        backoff: health.backoff,
    }
}

/// The balancing policy a configured route names; the error is the registry's sentence.
fn balance_of(route: &StaticRoute) -> Result<Balance, lb_registry::RegistryError> {
    Balance::parse(route.balance.as_deref(), route.hash_key.as_deref())
}

/// The failure accounting a configured route asks for; the error is the registry's sentence.
fn max_fails_of(route: &StaticRoute) -> Result<MaxFails, lb_registry::RegistryError> {
    MaxFails::new(route.max_fails.unwrap_or(0), route.fail_statuses.as_deref())
}

/// The registry's options for a configured route (its policy and failure accounting checked
/// by [`check_routes`] first; the defaults if they were not).
fn route_options(route: &StaticRoute) -> RouteOptions {
    RouteOptions {
        strip_prefix: route.strip_prefix,
        connect_timeout: route.connect_timeout,
        upstream_timeout: route.upstream_timeout,
        balance: balance_of(route).unwrap_or_default(),
        max_fails: max_fails_of(route).unwrap_or_default(),
        retries: route.retries.unwrap_or(DEFAULT_RETRIES).min(MAX_RETRIES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateFile;
    use lb_registry::{ExportedRoute, Holder, ListedRoute, Scope};

    fn config(routes: &[&str]) -> LiveConfig {
        LiveConfig {
            routes: routes.iter().map(|r| r.parse().unwrap()).collect(),
            ..LiveConfig::default()
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
