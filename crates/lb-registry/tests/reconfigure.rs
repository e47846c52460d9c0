//! The configuration's routes applied in one step (`Registry::reconfigure`), and which routes a
//! reload removes: a prefix the configuration alone held goes when it stops naming it and no
//! target is left there; one the API holds, or one the configuration still names, stays (503).

use lb_registry::{
    Balance, Holder, InitialConfiguration, MaxFails, Reconfiguration, Reconfigured, Registry,
    RegistryError, RouteOptions, DEFAULT_RETRIES,
};
use std::net::SocketAddr;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn pairs(list: &[(&str, u16)]) -> Vec<(String, SocketAddr)> {
    list.iter()
        .map(|&(path, port)| (path.to_string(), addr(port)))
        .collect()
}

fn named(list: &[(&str, RouteOptions)]) -> Vec<(String, RouteOptions)> {
    list.iter()
        .map(|&(path, options)| (path.to_string(), options))
        .collect()
}

const KEEP_PREFIX: RouteOptions = RouteOptions {
    strip_prefix: false,
    connect_timeout: None,
    upstream_timeout: None,
    balance: Balance::RoundRobin,
    max_fails: MaxFails::DISABLED,
    retries: DEFAULT_RETRIES,
};
const DEFAULT: RouteOptions = RouteOptions {
    strip_prefix: true,
    connect_timeout: None,
    upstream_timeout: None,
    balance: Balance::RoundRobin,
    max_fails: MaxFails::DISABLED,
    retries: DEFAULT_RETRIES,
};

/// The prefix of the route `target` reaches, and the target forwarded, with whether the route
/// has a target to pick (`false`: it answers 503).
fn routed(reg: &Registry, target: &str) -> Option<(String, String, bool)> {
    let snapshot = reg.snapshot();
    snapshot.lookup(target).map(|m| {
        (
            m.route.prefix().to_string(),
            format!("{}{}", m.lead(), m.rest),
            !m.route.targets().is_empty(),
        )
    })
}

fn route_paths(reg: &Registry) -> Vec<String> {
    reg.routes().into_iter().map(|r| r.path).collect()
}

/// A registry configured with `/` -> 1 and `/gone` -> 2 (which keeps its prefix).
fn configured() -> Registry {
    let reg = Registry::new(1);
    let start = Reconfiguration {
        weights: Vec::new(),
        register: pairs(&[("/", 1), ("/gone/", 2)]),
        release: Vec::new(),
        routes: named(&[("/", DEFAULT), ("/gone/", KEEP_PREFIX)]),
    };
    let done = reg.reconfigure(&start).expect("valid routes");
    assert_eq!(done.added, 2);
    reg
}

/// The reload that drops `/gone` from the file.
fn drop_gone() -> Reconfiguration {
    Reconfiguration {
        weights: Vec::new(),
        register: Vec::new(),
        release: pairs(&[("/gone", 2)]),
        routes: named(&[("/", DEFAULT)]),
    }
}

#[test]
fn a_prefix_only_the_configuration_held_goes_when_it_stops_naming_it() {
    let reg = configured();
    assert_eq!(
        routed(&reg, "/gone/x"),
        Some(("/gone".into(), "/gone/x".into(), true))
    );
    let generation = reg.generation();
    let done = reg.reconfigure(&drop_gone()).unwrap();
    assert_eq!(
        done,
        Reconfigured {
            added: 0,
            removed: 1,
            routes_removed: vec!["/gone".into()],
        }
    );
    assert_eq!(reg.generation(), generation + 1, "published once");
    assert_eq!(route_paths(&reg), ["/"]);
    assert_eq!(
        routed(&reg, "/gone/x"),
        Some(("/".into(), "/gone/x".into(), true)),
        "falls through to `/`"
    );

    // Registered again (through the API), it starts afresh: default options, first target.
    reg.register("/gone", addr(3)).unwrap();
    reg.register("/gone", addr(4)).unwrap();
    assert_eq!(
        routed(&reg, "/gone/x"),
        Some(("/gone".into(), "/x".into(), true)),
        "its options went with it"
    );
    let snapshot = reg.snapshot();
    let route = &snapshot.lookup("/gone/x").unwrap().route;
    let picks: Vec<u16> = (0..3)
        .map(|_| route.pick().map_or(0, |t| t.addr().port()))
        .collect();
    assert_eq!(picks, [3, 4, 3], "a new cursor");
}

#[test]
fn a_prefix_stays_while_the_api_holds_a_target_there() {
    // The API registered on /gone; its target left since, and the API's claim with it.
    let reg = configured();
    reg.register("/gone", addr(3)).unwrap();
    reg.deregister("/gone", addr(3)).unwrap();
    let done = reg.reconfigure(&drop_gone()).unwrap();
    assert_eq!(done.removed, 1);
    assert_eq!(done.routes_removed, ["/gone"]);
    assert_eq!(route_paths(&reg), ["/"]);

    // The API holds a target there: the target and the route stay.
    let reg = configured();
    reg.register("/gone", addr(3)).unwrap();
    reg.reconfigure(&drop_gone()).unwrap();
    assert_eq!(reg.routes()[1].targets, [addr(3)]);
    // The API holds the configured target too: it stays.
    let reg = configured();
    reg.register("/gone", addr(2)).unwrap();
    let done = reg.reconfigure(&drop_gone()).unwrap();
    assert_eq!(done.removed, 0);
    assert_eq!(reg.routes()[1].targets, [addr(2)]);
}

#[test]
fn a_prefix_the_configuration_still_names_stays_without_targets() {
    let reg = configured();
    // The operator's word beats the file's: the configured target goes, the prefix stays.
    reg.deregister("/gone", addr(2)).unwrap();
    assert_eq!(
        routed(&reg, "/gone/x"),
        Some(("/gone".into(), "/gone/x".into(), false))
    );
    // A reload of a file that still names /gone (its target list did not change).
    let still = Reconfiguration {
        weights: Vec::new(),
        register: Vec::new(),
        release: Vec::new(),
        routes: named(&[("/", DEFAULT), ("/gone", KEEP_PREFIX)]),
    };
    let generation = reg.generation();
    assert_eq!(reg.reconfigure(&still).unwrap(), Reconfigured::default());
    assert_eq!(
        reg.generation(),
        generation,
        "nothing changed, nothing published"
    );
    assert_eq!(route_paths(&reg), ["/", "/gone"], "the operator named it");

    // The file drops /gone: its target is already gone, the prefix goes now.
    let done = reg.reconfigure(&drop_gone()).unwrap();
    assert_eq!(done.removed, 0);
    assert_eq!(done.routes_removed, ["/gone"]);
    assert_eq!(route_paths(&reg), ["/"]);
}

#[test]
fn a_reload_is_one_snapshot_and_an_invalid_one_changes_nothing() {
    let reg = configured();
    let generation = reg.generation();
    // /gone's target is replaced and its options change: never empty, never half done.
    let replace = Reconfiguration {
        weights: Vec::new(),
        register: pairs(&[("/gone", 5)]),
        release: pairs(&[("/gone", 2)]),
        routes: named(&[("/", DEFAULT), ("/gone", DEFAULT)]),
    };
    let done = reg.reconfigure(&replace).unwrap();
    assert_eq!((done.added, done.removed), (1, 1));
    assert_eq!(reg.generation(), generation + 1);
    assert_eq!(
        routed(&reg, "/gone/x"),
        Some(("/gone".into(), "/x".into(), true))
    );

    let before = reg.routes();
    let generation = reg.generation();
    for bad in [
        Reconfiguration {
            register: pairs(&[("/new", 0)]),
            ..drop_gone()
        },
        Reconfiguration {
            release: pairs(&[("no-slash", 1)]),
            ..drop_gone()
        },
        Reconfiguration {
            routes: named(&[("/a?b", DEFAULT)]),
            ..drop_gone()
        },
    ] {
        let refused = reg.reconfigure(&bad);
        assert!(
            matches!(
                refused,
                Err(RegistryError::InvalidPath(_) | RegistryError::InvalidTarget(_))
            ),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(reg.routes(), before);
    assert_eq!(reg.generation(), generation);
}

/// At start the whole configuration applies over what the old lb handed over: a target that only
/// the old configuration held and this one does not name becomes a registration (an upgrade
/// loses nothing), one it names stays the configuration's, and a prefix the old configuration
/// alone held with no target left goes unless this one names it.
#[test]
fn a_start_keeps_what_the_old_configuration_held_as_registrations() {
    let reg = Registry::new(1);
    reg.register_as("/a", addr(1), Holder::Config).unwrap();
    reg.register_as("/a", addr(2), Holder::Config).unwrap();
    reg.register_as("/b", addr(3), Holder::Config).unwrap();
    reg.release("/b", addr(3), Holder::Config).unwrap();
    assert_eq!(
        route_paths(&reg),
        ["/a", "/b"],
        "named by the old configuration"
    );
    let start = InitialConfiguration {
        weights: Vec::new(),
        targets: pairs(&[("/a/", 1)]),
        routes: named(&[("/a", DEFAULT)]),
    };
    let done = reg.apply(&start).unwrap();
    assert_eq!(done.routes_removed, ["/b"]);
    let routes = reg.routes();
    assert_eq!(
        routes[0].targets,
        [addr(1), addr(2)],
        "nothing lost, same order"
    );
    assert_eq!(routes[0].config_only, [addr(1)], "2 is a registration now");
    assert!(routes[0].held_by_api);
    assert_eq!(reg.release("/a", addr(2), Holder::Config), Ok(false));
    assert_eq!(reg.release("/a", addr(1), Holder::Config), Ok(true));
}
