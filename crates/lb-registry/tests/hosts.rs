//! Virtual hosts through the registry: which route a request's host and path choose (exact,
//! wildcard, host-less, falling through when a set has no matching prefix), and host-bound
//! routes as routes of their own (targets, cursor, deregistration, export).

use lb_registry::{request_host, route_name, Registry, Scope, MAX_HOST};
use std::net::SocketAddr;
use std::time::Instant;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn registry(routes: &[(Option<&str>, &str, u16)]) -> Registry {
    let reg = Registry::new(1);
    for &(host, path, port) in routes {
        let name = route_name(host, path).expect("valid route");
        reg.register(&name, addr(port)).expect("registered");
    }
    reg
}

/// The port that serves a request with Host `raw_host` (as sent) for `target`, and the target
/// forwarded; `None` when no route matches.
fn routed(reg: &Registry, raw_host: Option<&str>, target: &str) -> Option<(u16, String)> {
    let snap = reg.snapshot();
    let mut buf = [0; MAX_HOST];
    let host = raw_host.and_then(|h| request_host(h.as_bytes(), &mut buf));
    let m = snap.lookup_host(host, target)?;
    let port = m.route.pick().map_or(0, |t| t.addr().port());
    Some((port, format!("{}{}", m.lead(), m.rest)))
}

/// A request's Host (as sent), its target, and the port and forwarded target it must get.
type Case<'a> = (Option<&'a str>, &'a str, Option<(u16, &'a str)>);

#[test]
fn the_exact_host_then_the_wildcard_then_host_less_routes() {
    let reg = registry(&[
        (Some("api.example.com"), "/v1", 1),
        (Some("api.example.com"), "/", 2),
        (Some("*.example.com"), "/v1", 3),
        (Some("*.example.com"), "/static", 4),
        (None, "/", 5),
        (None, "/v1", 6),
        (Some("shop.test"), "/cart", 7),
    ]);
    let table: &[Case] = &[
        (Some("api.example.com"), "/v1/x", Some((1, "/x"))),
        (Some("API.Example.COM:8080"), "/v1/x", Some((1, "/x"))),
        (Some("api.example.com."), "/v1", Some((1, "/"))),
        // The exact host's set has `/`, so it never falls through for this host.
        (Some("api.example.com"), "/static/a", Some((2, "/static/a"))),
        (Some("www.example.com"), "/v1/y", Some((3, "/y"))),
        (
            Some("www.example.com"),
            "/static/a.css",
            Some((4, "/a.css")),
        ),
        // The wildcard's set has no matching prefix: the host-less routes.
        (Some("www.example.com"), "/other", Some((5, "/other"))),
        // One label only: neither the parent nor a deeper name.
        (Some("example.com"), "/v1/z", Some((6, "/z"))),
        (Some("a.b.example.com"), "/v1/z", Some((6, "/z"))),
        (Some("shop.test"), "/cart?id=1", Some((7, "/?id=1"))),
        (Some("shop.test"), "/v1", Some((6, "/"))),
        (Some("unknown.org"), "/v1/q", Some((6, "/q"))),
        (None, "/v1/q", Some((6, "/q"))),
        (Some(""), "/", Some((5, "/"))),
    ];
    for &(host, target, want) in table {
        let got = routed(&reg, host, target);
        let want = want.map(|(port, rest)| (port, rest.to_string()));
        assert_eq!(got, want, "host {host:?} target {target}");
    }
}

#[test]
fn without_a_host_less_route_an_unmatched_host_has_no_route() {
    let reg = registry(&[(Some("a.test"), "/", 1)]);
    assert_eq!(routed(&reg, Some("b.test"), "/"), None);
    assert_eq!(routed(&reg, None, "/"), None);
    assert_eq!(routed(&reg, Some("a.test"), "/x"), Some((1, "/x".into())));
}

#[test]
fn a_host_bound_route_has_its_own_targets_and_cursor() {
    let reg = registry(&[
        (Some("a.test"), "/", 1),
        (Some("a.test"), "/", 2),
        (None, "/", 3),
        (None, "/", 4),
    ]);
    let seq = |host| -> Vec<u16> {
        (0..4)
            .map(|_| routed(&reg, host, "/").expect("routed").0)
            .collect()
    };
    assert_eq!(seq(Some("a.test")), [1, 2, 1, 2]);
    assert_eq!(seq(None), [3, 4, 3, 4]);
    let listing = reg.listing();
    let hosts: Vec<_> = listing
        .iter()
        .map(|r| (r.host.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        hosts,
        [
            (None, "/".to_string()),
            (Some("a.test".to_string()), "/".to_string())
        ]
    );
    assert!(
        !reg.deregister("/", addr(1)).expect("valid"),
        "not host-less"
    );
    assert!(reg.deregister("a.test/", addr(1)).expect("valid"));
    assert_eq!(seq(Some("a.test")), [2, 2, 2, 2]);
}

#[test]
fn an_export_keeps_the_host() {
    let reg = registry(&[(Some("*.a.test"), "/x", 1), (None, "/x", 2)]);
    let export = reg.export(Scope::Saved);
    let text = serde_json::to_string(&export).expect("serialized");
    assert!(text.contains(r#""host":"*.a.test","path":"/x""#), "{text}");
    let copy = Registry::new(1);
    copy.import(
        serde_json::from_str(&text).expect("parsed"),
        Instant::now(),
        |_| false,
    )
    .expect("imported");
    assert_eq!(copy.routes(), reg.routes());
    assert_eq!(routed(&copy, Some("b.a.test"), "/x"), Some((1, "/".into())));
}
