//! The request head of an HTTP/2 stream (RFC 9113 §8.3), in the shape lb forwards as HTTP/1.1:
//! the same [`RequestHead`] that [`crate::write_request_head`] writes for an HTTP/1.1 request, so
//! both protocols share one rewriter.
//!
//! The HTTP/2 framing layer has already decoded the fields, removed the pseudo-header fields and
//! refused the connection-specific ones (RFC 9113 §8.2.2: a malformed request, a stream error);
//! the caller joins cookie crumbs first (§8.2.3). What is left here is the part HTTP/1.1 needs
//! that HTTP/2 does not carry: the body's framing towards the upstream and the effective host.

use crate::fields::{has_list_member, ConnectionOptions};
use crate::framing::framing;
use crate::head::is_host_byte;
use crate::request::{bad, RequestHead};
use crate::{BodyKind, HttpError, Version};
use httparse::Header;

/// The head of an HTTP/2 request with `method`, `target` (`:path`), `headers` (regular fields,
/// cookie crumbs joined) and `authority` (`:authority`, if sent); `end_stream`: the HEADERS
/// frame ended the stream, so no body follows.
///
/// - `:authority` becomes the upstream's Host (RFC 9113 §8.3.1: it replaces Host when both are
///   present); without it, the Host field is used;
/// - the body: a Content-Length the client gave (the HTTP/2 layer checks the DATA frames
///   against it), else `chunked` when DATA may follow, else none;
/// - `Expect: 100-continue` is honoured when a body follows; there is no upgrade in HTTP/2.
///
/// Errors (400): an invalid or ambiguous Content-Length, an invalid host, a `:path` that is
/// neither origin-form nor `*`.
pub fn http2_request<'h, 'b>(
    method: &'b str,
    target: &'b str,
    headers: &'h [Header<'b>],
    authority: Option<&'b [u8]>,
    end_stream: bool,
) -> Result<RequestHead<'h, 'b>, HttpError> {
    if !(target.starts_with('/') || (target == "*" && method == "OPTIONS")) {
        return Err(bad("invalid :path"));
    }
    let framing = framing(headers).map_err(bad)?;
    let body = match framing.content_length {
        Some(0) => BodyKind::Empty,
        Some(n) => BodyKind::Length(n),
        None if end_stream => BodyKind::Empty,
        None => BodyKind::Chunked,
    };
    let host_field = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value);
    let host = authority.or(host_field);
    if host.is_some_and(|h| !h.iter().all(|&b| is_host_byte(b))) {
        return Err(bad("invalid authority"));
    }
    Ok(RequestHead {
        method,
        target,
        version: Version::Http2,
        headers,
        head_len: 0,
        body,
        keep_alive: true,
        host,
        authority,
        expect_continue: body != BodyKind::Empty
            && has_list_member(headers, "expect", "100-continue"),
        upgrade: false,
        connection: ConnectionOptions::new(headers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{write_request_head, ClientAddr, ErrorKind};

    fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        Header {
            name,
            value: value.as_bytes(),
        }
    }

    fn written(head: &RequestHead<'_, '_>) -> String {
        let mut out = Vec::new();
        let client = ClientAddr::new("192.0.2.1".parse().unwrap());
        write_request_head(head, "", head.target, &client, b"id-1", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn framing_follows_content_length_then_end_stream() {
        let cases: &[(&[Header<'_>], bool, BodyKind)] = &[
            (&[], true, BodyKind::Empty),
            (&[], false, BodyKind::Chunked),
            (&[h("content-length", "5")], false, BodyKind::Length(5)),
            (&[h("content-length", "0")], true, BodyKind::Empty),
        ];
        for (headers, end_stream, want) in cases {
            let head = http2_request("POST", "/", headers, Some(b"a"), *end_stream).unwrap();
            assert_eq!(head.body, *want, "{headers:?} end_stream={end_stream}");
        }
    }

    /// method, `:path`, fields, `:authority`.
    type Case<'a> = (&'a str, &'a str, &'a [Header<'a>], Option<&'a [u8]>);

    #[test]
    fn bad_heads_are_400() {
        let cases: &[Case<'_>] = &[
            ("GET", "x", &[], Some(b"a")),
            ("GET", "*", &[], Some(b"a")),
            ("GET", "/", &[h("content-length", "1, 2")], Some(b"a")),
            ("GET", "/", &[h("content-length", "x")], Some(b"a")),
            ("GET", "/", &[], Some(b"a b")),
        ];
        for (method, target, headers, authority) in cases {
            let err = http2_request(method, target, headers, *authority, true).unwrap_err();
            assert_eq!(
                err.kind,
                ErrorKind::BadRequest,
                "{method} {target} {headers:?}"
            );
        }
        assert!(http2_request("OPTIONS", "*", &[], Some(b"a"), true).is_ok());
    }

    #[test]
    fn authority_becomes_host_and_via_names_http2() {
        let headers = [h("host", "other"), h("cookie", "a=1; b=2")];
        let head = http2_request("GET", "/x?q", &headers, Some(b"example.com"), true).unwrap();
        let text = written(&head);
        assert!(
            text.starts_with("GET /x?q HTTP/1.1\r\nhost: example.com\r\n"),
            "{text}"
        );
        assert_eq!(
            text.to_ascii_lowercase().matches("host: ").count(),
            2,
            "{text}"
        );
        assert!(text.contains("cookie: a=1; b=2\r\n"), "{text}");
        assert!(text.contains("Via: 2 lb\r\n"), "{text}");
        assert!(text.contains("X-Forwarded-Host: example.com\r\n"), "{text}");
        let head = http2_request("GET", "/", &[], Some(b"example.com"), true).unwrap();
        assert!(written(&head).contains("\r\nHost: example.com\r\n"));
    }

    #[test]
    fn a_streamed_body_goes_chunked_and_a_sized_one_keeps_its_length() {
        let head = http2_request("POST", "/", &[], Some(b"a"), false).unwrap();
        assert!(written(&head).contains("Transfer-Encoding: chunked\r\n"));
        let sized = [h("content-length", "3")];
        let head = http2_request("POST", "/", &sized, Some(b"a"), false).unwrap();
        let text = written(&head);
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert_eq!(text.matches("Content-Length").count(), 1, "{text}");
    }
}
