//! Request heads: parse and validate (RFC 9112 §2-3, §6), then write the head lb forwards.

use crate::{BodyKind, HttpError, Version};
use httparse::Header;
use std::net::IpAddr;

/// A parsed, validated request head borrowing from the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// Method token, e.g. `GET`.
    pub method: &'b str,
    /// Request target as sent (origin-form for routing; absolute-form / `*` handled by the caller).
    pub target: &'b str,
    /// HTTP version of the request.
    pub version: Version,
    /// Header fields in the order received.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head including the final CRLF CRLF: the body starts at this offset.
    pub head_len: usize,
    /// Body framing, decided per RFC 9112 §6.3.
    pub body: BodyKind,
    /// Whether the client connection stays open after this exchange (1.1 unless `close`;
    /// 1.0 only with `keep-alive`).
    pub keep_alive: bool,
    /// The Host header value, if present.
    pub host: Option<&'b [u8]>,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more (unless `buf` already holds `MAX_HEAD_BYTES`, which is an
/// error, 431 or 414). `Err`: invalid or ambiguous, answer `err.kind.status()` and close.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Option<RequestHead<'h, 'b>>, HttpError> {
    let _ = (buf, headers);
    todo!("lb-http: parse_request")
}

/// Appends the head lb sends upstream: `METHOD {lead}{rest} HTTP/1.1`, then the end-to-end headers
/// in order (hop-by-hop headers and those named in `Connection` removed), `X-Forwarded-For`
/// appended with `client`, `X-Forwarded-Proto: http`, `X-Forwarded-Host` set from Host, the body
/// framing header re-emitted (Content-Length or `Transfer-Encoding: chunked`), and the blank line.
pub fn write_request_head(
    req: &RequestHead<'_, '_>,
    lead: &str,
    rest: &str,
    client: IpAddr,
    out: &mut Vec<u8>,
) {
    let _ = (req, lead, rest, client, out);
    todo!("lb-http: write_request_head")
}
