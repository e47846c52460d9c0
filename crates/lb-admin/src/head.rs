//! Admin request heads: [`lb_http::parse_request`] frames them (the same strict RFC 9112 reading
//! the proxy uses), then the control plane applies its own limits and copies out what it needs.
//!
//! Strict by design: a request the control plane cannot frame unambiguously is refused with a
//! 4xx and the connection is closed, because the byte stream after it cannot be trusted. Size
//! limits are judged from the head alone, so an oversized body is refused before any of it is
//! read. Nothing in a head can make parsing panic.

use crate::response::Response;
use lb_http::{parse_request, BodyKind, EMPTY_HEADER, MAX_HEADERS};

/// Largest request body the control plane reads; registrations are a few dozen bytes.
pub(crate) const MAX_BODY_BYTES: u64 = 64 * 1024;

/// A framed request head, copied out of the read buffer so the buffer can keep filling.
#[derive(Debug)]
pub(crate) struct Head {
    /// Method token as sent (methods are case-sensitive, RFC 9110 §9.1).
    pub(crate) method: String,
    /// Path of the request target, without query: what endpoints are matched on.
    pub(crate) path: String,
    /// The query (after `?`), empty when there is none.
    #[cfg_attr(
        not(debug_assertions),
        allow(dead_code, reason = "only the debug builds' panic hook reads a query")
    )]
    pub(crate) query: String,
    /// The `Authorization` field's value when exactly one was sent (bytes, as received).
    pub(crate) authorization: Option<Vec<u8>>,
    /// Bytes of the head including the blank line: the body starts here.
    pub(crate) head_len: usize,
    /// Body bytes that follow the head (Content-Length, or 0).
    pub(crate) body_len: usize,
    /// Whether the connection stays open after the answer.
    pub(crate) keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body (RFC 9110 §10.1.1).
    pub(crate) expect_continue: bool,
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: the head is incomplete, read more. `Err(response)`: answer it and close.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Head>, Response> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let req = match parse_request(buf, &mut headers) {
        Ok(Some(req)) => req,
        Ok(None) => return Ok(None),
        Err(error) => return Err(Response::error(error.kind.status(), error.detail)),
    };
    let length = match req.body {
        BodyKind::Empty => 0,
        BodyKind::Length(n) => n,
        // RFC 9112 §6.1 lets a server refuse transfer codings it does not handle; the control
        // plane's bodies are tiny, so it asks for Content-Length instead of decoding chunks.
        BodyKind::Chunked | BodyKind::CloseDelimited => {
            return Err(Response::error(
                400,
                "chunked request bodies are not supported; send Content-Length",
            ))
        }
    };
    if length > MAX_BODY_BYTES {
        return Err(Response::error(400, "body over 64 KiB"));
    }
    let mut authorizations = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("authorization"));
    // Two credentials are no credential.
    let authorization = match (authorizations.next(), authorizations.next()) {
        (Some(only), None) => Some(only.value.to_vec()),
        _ => None,
    };
    // parse_request refuses fragments, so the target is a path and an optional query.
    let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
    Ok(Some(Head {
        method: req.method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        authorization,
        head_len: req.head_len,
        // Bounded by MAX_BODY_BYTES just above, so it fits any usize lb runs on.
        body_len: usize::try_from(length).unwrap_or(usize::MAX),
        keep_alive: req.keep_alive,
        expect_continue: req.expect_continue,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_http::MAX_HEAD_BYTES;

    fn head(raw: &str) -> Head {
        match parse(raw.as_bytes()) {
            Ok(Some(head)) => head,
            Ok(None) => panic!("incomplete: {raw:?}"),
            Err(response) => panic!("refused with {}: {raw:?}", response.status()),
        }
    }

    fn refused(raw: &[u8]) -> u16 {
        match parse(raw) {
            Err(response) => response.status(),
            Ok(other) => panic!("accepted as {other:?}: {raw:?}"),
        }
    }

    #[test]
    fn frames_a_post_with_content_length() {
        let raw = "POST /register?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello";
        let h = head(raw);
        assert_eq!((h.method.as_str(), h.path.as_str()), ("POST", "/register"));
        assert_eq!(
            (h.body_len, h.keep_alive, h.expect_continue),
            (5, true, false)
        );
        assert_eq!(h.head_len, raw.len() - 5);
    }

    #[test]
    fn persistence_follows_version_and_connection() {
        assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn expect_continue_only_with_a_body() {
        let raw = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert!(head(raw).expect_continue);
        assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    }

    #[test]
    fn target_splits_into_path_and_query() {
        let h = head("GET http://admin/targets?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/targets", "x=1"));
        let h = head("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/healthz", ""));
    }

    #[test]
    fn only_a_single_authorization_counts() {
        let one = "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n";
        assert_eq!(head(one).authorization.as_deref(), Some(&b"Bearer t"[..]));
        let two = "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\
                   Authorization: Bearer t\r\n\r\n";
        assert_eq!(head(two).authorization, None);
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost:"), Ok(None)));
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            (b"GET /targets#x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: a\n\n", 400),
            (b"GET\0 / HTTP/1.1\r\n\r\n", 400),
        ];
        for (raw, status) in cases {
            assert_eq!(refused(raw), *status, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn refuses_oversized_heads() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        raw.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(refused(&raw), 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: 1\r\n")).collect();
        assert_eq!(
            refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
    }
}
