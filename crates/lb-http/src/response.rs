//! Response heads: parse and validate what an upstream sent (RFC 9112 §4, §6.3), then write the
//! head lb sends to its client.

use crate::{BodyKind, HttpError, Version};
use httparse::Header;

/// A parsed, validated response head borrowing from the read buffer.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// Status code.
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: &'b str,
    /// HTTP version of the response.
    pub version: Version,
    /// Header fields in the order received.
    pub headers: &'h [Header<'b>],
    /// Bytes of the head including the final CRLF CRLF.
    pub head_len: usize,
    /// Body framing per RFC 9112 §6.3 (Empty for HEAD requests, 1xx, 204, 304).
    pub body: BodyKind,
    /// Whether the upstream connection may be reused after the body (no `close`, not
    /// close-delimited, HTTP/1.1 or 1.0 with keep-alive).
    pub reusable: bool,
}

/// What lb knows about the client side when writing a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSide {
    /// The client's request version.
    pub version: Version,
    /// Whether lb keeps the client connection after this response.
    pub keep_alive: bool,
}

/// Parses a response head. `head_request`: the request was `HEAD` (no body whatever the headers
/// say). `Ok(None)`: incomplete. `Err`: invalid, answer 502 and never reuse the connection.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, HttpError> {
    let _ = (buf, headers, head_request);
    todo!("lb-http: parse_response")
}

/// Appends the head lb sends to the client: `HTTP/1.1 {status} {reason}`, end-to-end headers in
/// order (hop-by-hop and `Connection`-named removed), the body framing header re-emitted, and
/// `Connection: close` when the client connection ends after this response (client not
/// keep-alive, or the body is close-delimited), or `Connection: keep-alive` for a keep-alive 1.0
/// client.
pub fn write_response_head(resp: &ResponseHead<'_, '_>, client: ClientSide, out: &mut Vec<u8>) {
    let _ = (resp, client, out);
    todo!("lb-http: write_response_head")
}
