//! The client's side of a connection as lb writes it into every request head: its address in
//! `X-Forwarded-For`, formatted once per connection when it is accepted instead of once per
//! request, and the scheme it came in by (`X-Forwarded-Proto`: `http`, or `https` over TLS).
//!
//! Invariants: the text is the address's usual form (dotted decimal for IPv4, RFC 5952 for IPv6,
//! as `Display` writes it), held inline, so neither formatting nor copying allocates; it holds
//! only digits, hex digits, `.` and `:`, so it can never break the head it is written into.

use std::io::Write;
use std::net::IpAddr;

/// Longest text form of an IP address: an IPv6 address with an embedded IPv4 one,
/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` (`INET6_ADDRSTRLEN` without its NUL).
const MAX_TEXT: usize = 45;

/// The scheme a client connection came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Clear text.
    #[default]
    Http,
    /// Over TLS.
    Https,
}

impl Scheme {
    /// As `X-Forwarded-Proto` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A client address in text form, ready to be copied into every request head of a connection,
/// with the connection's scheme.
#[derive(Clone, Copy)]
pub struct ClientAddr {
    text: [u8; MAX_TEXT],
    len: usize,
    scheme: Scheme,
}

impl ClientAddr {
    /// Formats `ip`. IPv4 (the common case) is written digit by digit: `core::fmt` costs about a
    /// thousand instructions, which a connection that carries one request pays in full; IPv6
    /// keeps `Display`.
    pub fn new(ip: IpAddr) -> Self {
        let mut addr = ClientAddr {
            text: [0; MAX_TEXT],
            len: 0,
            scheme: Scheme::Http,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        addr.push(b'.');
                    }
                    addr.push_decimal(octet);
                }
            }
            IpAddr::V6(v6) => {
                let mut rest = &mut addr.text[..];
                // `MAX_TEXT` fits every IPv6 address, so the write cannot run out of room.
                let _ = write!(rest, "{v6}");
                addr.len = MAX_TEXT - rest.len();
            }
        }
        addr
    }

    /// The same address, on a connection that came in by `scheme` (`http` unless said).
    pub fn with_scheme(self, scheme: Scheme) -> Self {
        ClientAddr { scheme, ..self }
    }

    /// The connection's scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The text form.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.text.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Appends `n` in decimal, without leading zeros.
    fn push_decimal(&mut self, n: u8) {
        if n >= 100 {
            self.push(b'0' + n / 100);
        }
        if n >= 10 {
            self.push(b'0' + n / 10 % 10);
        }
        self.push(b'0' + n % 10);
    }
}

impl std::fmt::Debug for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Always ASCII (see the module invariants).
        f.write_str(std::str::from_utf8(self.as_bytes()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usual_text_form() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(
                ClientAddr::new(ip.parse().unwrap()).as_bytes(),
                ip.as_bytes()
            );
        }
    }

    proptest! {
        /// Every address reads as `Display` writes it.
        #[test]
        fn agrees_with_display(ip in any::<IpAddr>()) {
            let addr = ClientAddr::new(ip);
            let text = ip.to_string();
            prop_assert_eq!(addr.as_bytes(), text.as_bytes());
        }
    }
}
