//! The head lb forwards upstream: exact bytes for every rewrite rule.

use super::*;
use crate::Scheme;

/// Asserts that lb forwards `raw` (target as is, client 10.0.0.9) as exactly: `kept` (the request
/// line and the client's fields lb keeps, in order), the fields lb adds to an HTTP/1.1 request
/// whose Host is `host`, `last` (what lb writes after its own fields: re-emitted framing,
/// `Connection: upgrade`, or nothing) and the empty line. The request id is always `id-1`.
#[track_caller]
fn assert_forwards(raw: &[u8], kept: &str, host: &str, last: &str) {
    assert_eq!(
        forward_as_is(raw),
        format!(
            "{kept}X-Forwarded-For: 10.0.0.9\r\n\
             X-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: {host}\r\n\
             Via: 1.1 lb\r\n\
             X-Request-ID: id-1\r\n\
             {last}\r\n"
        )
    );
}

#[test]
fn forwards_simple_get() {
    assert_forwards(
        b"GET /x HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n",
        "example.com",
        "",
    );
}

#[test]
fn target_written_as_lead_and_rest() {
    let raw = b"GET /api/users?id=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = forward(raw, "/", "users?id=1", "10.0.0.9");
    assert!(out.starts_with("GET /users?id=1 HTTP/1.1\r\n"), "{out}");
}

#[test]
fn xff_appended() {
    let raw = b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\n\
                x-forwarded-for: 2.2.2.2, 3.3.3.3\r\n\r\n";
    assert_eq!(
        forward_as_is(raw),
        "GET / HTTP/1.1\r\n\
         Host: a\r\n\
         X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n\
         X-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: a\r\n\
         Via: 1.1 lb\r\nX-Request-ID: id-1\r\n\
         \r\n"
    );
}

#[test]
fn xff_empty_values_skipped() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:\r\n\r\n";
    assert!(forward_as_is(raw).contains("\r\nX-Forwarded-For: 10.0.0.9\r\n"));
}

#[test]
fn xff_ipv6_client() {
    let out = forward(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "", "/", "2001:db8::1");
    assert!(
        out.contains("\r\nX-Forwarded-For: 2001:db8::1\r\n"),
        "{out}"
    );
}

#[test]
fn x_forwarded_proto_and_host_replaced() {
    let raw = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost: real\r\n\
                X-Forwarded-Host: spoofed\r\n\r\n";
    assert_forwards(raw, "GET / HTTP/1.1\r\nHost: real\r\n", "real", "");
}

/// Over TLS the proto is `https`, whatever the client claimed, and it is sent once.
#[test]
fn x_forwarded_proto_https_over_tls() {
    let raw = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: http\r\nHost: real\r\n\r\n";
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let req = parse_request(raw, &mut headers).unwrap().unwrap();
    let client = ClientAddr::new("10.0.0.9".parse().unwrap()).with_scheme(Scheme::Https);
    let mut out = Vec::new();
    write_request_head(&req, "", "/", &client, b"id-1", &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches("X-Forwarded-Proto").count(), 1, "{out}");
    assert!(out.contains("\r\nX-Forwarded-Proto: https\r\n"), "{out}");
}

/// The client's `X-Request-ID` is replaced by the one the caller gives (kept or new: the
/// caller's choice), never forwarded twice.
#[test]
fn request_id_replaced_by_the_callers() {
    let raw = b"GET / HTTP/1.1\r\nX-Request-ID: from-client\r\nHost: real\r\n\r\n";
    assert_forwards(raw, "GET / HTTP/1.1\r\nHost: real\r\n", "real", "");
}

#[test]
fn hop_by_hop_dropped() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\n\
                Upgrade: websocket\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n";
    assert_forwards(
        raw,
        "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n",
        "a",
        "",
    );
}

#[test]
fn connection_named_headers_dropped() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, foo\r\nx-secret: 1\r\n\
                Foo: 2\r\nX-Kept: 3\r\n\r\n";
    assert_forwards(raw, "GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 3\r\n", "a", "");
}

#[test]
fn connection_cannot_drop_host() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n";
    assert!(forward_as_is(raw).starts_with("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For"));
}

#[test]
fn name_case_order_and_repeats_preserved() {
    let raw = b"GET / HTTP/1.1\r\nhOsT: a\r\nCookie: a=1\r\nx-lower: v  w\r\nCookie: b=2\r\n\r\n";
    assert_forwards(
        raw,
        "GET / HTTP/1.1\r\nhOsT: a\r\nCookie: a=1\r\nx-lower: v  w\r\nCookie: b=2\r\n",
        "a",
        "",
    );
}

#[test]
fn content_length_reemitted_last() {
    let raw = b"POST /p HTTP/1.1\r\nContent-Length: 5, 5\r\nHost: a\r\n\r\nhello";
    assert_forwards(
        raw,
        "POST /p HTTP/1.1\r\nHost: a\r\n",
        "a",
        "Content-Length: 5\r\n",
    );
}

#[test]
fn chunked_reemitted_last() {
    let raw = b"POST /p HTTP/1.1\r\ntransfer-encoding: Chunked\r\nHost: a\r\n\r\n";
    assert_forwards(
        raw,
        "POST /p HTTP/1.1\r\nHost: a\r\n",
        "a",
        "Transfer-Encoding: chunked\r\n",
    );
}

#[test]
fn empty_post_keeps_content_length_zero() {
    assert_forwards(
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: a\r\n",
        "a",
        "Content-Length: 0\r\n",
    );
    assert_forwards(
        b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\n",
        "a",
        "",
    );
}

#[test]
fn http10_forwarded_as_http11_with_empty_host() {
    let raw = b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";
    assert_eq!(
        forward_as_is(raw),
        "GET /old HTTP/1.1\r\n\
         Accept: */*\r\n\
         Host: \r\n\
         X-Forwarded-For: 10.0.0.9\r\n\
         X-Forwarded-Proto: http\r\n\
         Via: 1.0 lb\r\nX-Request-ID: id-1\r\n\
         \r\n"
    );
}

#[test]
fn writer_appends_without_reallocating() {
    let raw =
        b"POST /p HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Length: 3\r\n\r\n";
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let req = parse_request(raw, &mut headers).unwrap().unwrap();
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"earlier bytes|");
    let before = out.as_ptr();
    write_request_head(
        &req,
        "",
        "/p",
        &ClientAddr::new("10.0.0.9".parse().unwrap()),
        b"id-1",
        &mut out,
    );
    assert_eq!(out.as_ptr(), before);
    assert!(out.starts_with(b"earlier bytes|POST /p HTTP/1.1\r\n"));
}

#[test]
fn absolute_form_authority_replaces_host_in_place() {
    let raw =
        b"GET http://example.com:8080/x?q=1 HTTP/1.1\r\nAccept: */*\r\nhost: client.example\r\n\
                X-A: 1\r\n\r\n";
    assert_forwards(
        raw,
        "GET /x?q=1 HTTP/1.1\r\nAccept: */*\r\nhost: example.com:8080\r\nX-A: 1\r\n",
        "example.com:8080",
        "",
    );
}

#[test]
fn absolute_form_in_http10_without_host_gets_the_authority() {
    let raw = b"GET http://example.com HTTP/1.0\r\n\r\n";
    assert_eq!(
        forward_as_is(raw),
        "GET / HTTP/1.1\r\n\
         Host: example.com\r\n\
         X-Forwarded-For: 10.0.0.9\r\n\
         X-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: example.com\r\n\
         Via: 1.0 lb\r\nX-Request-ID: id-1\r\n\
         \r\n"
    );
}

#[test]
fn options_asterisk_forwarded() {
    let raw = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(forward_as_is(raw).starts_with("OPTIONS * HTTP/1.1\r\nHost: a\r\n"));
}

#[test]
fn via_appended_after_received_via_fields() {
    let raw = b"GET / HTTP/1.1\r\nVia: 1.0 fred, 1.1 p.example.net\r\nHost: a\r\nvia: 2 x\r\nX: y\r\n\r\n";
    assert_forwards(
        raw,
        "GET / HTTP/1.1\r\nVia: 1.0 fred, 1.1 p.example.net\r\nHost: a\r\nvia: 2 x\r\nX: y\r\n",
        "a",
        "",
    );
}

#[test]
fn upgrade_forwarded_with_connection_upgrade() {
    let raw =
        b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Secret\r\n\
                X-Secret: s\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Version: 13\r\nKeep-Alive: 5\r\n\r\n";
    assert_forwards(
        raw,
        "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        "a",
        "Connection: upgrade\r\n",
    );
}

#[test]
fn upgrade_without_connection_option_dropped() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: x\r\n\r\n";
    let out = forward_as_is(raw);
    assert!(!out.contains("Upgrade"), "{out}");
    assert!(!out.contains("Connection"), "{out}");
    assert!(out.contains("HTTP2-Settings: x\r\n"), "{out}");
}

#[test]
fn expect_forwarded_unchanged() {
    let raw = b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n";
    assert_forwards(
        raw,
        "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n",
        "a",
        "Content-Length: 7\r\n",
    );
}

#[test]
fn http10_expect_dropped() {
    let raw = b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n";
    let out = forward_as_is(raw);
    assert!(!out.to_ascii_lowercase().contains("expect"), "{out}");
}
