//! Response parsing and the head written to clients: one test per rule, exact output bytes.

use super::*;
use crate::{EMPTY_HEADER, MAX_HEADERS};
use proptest::prelude::*;

/// What a parsed head says, owned so tests can compare it after the buffers are gone.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    status: u16,
    reason: String,
    version: Version,
    head_len: usize,
    body: BodyKind,
    reusable: bool,
}

fn parse(raw: &[u8], head_request: bool) -> Result<Option<Parsed>, HttpError> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    Ok(
        parse_response(raw, &mut headers, head_request)?.map(|r| Parsed {
            status: r.status,
            reason: r.reason.to_owned(),
            version: r.version,
            head_len: r.head_len,
            body: r.body,
            reusable: r.reusable,
        }),
    )
}

fn ok(raw: &[u8]) -> Parsed {
    match parse(raw, false) {
        Ok(Some(p)) => p,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn assert_invalid(raw: &[u8], detail: &str) {
    match parse(raw, false) {
        Err(e) => assert_eq!(
            (e.kind, e.detail),
            (ErrorKind::UpstreamInvalid, detail),
            "{:?}",
            String::from_utf8_lossy(raw)
        ),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

/// The head lb writes to a client for the upstream response `raw`.
fn relay(raw: &[u8], head_request: bool, version: Version, keep_alive: bool) -> String {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let resp = parse_response(raw, &mut headers, head_request)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    write_response_head(
        &resp,
        ClientSide {
            version,
            keep_alive,
        },
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

fn relay11(raw: &[u8]) -> String {
    relay(raw, false, Version::Http11, true)
}

// ---- parsing ----

#[test]
fn parses_ok_with_length() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(
        ok(raw),
        Parsed {
            status: 200,
            reason: "OK".into(),
            version: Version::Http11,
            head_len: raw.len() - 5,
            body: BodyKind::Length(5),
            reusable: true,
        }
    );
}

#[test]
fn incomplete_returns_none() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for end in 0..raw.len() {
        assert_eq!(parse(&raw[..end], false), Ok(None), "prefix {end}");
    }
}

#[test]
fn missing_reason_is_empty() {
    assert_eq!(ok(b"HTTP/1.1 204\r\n\r\n").reason, "");
    assert_eq!(ok(b"HTTP/1.1 204 \r\n\r\n").reason, "");
}

#[test]
fn rejects_bare_lf() {
    assert_invalid(
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "bare LF line ending",
    );
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\n",
        "bare LF line ending",
    );
}

#[test]
fn rejects_obs_fold() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn rejects_space_before_colon() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn rejects_invalid_status() {
    assert_invalid(b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code");
    assert_invalid(b"HTTP/1.1 600 High\r\n\r\n", "invalid status code");
    assert_invalid(b"HTTP/1.1 20 OK\r\n\r\n", "invalid status line");
    assert_invalid(b"HTTP/1.1  200 OK\r\n\r\n", "invalid status line");
    assert_invalid(b"HTTP/2 200 OK\r\n\r\n", "invalid HTTP version");
}

#[test]
fn rejects_cl_and_te() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
    );
    // Even where no body follows.
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(parse_response(raw, &mut headers, true).is_err());
}

#[test]
fn rejects_double_cl_differing() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
        "differing Content-Length values",
    );
}

#[test]
fn rejects_invalid_cl() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "invalid Content-Length",
    );
    assert_invalid(
        b"HTTP/1.1 304 OK\r\nContent-Length: x\r\n\r\n",
        "invalid Content-Length",
    );
}

#[test]
fn rejects_te_other_than_chunked() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "unsupported Transfer-Encoding",
    );
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "unsupported Transfer-Encoding",
    );
}

#[test]
fn rejects_te_in_http10() {
    assert_invalid(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding in an HTTP/1.0 response",
    );
}

#[test]
fn oversize_head_is_invalid() {
    let mut raw = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    raw.resize(MAX_HEAD_BYTES, b'a');
    assert_invalid(&raw, "response head too large");
}

#[test]
fn too_many_headers_is_invalid() {
    let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert_invalid(&raw, "too many header fields");
}

#[test]
fn chunked_response() {
    let p = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!((p.body, p.reusable), (BodyKind::Chunked, true));
}

#[test]
fn no_framing_is_close_delimited_and_not_reusable() {
    let p = ok(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    assert_eq!((p.body, p.reusable), (BodyKind::CloseDelimited, false));
}

#[test]
fn content_length_zero_is_empty() {
    let p = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!((p.body, p.reusable), (BodyKind::Empty, true));
}

#[test]
fn head_response_has_no_body() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    let p = parse(raw, true).unwrap().unwrap();
    assert_eq!((p.body, p.reusable), (BodyKind::Empty, true));
    // HEAD responses may describe the GET's coding, whatever it is.
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(parse(raw, true).unwrap().unwrap().body, BodyKind::Empty);
}

#[test]
fn status_1xx_204_304_have_no_body() {
    for status in [100, 101, 103, 204, 304] {
        let raw = format!("HTTP/1.1 {status} X\r\nUpgrade: x\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(ok(raw.as_bytes()).body, BodyKind::Empty, "{status}");
    }
}

#[test]
fn connection_close_not_reusable() {
    assert!(!ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n").reusable);
}

#[test]
fn http10_keepalive() {
    assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable);
    assert!(ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n").reusable);
}

// ---- writing the client's head ----

#[test]
fn relays_length_response() {
    assert_eq!(
        relay11(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVia: 1.1 lb\r\nContent-Length: 5\r\n\r\n"
    );
}

#[test]
fn hop_by_hop_dropped() {
    let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                Proxy-Connection: x\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\n\
                Server: up\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nServer: up\r\nVia: 1.1 lb\r\nContent-Length: 2\r\n\r\n"
    );
}

#[test]
fn connection_named_headers_dropped() {
    let raw = b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nx-internal: 1\r\nX-Public: 2\r\n\
                Content-Length: 0\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nX-Public: 2\r\nVia: 1.1 lb\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn set_cookie_never_merged() {
    let raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nDate: x\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nDate: x\r\nset-cookie: b=2\r\nVia: 1.1 lb\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn chunked_reemitted() {
    let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\nX: y\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nX: y\r\nVia: 1.1 lb\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

#[test]
fn content_length_list_normalized() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 3\r\n\r\n"
    );
}

#[test]
fn client_close_gets_connection_close() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay(raw, false, Version::Http11, false),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        relay(raw, false, Version::Http10, false),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn http10_keepalive_client_gets_connection_keep_alive() {
    let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay(raw, false, Version::Http10, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn close_delimited_gets_connection_close() {
    let raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nVia: 1.0 lb\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn head_response_keeps_content_length() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n";
    assert_eq!(
        relay(raw, true, Version::Http11, true),
        "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nVia: 1.1 lb\r\nContent-Length: 1234\r\n\r\n"
    );
}

#[test]
fn head_response_drops_transfer_encoding() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        relay(raw, true, Version::Http11, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\n\r\n"
    );
}

#[test]
fn not_modified_keeps_content_length() {
    let raw = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 304 Not Modified\r\nVia: 1.1 lb\r\nContent-Length: 99\r\n\r\n"
    );
}

#[test]
fn no_content_drops_content_length() {
    let raw = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX: y\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 204 No Content\r\nX: y\r\nVia: 1.1 lb\r\n\r\n"
    );
}

#[test]
fn interim_response_has_no_connection_field() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(
        relay(raw, false, Version::Http11, false),
        "HTTP/1.1 100 Continue\r\nVia: 1.1 lb\r\n\r\n"
    );
}

#[test]
fn empty_reason_keeps_the_space() {
    let raw = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 \r\nVia: 1.1 lb\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn writer_appends_without_reallocating() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let resp = parse_response(raw, &mut headers, false).unwrap().unwrap();
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"x");
    let before = out.as_ptr();
    let client = ClientSide {
        version: Version::Http10,
        keep_alive: true,
    };
    write_response_head(&resp, client, &mut out);
    assert_eq!(out.as_ptr(), before);
    assert!(out.starts_with(b"xHTTP/1.1 200 OK\r\n"));
}

// ---- protocol switch, HTTP/1.0 clients, Via ----

#[test]
fn switching_protocols_forwards_upgrade() {
    let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Via: 1.1 lb\r\n\
         Connection: upgrade\r\n\r\n"
    );
    // Not even a client that asked to close changes that: the tunnel ends when a side closes.
    assert!(relay(raw, false, Version::Http11, false).ends_with("Connection: upgrade\r\n\r\n"));
}

#[test]
fn switching_protocols_is_never_reusable() {
    let p = ok(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    );
    assert_eq!((p.body, p.reusable), (BodyKind::Empty, false));
}

#[test]
fn switching_protocols_without_upgrade_is_invalid() {
    assert_invalid(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n",
        "101 response without Upgrade",
    );
}

#[test]
fn upgrade_dropped_from_other_responses() {
    let raw =
        b"HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn http10_client_never_gets_chunked() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";
    // Even when it asked for keep-alive: the body now ends with the connection.
    for keep_alive in [true, false] {
        assert_eq!(
            relay(raw, false, Version::Http10, keep_alive),
            "HTTP/1.1 200 OK\r\nX: y\r\nVia: 1.1 lb\r\nConnection: close\r\n\r\n"
        );
    }
}

#[test]
fn interim_responses_only_for_http11_clients() {
    for keep_alive in [true, false] {
        let side = |version| ClientSide {
            version,
            keep_alive,
        };
        assert!(side(Version::Http11).accepts_interim());
        assert!(!side(Version::Http10).accepts_interim());
    }
}

#[test]
fn dechunk_only_for_http10_and_chunked() {
    let side = |version, keep_alive| ClientSide {
        version,
        keep_alive,
    };
    for keep_alive in [true, false] {
        assert!(dechunk_for(
            side(Version::Http10, keep_alive),
            BodyKind::Chunked
        ));
        assert!(!dechunk_for(
            side(Version::Http11, keep_alive),
            BodyKind::Chunked
        ));
        for body in [
            BodyKind::Empty,
            BodyKind::Length(3),
            BodyKind::CloseDelimited,
        ] {
            assert!(!dechunk_for(side(Version::Http10, keep_alive), body));
        }
    }
}

#[test]
fn http10_client_keeps_content_length_and_keep_alive() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        relay(raw, false, Version::Http10, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 lb\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn via_appended_after_received_via_fields() {
    let raw = b"HTTP/1.1 200 OK\r\nVia: 1.1 origin-cache\r\nX: y\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay11(raw),
        "HTTP/1.1 200 OK\r\nVia: 1.1 origin-cache\r\nX: y\r\nVia: 1.1 lb\r\nContent-Length: 0\r\n\r\n"
    );
}

// ---- the same rejections as for requests ----

#[test]
fn rejects_bare_cr_and_controls() {
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
        "invalid header value",
    );
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n",
        "invalid header value",
    );
    assert_invalid(
        b"HTTP/1.1 200 OK\r\nX\0: b\r\nContent-Length: 0\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn rejects_garbage_and_other_protocols() {
    assert_invalid(b"HTTP/2.0 200 OK\r\n\r\n", "invalid HTTP version");
    assert_invalid(b"ICY 200 OK\r\n\r\n", "invalid HTTP version");
    assert_invalid(b"\x16\x03\x01\x00", "invalid HTTP version");
    assert_invalid(b"HTTP/1.1 2x0 OK\r\n\r\n", "invalid status line");
}

#[test]
fn rejects_cl_not_digits_or_overflow() {
    for v in ["+5", "5 5", "0x5", "", "18446744073709551616"] {
        let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
        assert_invalid(raw.as_bytes(), "invalid Content-Length");
    }
}

/// A valid response head: status, fields, framing; and whether it answers a HEAD request.
fn valid_response() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let status = prop::sample::select(vec![100u16, 101, 103, 200, 201, 204, 301, 304, 404, 500]);
    let field = (
        "[A-Za-z][A-Za-z0-9-]{0,12}".prop_filter("not a framing or connection field", |n| {
            ![
                "content-length",
                "transfer-encoding",
                "connection",
                "upgrade",
            ]
            .iter()
            .any(|f| n.eq_ignore_ascii_case(f))
        }),
        "[!-~]([ -~]{0,30}[!-~])?",
    );
    let framing = prop::sample::select(vec![0u8, 1, 2]);
    (
        status,
        any::<bool>(),
        prop::collection::vec(field, 0..10),
        framing,
        any::<bool>(),
    )
        .prop_map(|(status, http11, fields, framing, head_request)| {
            let version = if http11 { "HTTP/1.1" } else { "HTTP/1.0" };
            let mut raw = format!("{version} {status} Reason\r\n");
            if status == 101 {
                raw.push_str("Upgrade: websocket\r\nConnection: upgrade\r\n");
            }
            for (name, value) in fields {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            match framing {
                1 => raw.push_str("Content-Length: 42\r\n"),
                2 if http11 => raw.push_str("Transfer-Encoding: chunked\r\n"),
                _ => {}
            }
            raw.push_str("\r\n");
            (raw.into_bytes(), head_request)
        })
}

proptest! {
    #[test]
    fn written_head_reads_back_with_the_framing_the_client_gets(
        (raw, head_request) in valid_response(),
        http10 in any::<bool>(),
        keep_alive in any::<bool>(),
    ) {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let resp = parse_response(&raw, &mut headers, head_request).unwrap().unwrap();
        let client = ClientSide {
            version: if http10 { Version::Http10 } else { Version::Http11 },
            keep_alive,
        };
        let mut out = Vec::new();
        write_response_head(&resp, client, &mut out);
        let mut again_headers = [EMPTY_HEADER; MAX_HEADERS + 4];
        let again = parse_response(&out, &mut again_headers, head_request).unwrap().unwrap();
        prop_assert_eq!(again.head_len, out.len());
        prop_assert_eq!(again.status, resp.status);
        // The client reads the body as lb relays it: de-chunked for HTTP/1.0, else unchanged.
        let expected = if dechunk_for(client, resp.body) {
            BodyKind::CloseDelimited
        } else {
            resp.body
        };
        prop_assert_eq!(again.body, expected);
        // A client that reads the connection as closing after this response is right to.
        let interim = (100..200).contains(&resp.status);
        if !interim && (!keep_alive || expected == BodyKind::CloseDelimited) {
            prop_assert!(!again.reusable);
        }
        let via: Vec<&[u8]> = again
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("via"))
            .map(|h| h.value)
            .collect();
        let ours: &[u8] = match resp.version {
            Version::Http10 => b"1.0 lb",
            Version::Http11 => b"1.1 lb",
            Version::Http2 => b"2 lb",
        };
        prop_assert_eq!(via.last().copied(), Some(ours));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..512),
        head_request in any::<bool>(),
    ) {
        let _ = parse(&raw, head_request);
    }
}
