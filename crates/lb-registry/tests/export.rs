//! The registry's export (`Registry::export`, installed by an `Import`): the next process
//! continues the round-robin order, counts and health of the old one, and which prefixes the API
//! holds; the shapes older lbs wrote (a state file, the routes of an upgrade manifest of version
//! 2 and of version 1) still read, what this lb writes is byte for byte what they wrote, and
//! another version or an unknown field is refused.

use lb_registry::{
    CheckOutcome, Export, ExportedRoute, ExportedTarget, HealthPolicy, Holder, ListedRoute,
    Registry, Scope,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn picks(registry: &Registry, path: &str, n: usize) -> Vec<u16> {
    let snapshot = registry.snapshot();
    let route = snapshot.lookup(path).expect("route").route;
    (0..n)
        .map(|_| route.pick().expect("a target").addr().port())
        .collect()
}

/// A registry with "/a" -> [1, 2, 3] after four picks, target 2 down by its probes, target 3
/// in a passive back-off.
fn old_registry(t0: Instant) -> Registry {
    let old = Registry::with_policy(
        2,
        HealthPolicy {
            rise: 2,
            fall: 1,
            backoff: Duration::from_secs(10),
        },
    );
    for port in [1, 2, 3] {
        old.register("/a", addr(port)).expect("a valid target");
    }
    assert_eq!(picks(&old, "/a", 4), [1, 2, 3, 1]);
    for target in old.snapshot().lookup("/a").expect("route").route.targets() {
        target.record_request(1);
        target.record_response(1, 200);
    }
    old.record_check("/a", addr(2), CheckOutcome::status(503));
    old.mark_down_at(addr(3), t0);
    old
}

#[test]
fn the_next_process_continues_the_order_counts_and_health() {
    let t0 = Instant::now();
    let old = old_registry(t0);
    let carried = old.export(Scope::Carried(t0 + Duration::from_secs(4)));
    assert_eq!(carried.routes.len(), 1);
    assert_eq!(carried.routes[0].next_pick, Some(4));
    // Through the wire format, as an upgrade sends it.
    let json = serde_json::to_vec(&carried).unwrap();
    let carried: Export = serde_json::from_slice(&json).unwrap();

    let t1 = t0 + Duration::from_secs(1_000);
    let new = Registry::with_policy(3, old.policy());
    new.import(carried, t1, |_| true).unwrap();
    assert_eq!(new.routes(), old.routes(), "same routes and order");
    let (mut was, now) = (old.targets(), new.targets());
    // A check's time stays with the process that ran it: the manifest carries its result only
    // (a new field would be refused by an older lb taking over).
    assert!(was.iter().any(|t| t.last_check_at.is_some()));
    assert!(now.iter().all(|t| t.last_check_at.is_none()));
    for t in &mut was {
        t.last_check_at = None;
    }
    assert_eq!(now, was, "same counts, health and last checks");
    assert_eq!(
        now.iter().map(|t| t.requests).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert!(now.iter().all(|t| t.responses == [0, 1, 0, 0, 0]));
    // Only 1 is healthy; pick 4 of the old order continues on the healthy list.
    assert_eq!(
        new.snapshot().lookup("/a").unwrap().route.targets().len(),
        1
    );
    // The back-off has its 6 s left from the import on.
    assert_eq!(new.revive_due(t1 + Duration::from_millis(5_999)), 0);
    assert_eq!(new.revive_due(t1 + Duration::from_secs(6)), 1);
    assert_eq!(
        picks(&new, "/a", 4),
        [1, 3, 1, 3],
        "picks 4, 5, 6, 7 of [1, 3]"
    );
    // Target 2 comes back when this process's probes say so (rise 2).
    new.record_check("/a", addr(2), CheckOutcome::status(200));
    assert_eq!(
        new.record_check("/a", addr(2), CheckOutcome::status(200)),
        Some(true)
    );
    assert_eq!(
        picks(&new, "/a", 3),
        [3, 1, 2],
        "picks 8, 9, 10 of [1, 2, 3]"
    );
}

#[test]
fn all_healthy_targets_continue_at_the_next_position() {
    let old = Registry::new(1);
    for port in [1, 2, 3] {
        old.register("/", addr(port)).unwrap();
    }
    assert_eq!(picks(&old, "/", 4), [1, 2, 3, 1]);
    let new = Registry::new(1);
    new.import(
        old.export(Scope::Carried(Instant::now())),
        Instant::now(),
        |_| false,
    )
    .unwrap();
    assert_eq!(picks(&new, "/", 3), [2, 3, 1]);
}

#[test]
fn an_unprobed_route_drops_the_active_state_but_keeps_the_back_off() {
    let t0 = Instant::now();
    let old = old_registry(t0);
    let new = Registry::new(1);
    new.import(old.export(Scope::Carried(t0)), t0, |prefix| prefix != "/a")
        .unwrap();
    let healthy: Vec<_> = new.targets().iter().map(|t| t.healthy).collect();
    assert_eq!(healthy, [true, true, false], "2 is up, 3 still backs off");
    assert!(new.targets().iter().all(|t| t.last_check.is_none()));
    assert_eq!(new.revive_due(t0 + Duration::from_secs(10)), 1);
}

/// Which prefixes the API holds goes across, so that the new process's state file saves the
/// same ones; it is written out only where the targets do not tell.
#[test]
fn which_prefixes_the_api_holds_goes_across() {
    let old = Registry::new(1);
    old.register("/api", addr(1)).unwrap();
    old.register_as("/config", addr(2), Holder::Config).unwrap();
    old.register_as("/emptied", addr(3), Holder::Config)
        .unwrap();
    old.release("/emptied", addr(3), Holder::Config).unwrap();
    old.register_as("/was-api", addr(4), Holder::Config)
        .unwrap();
    old.register("/was-api", addr(5)).unwrap();
    old.deregister("/was-api", addr(5)).unwrap();
    let carried = old.export(Scope::Carried(Instant::now()));
    let sent: Vec<_> = carried
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.held_by_api))
        .collect();
    assert_eq!(
        sent,
        [
            ("/api", None),
            ("/config", None),
            ("/emptied", Some(false)),
            ("/was-api", None),
        ]
    );
    let new = Registry::new(1);
    new.import(carried, Instant::now(), |_| false).unwrap();
    let mut kept = old.routes();
    kept.retain(|r| r.path != "/emptied");
    assert_eq!(
        new.routes(),
        kept,
        "an empty prefix only the old configuration named comes back only if this one names it"
    );
    let held: Vec<_> = new.routes().iter().map(|r| r.held_by_api).collect();
    assert_eq!(held, [true, false, false]);
}

#[test]
fn an_invalid_import_changes_nothing_and_existing_targets_keep_their_state() {
    let new = Registry::new(1);
    new.register("/a", addr(1)).unwrap();
    let mut bad = old_registry(Instant::now()).export(Scope::Carried(Instant::now()));
    bad.routes[0].targets[1] = ExportedTarget::Address(SocketAddr::from(([0, 0, 0, 0], 80)));
    assert!(new.import(bad, Instant::now(), |_| true).is_err());
    let bad_path = Export {
        routes: vec![ExportedRoute {
            host: None,
            path: "no-slash".to_string(),
            next_pick: Some(0),
            targets: Vec::new(),
            held_by_api: None,
        }],
    };
    assert!(new.import(bad_path, Instant::now(), |_| true).is_err());
    assert_eq!(new.routes().len(), 1);
    assert_eq!(new.targets()[0].requests, 0);

    let good = old_registry(Instant::now()).export(Scope::Carried(Instant::now()));
    new.import(good, Instant::now(), |_| true).unwrap();
    let now = new.targets();
    assert_eq!(now[0].requests, 0, "already registered: kept as it was");
    assert!(now[0].healthy);
    assert_eq!(now[1].addr, addr(2));
    assert_eq!(now[1].requests, 1);
}

/// `(path, targets, those only the configuration holds, held by the API)` of each route.
type Summary = Vec<(String, Vec<u16>, Vec<u16>, bool)>;

fn summary(registry: &Registry) -> Summary {
    let ports = |addrs: &[SocketAddr]| addrs.iter().map(SocketAddr::port).collect();
    registry
        .routes()
        .iter()
        .map(|r| {
            let (targets, config) = (ports(&r.targets), ports(&r.config_only));
            (r.path.clone(), targets, config, r.held_by_api)
        })
        .collect()
}

const HEALTHY: &str = r#"{"active_up":true,"streak":0,"backoff_left":null,"last_check":null}"#;

/// Today's shapes, as lb wrote them before the export was one type, still read: a state
/// file, and the routes of an upgrade manifest of version 2 and of version 1. Each row: the
/// JSON, how it is read, what the registry then holds, and the next pick on "/a".
#[test]
fn older_shapes_still_read() {
    type Read = fn(&str) -> Export;
    let state_file: Read = |json| serde_json::from_str(json).unwrap();
    let manifest_2: Read = |json| Export {
        routes: serde_json::from_str(json).unwrap(),
    };
    let manifest_1: Read = |json| Export {
        routes: serde_json::from_str::<Vec<ListedRoute>>(json)
            .unwrap()
            .into_iter()
            .map(ExportedRoute::from)
            .collect(),
    };
    let route = |path: &str, targets: &[u16], config: &[u16], held| {
        (path.to_string(), targets.to_vec(), config.to_vec(), held)
    };
    let carried_2 = format!(
        r#"[{{"path":"/a","next_pick":4,"targets":[
            {{"addr":"10.0.0.1:1","requests":3,"responses":[0,3,0,0,0],"health":{HEALTHY}}},
            {{"addr":"10.0.0.1:2","requests":1,"responses":[0,0,0,0,1],"health":{HEALTHY},"config_only":true}}]}},
           {{"path":"/emptied","next_pick":0,"targets":[],"held_by_api":false}}]"#
    );
    let table: [(&str, Read, Summary, u16); 3] = [
        (
            r#"{"version":1,"routes":[{"path":"/a","targets":["10.0.0.1:1","10.0.0.1:2"]},
               {"path":"/gone","targets":[]}]}"#,
            state_file,
            vec![route("/a", &[1, 2], &[], true)],
            1,
        ),
        (
            &carried_2,
            manifest_2,
            vec![route("/a", &[1, 2], &[2], true)],
            1,
        ),
        (
            r#"[{"path":"/a","targets":["10.0.0.1:1","10.0.0.1:2"],"config_only":["10.0.0.1:2"]},
                {"path":"/c","targets":["10.0.0.1:3"],"config_only":["10.0.0.1:3"]},
                {"path":"/e","targets":[]}]"#,
            manifest_1,
            vec![
                route("/a", &[1, 2], &[2], true),
                route("/c", &[3], &[3], false),
            ],
            1,
        ),
    ];
    for (json, read, want, next) in table {
        let registry = Registry::new(1);
        registry
            .import(read(json), Instant::now(), |_| true)
            .unwrap();
        assert_eq!(summary(&registry), want, "{json}");
        assert_eq!(picks(&registry, "/a", 1), [next], "{json}");
    }
    // Version 2 carries the counts and the position (4 mod 2 is target 1).
    let registry = Registry::new(1);
    registry
        .import(manifest_2(&carried_2), Instant::now(), |_| true)
        .unwrap();
    let requests: Vec<u64> = registry.targets().iter().map(|t| t.requests).collect();
    assert_eq!(requests, [3, 1]);
}

/// What this lb writes is what lb always wrote: a state file byte for byte, and the routes
/// of a version 2 manifest, which an older lb reads.
#[test]
fn the_written_shapes_are_unchanged() {
    let registry = Registry::new(1);
    registry.register_as("/a", addr(1), Holder::Config).unwrap();
    registry.register("/a", addr(2)).unwrap();
    registry.register_as("/c", addr(3), Holder::Config).unwrap();
    let saved = serde_json::to_string(&registry.export(Scope::Saved)).unwrap();
    assert_eq!(
        saved,
        r#"{"version":1,"routes":[{"path":"/a","targets":["10.0.0.1:2"]}]}"#
    );
    let carried = registry.export(Scope::Carried(Instant::now()));
    let routes = serde_json::to_string(&carried.routes).unwrap();
    let zero = "[0,0,0,0,0]";
    assert_eq!(
        routes,
        format!(
            r#"[{{"path":"/a","next_pick":0,"targets":[{{"addr":"10.0.0.1:1","requests":0,"responses":{zero},"health":{HEALTHY},"config_only":true}},{{"addr":"10.0.0.1:2","requests":0,"responses":{zero},"health":{HEALTHY}}}]}},{{"path":"/c","next_pick":0,"targets":[{{"addr":"10.0.0.1:3","requests":0,"responses":{zero},"health":{HEALTHY},"config_only":true}}]}}]"#
        )
    );
    let listed: Vec<ListedRoute> = carried.routes.iter().map(ListedRoute::from).collect();
    assert_eq!(
        serde_json::to_string(&listed).unwrap(),
        r#"[{"path":"/a","targets":["10.0.0.1:1","10.0.0.1:2"],"config_only":["10.0.0.1:1"]},{"path":"/c","targets":["10.0.0.1:3"],"config_only":["10.0.0.1:3"]}]"#
    );
}

#[test]
fn an_export_of_another_version_or_with_unknown_fields_is_refused() {
    for (json, why) in [
        (r#"{"version":2,"routes":[]}"#, "version 2 is not supported"),
        (
            r#"{"version":1,"routes":[],"extra":1}"#,
            "unknown field `extra`",
        ),
        (r#"{"routes":[]}"#, "missing field `version`"),
        (
            r#"{"version":1,"routes":[{"path":"/a","targets":["10.0.0.1"]}]}"#,
            "did not match",
        ),
    ] {
        let error = serde_json::from_str::<Export>(json)
            .unwrap_err()
            .to_string();
        assert!(error.contains(why), "{json}: {error}");
    }
}
