//! `GET /routes`, weights on `/register`, and what becomes of a prefix whose last target leaves
//! (SPEC part B "Control plane additions"; issue 10 "Control plane").

use crate::{bin, lb, served_by};
use lb_testkit::serde_json::{json, Value};
use lb_testkit::{get, Backend, LbProcess, ScratchDir};

/// The JSON body of `admin` `GET path`, which must be a 200.
fn get_json(lb: &LbProcess, path: &str) -> Value {
    let r = lb.admin().call("GET", path, b"");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The prefixes `GET /routes` lists, in order.
fn route_paths(lb: &LbProcess) -> Vec<String> {
    get_json(lb, "/routes")
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["path"].as_str().expect("a path").to_string())
        .collect()
}

/// Every prefix, the configured empty one included, with its options, and each target with its
/// weight and health, in the SPEC's shape and key order.
#[test]
fn get_routes_lists_every_prefix_with_its_options_and_targets() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dir = ScratchDir::new("routes-shape");
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = 1\npin = false\n\
             [[route]]\nprefix = \"/keep\"\nstrip_prefix = false\ntargets = [\"{}\"]\n",
            a.addr()
        ),
    )
    .expect("config written");
    let lb = LbProcess::start(bin(), &["run", "--config", file.to_str().expect("utf-8")]);
    let admin = lb.admin();
    admin.deregister_ok("/keep", a.addr());
    let weighted = json!({"path":"/api/","ip":"127.0.0.1","port":b.addr().port(),"weight":3});
    assert_eq!(admin.register_raw(&weighted.to_string()).status, 201);

    let r = admin.call("GET", "/routes", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let want = json!([
        {"host":null,"path":"/api","strip_prefix":true,"balance":"round_robin","hash_key":null,"max_fails":0,"retries":1,
         "targets":[{"ip":"127.0.0.1","port":b.addr().port(),"weight":3,"healthy":true}]},
        {"host":null,"path":"/keep","strip_prefix":false,"balance":"round_robin","hash_key":null,"max_fails":0,"retries":1,
         "targets":[]},
    ]);
    assert_eq!(r.json(), want);
    assert!(
        r.text()
            .starts_with(r#"[{"host":null,"path":"/api","strip_prefix":true,"balance""#),
        "keys in the SPEC's order: {}",
        r.text()
    );
    // `/targets` rows carry host and weight too.
    let row = &admin.targets()[0];
    assert_eq!((&row["host"], &row["weight"]), (&Value::Null, &json!(3)));
    // The configured, empty prefix answers 503 (it stays); the API's one is routed.
    assert_eq!(get(lb.addr(), "/keep/x").status, 503);
    assert_eq!(served_by(&get(lb.addr(), "/api/x")), "b");
}

/// A prefix only the control plane created leaves with its last target: its requests fall
/// through to the next shorter prefix, which gets them unchanged (`/` strips nothing).
#[test]
fn the_api_s_last_target_takes_its_prefix_along() {
    let (root, api) = (Backend::start("root"), Backend::start("api"));
    let lb = lb(1, &[("/", &[root.addr()])], &[]);
    let admin = lb.admin();
    admin.register_ok("/api", api.addr());
    assert_eq!(served_by(&get(lb.addr(), "/api/x")), "api");
    assert_eq!(route_paths(&lb), ["/", "/api"]);

    admin.deregister_ok("/api", api.addr());
    assert_eq!(route_paths(&lb), ["/"], "the emptied prefix is gone");
    assert_eq!(served_by(&get(lb.addr(), "/api/x")), "root");
    assert_eq!(root.last_request().target, "/api/x");
    assert_eq!(api.request_count(), 1);
}

/// A bad weight or ttl is a 400 naming the field, and changes nothing: not a new target, not
/// the stored weight of an existing one.
#[test]
fn a_bad_weight_or_ttl_is_400_naming_the_field_and_changes_nothing() {
    let a = Backend::start("a");
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    let port = a.addr().port();
    let body = |extra: &str| format!(r#"{{"path":"/a","ip":"127.0.0.1","port":{port}{extra}}}"#);
    assert_eq!(admin.register_raw(&body(r#","weight":7"#)).status, 201);
    let before = admin.targets();
    // Each row: the extra fields, the field the error must name.
    let table = [
        (r#","weight":0"#, "weight"),
        (r#","weight":1001"#, "weight"),
        (r#","weight":1.5"#, "weight"),
        (r#","weight":"2""#, "weight"),
        (r#","ttl":0"#, "ttl"),
        (r#","ttl":86401"#, "ttl"),
        (r#","ttl":"10s""#, "ttl"),
        (r#","ttl":[1]"#, "ttl"),
        (r#","weight":2,"ttl":-1"#, "ttl"),
    ];
    for (extra, field) in table {
        for path in ["/a", "/b"] {
            let sent = body(extra).replace("\"/a\"", &format!("\"{path}\""));
            let r = admin.register_raw(&sent);
            assert_eq!(r.status, 400, "{sent}: {}", r.text());
            let error = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(error.starts_with(field), "{sent}: {error}");
        }
    }
    assert_eq!(admin.targets(), before);
    assert_eq!(route_paths(&lb), ["/a"]);
}
