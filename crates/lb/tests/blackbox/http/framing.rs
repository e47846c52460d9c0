//! Message framing through lb (RFC 9112 §6, §9; issue 2 item 5; SPEC status codes 400/408/431):
//! bodiless responses, chunked and close-delimited bodies, connection persistence, and requests
//! lb must refuse itself.

use crate::{assert_lb_error, lb, served_by, WAIT};
use lb_testkit::{request, Backend, Conn, Framing, Pattern, Reply};
use std::time::Duration;

#[test]
fn head_response_has_no_body_and_the_connection_stays_in_sync() {
    let b = Backend::start("headb");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.request(&request("HEAD", "/x", &[], b""));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("5"),
        "HEAD keeps the GET's Content-Length"
    );
    let next = c.get("/y");
    assert_eq!(
        next.body,
        b"headb",
        "bytes after a HEAD response: {:?}",
        next.text()
    );
    assert_eq!(b.requests()[0].method, "HEAD");
}

#[test]
fn no_body_for_204_and_304() {
    for status in [204u16, 304] {
        let b = Backend::start_with(
            "nobody",
            Reply::Fixed {
                status,
                headers: vec![("X-Status".to_string(), status.to_string())],
                body: Vec::new(),
            },
        );
        let lb = lb(1, &[("/", &[b.addr()])], &[]);
        let mut c = Conn::open(lb.addr());
        for _ in 0..3 {
            let r = c.get("/");
            assert_eq!(r.status, status);
            assert_eq!(r.header("x-status"), Some(status.to_string().as_str()));
            assert_eq!(r.body_len, 0);
        }
        assert!(
            c.leftover().is_empty(),
            "{status}: stray bytes after the response"
        );
    }
}

#[test]
fn chunked_response_passes_intact() {
    let len = 300_001;
    let b = Backend::start_with("chunky", Reply::Big { len, chunked: true });
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    for _ in 0..2 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_len, len);
        assert_eq!(r.body_checksum, Pattern::checksum(len));
    }
}

/// A response delimited by the upstream closing its connection reaches the client whole, and
/// then lb closes the client connection too (that is the only way to end such a body).
#[test]
fn close_delimited_response_ends_with_the_client_connection() {
    let body = b"ends when the connection does".to_vec();
    let b = Backend::start_with("cd", Reply::CloseDelimited { body: body.clone() });
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/", &[], b"")).expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    if r.framing != Framing::UntilClose {
        // lb re-framed the body (chunked or with a length): then the connection may stay open.
        return;
    }
    assert!(
        c.peer_closed_within(WAIT),
        "lb kept the connection open after a close-delimited body"
    );
}

#[test]
fn client_connection_close_is_honoured() {
    let b = Backend::start("cc");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.request(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!(served_by(&r), "cc");
    assert!(
        c.peer_closed_within(WAIT),
        "lb kept the connection open after Connection: close"
    );
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let b = Backend::start("ten");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(b"GET /a HTTP/1.0\r\nHost: lb.test\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ten");
    assert!(
        c.peer_closed_within(WAIT),
        "HTTP/1.0 without keep-alive must close"
    );

    let mut c = Conn::open(lb.addr());
    for _ in 0..3 {
        c.send(b"GET /b HTTP/1.0\r\nHost: lb.test\r\nConnection: keep-alive\r\n\r\n")
            .expect("send");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.body, b"ten");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start("pipe");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let mut raw = Vec::new();
    for i in 0..5 {
        raw.extend_from_slice(&request("GET", &format!("/p/{i}"), &[], b""));
    }
    c.send(&raw).expect("send");
    for i in 0..5 {
        let r = c.read_response(false).expect("pipelined response");
        assert_eq!(r.header("x-path"), Some(format!("/p/{i}").as_str()));
    }
}

/// Both Content-Length and Transfer-Encoding is the classic smuggling set-up: 400, never forwarded.
#[test]
fn ambiguous_framing_is_400_and_not_forwarded() {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let bad: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
    ];
    for raw in bad {
        let mut c = Conn::open(lb.addr());
        c.send(raw).expect("send");
        let r = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("no response to {:?}: {e}", String::from_utf8_lossy(raw)));
        assert_lb_error(&r, 400);
    }
    assert_eq!(
        b.request_count(),
        0,
        "a malformed request reached the backend"
    );
}

/// A request head over 64 KiB: 431.
#[test]
fn oversized_head_is_431() {
    let b = Backend::start("never431");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let big = "a".repeat(70 * 1024);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/", &[("X-Big", &big)], b""))
        .expect("send");
    let r = c
        .read_response(false)
        .expect("a response to an oversized head");
    assert_lb_error(&r, 431);
    assert_eq!(b.request_count(), 0);
}

/// `--header-timeout 500`: a client that sends half a head and stalls gets 408.
#[test]
fn slow_head_is_408() {
    let b = Backend::start("never408");
    let lb = lb(1, &[("/", &[b.addr()])], &["--header-timeout", "500"]);
    let mut c = Conn::open(lb.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n").expect("send");
    let start = std::time::Instant::now();
    let r = c
        .read_response(false)
        .expect("a 408 after the header timeout");
    assert_lb_error(&r, 408);
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(b.request_count(), 0);
}
