//! Header field handling shared by requests and responses: the connection-specific fields a proxy
//! removes (RFC 9110 §7.6.1), `Connection` options, persistence (RFC 9112 §9.3), and the small
//! writers that append fields to an output buffer.
//!
//! Invariants: nothing here allocates; field names compare ASCII case-insensitively (RFC 9110
//! §5.1); field values are copied byte for byte, never rewritten.

use crate::Version;
use httparse::Header;

/// Fields lb never forwards as received. RFC 9110 §7.6.1 names Connection, Proxy-Connection,
/// Keep-Alive, TE, Transfer-Encoding and Upgrade; Trailer is also dropped, as in RFC 2616's
/// hop-by-hop list; Content-Length is dropped because lb writes the framing field itself, once,
/// from the validated body kind.
const NOT_FORWARDED: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether `name` is one of the fields lb never forwards as received (see [`NOT_FORWARDED`]).
pub(crate) fn is_never_forwarded(name: &str) -> bool {
    NOT_FORWARDED.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// `value` without optional whitespace (SP / HTAB) at either end (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// The non-empty elements of a comma-separated list value, trimmed (RFC 9110 §5.6.1 lets a
/// recipient ignore empty elements).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Every option of every `Connection` field, in order; the field may repeat.
fn connection_options<'a>(headers: &'a [Header<'a>]) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| list_elements(h.value))
}

/// Whether a `Connection` field carries `option` (case-insensitive).
pub(crate) fn has_connection_option(headers: &[Header<'_>], option: &str) -> bool {
    connection_options(headers).any(|o| o.eq_ignore_ascii_case(option.as_bytes()))
}

/// Whether a field is removed before forwarding: never forwarded as received, or named by a
/// `Connection` option, which makes it connection-specific (RFC 9110 §7.6.1).
pub(crate) fn is_connection_specific(name: &str, headers: &[Header<'_>]) -> bool {
    is_never_forwarded(name) || has_connection_option(headers, name)
}

/// Whether the connection persists after this message (RFC 9112 §9.3): not if `close` is an
/// option; otherwise yes for HTTP/1.1, and for HTTP/1.0 only with the `keep-alive` option.
pub(crate) fn persistent(version: Version, headers: &[Header<'_>]) -> bool {
    if has_connection_option(headers, "close") {
        return false;
    }
    match version {
        Version::Http11 => true,
        Version::Http10 => has_connection_option(headers, "keep-alive"),
    }
}

/// Appends `name: value` and CRLF.
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Content-Length: n`.
pub(crate) fn put_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    put_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without allocating.
pub(crate) fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn trims_ows() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"x"), b"x");
    }

    #[test]
    fn connection_options_across_fields() {
        let headers = [
            h("Connection", "Keep-Alive, , X-Foo"),
            h("Host", "a"),
            h("connection", " close"),
        ];
        assert!(has_connection_option(&headers, "keep-alive"));
        assert!(has_connection_option(&headers, "x-foo"));
        assert!(has_connection_option(&headers, "CLOSE"));
        assert!(!has_connection_option(&headers, "host"));
        assert!(is_connection_specific("X-FOO", &headers));
        assert!(is_connection_specific("Upgrade", &headers));
        assert!(!is_connection_specific("Host", &headers));
    }

    #[test]
    fn persistence_rules() {
        assert!(persistent(Version::Http11, &[]));
        assert!(!persistent(Version::Http10, &[]));
        assert!(persistent(
            Version::Http10,
            &[h("Connection", "keep-alive")]
        ));
        assert!(!persistent(Version::Http11, &[h("Connection", "close")]));
        assert!(!persistent(
            Version::Http10,
            &[h("Connection", "keep-alive"), h("Connection", "close")]
        ));
    }

    #[test]
    fn decimal() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
