//! HTTP/1.1 through TLS: the same exchange as clear text, with `X-Forwarded-Proto: https`,
//! bodies streamed both ways, and keep-alive over one session.

use super::{client, make_cert, tls_lb, tls_metric, tls_open, BOTH};
use crate::served_by;
use lb_testkit::{
    get, request, upload_pattern_on, Backend, Pattern, Reply, ScratchDir, Scripted, WAIT,
};
use std::io::Write;
use std::net::Shutdown;

#[test]
fn x_forwarded_proto_is_https_over_tls_and_http_in_clear_text() {
    let dir = ScratchDir::new("tls-proto");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("xfp");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &["--access-log"]);
    let mut conn = tls_open(lb.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    let spoofed = request("GET", "/s", &[("X-Forwarded-Proto", "http")], b"");
    assert_eq!(served_by(&conn.request(&spoofed)), "xfp");
    assert_eq!(
        b.last_request().headers.get_all("x-forwarded-proto"),
        ["https"]
    );
    assert!(b.last_request().header("x-forwarded-for").is_some());
    assert_eq!(served_by(&get(lb.addr(), "/c")), "xfp");
    assert_eq!(
        b.last_request().headers.get_all("x-forwarded-proto"),
        ["http"]
    );
    // The access log names the TLS version of each request's connection.
    let log = lb.wait_for_stderr(WAIT, &["request=\"GET /s\"", "request=\"GET /c\""]);
    let line = |path: &str| {
        let needle = format!("request=\"GET {path}\"");
        log.lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("/s").ends_with(" tls=1.3"), "{}", line("/s"));
    assert!(line("/c").ends_with(" tls=-"), "{}", line("/c"));
}

#[test]
fn large_bodies_stream_both_ways_over_tls() {
    let dir = ScratchDir::new("tls-bodies");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let len = 8 << 20;
    let up = Backend::start("up");
    let down = Backend::start_with(
        "down",
        Reply::Big {
            len,
            chunked: false,
        },
    );
    let lb = tls_lb(
        1,
        &[("/up", &[up.addr()]), ("/down", &[down.addr()])],
        &[&cert],
        &[],
    );
    let config = client(BOTH, &[]);
    for chunked in [false, true] {
        let mut conn = tls_open(lb.tls_addr(), &config, Some("a.test"));
        let r = upload_pattern_on(&mut conn, "/up/x", len, chunked);
        assert_eq!(served_by(&r), "up");
        let rec = up.last_request();
        assert_eq!(rec.body_len, len, "chunked {chunked}");
        assert_eq!(
            rec.body_checksum,
            Pattern::checksum(len),
            "chunked {chunked}"
        );
    }
    let mut conn = tls_open(lb.tls_addr(), &config, Some("a.test"));
    conn.send(&request("GET", "/down/x", &[], b""))
        .expect("send");
    let r = conn.read_response_digest(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_len, len);
    assert_eq!(r.body_checksum, Pattern::checksum(len));
    // The connection is still good after a big body.
    assert_eq!(r.header("X-Backend"), Some("down"));
    let again = conn.get("/up/y");
    assert_eq!(served_by(&again), "up");
}

#[test]
fn keep_alive_carries_many_requests_over_one_session() {
    let dir = ScratchDir::new("tls-keepalive");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("ka");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    let mut conn = tls_open(lb.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    for i in 0..50 {
        let r = conn.get(&format!("/n/{i}"));
        assert_eq!(served_by(&r), "ka");
        assert!(!r.closes());
    }
    // Pipelined: three requests in one write, three answers in order.
    let mut three = Vec::new();
    for i in 0..3 {
        three.extend(request("GET", &format!("/p/{i}"), &[], b""));
    }
    conn.send(&three).expect("send");
    for i in 0..3 {
        let r = conn.read_response(false).expect("pipelined answer");
        assert_eq!(r.header("X-Path"), Some(format!("/p/{i}").as_str()));
    }
    assert_eq!(b.request_count(), 53);
    let handshakes = tls_metric(
        &lb,
        "lb_tls_handshakes_total",
        "version=\"1.3\",kind=\"full\"",
    );
    assert_eq!(handshakes, 1.0);
}

/// A WebSocket upgrade over TLS: after the 101 the decrypted bytes are tunnelled both ways, and
/// the client's `close_notify` ends the tunnel like a half-close does in clear text.
#[test]
fn an_upgrade_tunnels_bytes_over_tls() {
    let dir = ScratchDir::new("tls-tunnel");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")?;
        loop {
            let got = p.read_some()?;
            if got.is_empty() {
                p.event("eof");
                return p.stream().shutdown(Shutdown::Write);
            }
            p.send(&got)?;
        }
    });
    let lb = tls_lb(1, &[("/", &[up.addr()])], &[&cert], &[]);
    let mut c = tls_open(lb.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    c.send(
        b"GET /chat HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("send upgrade request");
    let head = c.read_head().expect("read").expect("a 101");
    assert_eq!(head.status(), 101, "{}", head.text());
    for msg in [
        &b"ping-1"[..],
        b"GET /not-http HTTP/1.1\r\n\r\n",
        &[0u8, 1, 2, 255][..],
    ] {
        c.send(msg).expect("send through the tunnel");
        assert_eq!(c.read_exact(msg.len()).expect("echo"), msg);
    }
    let wire = c.wire_mut();
    wire.0.conn.send_close_notify();
    wire.flush().expect("send close_notify");
    up.expect_event("eof");
    let (rest, closed) = c.read_until_close(WAIT);
    assert!(closed, "the tunnel closes when the upstream closes");
    assert!(rest.is_empty(), "stray bytes after the tunnel: {rest:?}");
}

/// The status page's data names the TLS listener beside the clear-text and admin ones.
#[test]
fn stats_lists_the_tls_listener() {
    let dir = ScratchDir::new("tls-stats");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("s");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    let stats = lb.admin().call("GET", "/stats", b"").json();
    let kinds: Vec<(String, String)> = stats["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| (l["kind"].to_string(), l["addr"].to_string()))
        .collect();
    let want =
        |kind: &str, addr: std::net::SocketAddr| (format!("\"{kind}\""), format!("\"{addr}\""));
    assert_eq!(
        kinds,
        vec![
            want("http", lb.addr()),
            want("tls", lb.tls_addr()),
            want("admin", lb.admin_addr()),
        ]
    );
}
