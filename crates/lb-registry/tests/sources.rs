//! Who holds a registration: the configuration and the control plane each hold a target,
//! a reload withdraws only the configuration's claim, an API deregistration removes the target
//! whoever holds it, and `routes()` tells which targets only the configuration holds and which
//! prefixes the API holds.

use lb_registry::{Holder, Registered, Registry};
use std::net::SocketAddr;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn ports(reg: &Registry, path: &str) -> Vec<u16> {
    reg.targets()
        .iter()
        .filter(|t| t.path == path)
        .map(|t| t.addr.port())
        .collect()
}

fn held_by_api(reg: &Registry, path: &str) -> Option<bool> {
    reg.routes()
        .iter()
        .find(|r| r.path == path)
        .map(|r| r.held_by_api)
}

fn config_only(reg: &Registry, path: &str) -> Vec<u16> {
    reg.routes()
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| r.config_only.iter().map(SocketAddr::port))
        .collect()
}

#[test]
fn a_target_held_by_the_api_too_survives_the_configuration_releasing_it() {
    let reg = Registry::new(1);
    assert_eq!(
        reg.register_as("/a", addr(1), Holder::Config),
        Ok(Registered::New)
    );
    assert_eq!(reg.register("/a/", addr(1)), Ok(Registered::Adopted));
    assert_eq!(reg.register("/a", addr(1)), Ok(Registered::Existing));
    assert_eq!(
        reg.register_as("/a", addr(1), Holder::Config),
        Ok(Registered::Existing)
    );
    assert_eq!(config_only(&reg, "/a"), Vec::<u16>::new());

    let generation = reg.generation();
    assert_eq!(reg.release("/a", addr(1), Holder::Config), Ok(false));
    assert_eq!(ports(&reg, "/a"), vec![1], "the API still holds it");
    assert_eq!(reg.generation(), generation, "routing did not change");
}

#[test]
fn the_configuration_releasing_its_own_target_removes_it() {
    let reg = Registry::new(1);
    reg.register_as("/a", addr(1), Holder::Config).unwrap();
    reg.register_as("/a", addr(2), Holder::Config).unwrap();
    reg.register("/a", addr(3)).unwrap();
    assert_eq!(config_only(&reg, "/a"), vec![1, 2]);
    assert_eq!(reg.release("/a", addr(1), Holder::Config), Ok(true));
    assert_eq!(ports(&reg, "/a"), vec![2, 3]);
    assert_eq!(
        reg.release("/a", addr(1), Holder::Config),
        Ok(false),
        "gone"
    );
    assert_eq!(reg.release("/zz", addr(2), Holder::Config), Ok(false));
    assert!(reg.release("no-slash", addr(2), Holder::Config).is_err());
}

#[test]
fn an_api_release_leaves_a_target_the_configuration_holds() {
    let reg = Registry::new(1);
    reg.register_as("/a", addr(1), Holder::Config).unwrap();
    reg.register("/a", addr(1)).unwrap();
    assert_eq!(reg.release("/a", addr(1), Holder::Api), Ok(false));
    assert_eq!(
        config_only(&reg, "/a"),
        vec![1],
        "back to the configuration's alone"
    );
}

#[test]
fn an_api_deregistration_removes_a_target_the_configuration_holds() {
    let reg = Registry::new(1);
    reg.register_as("/a", addr(1), Holder::Config).unwrap();
    reg.register("/a", addr(1)).unwrap();
    reg.register_as("/a", addr(2), Holder::Config).unwrap();
    assert_eq!(reg.deregister("/a", addr(1)), Ok(true));
    assert_eq!(
        reg.deregister("/a", addr(2)),
        Ok(true),
        "config alone: also removed"
    );
    assert_eq!(ports(&reg, "/a"), Vec::<u16>::new());
}

#[test]
fn adopting_a_target_keeps_its_place_in_round_robin_order() {
    let reg = Registry::new(1);
    reg.register_as("/a", addr(1), Holder::Config).unwrap();
    reg.register("/a", addr(2)).unwrap();
    reg.register("/a", addr(1)).unwrap();
    let routes = reg.routes();
    assert_eq!(routes[0].targets, vec![addr(1), addr(2)]);
    let snap = reg.snapshot();
    let m = snap.lookup("/a/x").expect("route");
    let picks: Vec<u16> = (0..4)
        .map(|_| m.route.pick().map_or(0, |t| t.addr().port()))
        .collect();
    assert_eq!(picks, vec![1, 2, 1, 2]);
}

#[test]
fn a_prefix_is_the_api_s_while_the_api_holds_a_target_there() {
    let reg = Registry::new(1);
    reg.register_as("/c", addr(1), Holder::Config).unwrap();
    reg.register("/api", addr(2)).unwrap();
    assert_eq!(held_by_api(&reg, "/c"), Some(false));
    assert_eq!(held_by_api(&reg, "/api"), Some(true));

    reg.register("/c", addr(3)).unwrap();
    assert_eq!(held_by_api(&reg, "/c"), Some(true));
    reg.deregister("/c", addr(3)).unwrap();
    reg.deregister("/api", addr(2)).unwrap();
    assert_eq!(
        held_by_api(&reg, "/c"),
        Some(false),
        "the configuration's target stays, the API's claim went with its last target"
    );
    assert_eq!(held_by_api(&reg, "/api"), None, "nobody wants it: gone");
}
