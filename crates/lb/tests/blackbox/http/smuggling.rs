//! Issue 3, "Reject, never guess": every request two parsers could read differently is refused
//! by lb itself with a 4xx and `Connection: close`, the connection is closed, and the backend
//! receives nothing at all (no request, not even a connection). Named after sozu's smuggling
//! tests; RFC 9112 §6.3 (framing), §7.1 (chunked), §2.2 and §5 (lines and fields), §3.2 (Host).

use crate::{assert_lb_error, lb, WAIT};
use lb_testkit::{Backend, Conn};

/// Sends `raw` on a fresh connection to an lb in front of one recording backend and asserts that
/// lb answered `status` itself, closed the connection, and forwarded nothing.
fn refused(raw: &[u8], status: u16) {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    refused_by(&lb, &b, raw, status);
}

fn refused_by(lb: &lb_testkit::LbProcess, b: &Backend, raw: &[u8], status: u16) {
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned();
    let mut c = Conn::open(lb.addr());
    // lb may answer and close before reading everything; the response is what counts.
    let _ = c.send(raw);
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("no response to {shown:?}: {e}"));
    assert_lb_error(&r, status);
    assert!(
        r.closes(),
        "{status} for {shown:?} must say Connection: close: {:?}",
        r.headers
    );
    assert!(
        c.peer_closed_within(WAIT),
        "lb kept the connection open after {status} for {shown:?}"
    );
    assert_eq!(
        b.request_count(),
        0,
        "the backend received a request for {shown:?}"
    );
    assert_eq!(b.connections(), 0, "lb connected upstream for {shown:?}");
}

/// Each of `raws` against one lb, each on its own connection.
fn all_refused(raws: &[&[u8]], status: u16) {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    for raw in raws {
        refused_by(&lb, &b, raw, status);
    }
}

#[test]
fn smuggling_te_cl() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn smuggling_double_content_length() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nContent-Length: 5\r\n\r\nhello!",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ],
        400,
    );
}

#[test]
fn smuggling_cl_not_digits() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5.0\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\nhello",
        ],
        400,
    );
}

#[test]
fn smuggling_cl_overflow() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\nhello",
        400,
    );
}

#[test]
fn smuggling_te_not_chunked() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked-false\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn smuggling_te_chunked_not_final() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
        ],
        400,
    );
}

/// lb is stricter than RFC 9112 §6.3 here: it forwards bodies as they are, so a coding before
/// `chunked` would leave the upstream to undo what lb cannot check. HAProxy and nginx refuse
/// these too (docs/http.md). A well-formed list of codings before a final `chunked` is a coding
/// lb does not implement: 501 (RFC 9112 §6.1), and the connection closes all the same.
#[test]
fn smuggling_te_codings_before_chunked() {
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: deflate,chunked\r\n\r\n0\r\n\r\n",
        ],
        501,
    );
    all_refused(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn smuggling_te_in_http10() {
    refused(
        b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn smuggling_te_with_space_before_colon() {
    refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn obs_fold_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n\tb\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn space_before_colon_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
        ],
        400,
    );
}

#[test]
fn bare_cr_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.1\rHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\r\n\r\n",
        ],
        400,
    );
}

/// Policy: a bare LF as a line ending is rejected (HAProxy's default), because a parser behind
/// lb that ends lines differently would see a different head.
#[test]
fn bare_lf_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello",
        ],
        400,
    );
}

#[test]
fn nul_in_value_rejected() {
    refused(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400);
}

#[test]
fn control_characters_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX\0A: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX\x1bA: 1\r\n\r\n",
            b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn invalid_method_rejected() {
    all_refused(
        &[
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn invalid_version_rejected() {
    all_refused(
        &[
            b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            b"GET / http/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
            b"GET / HTTP/01.1\r\nHost: x\r\n\r\n",
            b"GET /\r\nHost: x\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn garbage_rejected() {
    all_refused(
        &[
            // The start of a TLS ClientHello.
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"NOT-HTTP\r\n\r\n",
            b"\r\n\r\n\r\n\r\nHELLO\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
        ],
        400,
    );
}

/// MAX_REQUEST_LINE is 16 KiB: the line alone over it is a 414, before the head is complete.
#[test]
fn request_line_too_long_414() {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let long = format!("/{}", "a".repeat(16 * 1024));
    refused_by(
        &lb,
        &b,
        format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        414,
    );
    // Unfinished: no CRLF yet, already over the limit.
    refused_by(&lb, &b, format!("GET {long}").as_bytes(), 414);
}

#[test]
fn request_line_at_16k_is_served() {
    let b = Backend::start("fine");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let target = format!("/{}", "b".repeat(16 * 1024 - "GET / HTTP/1.1".len()));
    let line = format!("GET {target} HTTP/1.1");
    assert_eq!(line.len(), 16 * 1024);
    let mut c = Conn::open(lb.addr());
    let r = c.request(format!("{line}\r\nHost: x\r\n\r\n").as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(b.last_request().target, target);
}

#[test]
fn headers_too_large_431() {
    let big = "a".repeat(64 * 1024);
    refused(
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        431,
    );
}

#[test]
fn too_many_headers_431() {
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        raw.push_str(&format!("X-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    refused(raw.as_bytes(), 431);
}

#[test]
fn missing_host_400() {
    refused(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
}

#[test]
fn two_hosts_400() {
    all_refused(
        &[
            b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.example\r\nhost: a.example\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn invalid_host_400() {
    all_refused(
        &[
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn fragment_in_target_400() {
    refused(b"GET /public#/../admin HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn asterisk_form_only_for_options_400() {
    all_refused(
        &[
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"DELETE * HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn authority_form_only_for_connect_400() {
    all_refused(
        &[
            b"GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
        400,
    );
}

#[test]
fn absolute_form_other_schemes_400() {
    all_refused(
        &[
            b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET http://user:pw@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET http:///x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        ],
        400,
    );
}

// ---- invalid chunked bodies: refused before anything is forwarded ----

/// The whole request is sent in one write, so lb sees the bad chunk before it forwards the head.
/// It has already connected upstream by then (the head was valid), but the backend receives no
/// byte of the request.
fn refused_chunked(body: &[u8]) {
    let b = Backend::start("never");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    let shown = String::from_utf8_lossy(body).into_owned();
    let mut c = Conn::open(lb.addr());
    let _ = c.send(&raw);
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("no response to body {shown:?}: {e}"));
    assert_lb_error(&r, 400);
    assert!(r.closes(), "{:?}", r.headers);
    assert!(
        c.peer_closed_within(WAIT),
        "connection kept after {shown:?}"
    );
    assert_eq!(b.request_count(), 0, "backend got a request for {shown:?}");
    // Head and body went in one write, so lb sees the bad chunk before it picks an upstream.
    assert_eq!(b.connections(), 0, "backend was connected for {shown:?}");
}

#[test]
fn invalid_chunk_size_400() {
    for body in [
        &b"g\r\nhello\r\n0\r\n\r\n"[..],
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"5 x\r\nhello\r\n0\r\n\r\n",
    ] {
        refused_chunked(body);
    }
}

#[test]
fn chunk_size_overflow_400() {
    refused_chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n");
    refused_chunked(b"FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn chunk_missing_crlf_400() {
    for body in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\rhello\r\n0\r\n\r\n",
    ] {
        refused_chunked(body);
    }
}

#[test]
fn chunk_extension_and_trailer_controls_400() {
    for body in [
        &b"5;a\0b\r\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX : y\r\n\r\n",
        b"5\r\nhello\r\n0\r\nno colon\r\n\r\n",
    ] {
        refused_chunked(body);
    }
}
