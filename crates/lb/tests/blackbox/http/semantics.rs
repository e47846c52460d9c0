//! Issue 3, "Framing and semantics": request-target forms (RFC 9112 §3.2), what lb rewrites on
//! the way through and what it leaves alone (RFC 9110 §7.6: hop-by-hop fields, Via), pipelining,
//! HTTP/1.0 clients, half-closed clients. Assertions are on exact bytes: the head the backend
//! received, the head the client received.

use crate::{assert_lb_error, lb, served_by, WAIT};
use lb_testkit::{request, split_response, Backend, Conn, Pattern, Reply};
use std::net::Shutdown;

/// The head lb forwards for a request from 127.0.0.1 with Host `lb.test`, after `fields`.
fn forwarded(line: &str, fields: &str) -> String {
    format!(
        "{line}\r\n{fields}X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: lb.test\r\nVia: 1.1 lb\r\n\r\n"
    )
}

fn head_text(raw: &[u8]) -> String {
    crate::head_without_request_id(raw)
}

#[test]
fn connect_is_501() {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("a 501");
    assert_lb_error(&r, 501);
    assert!(
        c.peer_closed_within(WAIT),
        "a CONNECT must not leave a tunnel open"
    );
    assert_eq!((b.request_count(), b.connections()), (0, 0));
}

/// `OPTIONS *` (RFC 9112 §3.2.4) is about the server as a whole: it goes to the `/` route,
/// target unchanged.
#[test]
fn options_asterisk_goes_to_the_root_route() {
    let api = Backend::start("api");
    let root = Backend::start("root");
    let lb = lb(1, &[("/api", &[api.addr()]), ("/", &[root.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.request(b"OPTIONS * HTTP/1.1\r\nHost: lb.test\r\n\r\n");
    assert_eq!(served_by(&r), "root");
    assert_eq!(
        head_text(&root.last_request().head),
        forwarded("OPTIONS * HTTP/1.1", "Host: lb.test\r\n")
    );
    assert_eq!(api.request_count(), 0);
}

/// RFC 9112 §3.2.2: the target's authority replaces Host, which is sent once; the path is
/// routed and rewritten like an origin-form target.
#[test]
fn absolute_form_target_becomes_origin_form_with_its_authority_as_host() {
    let api = Backend::start("api");
    let root = Backend::start("root");
    let lb = lb(1, &[("/api", &[api.addr()]), ("/", &[root.addr()])], &[]);
    let mut c = Conn::open(lb.addr());

    let r = c
        .request(b"GET http://example.com/x?q=1 HTTP/1.1\r\nHost: other.example\r\nX-A: 1\r\n\r\n");
    assert_eq!(served_by(&r), "root");
    assert_eq!(
        head_text(&root.last_request().head),
        "GET /x?q=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-Forwarded-For: 127.0.0.1\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\nVia: 1.1 lb\r\n\r\n"
    );

    let r = c.request(
        b"GET HTTP://Example.com:8080/api/users HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    );
    assert_eq!(served_by(&r), "api");
    let rec = api.last_request();
    assert_eq!(rec.target, "/users");
    assert_eq!(rec.headers.get_all("host"), ["Example.com:8080"]);

    let r = c.request(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(served_by(&r), "root");
    assert_eq!(root.last_request().target, "/");
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) and every field `Connection` names are removed from the
/// request; everything else arrives byte for byte, in order, names in their case, repeats kept.
#[test]
fn request_hop_by_hop_removed_end_to_end_preserved() {
    let b = Backend::start("hop");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let raw = b"GET /x HTTP/1.1\r\n\
        Host: lb.test\r\n\
        Connection: keep-alive, X-Secret\r\n\
        keep-alive: timeout=5\r\n\
        X-Secret: s\r\n\
        TE: trailers\r\n\
        Trailer: X-Sum\r\n\
        Upgrade: h2c\r\n\
        Proxy-Connection: keep-alive\r\n\
        cookie: a=1\r\n\
        X-Mixed-CASE: v  w\r\n\
        Cookie: b=2\r\n\
        Accept: */*\r\n\
        x-empty:\r\n\
        \r\n";
    assert_eq!(served_by(&c.request(raw)), "hop");
    assert_eq!(
        head_text(&b.last_request().head),
        forwarded(
            "GET /x HTTP/1.1",
            "Host: lb.test\r\ncookie: a=1\r\nX-Mixed-CASE: v  w\r\nCookie: b=2\r\nAccept: */*\r\n\
             x-empty: \r\n"
        )
    );
}

/// The same rules on the way back, and `Set-Cookie` is never merged (RFC 9110 §5.3).
#[test]
fn response_hop_by_hop_removed_set_cookie_kept_apart() {
    let fields = [
        ("Set-Cookie", "a=1; Path=/"),
        ("Connection", "X-Up-Secret"),
        ("X-Up-Secret", "s"),
        ("Keep-Alive", "timeout=99"),
        ("Proxy-Connection", "keep-alive"),
        ("Trailer", "X-Sum"),
        ("Upgrade", "h2c"),
        ("X-Mid", "m"),
        ("set-cookie", "b=2, c=3"),
        ("Via", "1.1 origin"),
    ];
    let b = Backend::start_with(
        "resp",
        Reply::Fixed {
            status: 200,
            headers: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: b"ok".to_vec(),
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.get("/");
    assert_eq!(
        head_text(&r.head),
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nX-Mid: m\r\nset-cookie: b=2, c=3\r\n\
         Via: 1.1 origin\r\nVia: 1.1 lb\r\nContent-Length: 2\r\n\r\n"
    );
    assert_eq!(r.body, b"ok");
    assert_eq!(r.headers.get_all("set-cookie"), ["a=1; Path=/", "b=2, c=3"]);
}

/// Received Via fields stay in place; lb's entry comes after them (RFC 9110 §7.6.3).
#[test]
fn via_appended_in_both_directions() {
    let b = Backend::start("via");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.request(b"GET / HTTP/1.1\r\nVia: 1.0 fred, 1.1 p.example\r\nHost: lb.test\r\n\r\n");
    assert_eq!(r.headers.get_all("via"), ["1.1 lb"]);
    assert_eq!(
        b.last_request().headers.get_all("via"),
        ["1.0 fred, 1.1 p.example", "1.1 lb"]
    );
    // An HTTP/1.0 request is received as 1.0: that is what Via records.
    let mut c = Conn::open(lb.addr());
    c.send(b"GET / HTTP/1.0\r\nHost: lb.test\r\n\r\n")
        .expect("send");
    c.read_response(false).expect("response");
    assert_eq!(b.last_request().headers.get_all("via"), ["1.0 lb"]);
}

#[test]
fn host_forwarded_once_unchanged() {
    let b = Backend::start("host");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.request(b"GET / HTTP/1.1\r\nX-Before: 1\r\nhOsT: Example.COM:8080\r\nX-After: 2\r\n\r\n");
    let head = head_text(&b.last_request().head);
    assert!(
        head.starts_with(
            "GET / HTTP/1.1\r\nX-Before: 1\r\nhOsT: Example.COM:8080\r\nX-After: 2\r\n"
        ),
        "{head}"
    );
    assert_eq!(
        b.last_request().headers.get_all("host"),
        ["Example.COM:8080"]
    );
}

/// After the prefix, the target goes upstream byte for byte: no percent-decoding, no dot-segment
/// or slash normalisation (each would be a second reading the upstream may not share).
#[test]
fn target_forwarded_without_normalisation() {
    let b = Backend::start("raw");
    let lb = lb(1, &[("/test", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    for (sent, seen) in [
        ("/test/a%2Fb/../c", "/a%2Fb/../c"),
        ("/test//x/./y", "//x/./y"),
        (
            "/test/%2e%2e/%2E%2e?q=%41&r=a/../b",
            "/%2e%2e/%2E%2e?q=%41&r=a/../b",
        ),
        ("/test?x=/../..", "/?x=/../.."),
        ("/test/caf%C3%A9;p=1", "/caf%C3%A9;p=1"),
    ] {
        let r = c.get(sent);
        assert_eq!(served_by(&r), "raw");
        assert_eq!(b.last_request().target, seen, "for {sent}");
    }
}

/// Several requests in one write: each is routed on its own and answered in order.
#[test]
fn pipelined_requests_routed_each_on_its_own() {
    let a = Backend::start("alpha");
    let z = Backend::start("zeta");
    let lb = lb(1, &[("/a", &[a.addr()]), ("/z", &[z.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let mut raw = Vec::new();
    raw.extend_from_slice(&request("GET", "/a/1", &[], b""));
    raw.extend_from_slice(&request("GET", "/z/2", &[], b""));
    raw.extend_from_slice(&request("POST", "/a/3", &[], b"body-three"));
    raw.extend_from_slice(&request(
        "POST",
        "/z/4",
        &[("Transfer-Encoding", "chunked")],
        b"4\r\nfour\r\n0\r\n\r\n",
    ));
    raw.extend_from_slice(&request("GET", "/z/5", &[], b""));
    c.send(&raw).expect("send");
    for (backend, path) in [
        ("alpha", "/1"),
        ("zeta", "/2"),
        ("alpha", "/3"),
        ("zeta", "/4"),
        ("zeta", "/5"),
    ] {
        let r = c.read_response(false).expect("pipelined response");
        assert_eq!(served_by(&r), backend);
        assert_eq!(r.header("x-path"), Some(path));
    }
    let alpha = a.requests();
    assert_eq!(alpha[1].body, b"body-three");
    let zeta = z.requests();
    assert_eq!(zeta[1].body, b"four");
    assert_eq!(zeta.len(), 3);
}

/// RFC 9112 §7.1: no chunked to an HTTP/1.0 client. The body arrives de-chunked and ends with
/// the connection, which lb announces with `Connection: close`, even to a keep-alive client.
#[test]
fn http10_client_gets_a_dechunked_close_delimited_body() {
    let len = 200_003;
    let b = Backend::start_with("chunky", Reply::Big { len, chunked: true });
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    for ask in ["", "Connection: keep-alive\r\n"] {
        let mut c = Conn::open(lb.addr());
        c.send(format!("GET / HTTP/1.0\r\nHost: lb.test\r\n{ask}\r\n").as_bytes())
            .expect("send");
        let (raw, closed) = c.read_until_close(WAIT);
        assert!(
            closed,
            "lb must close after a close-delimited body ({ask:?})"
        );
        let (head, body) = split_response(&raw);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            !lower.contains("transfer-encoding"),
            "chunked to HTTP/1.0: {head}"
        );
        assert!(!lower.contains("content-length"), "{head}");
        assert!(lower.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(body.len() as u64, len, "{head}");
        assert_eq!(lb_testkit::Checksum::of(&body), Pattern::checksum(len));
    }
}

/// HTTP/1.0 keeps the connection only when asked, and is then told so.
#[test]
fn http10_keep_alive_only_when_asked() {
    let b = Backend::start("ten");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(b"GET /a HTTP/1.0\r\n\r\n").expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.peer_closed_within(WAIT));

    let mut c = Conn::open(lb.addr());
    for i in 0..3 {
        c.send(format!("GET /k{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes())
            .expect("send");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.body, b"ten");
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    // Forwarded as HTTP/1.1 with the Host it lacked: the address the client connected to
    // (RFC 9112 §3.3), also as X-Forwarded-Host.
    let rec = b.last_request();
    assert_eq!(rec.minor_version, 1);
    let local = lb.addr().to_string();
    assert_eq!(rec.headers.get_all("host"), [local.as_str()]);
    assert_eq!(rec.headers.get_all("x-forwarded-host"), [local.as_str()]);
}

/// A client that shuts its sending side after a complete request still gets the answer.
#[test]
fn half_closed_client_still_gets_the_response() {
    let b = Backend::start("half");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    for body in [&b""[..], b"payload"] {
        let mut c = Conn::open(lb.addr());
        let method = if body.is_empty() { "GET" } else { "POST" };
        c.send(&request(method, "/h", &[], body)).expect("send");
        c.stream()
            .shutdown(Shutdown::Write)
            .expect("shutdown write");
        let (raw, closed) = c.read_until_close(WAIT);
        let (head, got) = split_response(&raw);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
        assert_eq!(got, b"half");
        assert!(
            closed,
            "lb should close once the response is out and the client is done"
        );
    }
    assert_eq!(b.requests()[1].body, b"payload");
}

/// Hop-by-hop removal does not depend on how the client spells or spreads its fields.
#[test]
fn connection_options_spread_over_fields_are_all_honoured() {
    let b = Backend::start("spread");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.request(
        b"GET / HTTP/1.1\r\nHost: lb.test\r\nconnection: x-one\r\nX-One: 1\r\nCONNECTION: X-TWO ,\r\n\
          x-two: 2\r\nX-Three: 3\r\n\r\n",
    );
    assert_eq!(
        head_text(&b.last_request().head),
        forwarded("GET / HTTP/1.1", "Host: lb.test\r\nX-Three: 3\r\n")
    );
}
