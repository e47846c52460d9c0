//! The value a `hash` route hashes, read from the request: the TCP peer's address, a header's
//! first value, or one cookie's value. A pure function over the parsed head; it borrows what it
//! returns and never allocates. No value (no such header or cookie, or an empty one) is `None`,
//! and the route then picks round robin.

use lb_http::Header;
use lb_registry::HashKey;
use std::net::IpAddr;

/// The peer address's bytes, written into `buf` (4 for IPv4, 16 for IPv6).
pub(crate) fn peer_bytes(peer: IpAddr, buf: &mut [u8; 16]) -> &[u8] {
    match peer {
        IpAddr::V4(v4) => {
            buf[..4].copy_from_slice(&v4.octets());
            &buf[..4]
        }
        IpAddr::V6(v6) => {
            *buf = v6.octets();
            &buf[..]
        }
    }
}

/// The value `key` names in a request with these `headers` from a peer whose address bytes
/// are `peer` (see the module docs).
pub(crate) fn key_value<'r>(
    key: &HashKey,
    headers: &[Header<'r>],
    peer: &'r [u8],
) -> Option<&'r [u8]> {
    let value = match key {
        HashKey::ClientIp => Some(peer),
        HashKey::Header(name) => headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value.trim_ascii()),
        HashKey::Cookie(name) => headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
            .find_map(|h| cookie(h.value, name.as_str().as_bytes())),
    };
    value.filter(|v| !v.is_empty())
}

/// The value of cookie `name` in one `Cookie` field value (`a=1; sid=xyz`, RFC 6265 §5.4).
fn cookie<'r>(field: &'r [u8], name: &[u8]) -> Option<&'r [u8]> {
    field.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let at = pair.iter().position(|&b| b == b'=')?;
        (&pair[..at] == name).then(|| pair[at + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_registry::Balance;

    fn key(spec: &str) -> HashKey {
        match Balance::parse(Some("hash"), Some(spec)) {
            Ok(Balance::Hash(key)) => key,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn each_key_kind_reads_its_value() {
        let headers = [
            Header {
                name: "X-User",
                value: b" alice ",
            },
            Header {
                name: "Cookie",
                value: b"theme=dark; sid=s-42",
            },
            Header {
                name: "cookie",
                value: b"other=1",
            },
            Header {
                name: "X-Empty",
                value: b"",
            },
        ];
        let peer = [10, 0, 0, 7];
        let table: &[(&str, Option<&[u8]>)] = &[
            ("client_ip", Some(&[10, 0, 0, 7])),
            ("header:x-user", Some(b"alice")),
            ("header:X-Missing", None),
            ("header:X-Empty", None),
            ("cookie:sid", Some(b"s-42")),
            ("cookie:other", Some(b"1")),
            ("cookie:SID", None),
            ("cookie:the", None),
        ];
        for &(spec, want) in table {
            assert_eq!(key_value(&key(spec), &headers, &peer), want, "{spec}");
        }
    }

    #[test]
    fn peer_bytes_are_the_address_octets() {
        let mut buf = [0; 16];
        assert_eq!(
            peer_bytes("10.1.2.3".parse().unwrap(), &mut buf),
            [10, 1, 2, 3]
        );
        assert_eq!(peer_bytes("::1".parse().unwrap(), &mut buf).len(), 16);
    }
}
