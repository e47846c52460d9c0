//! A control-plane change is saved before it is applied (`Registry::apply_saved`): one that
//! cannot be saved never happens. The registry stays exactly as it was: the same holders for
//! every target (configuration, API or both), the same round-robin order, counts and health,
//! and which prefixes the API holds (what a state file keeps); and nothing is published.

use lb_registry::{
    Deregistration, Export, Holder, Reconfiguration, Refused, Registered, Registration, Registry,
    RouteOptions, Terms,
};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

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

/// A save that fails, as a full disk makes it.
fn disk_full(_: &Export) -> Result<(), &'static str> {
    Err("disk full")
}

/// A save that must not be asked for: the change changes nothing.
fn no_save(_: &Export) -> Result<(), &'static str> {
    panic!("nothing changed, so nothing is saved")
}

fn deregistration(port: u16) -> Deregistration<'static> {
    Deregistration {
        path: "/a",
        addr: addr(port),
    }
}

/// "/a" -> [1 (configuration and API), 2 (configuration), 3 (API)].
fn mixed() -> Registry {
    let reg = Registry::new(1);
    let valid = "a valid prefix and target";
    reg.register_as("/a", addr(1), Holder::Config).expect(valid);
    reg.register("/a", addr(1)).expect(valid);
    reg.register_as("/a", addr(2), Holder::Config).expect(valid);
    reg.register("/a", addr(3)).expect(valid);
    reg
}

#[test]
fn a_deregistration_that_cannot_be_saved_leaves_the_target_its_holders_and_its_place() {
    let reg = mixed();
    let snapshot = reg.snapshot();
    snapshot.lookup("/a").unwrap().route.targets()[0].record_request(0);
    reg.mark_down_at(addr(2), Instant::now());
    let before = reg.targets();
    let generation = reg.generation();
    for port in [1, 2, 3] {
        let (removed, would_be) = reg.plan(&deregistration(port)).unwrap();
        assert!(removed, "registered, so it would be removed");
        let saved_ports: Vec<u16> = would_be.routes[0]
            .targets
            .iter()
            .map(|t| t.addr().port())
            .collect();
        assert!(!saved_ports.contains(&port), "the file would not hold it");
        assert_eq!(
            reg.apply_saved(&deregistration(port), disk_full),
            Err(Refused::NotSaved("disk full"))
        );
        assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![2]), "after {port}");
    }
    assert_eq!(reg.generation(), generation, "nothing was published");
    assert_eq!(reg.targets(), before, "same counts and health");
    assert_eq!(
        reg.snapshot().lookup("/a").unwrap().route.targets().len(),
        2,
        "2 is still down"
    );

    // 1 is held by both: the API withdrawing leaves it to the configuration.
    assert_eq!(reg.release("/a", addr(1), Holder::Api), Ok(false));
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![1, 2]));
    // 2 is the configuration's alone: a reload that drops it removes it.
    assert_eq!(reg.release("/a", addr(2), Holder::Config), Ok(true));
    // 3 is the API's alone.
    assert_eq!(reg.release("/a", addr(3), Holder::Config), Ok(false));
    assert_eq!(reg.release("/a", addr(3), Holder::Api), Ok(true));
    assert_eq!(route(&reg, "/a"), (vec![1], vec![1]));
    assert_eq!(reg.apply_saved(&deregistration(9), no_save), Ok(false));
}

#[test]
fn a_registration_that_cannot_be_saved_adds_no_claim() {
    let reg = mixed();
    let adopt = Registration::api("/a", addr(2), Terms::default(), SystemTime::now());
    assert_eq!(reg.plan(&adopt).unwrap().0, Registered::Adopted);
    assert_eq!(
        reg.apply_saved(&adopt, disk_full),
        Err(Refused::NotSaved("disk full"))
    );
    assert_eq!(
        route(&reg, "/a"),
        (vec![1, 2, 3], vec![2]),
        "configured only"
    );

    let new = Registration::api("/a", addr(4), Terms::default(), SystemTime::now());
    assert_eq!(reg.plan(&new).unwrap().0, Registered::New);
    assert!(reg.apply_saved(&new, disk_full).is_err());
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![2]), "4 never came");

    let existing = Registration::api("/a", addr(3), Terms::default(), SystemTime::now());
    assert_eq!(
        reg.apply_saved(&existing, no_save),
        Ok(Registered::Existing)
    );
    assert_eq!(
        route(&reg, "/a"),
        (vec![1, 2, 3], vec![2]),
        "nothing to save"
    );
}

#[test]
fn a_registration_that_cannot_be_saved_leaves_no_prefix_behind() {
    let reg = Registry::new(1);
    reg.register_as("/c", addr(1), Holder::Config).unwrap();
    assert_eq!(held_by_api(&reg, "/c"), Some(false));

    let claim = Registration::api("/c", addr(2), Terms::default(), SystemTime::now());
    let (_, would_be) = reg.plan(&claim).unwrap();
    let saved: Vec<&str> = would_be.routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(saved, ["/c"], "the file would hold /c as the API's");
    assert!(reg.apply_saved(&claim, disk_full).is_err());
    assert_eq!(
        held_by_api(&reg, "/c"),
        Some(false),
        "still the configuration's alone"
    );

    assert!(reg
        .apply_saved(
            &Registration::api("/new", addr(3), Terms::default(), SystemTime::now()),
            disk_full
        )
        .is_err());
    assert_eq!(held_by_api(&reg, "/new"), None, "no route was created");
    assert!(
        reg.snapshot().lookup("/new/x").is_none(),
        "no empty route answering 503"
    );
}

/// A reload after a change that could not be saved finds the registry as it was before it: a
/// target the reload names again keeps its place.
#[test]
fn a_reload_after_a_refused_change_sees_the_registry_as_it_was() {
    let reg = mixed();
    assert!(reg.apply_saved(&deregistration(2), disk_full).is_err());
    assert_eq!(
        reg.register_as("/a", addr(2), Holder::Config),
        Ok(Registered::Existing)
    );
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3], vec![2]));

    assert!(reg
        .apply_saved(
            &Registration::api("/b", addr(5), Terms::default(), SystemTime::now()),
            disk_full
        )
        .is_err());
    reg.register_as("/b", addr(6), Holder::Config).unwrap();
    assert_eq!(route(&reg, "/b"), (vec![6], vec![6]));
    assert_eq!(held_by_api(&reg, "/b"), Some(false));
}

/// A registry whose configuration names "/c" -> [1].
fn configured_c() -> Registry {
    let reg = Registry::new(1);
    let start = Reconfiguration {
        weights: Vec::new(),
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
        weights: Vec::new(),
        register: Vec::new(),
        release: vec![("/c".into(), addr(1))],
        routes: Vec::new(),
    }
}

/// A reload that stops naming a prefix keeps it while the API holds it; a registration that
/// could not be saved gave the API no hold, so the prefix goes with the reload.
#[test]
fn a_refused_registration_does_not_keep_a_prefix_the_configuration_drops() {
    let reg = configured_c();
    assert!(reg
        .apply_saved(
            &Registration::api("/c", addr(2), Terms::default(), SystemTime::now()),
            disk_full
        )
        .is_err());
    let done = reg.reconfigure(&drop_c()).unwrap();
    assert_eq!(done.routes_removed, ["/c"], "the API does not hold it");
    assert_eq!(held_by_api(&reg, "/c"), None, "gone");
    assert!(reg.snapshot().lookup("/c/x").is_none());
}

/// A deregistration of a target the configuration alone held, refused, leaves it to the
/// configuration: a reload that drops the prefix removes both, and nothing comes back.
#[test]
fn a_refused_deregistration_leaves_the_target_to_the_configuration() {
    let reg = configured_c();
    let generation = reg.generation();
    let refused = reg.apply_saved(
        &Deregistration {
            path: "/c",
            addr: addr(1),
        },
        disk_full,
    );
    assert!(refused.is_err());
    assert_eq!(route(&reg, "/c"), (vec![1], vec![1]), "still configured");
    assert_eq!(reg.generation(), generation, "nothing to publish");
    assert_eq!(reg.reconfigure(&drop_c()).unwrap().routes_removed, ["/c"]);
    assert_eq!(held_by_api(&reg, "/c"), None);
}

/// The save sees what the change will make, and the registry does not have it yet.
#[test]
fn the_change_is_saved_before_it_is_applied() {
    let reg = mixed();
    let saved = std::cell::RefCell::new(Vec::new());
    let outcome = reg.apply_saved(
        &Registration::api("/a", addr(4), Terms::default(), SystemTime::now()),
        |export| {
            let ports: Vec<u16> = export.routes[0]
                .targets
                .iter()
                .map(|t| t.addr().port())
                .collect();
            saved.borrow_mut().push(ports);
            assert_eq!(route(&reg, "/a").0, [1, 2, 3], "not applied yet");
            Ok::<(), &str>(())
        },
    );
    assert_eq!(outcome, Ok(Registered::New));
    assert_eq!(
        *saved.borrow(),
        [vec![1, 3, 4]],
        "the API's targets, 4 last"
    );
    assert_eq!(route(&reg, "/a"), (vec![1, 2, 3, 4], vec![2]));
}

/// One change at a time: a change arriving while another is being saved waits, and applies
/// after it; a health write does not wait (a worker's failed connect never waits for a disk).
#[test]
fn a_change_waits_for_the_one_being_saved_and_health_does_not() {
    let reg = mixed();
    std::thread::scope(|scope| {
        let outcome = reg.apply_saved(
            &Registration::api("/a", addr(4), Terms::default(), SystemTime::now()),
            |_| {
                scope.spawn(|| reg.register("/a", addr(5)));
                std::thread::sleep(std::time::Duration::from_millis(50));
                assert_eq!(route(&reg, "/a").0, [1, 2, 3], "5 waits for 4");
                assert!(reg.mark_down_at(addr(3), Instant::now()), "health goes on");
                Ok::<(), &str>(())
            },
        );
        assert_eq!(outcome, Ok(Registered::New));
    });
    assert_eq!(route(&reg, "/a").0, [1, 2, 3, 4, 5], "4, then 5");
}
