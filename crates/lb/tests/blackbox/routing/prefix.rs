//! Prefix routing and rewriting (SPEC "Routing"; issue 2 item 4). Every assertion is on what the
//! backend received, not on what lb says.

use crate::{assert_lb_error, lb, served_by};
use lb_testkit::{get, Backend, Conn};

/// Sends `target` and asserts which backend got it and what target that backend saw.
fn expect_route(conn: &mut Conn, target: &str, backend: &Backend, seen: &str) {
    let before = backend.request_count();
    let r = conn.get(target);
    assert_eq!(
        served_by(&r),
        backend.name(),
        "{target} went to the wrong backend"
    );
    assert_eq!(backend.request_count(), before + 1);
    let rec = backend.last_request();
    assert_eq!(
        rec.target,
        seen,
        "{target} reached {} as {:?}",
        backend.name(),
        rec.target
    );
}

#[test]
fn prefixes_match_on_segment_boundaries_and_are_stripped() {
    let test = Backend::start("test");
    let root = Backend::start("root");
    let a = Backend::start("a");
    let ab = Backend::start("ab");
    // `/a/b` before `/a`: the longest prefix must win whatever the registration order.
    let lb = lb(
        2,
        &[
            ("/a/b", &[ab.addr()]),
            ("/test", &[test.addr()]),
            ("/a", &[a.addr()]),
            ("/", &[root.addr()]),
        ],
        &[],
    );
    let mut c = Conn::open(lb.addr());
    let table: &[(&str, &Backend, &str)] = &[
        ("/test", &test, "/"),
        ("/test/", &test, "/"),
        ("/test/x", &test, "/x"),
        ("/test/foo", &test, "/foo"),
        ("/test/foo/bar/", &test, "/foo/bar/"),
        ("/test?q=1", &test, "/?q=1"),
        ("/test/?q=1", &test, "/?q=1"),
        ("/test/x?y=2&z=3", &test, "/x?y=2&z=3"),
        ("/test2", &root, "/test2"),
        ("/test2/x", &root, "/test2/x"),
        ("/testx?q=/test", &root, "/testx?q=/test"),
        ("/tes", &root, "/tes"),
        ("/", &root, "/"),
        ("/?q=1", &root, "/?q=1"),
        ("/other/path?z=9", &root, "/other/path?z=9"),
        ("/a", &a, "/"),
        ("/a/", &a, "/"),
        ("/a/x", &a, "/x"),
        ("/a/bc", &a, "/bc"),
        ("/a/b", &ab, "/"),
        ("/a/b/c", &ab, "/c"),
        ("/a/b?k=v", &ab, "/?k=v"),
        ("/ab", &root, "/ab"),
    ];
    for (target, backend, seen) in table {
        expect_route(&mut c, target, backend, seen);
    }
}

/// Without a `/` route, anything no prefix matches is 503, and `/test2` still does not match
/// `/test`.
#[test]
fn without_a_root_route_unmatched_paths_get_503() {
    let test = Backend::start("only-test");
    let lb = lb(1, &[("/test", &[test.addr()])], &[]);
    for target in ["/test2", "/", "/tes", "/other", "/testing/x"] {
        assert_lb_error(&get(lb.addr(), target), 503);
    }
    assert_eq!(test.request_count(), 0);
    assert_eq!(served_by(&get(lb.addr(), "/test/x")), "only-test");
    assert_eq!(test.last_request().target, "/x");
}

/// Prefixes registered through the admin API route the same way, trailing `/` ignored.
#[test]
fn admin_registered_prefixes_route_and_strip() {
    let svc = Backend::start("svc");
    let deep = Backend::start("deep");
    let lb = lb(2, &[], &[]);
    lb.admin().register_ok("/svc/", svc.addr());
    lb.admin().register_ok("/svc/v2", deep.addr());
    let mut c = Conn::open(lb.addr());
    expect_route(&mut c, "/svc", &svc, "/");
    expect_route(&mut c, "/svc/x", &svc, "/x");
    expect_route(&mut c, "/svc/v2/x", &deep, "/x");
    expect_route(&mut c, "/svc/v23", &svc, "/v23");
    assert_lb_error(&c.get("/svcx"), 503);
}

/// The method, the query and the body reach the backend unchanged; only the prefix is removed.
#[test]
fn method_query_and_body_pass_unchanged() {
    let b = Backend::start("m");
    let lb = lb(1, &[("/m", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let body: &[u8] = if method == "GET" { b"" } else { b"{\"k\":1}" };
        let r = c.request(&lb_testkit::request(method, "/m/items/7?x=%2F", &[], body));
        assert_eq!(served_by(&r), "m");
        let rec = b.last_request();
        assert_eq!(rec.method, method);
        assert_eq!(rec.target, "/items/7?x=%2F");
        assert_eq!(rec.body, body);
    }
}
