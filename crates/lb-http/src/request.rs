//! Request heads: parse and validate (RFC 9112 §2-3, §6), then write the head lb forwards.
//!
//! Parsing never allocates and borrows from the read buffer; writing appends to a caller-owned
//! buffer and never allocates beyond its growth. Anything ambiguous is a 400, never a guess.

use crate::fields::{
    has_field, has_list_member, is_connection_specific, persistent, put_field, put_length, put_via,
    ConnectionOptions,
};
use crate::framing::{content_length, framing, TransferCoding};
use crate::head::{
    has_bare_lf, is_host_byte, request_line_ended, request_line_too_long, syntax_detail, version,
    window,
};
use crate::target::request_target;
use crate::{BodyKind, ClientAddr, ErrorKind, HttpError, Version, MAX_HEAD_BYTES};
use httparse::Header;

/// A parsed, validated request head borrowing from the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// Method token, e.g. `GET`.
    pub method: &'b str,
    /// What lb routes on: the origin-form target as sent (`/path?query`), or the path and query
    /// of an absolute-form target (`/` when its path is empty), or `*` for `OPTIONS *`, or the
    /// authority-form target of a CONNECT (which the proxy refuses). Never decoded or normalised.
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
    /// The effective host: an absolute-form target's authority, else the Host header value.
    pub host: Option<&'b [u8]>,
    /// The authority of an absolute-form target (`GET http://authority/path`), which replaces
    /// the Host field on the way upstream (RFC 9112 §3.2.2: the recipient "MUST ignore the
    /// received Host header field (if any) and instead use the host information of the
    /// request-target"). `None` for every other form.
    pub authority: Option<&'b [u8]>,
    /// The client sent `Expect: 100-continue` on an HTTP/1.1 request with a body, so it may wait
    /// for a `100 Continue` before sending that body (RFC 9110 §10.1.1). Not set for HTTP/1.0,
    /// whose expectation a server "MUST ignore", nor without a body, where there is nothing to
    /// wait for. The Expect field itself is always forwarded, as are expectations lb does not
    /// know: the origin decides about those (it may answer 417).
    pub expect_continue: bool,
    /// The client asks to switch protocols: an HTTP/1.1 request with an `Upgrade` field and an
    /// `upgrade` option in `Connection` (RFC 9110 §7.8). Then [`write_request_head`] forwards
    /// `Upgrade` and `Connection: upgrade`, and a `101` answer turns the connection into a
    /// tunnel. Without both, `Upgrade` is an ordinary hop-by-hop field and is dropped; an
    /// HTTP/1.0 request's Upgrade is ignored, as RFC 9110 §7.8 requires.
    pub upgrade: bool,
    /// The `Connection` options, read once for `keep_alive`, `upgrade` and the fields
    /// [`write_request_head`] drops.
    pub(crate) connection: ConnectionOptions<'h>,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Err`: invalid or ambiguous, answer `err.kind.status()` and
/// close: 414 once the request line is over [`crate::MAX_REQUEST_LINE`] (finished or not), 431
/// once the head is over [`MAX_HEAD_BYTES`] or has too many fields, 400 for everything else.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Option<RequestHead<'h, 'b>>, HttpError> {
    let window = window(buf);
    if request_line_too_long(window) {
        return Err(HttpError::new(
            ErrorKind::UriTooLong,
            "request line too long",
        ));
    }
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
        // RFC 9113 §3.4: an HTTP/2 client with prior knowledge opens with this preface; lb only
        // speaks HTTP/1.x on its port, so it answers the way an HTTP/1.1 server must.
        Err(httparse::Error::Version) if window.starts_with(b"PRI * HTTP/2") => {
            return Err(bad("HTTP/2 connection preface"))
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
    let target = request_target(method, target).map_err(bad)?;
    let host = host(version, headers)?;
    let body = body(version, headers)?;
    let http11 = version == Version::Http11;
    let connection = ConnectionOptions::new(headers);
    Ok(Some(RequestHead {
        method,
        target: target.path,
        version,
        headers,
        head_len,
        body,
        keep_alive: persistent(version, &connection),
        host: target.authority.or(host),
        authority: target.authority,
        expect_continue: http11
            && body != BodyKind::Empty
            && has_list_member(headers, "expect", "100-continue"),
        upgrade: http11 && has_field(headers, "upgrade") && connection.contains("upgrade"),
        connection,
    }))
}

/// A 400 with `detail`.
pub(crate) fn bad(detail: &'static str) -> HttpError {
    HttpError::new(ErrorKind::BadRequest, detail)
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
        // §6.1: codings before a final chunked, which lb does not implement (it forwards the
        // body as is and would have to trust the next hop's reading) -> 501.
        (Some(TransferCoding::Unimplemented), _) => Err(HttpError::new(
            ErrorKind::NotImplemented,
            "transfer codings other than chunked are not implemented",
        )),
        // §6.3 rule 4: chunked not the final coding, or a malformed list -> 400.
        (Some(TransferCoding::Other), _) => Err(bad("unsupported Transfer-Encoding")),
        // §6.3 rule 6: a valid Content-Length gives the length (invalid ones failed above).
        (None, Some(n)) if n > 0 => Ok(BodyKind::Length(n)),
        // §6.3 rule 7: neither field -> no body.
        (None, _) => Ok(BodyKind::Empty),
    }
}

/// Appends the head lb sends upstream: `METHOD {lead}{rest} HTTP/1.1`, then, in this order:
///
/// 1. the end-to-end fields in the order, case and repetition received; hop-by-hop fields and
///    those named in `Connection` removed (RFC 9110 §7.6.1); Host in its place, replaced by the
///    authority of an absolute-form target (RFC 9112 §3.2.2), so it is sent exactly once;
///    `Upgrade` kept when [`RequestHead::upgrade`] is set; an HTTP/1.0 request's `Expect`
///    dropped (see `is_dropped`);
/// 2. `Host:` with the effective host if the request had no Host field: HTTP/1.0 allows that,
///    but lb always speaks HTTP/1.1 upstream, where Host is mandatory. The caller sets
///    [`RequestHead::host`] to the address the client connected to first (RFC 9112 §3.3); left
///    `None`, the field goes out empty;
/// 3. `X-Forwarded-For` (earlier values, then `client`), `X-Forwarded-Proto` (`http`, or `https` over TLS),
///    `X-Forwarded-Host` from the effective host;
/// 4. `Via: 1.1 lb` (`1.0` for an HTTP/1.0 request), after any Via fields received;
///    `X-Request-ID: request_id` (the caller decides whether that is the client's or a new one;
///    any `X-Request-ID` the client sent is dropped);
/// 5. `Connection: upgrade` when upgrading;
/// 6. the body framing field, re-emitted from the validated [`BodyKind`] (a `Content-Length: 0`
///    the client sent is kept, for servers that require a length on POST and PUT);
/// 7. the blank line.
///
/// Host is forwarded even if a `Connection` option names it, since the upstream needs it.
pub fn write_request_head(
    req: &RequestHead<'_, '_>,
    lead: &str,
    rest: &str,
    client: &ClientAddr,
    request_id: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(lead.as_bytes());
    out.extend_from_slice(rest.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let mut host_sent = false;
    for h in req.headers {
        if h.name.eq_ignore_ascii_case("host") {
            put_field(out, h.name.as_bytes(), req.authority.unwrap_or(h.value));
            host_sent = true;
            continue;
        }
        let upgrade = req.upgrade && h.name.eq_ignore_ascii_case("upgrade");
        if upgrade
            || !(is_dropped(req.version, h.name) || is_connection_specific(h.name, &req.connection))
        {
            put_field(out, h.name.as_bytes(), h.value);
        }
    }
    if !host_sent {
        put_field(out, b"Host", req.host.unwrap_or_default());
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
    out.extend_from_slice(client.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"X-Forwarded-Proto: ");
    out.extend_from_slice(client.scheme().as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(host) = req.host {
        put_field(out, b"X-Forwarded-Host", host);
    }
    put_via(out, req.version);
    put_field(out, b"X-Request-ID", request_id);
    if req.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
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

/// Fields lb drops from a request of this version on top of the connection-specific ones: the
/// X-Forwarded-* fields it replaces with its own, and an HTTP/1.0 request's `Expect`. RFC 9110
/// §10.1.1: a server "MUST ignore" a 100-continue expectation in an HTTP/1.0 request; lb
/// forwards the request as HTTP/1.1, so passing the field on would create an expectation the
/// client cannot have meant, and a 1xx answer that it must never receive (RFC 9110 §15.2).
fn is_dropped(version: Version, name: &str) -> bool {
    is_forwarded_field(name) || (version == Version::Http10 && name.eq_ignore_ascii_case("expect"))
}

/// The X-Forwarded-* fields and the request id, which lb replaces with its own.
fn is_forwarded_field(name: &str) -> bool {
    [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-request-id",
    ]
    .iter()
    .any(|f| name.eq_ignore_ascii_case(f))
}

#[cfg(test)]
mod tests;
