//! Header handling on the way through (issue 2 item 5; RFC 9110 §7.6.1 hop-by-hop fields):
//! X-Forwarded-* added, Host preserved, hop-by-hop fields and those named in `Connection` dropped,
//! in both directions.

use crate::{lb, served_by};
use lb_testkit::{request, Backend, Conn, Reply};

#[test]
fn forwarding_headers_are_added_and_hop_by_hop_headers_dropped() {
    let b = Backend::start("hdr");
    let lb = lb(1, &[("/h", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let raw = request(
        "GET",
        "/h/path?x=1",
        &[
            ("Host", "example.test:8080"),
            ("Connection", "keep-alive, X-Drop-Me"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            // Upgrade without `Connection: upgrade` is not an upgrade, just a hop-by-hop field.
            ("Upgrade", "h2c"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Drop-Me", "secret"),
            ("X-Forwarded-For", "10.1.1.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "spoofed.example"),
            ("X-Keep", "yes"),
            ("Accept", "*/*"),
        ],
        b"",
    );
    let r = c.request(&raw);
    assert_eq!(served_by(&r), "hdr");
    let rec = b.last_request();
    let h = &rec.headers;
    let head = String::from_utf8_lossy(&rec.head).into_owned();

    assert_eq!(rec.target, "/path?x=1");
    assert_eq!(
        h.get_all("host"),
        ["example.test:8080"],
        "Host preserved, once:\n{head}"
    );
    assert_eq!(
        h.get("x-keep"),
        Some("yes"),
        "end-to-end fields pass:\n{head}"
    );
    assert_eq!(
        h.get("accept"),
        Some("*/*"),
        "end-to-end fields pass:\n{head}"
    );
    for dropped in [
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "x-drop-me",
    ] {
        assert!(
            !h.contains(dropped),
            "{dropped} reached the backend:\n{head}"
        );
    }
    // lb may announce its own persistence to the upstream, but never forward the client's
    // connection options, and never `close` (that would defeat upstream keep-alive).
    let conn_tokens = h.tokens("connection");
    assert!(
        conn_tokens.iter().all(|t| t == "keep-alive"),
        "client connection options reached the backend: {conn_tokens:?}\n{head}"
    );

    let xff = h.get_all("x-forwarded-for").join(", ");
    assert_eq!(
        xff, "10.1.1.1, 127.0.0.1",
        "X-Forwarded-For appended:\n{head}"
    );
    assert_eq!(
        h.get_all("x-forwarded-proto"),
        ["http"],
        "X-Forwarded-Proto set:\n{head}"
    );
    assert_eq!(
        h.get_all("x-forwarded-host"),
        ["example.test:8080"],
        "X-Forwarded-Host set from Host:\n{head}"
    );

    // The client connection stays usable (its `Connection: keep-alive` was honoured).
    assert_eq!(served_by(&c.get("/h/again")), "hdr");
}

#[test]
fn x_forwarded_for_is_created_when_absent() {
    let b = Backend::start("xff");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    served_by(&lb_testkit::get(lb.addr(), "/"));
    let rec = b.last_request();
    assert_eq!(rec.headers.get_all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(rec.headers.get_all("x-forwarded-host"), ["lb.test"]);
    assert_eq!(rec.header("host"), Some("lb.test"));
    assert_eq!(rec.minor_version, 1, "lb speaks HTTP/1.1 upstream");
}

/// Hop-by-hop fields in the upstream's response do not reach the client either.
#[test]
fn hop_by_hop_response_headers_are_dropped() {
    let b = Backend::start_with(
        "resp",
        Reply::Fixed {
            status: 200,
            headers: vec![
                ("Connection".to_string(), "X-Upstream-Secret".to_string()),
                ("X-Upstream-Secret".to_string(), "s3cr3t".to_string()),
                ("Keep-Alive".to_string(), "timeout=99".to_string()),
                ("Proxy-Connection".to_string(), "keep-alive".to_string()),
                ("X-Resp".to_string(), "1".to_string()),
                ("Content-Type".to_string(), "text/plain".to_string()),
            ],
            body: b"hello".to_vec(),
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.get("/");
    let head = String::from_utf8_lossy(&r.head).into_owned();
    assert_eq!(r.status, 200, "{head}");
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("x-resp"), Some("1"), "{head}");
    assert_eq!(r.header("content-type"), Some("text/plain"), "{head}");
    assert!(!r.headers.contains("x-upstream-secret"), "{head}");
    assert!(!r.headers.contains("proxy-connection"), "{head}");
    assert_ne!(r.header("keep-alive"), Some("timeout=99"), "{head}");
    assert!(
        !r.headers
            .tokens("connection")
            .iter()
            .any(|t| t == "x-upstream-secret"),
        "{head}"
    );
    // Nothing in the upstream's response asked to close, so the client connection is reused.
    let again = c.get("/");
    assert_eq!(again.body, b"hello");
    assert_eq!(b.request_count(), 2);
}
