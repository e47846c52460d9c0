//! Checks shared by request and response heads, around `httparse`: the size window, line endings,
//! the version, and the wording of syntax errors.
//!
//! httparse is strict by default (no obs-fold, no space before a colon, no bare CR, no control
//! bytes) but accepts a bare LF as a line ending; lb does not (HAProxy's default), because a
//! parser behind lb that reads lines differently would see a different head. Nothing here
//! allocates or panics on peer bytes.

use crate::{Version, MAX_HEAD_BYTES, MAX_REQUEST_LINE};

/// The part of `buf` a head may occupy. Parsing only this bounds httparse's work per read, and a
/// head that is still incomplete within it is over the limit.
pub(crate) fn window(buf: &[u8]) -> &[u8] {
    buf.get(..MAX_HEAD_BYTES).unwrap_or(buf)
}

/// Whether a line feed in `head` is not preceded by a carriage return. RFC 9112 §2.2 lets a
/// recipient accept a bare LF; lb rejects it, so every hop agrees on where lines end.
///
/// Every request and response head passes here, so it jumps from line feed to line feed
/// (`memchr`, SIMD) instead of looking at every pair of bytes.
pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head)
        .any(|lf| lf.checked_sub(1).and_then(|cr| head.get(cr)) != Some(&b'\r'))
}

/// Where the request line starts: httparse skips empty lines before it, as RFC 9112 §2.2 lets a
/// server do, so lb measures the line from the first byte that is not CR or LF.
fn request_line_start(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b != b'\r' && b != b'\n')
}

/// Whether the request line in `buf` is over [`MAX_REQUEST_LINE`] bytes (its CRLF not counted),
/// whether it has ended yet or not. The line ends at its first CR or LF: a CR inside it is
/// rejected by httparse anyway, so that reading is never the one that counts.
pub(crate) fn request_line_too_long(buf: &[u8]) -> bool {
    let Some(line) = request_line_start(buf).and_then(|start| buf.get(start..)) else {
        return false;
    };
    let probe = line.get(..=MAX_REQUEST_LINE).unwrap_or(line);
    probe.len() > MAX_REQUEST_LINE && memchr::memchr2(b'\r', b'\n', probe).is_none()
}

/// Whether a line feed has ended the request line within `buf`; empty lines before the request
/// line do not count.
pub(crate) fn request_line_ended(buf: &[u8]) -> bool {
    request_line_start(buf)
        .and_then(|start| buf.get(start..))
        .is_some_and(|line| line.contains(&b'\n'))
}

/// The bytes of a Host value other than letters and digits: see [`is_host_byte`].
const HOST_PUNCTUATION: &[u8] = b"-._~!$&'()*+,;=:[]%";

/// [`is_host_byte`] for every byte value, built at compile time: every request's Host is checked
/// byte by byte, and one load per byte costs a fraction of comparing with each punctuation byte.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < table.len() {
        // `b` is below 256, so the cast cannot truncate.
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < HOST_PUNCTUATION.len() {
        table[HOST_PUNCTUATION[i] as usize] = true;
        i += 1;
    }
    table
};

/// Bytes of `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): reg-name characters
/// (unreserved, sub-delims, percent-encoding), IP-literal brackets, and the port colon. Keeping
/// to these keeps Host and X-Forwarded-Host free of surprises (no `@`, `/`, spaces or quotes).
pub(crate) fn is_host_byte(b: u8) -> bool {
    HOST_BYTES[usize::from(b)]
}

/// The version for httparse's minor version number (it only accepts `HTTP/1.0` and `HTTP/1.1`).
pub(crate) fn version(minor: u8) -> Option<Version> {
    match minor {
        0 => Some(Version::Http10),
        1 => Some(Version::Http11),
        _ => None,
    }
}

/// Whether `buf` opens with a whole request line that names a protocol other than HTTP
/// (`METHOD target PROTO` with `PROTO` not `HTTP...` in any case): a peer speaking something else, such as
/// an HTTP/2 client whose connection preface is broken (RFC 9113 §3.4: a connection error,
/// the connection just closes). An HTTP/1.1 answer would mean nothing to it, so lb closes
/// without one; a line with a mistyped HTTP version (`HTTP/1.2`, `HTTP2`) still gets its 400.
pub fn names_other_protocol(buf: &[u8]) -> bool {
    let Some(end) = memchr::memmem::find(window(buf), b"\r\n") else {
        return false;
    };
    let mut tokens = buf[..end].split(|&b| b == b' ');
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some(method), Some(target), Some(proto), None) => {
            !method.is_empty()
                && !target.is_empty()
                && !proto.is_empty()
                && !proto
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"HTTP"))
        }
        _ => false,
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
    use proptest::prelude::*;

    proptest! {
        /// The line-feed jumps find exactly what a look at every pair of bytes finds.
        #[test]
        fn bare_lf_agrees_with_the_pairwise_definition(
            head in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..64)
        ) {
            let pairwise = head.first() == Some(&b'\n')
                || head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r');
            prop_assert_eq!(has_bare_lf(&head), pairwise);
        }
    }

    #[test]
    fn other_protocols_are_told_from_http_mistakes() {
        for (line, other) in [
            (&b"INVALID CONNECTION PREFACE\r\n\r\n"[..], true),
            (b"GET / FTP/1.0\r\n", true),
            (b"GET / HTTP/1.2\r\n", false),
            (b"GET / HTTP2\r\n", false),
            (b"GET / http/1.1\r\n", false),
            (b"GET / HTTP/1.1\r\n", false),
            (b"GET /\r\n", false),
            (b"GET / X Y\r\n", false),
            (b"GET / FTP/1.0", false),
            (b"NOT-HTTP\r\n\r\n", false),
            (b"\x16\x03\x01\x02\x00", false),
        ] {
            assert_eq!(
                names_other_protocol(line),
                other,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

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
    fn request_line_length() {
        let line = |n: usize, end: &[u8]| {
            let mut l = b"GET /".to_vec();
            l.resize(n, b'a');
            l.extend_from_slice(end);
            l
        };
        assert!(!request_line_too_long(&line(MAX_REQUEST_LINE, b"")));
        assert!(!request_line_too_long(&line(MAX_REQUEST_LINE, b"\r")));
        assert!(!request_line_too_long(&line(
            MAX_REQUEST_LINE,
            b"\r\nHost: a"
        )));
        assert!(request_line_too_long(&line(MAX_REQUEST_LINE + 1, b"")));
        assert!(request_line_too_long(&line(MAX_REQUEST_LINE + 1, b"\r\n")));
        let mut led = b"\r\n\r\n".to_vec();
        led.extend_from_slice(&line(MAX_REQUEST_LINE, b" HTTP/1.1\r\n"));
        assert!(request_line_too_long(&led));
        assert!(!request_line_too_long(b"\r\n\r\n"));
        assert!(!request_line_too_long(b""));
    }

    #[test]
    fn request_line_end() {
        assert!(request_line_ended(b"\r\nGET / HTTP/1.1\r\n"));
        assert!(!request_line_ended(b"\r\nGET / HTTP/1.1"));
        assert!(!request_line_ended(b"\r\n\r\n"));
    }

    #[test]
    fn host_bytes_are_letters_digits_and_the_listed_punctuation() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || HOST_PUNCTUATION.contains(&b);
            assert_eq!(is_host_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn window_is_capped() {
        let big = vec![b'a'; MAX_HEAD_BYTES + 10];
        assert_eq!(window(&big).len(), MAX_HEAD_BYTES);
        assert_eq!(window(b"abc"), b"abc");
    }
}
