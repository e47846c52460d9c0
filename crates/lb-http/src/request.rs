//! Request heads: parse and validate (RFC 9112 §2-3, §6), then write the head lb forwards.
//!
//! Parsing never allocates and borrows from the read buffer; writing appends to a caller-owned
//! buffer and never allocates beyond its growth. Anything ambiguous is a 400, never a guess.

use crate::fields::{is_connection_specific, persistent, put_field, put_length};
use crate::framing::{content_length, framing, TransferCoding};
use crate::head::{has_bare_lf, syntax_detail, version, window};
use crate::{BodyKind, ErrorKind, HttpError, Version, MAX_HEAD_BYTES};
use httparse::Header;
use std::io::Write;
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
    let window = window(buf);
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // Everything buffered so far belongs to the head, so a bare LF is already fatal.
            if has_bare_lf(window) {
                return Err(bad("bare LF line ending"));
            }
            if buf.len() < MAX_HEAD_BYTES {
                return Ok(None);
            }
            return Err(if request_line_ended(window) {
                HttpError::new(ErrorKind::HeadersTooLarge, "header section too large")
            } else {
                HttpError::new(ErrorKind::UriTooLong, "request line too long")
            });
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::new(
                ErrorKind::HeadersTooLarge,
                "too many header fields",
            ))
        }
        Err(e) => return Err(bad(syntax_detail(e))),
    };
    let httparse::Request {
        method,
        path,
        version: minor,
        headers,
    } = req;
    let headers: &'h [Header<'b>] = headers;
    // httparse fills all three before reporting a complete head.
    let (Some(method), Some(target), Some(minor)) = (method, path, minor) else {
        return Err(bad("invalid request line"));
    };
    if has_bare_lf(window.get(..head_len).unwrap_or(window)) {
        return Err(bad("bare LF line ending"));
    }
    let version = version(minor).ok_or(bad("invalid HTTP version"))?;
    let host = host(version, headers)?;
    Ok(Some(RequestHead {
        method,
        target,
        version,
        headers,
        head_len,
        body: body(version, headers)?,
        keep_alive: persistent(version, headers),
        host,
    }))
}

/// A 400 with `detail`.
fn bad(detail: &'static str) -> HttpError {
    HttpError::new(ErrorKind::BadRequest, detail)
}

/// Whether a line feed has ended the request line within `buf`; empty lines before the request
/// line do not count (RFC 9112 §2.2 lets a server skip them, and httparse does).
fn request_line_ended(buf: &[u8]) -> bool {
    buf.iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .and_then(|start| buf.get(start..))
        .is_some_and(|line| line.contains(&b'\n'))
}

/// The Host value. RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host,
/// and to any request with more than one Host field or an invalid Host value.
fn host<'b>(version: Version, headers: &[Header<'b>]) -> Result<Option<&'b [u8]>, HttpError> {
    let mut found = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
    {
        if found.is_some() {
            return Err(bad("more than one Host header"));
        }
        found = Some(h.value);
    }
    match found {
        None if version == Version::Http11 => Err(bad("missing Host header")),
        Some(value) if !value.iter().all(|&b| is_host_byte(b)) => Err(bad("invalid Host header")),
        _ => Ok(found),
    }
}

/// Bytes of `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): reg-name characters
/// (unreserved, sub-delims, percent-encoding), IP-literal brackets, and the port colon. The value
/// may be empty (RFC 9110 §7.2). Keeping to these keeps X-Forwarded-Host free of surprises.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

/// RFC 9112 §6.3 for requests.
fn body(version: Version, headers: &[Header<'_>]) -> Result<BodyKind, HttpError> {
    let framing = framing(headers).map_err(bad)?;
    match (framing.transfer_coding, framing.content_length) {
        // §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as faulty framing.
        (Some(_), _) if version == Version::Http10 => {
            Err(bad("Transfer-Encoding in an HTTP/1.0 request"))
        }
        // §6.3 rule 4: chunked is the final coding -> read chunks.
        (Some(TransferCoding::Chunked), _) => Ok(BodyKind::Chunked),
        // §6.3 rule 4: any other coding in a request -> 400. lb also refuses codings before
        // chunked: it forwards the body as is and would have to trust the next hop's reading.
        (Some(TransferCoding::Other), _) => Err(bad("unsupported Transfer-Encoding")),
        // §6.3 rule 6: a valid Content-Length gives the length (invalid ones failed above).
        (None, Some(n)) if n > 0 => Ok(BodyKind::Length(n)),
        // §6.3 rule 7: neither field -> no body.
        (None, _) => Ok(BodyKind::Empty),
    }
}

/// Appends the head lb sends upstream: `METHOD {lead}{rest} HTTP/1.1`, then the end-to-end headers
/// in order (hop-by-hop headers and those named in `Connection` removed), `X-Forwarded-For`
/// appended with `client`, `X-Forwarded-Proto: http`, `X-Forwarded-Host` set from Host, the body
/// framing header re-emitted (Content-Length or `Transfer-Encoding: chunked`), and the blank line.
///
/// Host is forwarded in its place even if a `Connection` option names it, since the upstream
/// needs it; an HTTP/1.0 request without Host gets an empty one, because lb always speaks
/// HTTP/1.1 upstream, where Host is mandatory (RFC 9112 §3.2, RFC 9110 §7.2). A `Content-Length:
/// 0` the client sent is kept, for servers that require a length on POST and PUT.
pub fn write_request_head(
    req: &RequestHead<'_, '_>,
    lead: &str,
    rest: &str,
    client: IpAddr,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(lead.as_bytes());
    out.extend_from_slice(rest.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    for h in req.headers {
        let forward = h.name.eq_ignore_ascii_case("host")
            || !(is_forwarded_field(h.name) || is_connection_specific(h.name, req.headers));
        if forward {
            put_field(out, h.name.as_bytes(), h.value);
        }
    }
    if req.host.is_none() {
        out.extend_from_slice(b"Host: \r\n");
    }

    out.extend_from_slice(b"X-Forwarded-For: ");
    let earlier = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for") && !h.value.is_empty());
    for h in earlier {
        out.extend_from_slice(h.value);
        out.extend_from_slice(b", ");
    }
    // Writing into a Vec cannot fail, and formatting an address needs no heap.
    let _ = write!(out, "{client}\r\n");
    out.extend_from_slice(b"X-Forwarded-Proto: http\r\n");
    if let Some(host) = req.host {
        put_field(out, b"X-Forwarded-Host", host);
    }

    match req.body {
        BodyKind::Length(n) => put_length(out, n),
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyKind::Empty | BodyKind::CloseDelimited => {
            if content_length(req.headers) == Some(0) {
                put_length(out, 0);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The X-Forwarded-* fields lb replaces with its own.
fn is_forwarded_field(name: &str) -> bool {
    ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

#[cfg(test)]
mod tests;
