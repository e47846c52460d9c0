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

/// `tchar` (RFC 9110 §5.6.2): the bytes of a token such as a field name or a transfer coding.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

/// Every element of every `name` field, in order; a list field may repeat (RFC 9110 §5.3).
fn list_members<'a>(
    headers: &'a [Header<'a>],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| list_elements(h.value))
}

/// Whether any `name` field lists `member` (case-insensitive, as for every token list lb reads:
/// Connection options, Expect).
pub(crate) fn has_list_member(headers: &[Header<'_>], name: &str, member: &str) -> bool {
    list_members(headers, name).any(|o| o.eq_ignore_ascii_case(member.as_bytes()))
}

/// Whether a `Connection` field carries `option` (case-insensitive).
pub(crate) fn has_connection_option(headers: &[Header<'_>], option: &str) -> bool {
    has_list_member(headers, "connection", option)
}

/// Whether a field called `name` is present.
pub(crate) fn has_field(headers: &[Header<'_>], name: &str) -> bool {
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

/// Most `Connection` options one message may carry before [`ConnectionOptions`] falls back to
/// scanning the fields again for every name. Real messages carry one or two; every parsed head
/// carries the array, and a larger one costs a copy wherever the head moves.
const MAX_OPTIONS: usize = 4;

/// The `Connection` options of one message, collected once when it is parsed: persistence, the
/// upgrade check and deciding which fields to drop then consult this instead of re-splitting
/// every `Connection` field each time.
#[derive(Debug)]
pub(crate) struct ConnectionOptions<'a> {
    headers: &'a [Header<'a>],
    options: [&'a [u8]; MAX_OPTIONS],
    len: usize,
    /// More than [`MAX_OPTIONS`]: answer from `headers` instead.
    overflow: bool,
}

impl<'a> ConnectionOptions<'a> {
    pub(crate) fn new(headers: &'a [Header<'a>]) -> Self {
        let mut collected = ConnectionOptions {
            headers,
            options: [&[]; MAX_OPTIONS],
            len: 0,
            overflow: false,
        };
        for option in list_members(headers, "connection") {
            match collected.options.get_mut(collected.len) {
                Some(slot) => {
                    *slot = option;
                    collected.len += 1;
                }
                None => {
                    collected.overflow = true;
                    break;
                }
            }
        }
        collected
    }

    /// Whether some `Connection` field carries `option` (case-insensitive).
    pub(crate) fn contains(&self, option: &str) -> bool {
        if self.overflow {
            return has_connection_option(self.headers, option);
        }
        self.options[..self.len]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(option.as_bytes()))
    }
}

/// Whether a field is removed before forwarding: never forwarded as received, or named by a
/// `Connection` option, which makes it connection-specific (RFC 9110 §7.6.1).
pub(crate) fn is_connection_specific(name: &str, options: &ConnectionOptions<'_>) -> bool {
    is_never_forwarded(name) || options.contains(name)
}

/// Whether the connection persists after this message (RFC 9112 §9.3): not if `close` is an
/// option; otherwise yes for HTTP/1.1, and for HTTP/1.0 only with the `keep-alive` option.
pub(crate) fn persistent(version: Version, options: &ConnectionOptions<'_>) -> bool {
    if options.contains("close") {
        return false;
    }
    match version {
        Version::Http11 | Version::Http2 => true,
        Version::Http10 => options.contains("keep-alive"),
    }
}

/// Appends `name: value` and CRLF.
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends lb's own `Via` entry (RFC 9110 §7.6.3): `received-protocol received-by`, where the
/// protocol is the version of the message as lb received it ("1.0" or "1.1", the "HTTP/" prefix
/// omitted as the RFC allows) and `lb` the pseudonym. Earlier `Via` fields are forwarded in place
/// before it, so the chain stays in order.
pub(crate) fn put_via(out: &mut Vec<u8>, received: Version) {
    out.extend_from_slice(match received {
        Version::Http10 => b"Via: 1.0 lb\r\n",
        Version::Http11 => b"Via: 1.1 lb\r\n",
        Version::Http2 => b"Via: 2 lb\r\n",
    });
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
        let options = ConnectionOptions::new(&headers);
        assert!(is_connection_specific("X-FOO", &options));
        assert!(is_connection_specific("Upgrade", &options));
        assert!(!is_connection_specific("Host", &options));
    }

    #[test]
    fn more_options_than_slots_are_still_all_honoured() {
        let many = "a, b, c, d, e, f, g, h, i, j, x-last";
        let headers = [h("Connection", many), h("X-Last", "1")];
        let options = ConnectionOptions::new(&headers);
        assert!(options.overflow);
        assert!(is_connection_specific("x-last", &options));
        assert!(is_connection_specific("A", &options));
        assert!(!is_connection_specific("x-other", &options));
    }

    #[test]
    fn list_members_across_fields() {
        let headers = [h("Expect", "foo=1"), h("expect", " 100-Continue ")];
        assert!(has_list_member(&headers, "expect", "100-continue"));
        assert!(!has_list_member(&headers, "expect", "foo"));
        assert!(has_field(&headers, "EXPECT"));
        assert!(!has_field(&headers, "upgrade"));
    }

    #[test]
    fn via_names_the_received_version() {
        let mut out = Vec::new();
        put_via(&mut out, Version::Http11);
        put_via(&mut out, Version::Http10);
        assert_eq!(out, b"Via: 1.1 lb\r\nVia: 1.0 lb\r\n");
    }

    #[test]
    fn persistence_rules() {
        let persistent =
            |version, headers: &[Header<'_>]| persistent(version, &ConnectionOptions::new(headers));
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
