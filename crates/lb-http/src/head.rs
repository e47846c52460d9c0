//! Checks shared by request and response heads, around `httparse`: the size window, line endings,
//! the version, and the wording of syntax errors.
//!
//! httparse is strict by default (no obs-fold, no space before a colon, no bare CR, no control
//! bytes) but accepts a bare LF as a line ending; lb does not (HAProxy's default), because a
//! parser behind lb that reads lines differently would see a different head. Nothing here
//! allocates or panics on peer bytes.

use crate::{Version, MAX_HEAD_BYTES};

/// The part of `buf` a head may occupy. Parsing only this bounds httparse's work per read, and a
/// head that is still incomplete within it is over the limit.
pub(crate) fn window(buf: &[u8]) -> &[u8] {
    buf.get(..MAX_HEAD_BYTES).unwrap_or(buf)
}

/// Whether a line feed in `head` is not preceded by a carriage return. RFC 9112 §2.2 lets a
/// recipient accept a bare LF; lb rejects it, so every hop agrees on where lines end.
pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    head.first() == Some(&b'\n') || head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')
}

/// The version for httparse's minor version number (it only accepts `HTTP/1.0` and `HTTP/1.1`).
pub(crate) fn version(minor: u8) -> Option<Version> {
    match minor {
        0 => Some(Version::Http10),
        1 => Some(Version::Http11),
        _ => None,
    }
}

/// One plain sentence for an httparse syntax error.
pub(crate) fn syntax_detail(err: httparse::Error) -> &'static str {
    match err {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_detected_anywhere() {
        assert!(has_bare_lf(b"\n"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\n"));
        assert!(has_bare_lf(b"a\r\nb\n\r\n"));
        assert!(!has_bare_lf(b"a\r\nb\r\n\r\n"));
        assert!(!has_bare_lf(b""));
        assert!(!has_bare_lf(b"\r"));
    }

    #[test]
    fn window_is_capped() {
        let big = vec![b'a'; MAX_HEAD_BYTES + 10];
        assert_eq!(window(&big).len(), MAX_HEAD_BYTES);
        assert_eq!(window(b"abc"), b"abc");
    }
}
