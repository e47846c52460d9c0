//! The registry's export as JSON: the shapes older lbs wrote (a state file, the routes of an
//! upgrade manifest of version 2 and of version 1) still read, what this lb writes is byte for
//! byte what they wrote, and another version or an unknown field is refused.

use lb_registry::{Export, ExportedRoute, Holder, ListedRoute, Registry, Scope};
use std::net::SocketAddr;
use std::time::Instant;

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
            vec![
                route("/a", &[1, 2], &[], true),
                route("/gone", &[], &[], true),
            ],
            1,
        ),
        (
            &carried_2,
            manifest_2,
            vec![
                route("/a", &[1, 2], &[2], true),
                route("/emptied", &[], &[], false),
            ],
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
                route("/e", &[], &[], true),
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
