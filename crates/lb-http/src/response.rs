//! Response heads: parse and validate what an upstream sent (RFC 9112 §4, §6.3), then write the
//! head lb sends to its client.
//!
//! Every fault here is the upstream's ([`ErrorKind::UpstreamInvalid`], a 502), and an invalid
//! response never leaves its connection reusable. Parsing never allocates; writing appends to a
//! caller-owned buffer.

use crate::fields::{
    has_field, is_connection_specific, persistent, put_decimal, put_field, put_length, put_via,
    ConnectionOptions,
};
use crate::framing::{content_length, framing, TransferCoding};
use crate::head::{has_bare_lf, syntax_detail, version, window};
use crate::{BodyKind, ErrorKind, HttpError, Version, MAX_HEAD_BYTES};
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
    /// close-delimited, not a `101`, HTTP/1.1 or 1.0 with keep-alive).
    pub reusable: bool,
    /// The `Connection` options, read once for `reusable` and the fields [`write_response_head`]
    /// drops.
    connection: ConnectionOptions<'h>,
}

/// What lb knows about the client side when writing a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSide {
    /// The client's request version.
    pub version: Version,
    /// Whether lb keeps the client connection after this response.
    pub keep_alive: bool,
}

impl ClientSide {
    /// Whether this client may be sent interim (1xx) responses: RFC 9110 §15.2, "A server MUST
    /// NOT send a 1xx response to an HTTP/1.0 client". A proxy drops them for such a client and
    /// waits for the final response.
    pub fn accepts_interim(self) -> bool {
        self.version == Version::Http11
    }
}

/// Parses a response head. `head_request`: the request was `HEAD` (no body whatever the headers
/// say). `Ok(None)`: incomplete. `Err`: invalid, answer 502 and never reuse the connection.
///
/// The reason phrase is `""` when the upstream sent none, or one with obs-text (httparse does
/// not hand out non-UTF-8 text; clients ignore the phrase anyway, RFC 9112 §4).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, HttpError> {
    let window = window(buf);
    let mut resp = httparse::Response::new(headers);
    let head_len = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // Everything buffered so far belongs to the head, so a bare LF is already fatal.
            if has_bare_lf(window) {
                return Err(invalid("bare LF line ending"));
            }
            if buf.len() < MAX_HEAD_BYTES {
                return Ok(None);
            }
            return Err(invalid("response head too large"));
        }
        Err(e) => return Err(invalid(syntax_detail(e))),
    };
    let httparse::Response {
        version: minor,
        code,
        reason,
        headers,
    } = resp;
    let headers: &'h [Header<'b>] = headers;
    // httparse fills all three before reporting a complete head.
    let (Some(minor), Some(status), Some(reason)) = (minor, code, reason) else {
        return Err(invalid("invalid status line"));
    };
    if has_bare_lf(window.get(..head_len).unwrap_or(window)) {
        return Err(invalid("bare LF line ending"));
    }
    let version = version(minor).ok_or(invalid("invalid HTTP version"))?;
    // RFC 9110 §15: status codes are three digits from 100 to 599.
    if !(100..=599).contains(&status) {
        return Err(invalid("invalid status code"));
    }
    // RFC 9110 §15.2.2: a 101 "MUST generate an Upgrade header field in the response that
    // indicates which protocol(s) are being switched to"; without it nobody knows what follows.
    if status == 101 && !has_field(headers, "upgrade") {
        return Err(invalid("101 response without Upgrade"));
    }
    let body = body(version, status, head_request, headers)?;
    let connection = ConnectionOptions::new(headers);
    Ok(Some(ResponseHead {
        status,
        reason,
        version,
        headers,
        head_len,
        body,
        // After a 101 the connection carries another protocol: it never goes back to a pool.
        reusable: status != 101
            && body != BodyKind::CloseDelimited
            && persistent(version, &connection),
        connection,
    }))
}

impl ResponseHead<'_, '_> {
    /// The end-to-end fields a client gets, in the order received: hop-by-hop fields, those named
    /// in `Connection` and the framing fields removed (RFC 9110 §7.6.1), as in
    /// [`write_response_head`]. For clients that frame the body themselves (HTTP/2).
    pub fn end_to_end_fields(&self) -> impl Iterator<Item = &Header<'_>> {
        self.headers
            .iter()
            .filter(|h| !is_connection_specific(h.name, &self.connection))
    }

    /// The Content-Length a client gets with this head: the body's length, or for a bodiless
    /// HEAD or 304 answer the length the upstream declared (RFC 9110 §8.6); none for 1xx and
    /// 204, as in [`write_response_head`].
    pub fn client_length(&self) -> Option<u64> {
        match self.body {
            BodyKind::Length(n) => Some(n),
            BodyKind::Empty if (100..200).contains(&self.status) || self.status == 204 => None,
            BodyKind::Empty => content_length(self.headers),
            BodyKind::Chunked | BodyKind::CloseDelimited => None,
        }
    }
}

/// A 502 for an invalid upstream response.
fn invalid(detail: &'static str) -> HttpError {
    HttpError::new(ErrorKind::UpstreamInvalid, detail)
}

/// Whether a response to this request and with this status never has a body (RFC 9112 §6.3
/// rule 1: any response to HEAD, and every 1xx, 204 and 304 response).
fn bodiless(status: u16, head_request: bool) -> bool {
    head_request || (100..200).contains(&status) || status == 204 || status == 304
}

/// RFC 9112 §6.3 for responses (rule 2, CONNECT tunnels, is the proxy's business).
fn body(
    version: Version,
    status: u16,
    head_request: bool,
    headers: &[Header<'_>],
) -> Result<BodyKind, HttpError> {
    // Checked even when no body follows: lb passes a HEAD or 304 Content-Length through, and both
    // fields at once hint at response splitting whatever the status.
    let framing = framing(headers).map_err(invalid)?;
    if bodiless(status, head_request) {
        return Ok(BodyKind::Empty);
    }
    match (framing.transfer_coding, framing.content_length) {
        // §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as faulty framing.
        (Some(_), _) if version == Version::Http10 => {
            Err(invalid("Transfer-Encoding in an HTTP/1.0 response"))
        }
        // §6.3 rule 4: chunked is the final coding -> read chunks.
        (Some(TransferCoding::Chunked), _) => Ok(BodyKind::Chunked),
        // §6.3 rule 4 would read any other coding until close; lb refuses it instead of relaying
        // a body whose end it cannot check.
        (Some(TransferCoding::Unimplemented | TransferCoding::Other), _) => {
            Err(invalid("unsupported Transfer-Encoding"))
        }
        // §6.3 rule 6: a valid Content-Length gives the length (invalid ones failed above).
        (None, Some(0)) => Ok(BodyKind::Empty),
        (None, Some(n)) => Ok(BodyKind::Length(n)),
        // §6.3 rule 8: otherwise the body runs until the server closes the connection.
        (None, None) => Ok(BodyKind::CloseDelimited),
    }
}

/// Whether lb must decode a chunked body before relaying it to this client: an HTTP/1.0 client
/// cannot read chunked (RFC 9112 §7.1: "A server MUST NOT send a response containing
/// Transfer-Encoding unless the corresponding request indicates HTTP/1.1"), so the body goes to
/// it close-delimited, payload only ([`crate::ChunkedDecoder::decode`]), and the connection
/// closes after it. [`write_response_head`] writes the matching head.
pub fn dechunk_for(client: ClientSide, body: BodyKind) -> bool {
    client.version == Version::Http10 && body == BodyKind::Chunked
}

/// Appends the head lb sends to the client: `HTTP/1.1 {status} {reason}`, then, in this order:
///
/// 1. the end-to-end fields in the order, case and repetition received (`Set-Cookie` is never
///    merged); hop-by-hop fields and those named in `Connection` removed (RFC 9110 §7.6.1),
///    except `Upgrade` in a `101`;
/// 2. `Via: 1.1 lb` (`1.0` for an HTTP/1.0 upstream response), after any Via fields received;
/// 3. the body framing field re-emitted: Content-Length, or `Transfer-Encoding: chunked` unless
///    [`dechunk_for`] says the client gets the payload close-delimited instead;
/// 4. the connection field: `Connection: upgrade` for a `101`; nothing for other interim
///    responses (the final response carries it); `Connection: close` when the client
///    connection ends after this response (client not keep-alive, close-delimited body, or a
///    chunked body de-chunked for an HTTP/1.0 client); `Connection: keep-alive` for a keep-alive
///    HTTP/1.0 client;
/// 5. the blank line.
///
/// With no body, a Content-Length the upstream sent is passed on for HEAD and 304 responses,
/// where it describes the representation (RFC 9110 §8.6), and for a plain `Content-Length: 0`;
/// 1xx and 204 responses never carry one (RFC 9110 §8.6: a server MUST NOT send it there).
pub fn write_response_head(resp: &ResponseHead<'_, '_>, client: ClientSide, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(resp.reason.as_bytes());
    out.extend_from_slice(b"\r\n");

    let switching = resp.status == 101;
    for h in resp.headers {
        let upgrade = switching && h.name.eq_ignore_ascii_case("upgrade");
        if upgrade || !is_connection_specific(h.name, &resp.connection) {
            put_field(out, h.name.as_bytes(), h.value);
        }
    }
    put_via(out, resp.version);

    let interim = (100..200).contains(&resp.status);
    let dechunk = dechunk_for(client, resp.body);
    match resp.body {
        BodyKind::Length(n) => put_length(out, n),
        BodyKind::Chunked if dechunk => {}
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyKind::Empty if interim || resp.status == 204 => {}
        BodyKind::Empty => {
            if let Some(n) = content_length(resp.headers) {
                put_length(out, n);
            }
        }
        BodyKind::CloseDelimited => {}
    }

    if switching {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if !interim {
        if !client.keep_alive || resp.body == BodyKind::CloseDelimited || dechunk {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client.version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
