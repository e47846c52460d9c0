//! Consistent hashing through the registry: a `hash` route's table is rebuilt with every
//! snapshot from the one it replaces, so a target that goes down moves only the keys it held,
//! and when it comes back it gets exactly those keys again.

use lb_registry::{
    Balance, HashKey, InitialConfiguration, MaxFails, Registry, RouteOptions, DEFAULT_RETRIES,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

const HASH: RouteOptions = RouteOptions {
    strip_prefix: true,
    connect_timeout: None,
    upstream_timeout: None,
    balance: Balance::Hash(HashKey::ClientIp),
    max_fails: MaxFails::DISABLED,
    retries: DEFAULT_RETRIES,
};

/// Where each of 5,000 keys goes on `/h` now.
fn placement(reg: &Registry) -> BTreeMap<String, u16> {
    let snap = reg.snapshot();
    let found = snap.lookup("/h").expect("route");
    (0..5_000)
        .map(|k| {
            let key = format!("user-{k}");
            let (_, target) = found.pick_keyed(Some(key.as_bytes())).expect("a target");
            (key, target.addr().port())
        })
        .collect()
}

#[test]
fn a_leaving_target_moves_only_its_keys_and_gets_them_back() {
    let reg = Registry::new(2);
    let ports: Vec<u16> = (9_000..9_007).collect();
    reg.apply(&InitialConfiguration {
        targets: ports.iter().map(|&p| ("/h".to_string(), addr(p))).collect(),
        routes: vec![("/h".to_string(), HASH)],
        weights: Vec::new(),
    })
    .expect("configuration");
    let full = placement(&reg);
    let leaver = ports[3];
    let now = Instant::now();
    assert!(reg.mark_down_at(addr(leaver), now), "the target goes down");
    let without = placement(&reg);
    let mut moved = 0;
    for (key, &was) in &full {
        let now = without[key];
        if was != now {
            assert_eq!(
                was, leaver,
                "{key} moved from {was} to {now}, not from the leaver"
            );
            moved += 1;
        }
        assert_ne!(now, leaver, "{key} still goes to the target that is down");
    }
    assert!(moved > 0, "the leaver's keys moved");
    let backoff = reg.policy().backoff;
    assert_eq!(reg.revive_due(now + backoff + Duration::from_millis(1)), 1);
    assert_eq!(
        placement(&reg),
        full,
        "back up, it has exactly its keys again"
    );
}
