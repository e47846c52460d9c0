//! The control plane (SPEC "Control plane"; issue 2 "Registration").

use crate::{assert_lb_error, backends, lb, served_by, WAIT};
use lb_testkit::serde_json::Value;
use lb_testkit::{get, request, send_raw, target_json, Admin, Backend};
use std::net::SocketAddr;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Asserts a 400 whose body is `{"error":"<non-empty sentence>"}`.
fn assert_json_400(r: &lb_testkit::Response, what: &str) {
    assert_eq!(
        r.status,
        400,
        "{what}: expected 400, got {} {:?}",
        r.status,
        r.text()
    );
    let v: Value = lb_testkit::serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: 400 body is not JSON ({e}): {:?}", r.text()));
    let msg = v.get("error").and_then(Value::as_str).unwrap_or("");
    assert!(
        !msg.trim().is_empty(),
        "{what}: 400 body has no \"error\" sentence: {v}"
    );
}

#[test]
fn register_list_deregister() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    assert_eq!(
        admin.targets(),
        Value::Array(vec![]),
        "a fresh lb without --route has no targets"
    );
    let a = addr("127.0.0.1:9001");
    let b = addr("10.0.0.5:9002");

    assert_eq!(admin.register("/api", a).status, 201, "new target");
    assert_eq!(
        admin.register("/api", a).status,
        200,
        "re-registering is idempotent"
    );
    assert_eq!(admin.register("/api", b).status, 201);
    assert_eq!(
        admin.register("/other", a).status,
        201,
        "same target on another prefix is new"
    );
    assert_eq!(
        admin.target_set(),
        vec![
            ("/api".to_string(), "10.0.0.5:9002".to_string()),
            ("/api".to_string(), "127.0.0.1:9001".to_string()),
            ("/other".to_string(), "127.0.0.1:9001".to_string()),
        ]
    );
    for t in admin.targets().as_array().expect("array") {
        assert!(
            t["healthy"].is_boolean(),
            "every target has a boolean `healthy`: {t}"
        );
        assert!(
            t["requests"].is_u64(),
            "every target has a numeric `requests`: {t}"
        );
        assert!(t["port"].is_u64(), "port is a number: {t}");
    }

    assert_eq!(admin.deregister("/api", a).status, 200, "removed");
    assert_eq!(admin.deregister("/api", a).status, 404, "already gone");
    assert_eq!(
        admin.deregister("/nowhere", a).status,
        404,
        "unknown prefix"
    );
    assert_eq!(
        admin.target_set(),
        vec![
            ("/api".to_string(), "10.0.0.5:9002".to_string()),
            ("/other".to_string(), "127.0.0.1:9001".to_string()),
        ]
    );
}

#[test]
fn ipv6_targets_are_accepted() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    let r = admin.register_raw(r#"{"path":"/v6","ip":"::1","port":8080}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        admin.target_set(),
        vec![("/v6".to_string(), "[::1]:8080".to_string())]
    );
}

/// SPEC: "a trailing `/` is ignored (`/test/` is `/test`)".
#[test]
fn trailing_slash_is_ignored() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    let a = addr("127.0.0.1:9001");
    assert_eq!(admin.register("/norm/", a).status, 201);
    assert_eq!(
        admin.register("/norm", a).status,
        200,
        "/norm/ and /norm are the same prefix"
    );
    assert_eq!(
        admin.target_set(),
        vec![("/norm".to_string(), "127.0.0.1:9001".to_string())]
    );
    assert_eq!(admin.deregister("/norm/", a).status, 200);
    assert_eq!(admin.target_set(), vec![]);
}

/// Every invalid input gets 400 with a JSON error and leaves the registry exactly as it was.
#[test]
fn invalid_input_is_rejected_and_changes_nothing() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    admin.register_ok("/keep", addr("127.0.0.1:9001"));
    let before = admin.targets();

    let big_padding = " ".repeat(70 * 1024);
    let over_64k = format!(r#"{{"path":"/big",{big_padding}"ip":"127.0.0.1","port":9009}}"#);
    let bad: Vec<(&str, String)> = vec![
        ("not JSON", "this is not json".to_string()),
        ("empty body", String::new()),
        (
            "truncated JSON",
            r#"{"path":"/x","ip":"127.0.0.1","port":80"#.to_string(),
        ),
        (
            "JSON array",
            r#"[{"path":"/x","ip":"127.0.0.1","port":80}]"#.to_string(),
        ),
        (
            "missing port",
            r#"{"path":"/x","ip":"127.0.0.1"}"#.to_string(),
        ),
        ("missing ip", r#"{"path":"/x","port":80}"#.to_string()),
        (
            "missing path",
            r#"{"ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        (
            "bad IPv4",
            r#"{"path":"/x","ip":"999.0.0.1","port":80}"#.to_string(),
        ),
        (
            "hostname instead of IP",
            r#"{"path":"/x","ip":"localhost","port":80}"#.to_string(),
        ),
        (
            "bad IPv6",
            r#"{"path":"/x","ip":"::g","port":80}"#.to_string(),
        ),
        (
            "port 0",
            r#"{"path":"/x","ip":"127.0.0.1","port":0}"#.to_string(),
        ),
        (
            "port 70000",
            r#"{"path":"/x","ip":"127.0.0.1","port":70000}"#.to_string(),
        ),
        (
            "port 65536",
            r#"{"path":"/x","ip":"127.0.0.1","port":65536}"#.to_string(),
        ),
        (
            "negative port",
            r#"{"path":"/x","ip":"127.0.0.1","port":-1}"#.to_string(),
        ),
        (
            "port as string",
            r#"{"path":"/x","ip":"127.0.0.1","port":"80"}"#.to_string(),
        ),
        (
            "path without /",
            r#"{"path":"x","ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        (
            "empty path",
            r#"{"path":"","ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        (
            "path with ?",
            r#"{"path":"/a?b","ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        (
            "path with #",
            r##"{"path":"/a#b","ip":"127.0.0.1","port":80}"##.to_string(),
        ),
        (
            "path with space",
            r#"{"path":"/a b","ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        (
            "path with control char",
            r#"{"path":"/a\u0001b","ip":"127.0.0.1","port":80}"#.to_string(),
        ),
        ("body over 64 KiB", over_64k),
    ];
    for (what, body) in &bad {
        assert_json_400(&admin.register_raw(body), &format!("register, {what}"));
        assert_eq!(
            admin.targets(),
            before,
            "register, {what}: the registry changed"
        );
        assert_json_400(&admin.deregister_raw(body), &format!("deregister, {what}"));
        assert_eq!(
            admin.targets(),
            before,
            "deregister, {what}: the registry changed"
        );
    }
}

#[test]
fn health_metrics_unknown_endpoints_and_wrong_methods() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    let r = admin.call("GET", "/healthz", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text().trim(), "ok");
    let r = admin.call("GET", "/metrics", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(admin.call("GET", "/no-such-endpoint", b"").status, 404);
    assert_eq!(admin.call("GET", "/register", b"").status, 405);
    assert_eq!(admin.call("GET", "/deregister", b"").status, 405);
    assert_eq!(admin.call("POST", "/targets", b"{}").status, 405);
}

/// A registration takes effect for the very next request on every worker, and a deregistered
/// target gets no more traffic. Fresh connections spread the requests over both workers.
#[test]
fn traffic_follows_registration_on_the_next_request() {
    let bs = backends(&["reg-a", "reg-b"]);
    let (a, b) = (&bs[0], &bs[1]);
    let lb = lb(2, &[], &[]);
    let admin = lb.admin();

    assert_lb_error(&get(lb.addr(), "/svc/x"), 503);
    admin.register_ok("/svc", a.addr());
    assert_eq!(
        served_by(&get(lb.addr(), "/svc/x")),
        "reg-a",
        "the very next request"
    );
    admin.register_ok("/svc", b.addr());
    let mut next_two: Vec<String> = (0..2)
        .map(|_| served_by(&get(lb.addr(), "/svc/x")))
        .collect();
    next_two.sort();
    assert_eq!(
        next_two,
        ["reg-a", "reg-b"],
        "the two requests after adding reg-b"
    );

    admin.deregister_ok("/svc", a.addr());
    let a_before = a.request_count();
    for _ in 0..8 {
        assert_eq!(served_by(&get(lb.addr(), "/svc/x")), "reg-b");
    }
    assert_eq!(
        a.request_count(),
        a_before,
        "a deregistered target got traffic"
    );

    admin.deregister_ok("/svc", b.addr());
    assert_lb_error(&get(lb.addr(), "/svc/x"), 503);
    assert_eq!(a.request_count() + b.request_count(), 2 + 8 + 1);
}

/// `GET /targets` counts requests per target.
#[test]
fn targets_report_request_counts() {
    let bs = backends(&["cnt-a", "cnt-b"]);
    let lb = lb(2, &[("/c", &[bs[0].addr(), bs[1].addr()])], &[]);
    for _ in 0..10 {
        served_by(&get(lb.addr(), "/c"));
    }
    assert!(bs[1].wait_for_requests(5, WAIT));
    let targets = lb.admin().targets();
    let mut counts: Vec<(u64, u64)> = targets
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["port"].as_u64().unwrap_or(0),
                t["requests"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    counts.sort();
    let mut want = vec![(u64::from(bs[0].port()), 5), (u64::from(bs[1].port()), 5)];
    want.sort();
    assert_eq!(
        counts, want,
        "requests per target in GET /targets: {targets}"
    );
}

/// SPEC: the control plane is not served on the data port; a `POST /register` there is routed
/// like any other request.
#[test]
fn register_on_the_data_port_is_just_a_request() {
    let lb = lb(1, &[], &[]);
    let body = target_json("/evil", addr("127.0.0.1:9001"));
    let raw = request(
        "POST",
        "/register",
        &[("Connection", "close")],
        body.as_bytes(),
    );
    assert_lb_error(&send_raw(lb.addr(), &raw), 503);
    assert_eq!(lb.admin().targets(), Value::Array(vec![]));

    let catch_all = Backend::start("catch-all");
    lb.admin().register_ok("/", catch_all.addr());
    assert_eq!(served_by(&send_raw(lb.addr(), &raw)), "catch-all");
    let rec = catch_all.last_request();
    assert_eq!(
        (rec.method.as_str(), rec.target.as_str()),
        ("POST", "/register")
    );
    assert_eq!(rec.body, body.as_bytes());
    assert_eq!(
        lb.admin().target_set().len(),
        1,
        "only the catch-all route exists"
    );
}

/// Registration through the admin API and `--route` feed the same registry.
#[test]
fn start_up_routes_are_listed() {
    let a = addr("127.0.0.1:9101");
    let b = addr("127.0.0.1:9102");
    let lb = lb(1, &[("/s", &[a, b]), ("/", &[a])], &[]);
    let admin: Admin = lb.admin();
    assert_eq!(
        admin.target_set(),
        vec![
            ("/".to_string(), "127.0.0.1:9101".to_string()),
            ("/s".to_string(), "127.0.0.1:9101".to_string()),
            ("/s".to_string(), "127.0.0.1:9102".to_string()),
        ]
    );
    assert_eq!(
        admin.register("/s", b).status,
        200,
        "already registered by --route"
    );
}
