//! Virtual hosts (SPEC part B "Virtual hosts"; issue 13): routes bound to an exact host or a
//! one-label wildcard, through the API and the config file, falling back to host-less routes;
//! `/targets` and `/routes` show the host and `/deregister` takes it.

use crate::{backends, lb_from_config, served_by};
use lb_testkit::serde_json::{json, Value};
use lb_testkit::{request, send_raw, Backend, LbProcess, ScratchDir};

/// `GET target` with `Host: host` on a fresh connection; the backend that answered.
fn via_host(lb: &LbProcess, host: &str, target: &str) -> String {
    let raw = request(
        "GET",
        target,
        &[("Host", host), ("Connection", "close")],
        b"",
    );
    served_by(&send_raw(lb.addr(), &raw))
}

/// The registration body of `backend` on `path`, bound to `host` when given.
fn body(host: Option<&str>, path: &str, backend: &Backend) -> String {
    let mut b = json!({"path": path, "ip": "127.0.0.1", "port": backend.addr().port()});
    if let Some(host) = host {
        b["host"] = json!(host);
    }
    b.to_string()
}

/// Exact, wildcard and host-less routes registered through the API: each request goes to the
/// first set with a matching prefix, and the backend sees the path rewritten and Host kept.
#[test]
fn the_api_binds_routes_to_hosts_exact_wildcard_and_fallback() {
    let bs = backends(&["vh-exact", "vh-wild", "vh-plain", "vh-exact-root"]);
    let lb = crate::lb(2, &[], &[]);
    let admin = lb.admin();
    for (host, path, b) in [
        (Some("api.example.com"), "/v1", &bs[0]),
        (Some("*.example.com"), "/v1", &bs[1]),
        (None, "/", &bs[2]),
        (Some("root.test"), "/", &bs[3]),
    ] {
        let r = admin.register_raw(&body(host, path, b));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let table = [
        ("api.example.com", "/v1/a", "vh-exact"),
        ("API.EXAMPLE.COM:80", "/v1/a", "vh-exact"),
        ("www.example.com", "/v1/a", "vh-wild"),
        ("www.example.com", "/other", "vh-plain"),
        ("api.example.com", "/other", "vh-plain"),
        ("a.b.example.com", "/v1/a", "vh-plain"),
        ("example.com", "/v1/a", "vh-plain"),
        ("root.test", "/v1/a", "vh-exact-root"),
        ("lb.test", "/v1/a", "vh-plain"),
    ];
    for (host, target, want) in table {
        assert_eq!(via_host(&lb, host, target), want, "Host {host} {target}");
    }
    let seen = bs[0].last_request();
    assert_eq!(seen.target, "/a", "the prefix is stripped");
    assert_eq!(
        seen.header("Host"),
        Some("API.EXAMPLE.COM:80"),
        "Host is kept"
    );

    // `/targets` rows carry the host; `/deregister` takes it, and the host-less `/v1` it
    // names instead is a different route (404).
    let targets = admin.targets();
    let hosts: Vec<&Value> = targets
        .as_array()
        .expect("rows")
        .iter()
        .map(|t| &t["host"])
        .collect();
    // Ordered by route name, host then prefix: `*.example.com/v1` < `/` < `api.example.com/v1`.
    assert_eq!(
        hosts,
        [
            &json!("*.example.com"),
            &Value::Null,
            &json!("api.example.com"),
            &json!("root.test")
        ]
    );
    assert_eq!(admin.deregister_raw(&body(None, "/v1", &bs[0])).status, 404);
    let r = admin.deregister_raw(&body(Some("api.example.com"), "/v1", &bs[0]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(via_host(&lb, "api.example.com", "/v1/a"), "vh-wild");
}

/// A bad host is a 400 naming the field, and changes nothing.
#[test]
fn a_bad_host_is_400_and_changes_nothing() {
    let b = Backend::start("vh-bad");
    let lb = crate::lb(1, &[], &[]);
    for host in ["a.test:80", "*.*.test", "a b", ""] {
        let r = lb.admin().register_raw(&body(Some(host), "/", &b));
        assert_eq!(r.status, 400, "{host:?}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(error.starts_with("host "), "{host:?}: {error}");
    }
    assert_eq!(lb.admin().targets(), json!([]));
}

/// `[[route]] host = ...` in the config file; `/routes` shows it; the same prefix without a
/// host is another route with its own targets.
#[test]
fn config_routes_bind_hosts_and_routes_lists_them() {
    let bs = backends(&["vh-cfg-host", "vh-cfg-plain"]);
    let dir = ScratchDir::new("vhosts");
    let routes = format!(
        "[[route]]\nhost = \"Shop.Test\"\nprefix = \"/\"\ntargets = [\"{}\"]\n\
         [[route]]\nprefix = \"/\"\ntargets = [\"{}\"]\n",
        bs[0].addr(),
        bs[1].addr()
    );
    let lb = lb_from_config(&dir, 2, &routes);
    assert_eq!(via_host(&lb, "shop.test", "/x"), "vh-cfg-host");
    assert_eq!(via_host(&lb, "other.test", "/x"), "vh-cfg-plain");
    let routes = lb.admin().call("GET", "/routes", b"").json();
    let hosts: Vec<&Value> = routes
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["host"])
        .collect();
    assert_eq!(hosts, [&Value::Null, &json!("shop.test")]);
}
