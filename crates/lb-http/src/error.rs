//! The one place where a fault becomes an HTTP status.
//!
//! Every error lb answers on its own is an [`ErrorKind`]; [`ErrorKind::status`] is the only mapping
//! to a status code, and [`error_response`] the only writer of lb's own responses.

use std::fmt;

/// Where a fault came from: decides logging level and whether a retry could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client sent something wrong or too slowly.
    Client,
    /// The upstream failed or misbehaved.
    Upstream,
    /// lb has nowhere to send the request.
    Routing,
}

/// Every fault lb answers with its own response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or ambiguous request (400).
    BadRequest,
    /// Request head not complete within the header timeout (408).
    HeaderTimeout,
    /// Request body over the configured limit (413).
    BodyTooLarge,
    /// Request line over its limit (414).
    UriTooLong,
    /// Request header section over its limit (431).
    HeadersTooLarge,
    /// Something lb does not implement: `CONNECT` (lb is no forward proxy), a transfer coding
    /// other than `chunked` (501).
    NotImplemented,
    /// The upstream refused or failed the connection (502).
    UpstreamConnect,
    /// The upstream closed or reset the connection before a complete response head (502).
    UpstreamReset,
    /// The upstream sent an invalid response (502).
    UpstreamInvalid,
    /// No registered prefix matches the request (503).
    NoRoute,
    /// The matched prefix has no usable target (503).
    NoTarget,
    /// Connecting to the upstream timed out (504).
    ConnectTimeout,
    /// The upstream did not send its response head in time (504).
    UpstreamTimeout,
}

impl ErrorKind {
    /// The status code lb answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::HeaderTimeout => 408,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::UriTooLong => 414,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::NotImplemented => 501,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamReset | ErrorKind::UpstreamInvalid => {
                502
            }
            ErrorKind::NoRoute | ErrorKind::NoTarget => 503,
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout => 504,
        }
    }

    /// The status line's reason phrase.
    pub fn reason(self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            501 => "Not Implemented",
            408 => "Request Timeout",
            413 => "Content Too Large",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Gateway Timeout",
        }
    }

    /// Where the fault came from.
    pub fn source(self) -> Source {
        match self {
            ErrorKind::BadRequest
            | ErrorKind::HeaderTimeout
            | ErrorKind::BodyTooLarge
            | ErrorKind::UriTooLong
            | ErrorKind::HeadersTooLarge
            | ErrorKind::NotImplemented => Source::Client,
            ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamReset
            | ErrorKind::UpstreamInvalid
            | ErrorKind::ConnectTimeout
            | ErrorKind::UpstreamTimeout => Source::Upstream,
            ErrorKind::NoRoute | ErrorKind::NoTarget => Source::Routing,
        }
    }

    /// Whether the client connection may be kept after lb answers this error itself. Client
    /// faults leave the byte stream in an unknown state, so the connection is closed.
    pub fn keeps_connection(self) -> bool {
        !matches!(self.source(), Source::Client)
    }
}

/// A classified fault with a short, static explanation for the response body and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    /// What kind of fault.
    pub kind: ErrorKind,
    /// One plain sentence, no trailing period, e.g. "both Content-Length and Transfer-Encoding".
    pub detail: &'static str,
}

impl HttpError {
    /// A new error.
    pub const fn new(kind: ErrorKind, detail: &'static str) -> Self {
        HttpError { kind, detail }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.kind.status(),
            self.kind.reason(),
            self.detail
        )
    }
}

impl std::error::Error for HttpError {}

/// Appends lb's own response for `kind` to `out`: a `text/plain` body holding `detail` and a
/// newline, and `Connection: close` when `close` is set.
pub fn error_response(kind: ErrorKind, detail: &str, close: bool, out: &mut Vec<u8>) {
    use std::io::Write;
    let status = kind.status();
    let reason = kind.reason();
    let len = detail.len() + 1;
    let connection = if close { "Connection: close\r\n" } else { "" };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n{connection}\r\n{detail}\n"
    );
}
