//! HTTP/1.1 (RFC 9112) message heads for lb: parsing and validation with `httparse`, body framing
//! rules, hop-by-hop header handling, the rewritten heads lb forwards, and canned error responses.
//!
//! Pure code: values in, values out, no I/O and no clock, so every rule here carries unit and
//! property tests and fuzz targets. Parsing borrows from the caller's buffer and never allocates;
//! writers append to a caller-owned, reused `Vec<u8>`.
//!
//! Policy: reject, never guess. Anything two parsers could read differently (both Content-Length
//! and Transfer-Encoding, differing Content-Lengths, obs-fold, bare CR, ...) is an error here.

#![forbid(unsafe_code)]

mod chunked;
mod client_addr;
mod error;
mod fields;
mod framing;
mod head;
mod request;
mod response;
mod stream_head;
mod target;

pub use chunked::{ChunkedDecoder, Scan};
pub use client_addr::{ClientAddr, Scheme};
pub use error::{error_response, ErrorKind, HttpError, Source};
pub use head::names_other_protocol;
pub use request::{parse_request, write_request_head, RequestHead};
pub use response::{dechunk_for, parse_response, write_response_head, ClientSide, ResponseHead};
pub use stream_head::http2_request;

/// Largest request or response head lb accepts (request: 431 beyond it; response: 502).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest request line lb accepts, its CRLF not counted (414 beyond it, even before the line
/// ends). RFC 9112 §3 recommends supporting at least 8000 octets; nginx's default is 8 KiB per
/// line (`large_client_header_buffers 4 8k`) and HAProxy's whole head must fit its 16 KiB buffer.
/// 16 KiB leaves room for long query strings, and no client fills the 64 KiB head with one line.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// Most header fields lb accepts in one head; callers size their `httparse::Header` arrays with it.
pub const MAX_HEADERS: usize = 128;

/// Re-exported so callers can build header arrays without depending on httparse themselves.
pub use httparse::{Header, EMPTY_HEADER};

/// HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: close after each message unless keep-alive is asked for.
    Http10,
    /// HTTP/1.1: persistent by default.
    Http11,
    /// HTTP/2: a request that arrived as one stream of an HTTP/2 connection (RFC 9113). lb still
    /// forwards it as HTTP/1.1; the version only names what was received (`Via: 2 lb`).
    Http2,
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes the connection (responses only).
    CloseDelimited,
}
