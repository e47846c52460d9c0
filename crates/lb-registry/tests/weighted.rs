//! Smooth weighted round robin through the registry: the order of a route's picks from its
//! targets' weights, what a weight change does to it, and how health narrows it.
//!
//! What "a weight change does not reset the others' order" means, as tested here: the route's
//! cursor goes on counting (it is not set back to 0), every target keeps its position in the
//! route's list (re-registering with a new weight does not move it to the end), and the schedule
//! is rebuilt from the new weights; so pick k after the change goes to slot `k mod period` of
//! the new schedule, and every window of `sum(weights)` picks starting after the change is
//! exact for the new weights.

use lb_registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn register(reg: &Registry, port: u16, weight: u16) {
    reg.register_weighted("/w", addr(port), Some(weight))
        .expect("valid registration");
}

fn picks(reg: &Registry, n: usize) -> Vec<u16> {
    let snap = reg.snapshot();
    let m = snap.lookup("/w").expect("route");
    (0..n)
        .map(|_| m.route.pick().map_or(0, |t| t.addr().port()))
        .collect()
}

fn counts(picks: &[u16]) -> BTreeMap<u16, usize> {
    let mut c = BTreeMap::new();
    for &p in picks {
        *c.entry(p).or_insert(0) += 1;
    }
    c
}

#[test]
fn weights_five_one_one_give_nginx_order() {
    let reg = Registry::new(1);
    register(&reg, 1, 5);
    register(&reg, 2, 1);
    register(&reg, 3, 1);
    assert_eq!(picks(&reg, 14), [1, 1, 2, 1, 3, 1, 1, 1, 1, 2, 1, 3, 1, 1]);
}

#[test]
fn a_weight_change_continues_the_cursor_and_keeps_positions() {
    let reg = Registry::new(1);
    for port in [1, 2, 3] {
        register(&reg, port, 1);
    }
    assert_eq!(picks(&reg, 4), [1, 2, 3, 1]);
    let generation = reg.generation();
    register(&reg, 2, 3);
    assert!(reg.generation() > generation, "a new weight is published");
    let snap = reg.snapshot();
    let route = snap.lookup("/w").expect("route").route;
    let order: Vec<u16> = route.targets().iter().map(|t| t.addr().port()).collect();
    assert_eq!(
        order,
        [1, 2, 3],
        "the re-registered target keeps its position"
    );
    assert_eq!(route.period(), 5);
    // Weights 1,3,1 give the smooth period b a b c b; the cursor is at 4, not back at 0.
    assert_eq!(picks(&reg, 5), [2, 2, 1, 2, 3]);
    let after = picks(&reg, 5 * 20 + 3);
    for window in after.windows(5) {
        assert_eq!(counts(window), BTreeMap::from([(1, 1), (2, 3), (3, 1)]));
    }
    // Back to equal weights: plain k mod n, still from where the cursor is.
    let generation = reg.generation();
    register(&reg, 2, 1);
    assert!(reg.generation() > generation);
    let cursor_at = 4 + 5 + 5 * 20 + 3;
    let want: Vec<u16> = (cursor_at..cursor_at + 6)
        .map(|k| [1, 2, 3][k % 3])
        .collect();
    assert_eq!(picks(&reg, 6), want);
}

#[test]
fn re_registering_with_the_same_weight_publishes_nothing() {
    let reg = Registry::new(1);
    register(&reg, 1, 4);
    let generation = reg.generation();
    register(&reg, 1, 4);
    assert_eq!(reg.generation(), generation);
}

#[test]
fn the_schedule_is_exact_over_the_healthy_targets() {
    let reg = Registry::new(1);
    register(&reg, 1, 3);
    register(&reg, 2, 2);
    register(&reg, 3, 1);
    assert!(reg.mark_down_at(addr(2), Instant::now()));
    let seen = picks(&reg, 4 * 25 + 1);
    for window in seen.windows(4) {
        assert_eq!(counts(window), BTreeMap::from([(1, 3), (3, 1)]));
    }
}

/// 10,000 targets on one route, some weighted: registered, and every period is exact.
#[test]
fn ten_thousand_weighted_targets_stay_exact() {
    let reg = Registry::new(1);
    for port in 1..=10_000u16 {
        register(&reg, port, 1);
    }
    let weight = |port: usize| if port % 1000 == 0 { 3 } else { 1 };
    for port in (1000..=10_000u16).step_by(1000) {
        register(&reg, port, 3);
    }
    let snap = reg.snapshot();
    let route = snap.lookup("/w").expect("route").route;
    assert_eq!(route.targets().len(), 10_000);
    let period = route.period();
    assert_eq!(period, (1..=10_000).map(weight).sum::<usize>());
    let mut seen = vec![0usize; 10_001];
    for _ in 0..period {
        let port = route.pick().map_or(0, |t| t.addr().port());
        seen[usize::from(port)] += 1;
    }
    for (port, &n) in seen.iter().enumerate().skip(1) {
        assert_eq!(n, weight(port), "port {port}");
    }
}

/// Least connections through a snapshot: the fewest in flight wins, ties in round-robin order
/// from the cursor; a finished request counts no more.
#[test]
fn least_conn_picks_the_fewest_in_flight_ties_in_round_robin_order() {
    use lb_registry::{Balance, Reconfiguration, RouteOptions};
    let reg = Registry::new(1);
    for port in [1, 2, 3] {
        register(&reg, port, 1);
    }
    let options = RouteOptions {
        balance: Balance::LeastConn,
        ..RouteOptions::default()
    };
    reg.reconfigure(&Reconfiguration {
        routes: vec![("/w".to_string(), options)],
        ..Reconfiguration::default()
    })
    .expect("reconfigured");
    let snap = reg.snapshot();
    let route = snap.lookup("/w").expect("route").route;
    assert_eq!(route.options().balance, Balance::LeastConn);
    let port = |t: Option<&std::sync::Arc<lb_registry::Target>>| t.map_or(0, |t| t.addr().port());
    // All idle: the cursor's order.
    assert_eq!(
        [port(route.pick()), port(route.pick()), port(route.pick())],
        [1, 2, 3]
    );
    let busy = &route.targets()[0];
    busy.start_request();
    busy.start_request();
    route.targets()[1].start_request();
    // 1 has two, 2 has one, 3 none: 3 whatever the cursor says.
    assert_eq!([port(route.pick()), port(route.pick())], [3, 3]);
    route.targets()[2].start_request();
    route.targets()[2].start_request();
    assert_eq!(port(route.pick()), 2);
    busy.finish_request();
    busy.finish_request();
    assert_eq!(busy.in_flight(), 0);
    assert_eq!(port(route.pick()), 1);
}
