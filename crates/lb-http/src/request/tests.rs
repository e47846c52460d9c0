//! Request parsing: one test per rule. The writer's tests are in `forward`, property tests in
//! `properties`; the helpers here serve all three.

use super::*;
use crate::{EMPTY_HEADER, MAX_HEADERS, MAX_REQUEST_LINE};

/// What a parsed head says, owned so tests can compare it after the buffers are gone.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    method: String,
    target: String,
    version: Version,
    head_len: usize,
    body: BodyKind,
    keep_alive: bool,
    host: Option<Vec<u8>>,
}

fn parse(raw: &[u8]) -> Result<Option<Parsed>, HttpError> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    Ok(parse_request(raw, &mut headers)?.map(|r| Parsed {
        method: r.method.to_owned(),
        target: r.target.to_owned(),
        version: r.version,
        head_len: r.head_len,
        body: r.body,
        keep_alive: r.keep_alive,
        host: r.host.map(<[u8]>::to_vec),
    }))
}

fn ok(raw: &[u8]) -> Parsed {
    match parse(raw) {
        Ok(Some(p)) => p,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn err(raw: &[u8]) -> HttpError {
    match parse(raw) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn assert_bad(raw: &[u8], detail: &str) {
    let e = err(raw);
    assert_eq!(
        (e.kind, e.detail),
        (ErrorKind::BadRequest, detail),
        "{:?}",
        String::from_utf8_lossy(raw)
    );
}

/// The head lb forwards for `raw` with the target split as `lead` + `rest`.
fn forward(raw: &[u8], lead: &str, rest: &str, client: &str) -> String {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let req = parse_request(raw, &mut headers).unwrap().unwrap();
    let mut out = Vec::new();
    write_request_head(
        &req,
        lead,
        rest,
        &ClientAddr::new(client.parse().unwrap()),
        b"id-1",
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

fn forward_as_is(raw: &[u8]) -> String {
    let target = ok(raw).target;
    forward(raw, "", &target, "10.0.0.9")
}

mod forward;
mod properties;

// ---- parsing: the request line ----

#[test]
fn parses_simple_get() {
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nBODY";
    assert_eq!(
        ok(raw),
        Parsed {
            method: "GET".into(),
            target: "/a?b=1".into(),
            version: Version::Http11,
            head_len: raw.len() - 4,
            body: BodyKind::Empty,
            keep_alive: true,
            host: Some(b"example.com".to_vec()),
        }
    );
}

#[test]
fn incomplete_returns_none() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for end in 0..raw.len() {
        assert_eq!(parse(&raw[..end]), Ok(None), "prefix {end}");
    }
    assert!(parse(raw).unwrap().is_some());
}

#[test]
fn accepts_leading_empty_line() {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    let raw = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(ok(raw).head_len, raw.len());
}

#[test]
fn connect_parses() {
    let p = ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(p.method, "CONNECT");
    assert_eq!(p.target, "example.com:443");
}

#[test]
fn rejects_invalid_method_token() {
    assert_bad(
        b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
    assert_bad(
        b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
}

#[test]
fn rejects_double_space_in_request_line() {
    assert_bad(
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
    assert_bad(
        b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid HTTP version",
    );
}

#[test]
fn rejects_control_in_target() {
    assert_bad(
        b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
    assert_bad(
        b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request line",
    );
}

#[test]
fn rejects_other_versions() {
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1"] {
        let raw = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_bad(raw.as_bytes(), "invalid HTTP version");
    }
    // httparse reads `HTTP/1.1` and then expects the line to end.
    assert_bad(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", "invalid line ending");
}

#[test]
fn rejects_missing_version() {
    assert_bad(b"GET /\r\nHost: a\r\n\r\n", "invalid request line");
}

// ---- parsing: line endings and field syntax ----

#[test]
fn rejects_bare_lf() {
    assert_bad(b"GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF line ending");
}

#[test]
fn rejects_bare_lf_in_header_section() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        "bare LF line ending",
    );
    assert_bad(b"GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF line ending");
    assert_bad(
        b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "bare LF line ending",
    );
}

#[test]
fn rejects_bare_lf_before_head_is_complete() {
    assert_bad(b"GET / HTTP/1.1\nHost: a", "bare LF line ending");
}

#[test]
fn rejects_bare_cr() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "invalid header value",
    );
    assert_bad(b"GET / HTTP/1.1\rHost: a\r\n\r\n", "invalid line ending");
}

#[test]
fn rejects_obs_fold() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",
        "invalid header name",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn rejects_space_before_colon() {
    assert_bad(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "invalid header name");
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\nhello",
        "invalid header name",
    );
}

#[test]
fn rejects_nul_in_value() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        "invalid header value",
    );
}

#[test]
fn rejects_control_in_value() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n",
        "invalid header value",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
        "invalid header value",
    );
}

#[test]
fn rejects_invalid_header_name() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n",
        "invalid header name",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        "invalid header name",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "invalid header name",
    );
}

#[test]
fn accepts_obs_text_and_tab_in_value() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tok\r\n\r\n";
    assert_eq!(ok(raw).head_len, raw.len());
}

// ---- parsing: size limits ----

#[test]
fn too_many_headers_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let e = err(&raw);
    assert_eq!(e.kind, ErrorKind::HeadersTooLarge);
    assert_eq!(e.kind.status(), 431);
}

#[test]
fn long_request_line_is_414() {
    let mut raw = b"GET /".to_vec();
    raw.resize(MAX_HEAD_BYTES, b'a');
    let e = err(&raw);
    assert_eq!(
        (e.kind, e.detail),
        (ErrorKind::UriTooLong, "request line too long")
    );
}

#[test]
fn request_line_over_its_own_limit_is_414_before_it_ends() {
    let mut raw = b"GET /".to_vec();
    raw.resize(MAX_REQUEST_LINE + 1, b'a');
    let e = err(&raw);
    assert_eq!(
        (e.kind, e.detail),
        (ErrorKind::UriTooLong, "request line too long")
    );
    // At the limit it is merely incomplete.
    assert_eq!(parse(&raw[..MAX_REQUEST_LINE]), Ok(None));
}

#[test]
fn complete_request_line_over_its_limit_is_414() {
    let mut raw = b"GET /".to_vec();
    raw.resize(MAX_REQUEST_LINE - " HTTP/1.1".len() + 1, b'a');
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(err(&raw).kind, ErrorKind::UriTooLong);
}

#[test]
fn request_line_of_exactly_the_limit_is_accepted() {
    let mut raw = b"GET /".to_vec();
    raw.resize(MAX_REQUEST_LINE - " HTTP/1.1".len(), b'a');
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        ok(&raw).target.len(),
        MAX_REQUEST_LINE - "GET  HTTP/1.1".len()
    );
}

#[test]
fn long_header_section_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    raw.resize(MAX_HEAD_BYTES + 100, b'a');
    let e = err(&raw);
    assert_eq!(e.kind, ErrorKind::HeadersTooLarge);
}

#[test]
fn complete_head_over_limit_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    raw.resize(MAX_HEAD_BYTES, b'a');
    raw.extend_from_slice(b"\r\n\r\n");
    assert_eq!(err(&raw).kind, ErrorKind::HeadersTooLarge);
}

#[test]
fn head_of_exactly_the_limit_is_accepted() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    raw.resize(MAX_HEAD_BYTES - 4, b'a');
    raw.extend_from_slice(b"\r\n\r\nbody");
    assert_eq!(ok(&raw).head_len, MAX_HEAD_BYTES);
}

// ---- parsing: framing (RFC 9112 §6) ----

#[test]
fn content_length_body() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(p.body, BodyKind::Length(5));
}

#[test]
fn content_length_ows_trimmed() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 5 \t\r\n\r\nhello");
    assert_eq!(p.body, BodyKind::Length(5));
}

#[test]
fn content_length_zero_is_empty() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(p.body, BodyKind::Empty);
}

#[test]
fn content_length_max_u64() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_eq!(p.body, BodyKind::Length(u64::MAX));
}

#[test]
fn rejects_cl_overflow() {
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
        "invalid Content-Length",
    );
}

#[test]
fn rejects_cl_not_digits() {
    for v in ["+5", "-5", "5 5", "0x5", "5a", "", "5.0", "five"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
        assert_bad(raw.as_bytes(), "invalid Content-Length");
    }
}

#[test]
fn accepts_double_cl_identical() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
    assert_eq!(p.body, BodyKind::Length(5));
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
    assert_eq!(p.body, BodyKind::Length(5));
}

#[test]
fn rejects_double_cl_differing() {
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "differing Content-Length values",
    );
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        "differing Content-Length values",
    );
}

#[test]
fn rejects_cl_list_with_empty_element() {
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n",
        "invalid Content-Length",
    );
}

#[test]
fn chunked_body() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(p.body, BodyKind::Chunked);
}

#[test]
fn chunked_is_case_insensitive() {
    let p = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD \r\n\r\n");
    assert_eq!(p.body, BodyKind::Chunked);
}

#[test]
fn rejects_cl_and_te() {
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
    );
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
    );
}

#[test]
fn rejects_te_other_than_chunked() {
    for v in [
        "gzip",
        "chunked, gzip",
        "chunked, chunked",
        "chunked;q=1",
        "",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
        assert_bad(raw.as_bytes(), "unsupported Transfer-Encoding");
    }
}

/// RFC 9112 §6.1: a transfer coding the server does not understand "SHOULD" get 501.
#[test]
fn codings_before_chunked_are_not_implemented() {
    for v in ["gzip, chunked", "deflate,chunked", "x-custom , chunked"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let err = parse_request(raw.as_bytes(), &mut headers).expect_err(v);
        assert_eq!(err.kind, ErrorKind::NotImplemented, "{v}");
        assert_eq!(err.kind.status(), 501, "{v}");
    }
}

#[test]
fn rejects_double_te() {
    assert_bad(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "unsupported Transfer-Encoding",
    );
}

#[test]
fn rejects_te_in_http10() {
    assert_bad(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding in an HTTP/1.0 request",
    );
}

// ---- parsing: persistence and Host ----

#[test]
fn http11_keepalive_by_default() {
    assert!(ok(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
}

#[test]
fn http11_connection_close() {
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
}

#[test]
fn connection_tokens_are_lists_case_insensitive_and_repeatable() {
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo , CLOSE\r\n\r\n").keep_alive);
    assert!(
        !ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo\r\nconnection: Close\r\n\r\n")
            .keep_alive
    );
    assert!(ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keep_alive);
}

#[test]
fn http10_closes_by_default() {
    let p = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(p.version, Version::Http10);
    assert!(!p.keep_alive);
}

#[test]
fn http10_keepalive() {
    assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert!(!ok(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

#[test]
fn rejects_missing_host_http11() {
    assert_bad(b"GET / HTTP/1.1\r\n\r\n", "missing Host header");
}

#[test]
fn accepts_http10_without_host() {
    assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").host, None);
}

#[test]
fn rejects_double_host() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        "more than one Host header",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "more than one Host header",
    );
    assert_bad(
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        "more than one Host header",
    );
}

#[test]
fn rejects_invalid_host() {
    for v in ["a b", "a/b", "a@b", "a\"b", "caf\u{e9}"] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n");
        assert_bad(raw.as_bytes(), "invalid Host header");
    }
}

#[test]
fn accepts_host_forms() {
    for v in [
        "example.com",
        "example.com:8080",
        "[::1]:80",
        "10.0.0.1",
        "xn--bcher-kva.example",
        "",
    ] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n");
        assert_eq!(ok(raw.as_bytes()).host, Some(v.as_bytes().to_vec()));
    }
}

// ---- parsing: request-target forms (RFC 9112 §3.2) ----

/// Parses `raw` and hands the borrowed head to `f`, for fields `Parsed` does not copy.
fn with_head<T>(raw: &[u8], f: impl FnOnce(&RequestHead<'_, '_>) -> T) -> T {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    match parse_request(raw, &mut headers) {
        Ok(Some(req)) => f(&req),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

#[test]
fn absolute_form_target_and_authority() {
    let raw = b"GET http://example.com:8080/x?q=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    let (target, authority, host) = with_head(raw, |r| {
        (
            r.target.to_owned(),
            r.authority.map(<[u8]>::to_vec),
            r.host.map(<[u8]>::to_vec),
        )
    });
    assert_eq!(target, "/x?q=1");
    assert_eq!(authority.as_deref(), Some(&b"example.com:8080"[..]));
    assert_eq!(
        host.as_deref(),
        Some(&b"example.com:8080"[..]),
        "the authority wins"
    );
}

#[test]
fn absolute_form_empty_path_is_slash() {
    let raw = b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert_eq!(ok(raw).target, "/");
}

#[test]
fn absolute_form_still_needs_host_in_http11() {
    // RFC 9112 §3.2: a client MUST send Host in every HTTP/1.1 request, whatever the form.
    assert_bad(
        b"GET http://example.com/ HTTP/1.1\r\n\r\n",
        "missing Host header",
    );
    let p = ok(b"GET http://example.com/ HTTP/1.0\r\n\r\n");
    assert_eq!(p.host, Some(b"example.com".to_vec()));
}

#[test]
fn absolute_form_other_schemes_rejected() {
    assert_bad(
        b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "absolute-form target with a scheme other than http",
    );
    assert_bad(
        b"GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "userinfo in absolute-form target",
    );
}

#[test]
fn options_asterisk_accepted() {
    let p = ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((p.method.as_str(), p.target.as_str()), ("OPTIONS", "*"));
}

#[test]
fn asterisk_with_other_methods_rejected() {
    for m in ["GET", "POST", "HEAD", "CONNECT"] {
        let raw = format!("{m} * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_bad(
            raw.as_bytes(),
            "asterisk-form target with a method other than OPTIONS",
        );
    }
}

#[test]
fn authority_form_only_with_connect() {
    assert_bad(
        b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request target",
    );
    assert_bad(
        b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
        "invalid request target",
    );
}

#[test]
fn fragment_rejected() {
    assert_bad(
        b"GET /a#/../admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "fragment in request target",
    );
}

#[test]
fn target_is_never_normalised() {
    let raw = b"GET /test/a%2Fb/../c//d/./e?x=%41 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(ok(raw).target, "/test/a%2Fb/../c//d/./e?x=%41");
}

// ---- parsing: Expect and Upgrade ----

fn flags(raw: &[u8]) -> (bool, bool) {
    with_head(raw, |r| (r.expect_continue, r.upgrade))
}

#[test]
fn expect_continue_with_a_body() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(flags(raw), (true, false));
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(flags(raw), (true, false));
}

#[test]
fn expect_continue_ignored_without_body_or_in_http10() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n";
    assert_eq!(flags(raw), (false, false));
    // RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
    let raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(flags(raw), (false, false));
}

#[test]
fn unknown_expectation_is_not_continue() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(flags(raw), (false, false));
}

#[test]
fn upgrade_needs_both_fields() {
    let both = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(flags(both), (false, true));
    let listed =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, UPGRADE\r\nupgrade: websocket\r\n\r\n";
    assert_eq!(flags(listed), (false, true));
    let no_option = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(flags(no_option), (false, false));
    let no_field = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n";
    assert_eq!(flags(no_field), (false, false));
}

#[test]
fn upgrade_ignored_in_http10() {
    // RFC 9110 §7.8: a server MUST ignore an Upgrade field received in an HTTP/1.0 request.
    let raw = b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
    assert_eq!(flags(raw), (false, false));
}

// ---- parsing: what is not HTTP/1.x at all ----

#[test]
fn http2_preface_rejected() {
    assert_bad(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "HTTP/2 connection preface",
    );
    // Known as soon as the version starts, without waiting for the rest.
    assert_bad(b"PRI * HTTP/2", "HTTP/2 connection preface");
}

#[test]
fn garbage_rejected_at_once() {
    // A TLS ClientHello: the first byte is no method character.
    assert_bad(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "invalid request line",
    );
    assert_bad(b"NOT-HTTP\r\n\r\n", "invalid request line");
    assert_bad(b"\x00\x00\x00\x00", "invalid request line");
    assert_bad(b"GET / FTP/1.0\r\n\r\n", "invalid HTTP version");
    assert_bad(
        b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        "invalid line ending",
    );
}

#[test]
fn method_must_be_a_token() {
    for raw in [
        &b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_bad(raw, "invalid request line");
    }
}

#[test]
fn nul_and_controls_in_names_rejected() {
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX\0Y: b\r\n\r\n",
        "invalid header name",
    );
    assert_bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: b\r\n\r\n",
        "invalid header name",
    );
}
