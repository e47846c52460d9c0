//! Admin request heads: parse with httparse, then decide body framing and connection persistence.
//!
//! Strict by design (RFC 9112): a request the control plane cannot frame unambiguously is refused
//! with a 4xx and the connection is closed, because the byte stream after it cannot be trusted.
//! Size limits are judged from the head alone, so an oversized body is refused before any of it
//! is read. Nothing in a head can make parsing panic.

use crate::response::Response;
use lb_http::{MAX_HEADERS, MAX_HEAD_BYTES};

/// Largest request body the control plane reads; registrations are a few dozen bytes.
pub(crate) const MAX_BODY_BYTES: u64 = 64 * 1024;

/// A framed request head, copied out of the read buffer so the buffer can keep filling.
#[derive(Debug)]
pub(crate) struct Head {
    /// Method token as sent (methods are case-sensitive, RFC 9110 §9.1).
    pub(crate) method: String,
    /// Path of the request target, without query or fragment: what endpoints are matched on.
    pub(crate) path: String,
    /// The query (after `?`, without fragment), empty when there is none.
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
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Ok(None),
        Ok(_) => return Err(Response::error(431, "request head over 64 KiB")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::error(431, "too many header fields"))
        }
        Err(error) => {
            return Err(Response::error(
                400,
                &format!("malformed request head ({error})"),
            ))
        }
    };
    // A complete parse always fills these three; the fallbacks only keep this free of unwraps.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Response::error(400, "malformed request line"));
    };
    let http11 = minor == 1;

    let mut length: Option<u64> = None;
    let (mut transfer_encoding, mut chunked) = (false, false);
    let mut hosts = 0;
    let (mut close, mut keep_alive_token, mut expect_continue) = (false, false, false);
    let (mut authorization, mut authorizations) = (None, 0);
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = content_length(header.value) else {
                return Err(Response::error(400, "Content-Length is not a valid length"));
            };
            if length.is_some_and(|l| l != n) {
                // RFC 9112 §6.3 (5): differing lengths are unrecoverable.
                return Err(Response::error(400, "conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            chunked |= tokens(header.value).any(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(header.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorizations += 1;
            authorization = Some(header.value.to_vec());
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= header
                .value
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue");
        }
    }

    if transfer_encoding {
        // RFC 9112 §6.1 lets a server refuse transfer codings it does not handle; the control
        // plane's bodies are tiny, so it asks for Content-Length instead of decoding chunks.
        let message = if chunked {
            "chunked request bodies are not supported; send Content-Length"
        } else {
            "Transfer-Encoding is not supported; send Content-Length"
        };
        return Err(Response::error(400, message));
    }
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without exactly one Host.
    if hosts > 1 || (http11 && hosts == 0) {
        return Err(Response::error(
            400,
            "the request needs exactly one Host header",
        ));
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(Response::error(400, "body over 64 KiB"));
    }
    let path_end = target.find(['?', '#']).unwrap_or(target.len());
    let query = target[path_end..]
        .strip_prefix('?')
        .map(|q| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    Ok(Some(Head {
        method: method.to_string(),
        path: target[..path_end].to_string(),
        query: query.to_string(),
        // Two credentials are no credential.
        authorization: if authorizations == 1 {
            authorization
        } else {
            None
        },
        head_len,
        // Bounded by MAX_BODY_BYTES just above, so it fits any usize lb runs on.
        body_len: usize::try_from(length).unwrap_or(usize::MAX),
        // RFC 9112 §9.3: 1.1 persists unless `close`; 1.0 only when it asks for `keep-alive`.
        keep_alive: !close && (http11 || keep_alive_token),
        expect_continue: expect_continue && http11 && length > 0,
    }))
}

/// A Content-Length value: `1*DIGIT`, or a list of identical values (RFC 9110 §8.6).
fn content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

/// The non-empty, trimmed elements of a comma-separated header list.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

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
