//! Undoing a control-plane change that could not be saved: the registry is exactly as before,
//! the same holders for every target (configuration, API or both), the same round-robin order,
//! counts and health, and which prefixes the API holds (what a state file keeps).

use lb_registry::{Reconfiguration, Registered, Registry, RouteOptions, Source};
use std::net::SocketAddr;
use std::time::Instant;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `path`'s targets in round-robin order, and those only the configuration holds.
fn route(reg: &Registry, path: &str) -> (Vec<u16>, Vec<u16>) {
    let ports = |addrs: &[SocketAddr]| addrs.iter().map(SocketAddr::port).collect();
    reg.routes()
        .iter()
        .find(|r| r.path == path)
        .map(|r| (ports(&r.targets), ports(&r.config_only)))
        .unwrap_or_default()
}

fn held_by_api(reg: &Registry, path: &str) -> Option<bool> {
    reg.routes()
        .iter()
        .find(|r| r.path == path)
        .map(|r| r.held_by_api)
}

/// "/a" -> [1 (configuration and API), 2 (configuration), 3 (API)].
fn mixed() -> Registry {
    let reg = Registry::new(1);
    let valid = "a valid prefix and target";
    reg.register_as("/a", addr(1), Source::Config).expect(valid);
    reg.register("/a", addr(1)).expect(valid);
    reg.register_as("/a", addr(2), Source::Config).expect(valid);
    reg.register("/a", addr(3)).expect(valid);
    reg
}

#[test]
fn an_undone_deregistration_gives_the_target_back_its_holders_and_its_place() {
    let reg = mixed();
    let snapshot = reg.snapshot();
    snapshot.lookup("/a").unwrap().route.targets()[0].record_request(0);
    reg.mark_down_at(addr(2), Instant::now());
    let before = reg.targets();
    for port in [1, 2, 3] {
        let undo = reg.deregister_undoable("/a", addr(port)).unwrap();
        let undo = undo.expect("registered, so removed");
        assert!(!reg.targets().iter().any(|t| t.addr == addr(port)));
        reg.undo(undo);
        assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![2]), "after {port}");
    }
    assert_eq!(reg.targets(), before, "same counts and health");
    assert_eq!(
        reg.snapshot().lookup("/a").unwrap().route.targets().len(),
        2,
        "2 is still down"
    );

    // 1 is held by both again: the API withdrawing leaves it to the configuration.
    assert_eq!(reg.release("/a", addr(1), Source::Api), Ok(false));
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![1, 2]));
    // 2 is the configuration's alone again: a reload that drops it removes it.
    assert_eq!(reg.release("/a", addr(2), Source::Config), Ok(true));
    // 3 is the API's alone again.
    assert_eq!(reg.release("/a", addr(3), Source::Config), Ok(false));
    assert_eq!(reg.release("/a", addr(3), Source::Api), Ok(true));
    assert_eq!(route(&reg, "/a"), (vec![1], vec![1]));
    assert!(reg.deregister_undoable("/a", addr(9)).unwrap().is_none());
}

#[test]
fn an_undone_registration_withdraws_the_api_s_claim_only() {
    let reg = mixed();
    let (registered, undo) = reg.register_undoable("/a", addr(2)).unwrap();
    assert_eq!(registered, Registered::Adopted);
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![]));
    reg.undo(undo);
    assert_eq!(
        route(&reg, "/a"),
        (vec![1, 2, 3], vec![2]),
        "configured only"
    );

    let (registered, undo) = reg.register_undoable("/a", addr(4)).unwrap();
    assert_eq!(registered, Registered::New);
    reg.undo(undo);
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![2]), "4 left");

    let (registered, undo) = reg.register_undoable("/a", addr(3)).unwrap();
    assert_eq!(registered, Registered::Existing);
    reg.undo(undo);
    assert_eq!(
        route(&reg, "/a"),
        (vec![1, 2, 3], vec![2]),
        "nothing to undo"
    );
}

#[test]
fn an_undone_registration_leaves_no_prefix_behind() {
    let reg = Registry::new(1);
    reg.register_as("/c", addr(1), Source::Config).unwrap();
    assert_eq!(held_by_api(&reg, "/c"), Some(false));

    let (_, undo) = reg.register_undoable("/c", addr(2)).unwrap();
    assert_eq!(held_by_api(&reg, "/c"), Some(true));
    reg.undo(undo);
    assert_eq!(
        held_by_api(&reg, "/c"),
        Some(false),
        "still the configuration's alone"
    );

    let (_, undo) = reg.register_undoable("/new", addr(3)).unwrap();
    reg.undo(undo);
    assert_eq!(
        held_by_api(&reg, "/new"),
        None,
        "the route it created is gone"
    );
    assert!(
        reg.snapshot().lookup("/new/x").is_none(),
        "no empty route answering 503"
    );
}

#[test]
fn an_undo_keeps_what_a_reload_did_meanwhile() {
    let reg = mixed();
    let undo = reg.deregister_undoable("/a", addr(2)).unwrap().unwrap();
    // The reload names 2 again: it joins at the end.
    reg.register_as("/a", addr(2), Source::Config).unwrap();
    reg.undo(undo);
    assert_eq!(route(&reg, "/a"), (vec![1, 3, 2], vec![2]));

    let (_, undo) = reg.register_undoable("/b", addr(5)).unwrap();
    reg.register_as("/b", addr(6), Source::Config).unwrap();
    reg.undo(undo);
    assert_eq!(route(&reg, "/b"), (vec![6], vec![6]));
    assert_eq!(held_by_api(&reg, "/b"), Some(false));
}

/// A registry whose configuration names "/c" -> [1].
fn configured_c() -> Registry {
    let reg = Registry::new(1);
    let start = Reconfiguration {
        register: vec![("/c".into(), addr(1))],
        release: Vec::new(),
        routes: vec![("/c".into(), RouteOptions::default())],
    };
    reg.reconfigure(&start).expect("a valid prefix and target");
    reg
}

/// The reload whose file no longer names "/c".
fn drop_c() -> Reconfiguration {
    Reconfiguration {
        register: Vec::new(),
        release: vec![("/c".into(), addr(1))],
        routes: Vec::new(),
    }
}

/// A reload that stops naming a prefix keeps it while the API holds it; when the API's hold
/// came from a registration that is then undone, nobody wants the prefix any more and it goes,
/// as the reload would have removed it without that registration.
#[test]
fn an_undone_registration_removes_a_prefix_the_configuration_dropped_meanwhile() {
    let reg = configured_c();
    let (_, undo) = reg.register_undoable("/c", addr(2)).unwrap();
    let done = reg.reconfigure(&drop_c()).unwrap();
    assert_eq!(
        done.routes_removed,
        Vec::<String>::new(),
        "the API holds it"
    );
    assert_eq!(route(&reg, "/c"), (vec![2], vec![]));
    reg.undo(undo);
    assert_eq!(held_by_api(&reg, "/c"), None, "gone");
    assert!(reg.snapshot().lookup("/c/x").is_none());
}

/// A deregistration of a target the configuration alone held, undone after a reload dropped the
/// prefix (and with it the route), brings back neither: the reload withdrew them.
#[test]
fn an_undone_deregistration_after_the_prefix_left_brings_nothing_back() {
    let reg = configured_c();
    let undo = reg.deregister_undoable("/c", addr(1)).unwrap().unwrap();
    assert_eq!(route(&reg, "/c"), (vec![], vec![]), "named: it stays");
    assert_eq!(reg.reconfigure(&drop_c()).unwrap().routes_removed, ["/c"]);
    let generation = reg.generation();
    reg.undo(undo);
    assert_eq!(held_by_api(&reg, "/c"), None);
    assert_eq!(reg.generation(), generation, "nothing to publish");
}
