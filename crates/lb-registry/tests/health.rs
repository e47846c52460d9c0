//! Health through the registry: a down target leaves the pick list of every route it serves, the
//! cursor goes on over the healthy ones, and revival / active checks bring it back.

use lb_registry::{CheckOutcome, HealthPolicy, Registry};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn picks(reg: &Registry, path: &str, n: usize) -> Vec<u16> {
    let snap = reg.snapshot();
    let m = snap.lookup(path).expect("route");
    (0..n)
        .map(|_| m.route.pick().map_or(0, |t| t.addr().port()))
        .collect()
}

fn policy() -> HealthPolicy {
    HealthPolicy {
        rise: 2,
        fall: 2,
        backoff: Duration::from_secs(5),
    }
}

#[test]
fn mark_down_leaves_every_route_and_comes_back_after_the_back_off() {
    let reg = Registry::with_policy(1, policy());
    for p in [1, 2, 3] {
        reg.register("/a", addr(p)).unwrap();
    }
    reg.register("/b", addr(2)).unwrap();
    let t0 = Instant::now();
    let generation = reg.generation();
    assert!(reg.mark_down_at(addr(2), t0));
    assert!(reg.generation() > generation, "a health change publishes");
    assert!(!reg.mark_down_at(addr(2), t0), "already down: no change");
    assert!(!reg.mark_down_at(addr(9), t0), "unknown address: no change");

    assert_eq!(picks(&reg, "/a", 4), vec![1, 3, 1, 3]);
    assert_eq!(
        picks(&reg, "/b", 1),
        vec![0],
        "no healthy target: no pick (503)"
    );
    let listed = reg.targets();
    assert_eq!(listed.len(), 4, "a down target stays listed");
    assert!(listed
        .iter()
        .filter(|t| t.addr == addr(2))
        .all(|t| !t.healthy));

    assert_eq!(reg.revive_due(t0 + Duration::from_millis(4_999)), 0);
    assert_eq!(reg.revive_due(t0 + Duration::from_secs(5)), 2);
    assert!(reg.targets().iter().all(|t| t.healthy));
    assert_eq!(picks(&reg, "/b", 1), vec![2]);
    assert_eq!(reg.revive_due(t0 + Duration::from_secs(60)), 0);
}

#[test]
fn the_cursor_goes_on_over_the_healthy_targets() {
    let reg = Registry::with_policy(1, policy());
    for p in [1, 2, 3, 4] {
        reg.register("/", addr(p)).unwrap();
    }
    // 8 picks, then target 4 goes down: k = 8.. continue as k mod 3 over [1, 2, 3].
    assert_eq!(picks(&reg, "/", 8), vec![1, 2, 3, 4, 1, 2, 3, 4]);
    reg.mark_down(addr(4));
    let got = picks(&reg, "/", 6);
    let counts = [1, 2, 3].map(|p| got.iter().filter(|&&x| x == p).count());
    assert_eq!(
        counts,
        [2, 2, 2],
        "exactly even over the healthy targets: {got:?}"
    );
}

#[test]
fn active_checks_use_rise_and_fall() {
    let reg = Registry::with_policy(1, policy());
    reg.register("/a", addr(1)).unwrap();
    reg.register("/a", addr(2)).unwrap();
    let fail = || CheckOutcome::failed("connection refused");
    assert_eq!(reg.record_check("/a", addr(1), fail()), None);
    assert_eq!(reg.record_check("/a", addr(1), fail()), Some(false));
    assert_eq!(picks(&reg, "/a", 3), vec![2, 2, 2]);
    let info = reg.targets();
    assert_eq!(info[0].last_check, Some(fail()));
    assert_eq!(
        reg.record_check("/a", addr(1), CheckOutcome::status(200)),
        None
    );
    assert_eq!(
        reg.record_check("/a", addr(1), CheckOutcome::status(204)),
        Some(true)
    );
    assert_eq!(
        reg.record_check("/a", addr(7), fail()),
        None,
        "unknown target"
    );
    assert_eq!(
        reg.record_check("/zz", addr(1), fail()),
        None,
        "unknown route"
    );
}

/// Down targets stay listed; a prefix only the API created leaves with its last target, so its
/// requests fall through to a shorter prefix.
#[test]
fn routes_lists_down_targets_and_an_emptied_api_prefix_leaves() {
    let reg = Registry::new(1);
    reg.register("/a", addr(1)).unwrap();
    reg.register("/a", addr(2)).unwrap();
    reg.register("/a/gone", addr(3)).unwrap();
    reg.deregister("/a/gone", addr(3)).unwrap();
    reg.mark_down(addr(1));
    let routes = reg.routes();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].path, "/a");
    assert_eq!(
        routes[0].targets,
        vec![addr(1), addr(2)],
        "down targets are kept"
    );
    let snap = reg.snapshot();
    let m = snap.lookup("/a/gone/x").expect("falls through to /a");
    assert_eq!(m.route.prefix(), "/a");
}
