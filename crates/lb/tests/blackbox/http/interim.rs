//! Issue 3: `Expect: 100-continue` (RFC 9110 §10.1.1), other 1xx responses, and protocol upgrades
//! (RFC 9110 §7.8, WebSocket style). The upstream is scripted, so each test controls exactly when
//! it sends what, and learns through events what lb forwarded.

use crate::{lb, WAIT};
use lb_testkit::{Backend, Conn, Scripted};
use std::net::Shutdown;
use std::time::{Duration, Instant};

const PUT_HEAD: &[u8] =
    b"PUT /up HTTP/1.1\r\nHost: lb.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

/// The upstream's own `100 Continue` reaches the client before it sends the body.
#[test]
fn expect_100_continue_from_the_upstream() {
    let up = Scripted::start(|p| {
        let head = p.read_head()?.expect("a request head");
        p.event(format!("expect: {}", head.get("expect").unwrap_or("-")));
        p.send(b"HTTP/1.1 100 Continue\r\nX-From: upstream\r\n\r\n")?;
        let body = p.read_exact(5)?;
        p.event(format!("body: {}", String::from_utf8_lossy(&body)));
        p.send(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.set_read_timeout(Duration::from_secs(10));
    c.send(PUT_HEAD).expect("send head");
    up.expect_event("expect: 100-continue");
    let interim = c
        .read_response(false)
        .expect("a 100 before the body is sent");
    assert_eq!(interim.status, 100, "{:?}", interim.headers);
    assert_eq!(interim.header("x-from"), Some("upstream"));
    c.send(b"hello").expect("send body");
    up.expect_event("body: hello");
    let r = c.read_response(false).expect("final response");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"done"[..]));
}

/// A final status instead of 100: the client gets it, and the body it never sent is not waited
/// for (nor, if the client sends it anyway, forwarded as a request of its own).
#[test]
fn expect_100_continue_answered_with_a_final_status() {
    for status in ["417 Expectation Failed", "401 Unauthorized"] {
        let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nno");
        let up = Scripted::start(move |p| {
            p.read_head()?.expect("a request head");
            p.event("head");
            p.send(reply.as_bytes())?;
            // Anything lb forwards after this is the body it should have held back.
            let (rest, _) = p.read_until_close(Duration::from_secs(3));
            p.event(format!("after: {}", String::from_utf8_lossy(&rest)));
            Ok(())
        });
        let lb = lb(1, &[("/", &[up.addr()])], &[]);
        let mut c = Conn::open(lb.addr());
        c.set_read_timeout(Duration::from_secs(10));
        c.send(PUT_HEAD).expect("send head");
        up.expect_event("head");
        let started = Instant::now();
        let r = c.read_response(false).expect("the final response");
        assert_eq!(
            r.status.to_string(),
            status.split(' ').next().unwrap_or(""),
            "{:?}",
            r.headers
        );
        assert_eq!(r.body, b"no");
        assert!(started.elapsed() < Duration::from_secs(5));
        up.expect_event("after: ");
    }
}

/// The upstream says nothing within a second: lb sends its own `100 Continue`, then streams the
/// body the client sends.
#[test]
fn expect_100_continue_sent_by_lb_after_a_silent_second() {
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.event("head");
        let body = p.read_exact(5)?;
        p.event(format!("body: {}", String::from_utf8_lossy(&body)));
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let sent = Instant::now();
    c.send(PUT_HEAD).expect("send head");
    up.expect_event("head");
    c.set_read_timeout(Duration::from_secs(10));
    let interim = c
        .read_response(false)
        .expect("lb's own 100 Continue within a few seconds");
    let waited = sent.elapsed();
    assert_eq!(interim.status, 100);
    assert!(interim.header("x-from").is_none());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "100 Continue after {waited:?}, expected about 1 s"
    );
    c.set_read_timeout(lb_testkit::IO_TIMEOUT);
    c.send(b"hello").expect("send body");
    up.expect_event("body: hello");
    let r = c.read_response(false).expect("final response");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
}

/// Other interim responses (here 103 Early Hints) are forwarded before the final one.
#[test]
fn informational_103_forwarded() {
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")?;
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: lb.test\r\n\r\n")
        .expect("send");
    let hints = c.read_response(false).expect("103");
    assert_eq!(hints.status, 103);
    assert_eq!(hints.header("link"), Some("</s.css>; rel=preload"));
    let r = c.read_response(false).expect("200");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
}

/// `Upgrade` + `Connection: upgrade`, answered with 101: the connection becomes a byte tunnel in
/// both directions (HTTP-looking bytes included) until a side closes.
#[test]
fn websocket_upgrade_tunnels_bytes_both_ways() {
    let up = Scripted::start(|p| {
        let head = p.read_head()?.expect("a request head");
        p.event(format!(
            "upgrade: {} / connection: {}",
            head.get("upgrade").unwrap_or("-"),
            head.get("connection").unwrap_or("-")
        ));
        p.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nserver-first",
        )?;
        // Echo until the client side closes, then close too.
        loop {
            let got = p.read_some()?;
            if got.is_empty() {
                p.event("eof");
                return p.stream().shutdown(Shutdown::Write);
            }
            p.send(&got)?;
        }
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(
        b"GET /chat HTTP/1.1\r\nHost: lb.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("send upgrade request");
    up.expect_event("upgrade: websocket / connection: upgrade");
    let head = c.read_head().expect("read").expect("a 101");
    assert_eq!(head.status(), 101, "{}", head.text());
    assert_eq!(head.get("upgrade"), Some("websocket"), "{}", head.text());
    assert_eq!(head.get("connection"), Some("upgrade"), "{}", head.text());
    assert_eq!(
        c.read_exact(12).expect("server-first bytes"),
        b"server-first"
    );
    for msg in [
        &b"ping-1"[..],
        b"GET /not-http HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\x01\x02\xff binary \r\n\r\n",
    ] {
        c.send(msg).expect("send through the tunnel");
        assert_eq!(c.read_exact(msg.len()).expect("echo"), msg);
    }
    c.stream().shutdown(Shutdown::Write).expect("half-close");
    up.expect_event("eof");
    let (rest, closed) = c.read_until_close(WAIT);
    assert!(closed, "the tunnel must close when the upstream closes");
    assert!(rest.is_empty(), "stray bytes after the tunnel: {rest:?}");
}

/// Without a 101 the connection stays HTTP: the next request on it is served normally.
#[test]
fn upgrade_refused_connection_stays_http() {
    let b = Backend::start("plain");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.request(
        b"GET /ws HTTP/1.1\r\nHost: lb.test\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("upgrade").is_none());
    let first = b.last_request();
    assert_eq!(
        first.header("upgrade"),
        Some("websocket"),
        "the upgrade was offered upstream"
    );
    let again = c.get("/next");
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-path"), Some("/next"));
    assert_eq!(b.request_count(), 2);
}

/// An upstream that switches protocols without having been asked is not trusted: 502.
#[test]
fn unrequested_101_is_502() {
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let r = lb_testkit::get(lb.addr(), "/");
    crate::assert_lb_error(&r, 502);
}
