//! Routing table behaviour: longest prefix on a segment boundary, prefix stripping, exact
//! round-robin order across threads, and cursor continuity across target changes.

use lb_registry::{
    normalize_prefix, Reconfiguration, Registered, Registry, RegistryError, RouteOptions,
    SnapshotCache,
};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::sync::Arc;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Route `target` through `reg` and return (prefix, forwarded target).
fn route(reg: &Registry, target: &str) -> Option<(String, String)> {
    let snap = reg.snapshot();
    snap.lookup(target).map(|m| {
        (
            m.route.prefix().to_string(),
            format!("{}{}", m.lead(), m.rest),
        )
    })
}

#[test]
fn segment_boundary_and_stripping() {
    let reg = Registry::new(1);
    reg.register("/test", addr(1)).unwrap();
    let r = |t| route(&reg, t);
    assert_eq!(r("/test"), Some(("/test".into(), "/".into())));
    assert_eq!(r("/test/"), Some(("/test".into(), "/".into())));
    assert_eq!(r("/test/x"), Some(("/test".into(), "/x".into())));
    assert_eq!(r("/test/foo"), Some(("/test".into(), "/foo".into())));
    assert_eq!(r("/test?q=1"), Some(("/test".into(), "/?q=1".into())));
    assert_eq!(
        r("/test/x?q=/a/b"),
        Some(("/test".into(), "/x?q=/a/b".into()))
    );
    assert_eq!(r("/test2"), None);
    assert_eq!(r("/tes"), None);
    assert_eq!(r("/"), None);
}

#[test]
fn root_catches_the_rest_unchanged() {
    let reg = Registry::new(1);
    reg.register("/", addr(1)).unwrap();
    reg.register("/test", addr(2)).unwrap();
    assert_eq!(route(&reg, "/test2"), Some(("/".into(), "/test2".into())));
    assert_eq!(route(&reg, "/"), Some(("/".into(), "/".into())));
    assert_eq!(route(&reg, "/a/b?c"), Some(("/".into(), "/a/b?c".into())));
    assert_eq!(route(&reg, "*"), Some(("/".into(), "*".into())));
    assert_eq!(route(&reg, "/test/a"), Some(("/test".into(), "/a".into())));
}

#[test]
fn longest_prefix_wins() {
    let reg = Registry::new(1);
    reg.register("/a", addr(1)).unwrap();
    reg.register("/a/b", addr(2)).unwrap();
    reg.register("/a/b/c/d", addr(3)).unwrap();
    assert_eq!(route(&reg, "/a/b/x"), Some(("/a/b".into(), "/x".into())));
    assert_eq!(route(&reg, "/a/b"), Some(("/a/b".into(), "/".into())));
    assert_eq!(route(&reg, "/a/bc"), Some(("/a".into(), "/bc".into())));
    assert_eq!(route(&reg, "/a/b/c"), Some(("/a/b".into(), "/c".into())));
    assert_eq!(
        route(&reg, "/a/b/c/d/e/f"),
        Some(("/a/b/c/d".into(), "/e/f".into()))
    );
}

#[test]
fn prefixes_are_normalized_and_validated() {
    assert_eq!(normalize_prefix("/test/").unwrap(), "/test");
    assert_eq!(normalize_prefix("/").unwrap(), "/");
    assert_eq!(normalize_prefix("//").unwrap(), "/");
    for bad in ["", "test", "/a?b", "/a#b", "/a b", "/a\tb", "/a\u{7f}"] {
        assert!(
            matches!(normalize_prefix(bad), Err(RegistryError::InvalidPath(_))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn register_is_idempotent_and_validated() {
    let reg = Registry::new(1);
    assert_eq!(reg.register("/x/", addr(1)), Ok(Registered::New));
    assert_eq!(reg.register("/x", addr(1)), Ok(Registered::Existing));
    assert!(reg.register("/x", addr(0)).is_err());
    assert!(reg.register("/x", "0.0.0.0:80".parse().unwrap()).is_err());
    assert_eq!(reg.targets().len(), 1);
    assert_eq!(reg.deregister("/x", addr(2)), Ok(false));
    assert_eq!(reg.deregister("/y", addr(1)), Ok(false));
    assert_eq!(reg.deregister("/x/", addr(1)), Ok(true));
    assert!(reg.targets().is_empty());
}

/// Each row: whether the configuration names "/api", the prefix that "/api/x" then matches once
/// its last target is deregistered, and whether that route has a target. A prefix only the API
/// created leaves with its last target (requests fall through); a configured one answers 503.
#[test]
fn an_emptied_route_falls_through_unless_the_configuration_names_it() {
    let table = [(false, "/", true), (true, "/api", false)];
    for (configured, prefix, has_target) in table {
        let reg = Registry::new(1);
        reg.register("/", addr(1)).unwrap();
        if configured {
            reg.reconfigure(&Reconfiguration {
                routes: vec![("/api".into(), RouteOptions::default())],
                ..Reconfiguration::default()
            })
            .unwrap();
        }
        reg.register("/api", addr(2)).unwrap();
        reg.deregister("/api", addr(2)).unwrap();
        let snap = reg.snapshot();
        let m = snap.lookup("/api/x").unwrap();
        assert_eq!(m.route.prefix(), prefix, "configured: {configured}");
        assert_eq!(
            m.route.pick().is_some(),
            has_target,
            "configured: {configured}"
        );
    }
}

#[test]
fn generation_moves_only_on_change_and_cache_follows() {
    let reg = Arc::new(Registry::new(1));
    let mut cache = SnapshotCache::new(reg.clone());
    let g0 = reg.generation();
    assert!(cache.current().lookup("/a").is_none());
    reg.register("/a", addr(1)).unwrap();
    assert_eq!(reg.generation(), g0 + 1);
    reg.register("/a", addr(1)).unwrap();
    assert_eq!(
        reg.generation(),
        g0 + 1,
        "no-op registration must not publish"
    );
    assert!(cache.current().lookup("/a").is_some());
    reg.deregister("/a", addr(9)).unwrap();
    assert_eq!(reg.generation(), g0 + 1);
}

#[test]
fn cursor_survives_target_changes() {
    let reg = Registry::new(1);
    reg.register("/", addr(1)).unwrap();
    reg.register("/", addr(2)).unwrap();
    let pick = |reg: &Registry| {
        let snap = reg.snapshot();
        let m = snap.lookup("/").unwrap();
        m.route.pick().unwrap().addr().port()
    };
    assert_eq!(pick(&reg), 1); // pick 0
    assert_eq!(pick(&reg), 2); // pick 1
    assert_eq!(pick(&reg), 1); // pick 2
    assert_eq!(pick(&reg), 2); // pick 3
    reg.register("/", addr(3)).unwrap();
    // The counter goes on at 4: 4 mod 3 = 1 -> port 2, where a reset would give port 1.
    assert_eq!(pick(&reg), 2); // pick 4
    assert_eq!(pick(&reg), 3); // pick 5
    reg.deregister("/", addr(1)).unwrap();
    // Targets are now [2, 3]: pick 6 -> 6 mod 2 = 0 -> port 2, pick 7 -> port 3.
    assert_eq!(pick(&reg), 2);
    assert_eq!(pick(&reg), 3);
}

/// Each row: the cursor start, the ports the first four picks of a 3-target route go to. A
/// route made before the start was set keeps counting from 0.
#[test]
fn a_cursor_start_offsets_new_routes_only() {
    let table = [(0, [1, 2, 3, 1]), (1, [2, 3, 1, 2]), (5, [3, 1, 2, 3])];
    for (start, ports) in table {
        let reg = Registry::new(1);
        reg.register("/before", addr(8)).unwrap();
        reg.register("/before", addr(9)).unwrap();
        reg.set_cursor_start(start);
        for p in 1..=3 {
            reg.register("/svc", addr(p)).unwrap();
        }
        let snap = reg.snapshot();
        let picks: Vec<u16> = (0..4)
            .map(|_| {
                snap.lookup("/svc")
                    .unwrap()
                    .route
                    .pick()
                    .unwrap()
                    .addr()
                    .port()
            })
            .collect();
        assert_eq!(picks, ports, "start {start}");
        let before = snap.lookup("/before").unwrap().route.pick().unwrap().addr();
        assert_eq!(before.port(), 8, "start {start}");
    }
}

#[test]
fn exact_round_robin_across_threads() {
    let reg = Arc::new(Registry::new(4));
    for p in 1..=3 {
        reg.register("/svc", addr(p)).unwrap();
    }
    const PER_THREAD: usize = 30_000;
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                let mut cache = SnapshotCache::new(reg);
                for _ in 0..PER_THREAD {
                    let snap = cache.current();
                    let m = snap.lookup("/svc/x").unwrap();
                    m.route.pick().unwrap().record_request(w);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counts: Vec<u64> = reg.targets().iter().map(|t| t.requests).collect();
    assert_eq!(counts, vec![40_000, 40_000, 40_000]);
}

proptest! {
    /// The router agrees with a naive model: the longest registered prefix p such that the path
    /// equals p or continues with `/` or `?` after it (root matches everything), with the prefix
    /// stripped and an empty rest turned into `/`.
    #[test]
    fn lookup_matches_naive_model(
        prefixes in proptest::collection::vec("(/[ab]{1,2}){1,3}|/", 0..6),
        path in "(/[ab]{0,2}){1,4}(\\?[ab/]{0,3})?",
    ) {
        let reg = Registry::new(1);
        for p in &prefixes {
            reg.register(p, addr(1)).unwrap();
        }
        let normalized: Vec<String> = prefixes.iter().map(|p| normalize_prefix(p).unwrap()).collect();
        let path_only = &path[..path.find('?').unwrap_or(path.len())];
        let expected = normalized
            .iter()
            .filter(|p| {
                p.as_str() == "/"
                    || (path_only.starts_with(p.as_str())
                        && matches!(path_only.as_bytes().get(p.len()), None | Some(b'/')))
            })
            .max_by_key(|p| if p.as_str() == "/" { 0 } else { p.len() })
            .map(|p| {
                if p == "/" {
                    (p.clone(), path.clone())
                } else {
                    let rest = &path[p.len()..];
                    let lead = if rest.starts_with('/') { "" } else { "/" };
                    (p.clone(), format!("{lead}{rest}"))
                }
            });
        prop_assert_eq!(route(&reg, &path), expected);
    }

    /// Picks are k mod n for any interleaving of single-threaded picks.
    #[test]
    fn picks_follow_k_mod_n(n in 1usize..8, picks in 1usize..100) {
        let reg = Registry::new(1);
        for p in 1..=n {
            reg.register("/", addr(p as u16)).unwrap();
        }
        let snap = reg.snapshot();
        let m = snap.lookup("/").unwrap();
        for k in 0..picks {
            prop_assert_eq!(m.route.pick().unwrap().addr().port() as usize, k % n + 1);
        }
    }
}

#[test]
fn a_route_that_does_not_strip_forwards_the_target_unchanged() {
    let reg = Registry::new(1);
    reg.register("/keep", addr(1)).unwrap();
    reg.register("/cut", addr(2)).unwrap();
    let keep = RouteOptions {
        strip_prefix: false,
        ..RouteOptions::default()
    };
    // Only the configuration sets route options: a reload naming the prefixes with theirs.
    let name = |options| {
        let routes = vec![
            ("/keep/".to_string(), options),
            ("/cut".to_string(), RouteOptions::default()),
        ];
        reg.reconfigure(&Reconfiguration {
            routes,
            ..Reconfiguration::default()
        })
        .unwrap();
    };
    let g = reg.generation();
    name(keep);
    assert_eq!(reg.generation(), g + 1);
    name(keep);
    assert_eq!(reg.generation(), g + 1, "no change, no publish");
    assert_eq!(
        route(&reg, "/keep/a?b"),
        Some(("/keep".into(), "/keep/a?b".into()))
    );
    assert_eq!(route(&reg, "/keep"), Some(("/keep".into(), "/keep".into())));
    assert_eq!(route(&reg, "/cut/a"), Some(("/cut".into(), "/a".into())));
    name(RouteOptions::default());
    assert_eq!(route(&reg, "/keep/a"), Some(("/keep".into(), "/a".into())));
}

#[test]
fn a_pick_slot_finds_its_target_again_in_the_pinned_snapshot() {
    let reg = Arc::new(Registry::new(1));
    reg.register("/a", addr(1)).unwrap();
    reg.register("/b", addr(2)).unwrap();
    reg.register("/b", addr(3)).unwrap();
    let mut cache = SnapshotCache::new(reg.clone());
    let pinned = cache.current().clone();
    let picks: Vec<_> = (0..4)
        .map(|_| {
            let (slot, target) = pinned.lookup("/b/x").unwrap().pick().unwrap();
            (slot, target.addr())
        })
        .collect();
    assert_eq!(
        picks.iter().map(|p| p.1.port()).collect::<Vec<_>>(),
        [2, 3, 2, 3]
    );
    // The registry moves on; the pinned snapshot still resolves each slot to its own target.
    reg.deregister("/b", addr(2)).unwrap();
    assert_eq!(
        cache.current().lookup("/b").unwrap().route.targets().len(),
        1
    );
    for (slot, addr) in picks {
        assert_eq!(pinned.target(slot).map(|t| t.addr()), Some(addr));
    }
    let (a, _) = pinned.lookup("/a").unwrap().pick().unwrap();
    assert_eq!(pinned.target(a).map(|t| t.addr()), Some(addr(1)));
}

#[test]
fn a_repick_takes_the_next_target_and_never_the_one_that_failed() {
    let reg = Registry::new(1);
    reg.register("/one", addr(1)).unwrap();
    for port in [2, 3, 4] {
        reg.register("/three", addr(port)).unwrap();
    }
    let snap = reg.snapshot();
    let (only, _) = snap.lookup("/one").unwrap().pick().unwrap();
    assert!(snap.repick(only).is_none(), "no other target to retry on");
    let three = snap.lookup("/three").unwrap();
    // Picks 0 (port 2); the retry takes the cursor's next, 1 (port 3).
    let (failed, t) = three.pick().unwrap();
    assert_eq!(t.addr(), addr(2));
    let (_, t) = snap.repick(failed).unwrap();
    assert_eq!(t.addr(), addr(3));
    // Pick 2 lands on port 4; picks 3 and 4 move the cursor so that pick 5 lands there again.
    let (failed, t) = three.pick().unwrap();
    assert_eq!(t.addr(), addr(4));
    three.pick().unwrap();
    three.pick().unwrap();
    // The cursor's next is index 2, the failed target itself: the one after it is taken.
    let (slot, t) = snap.repick(failed).unwrap();
    assert_eq!(t.addr(), addr(2));
    assert_eq!(snap.target(slot).map(|t| t.addr()), Some(addr(2)));
}
