//! [`HostPort`]: a route target as the operator wrote it, `HOST:PORT`, where HOST is an IP
//! literal (`10.0.0.5`, `[::1]`) or a host name (`localhost`, `backend.internal`).
//!
//! Parsing only checks the syntax: a name is resolved by whoever loads the configuration
//! ([`crate::Lookup`]), at start and on every reload, because this crate does no I/O. The
//! control plane takes IP literals only and never comes through here.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// What every target error says is accepted.
pub const TARGET_FORMS: &str =
    "expected HOST:PORT with a port 1-65535, e.g. 10.0.0.5:9001, [::1]:9001 or backend.internal:80";

/// A target as written: an IP literal or a host name, and a port (never 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host part without brackets: an IP literal or a DNS name.
    pub host: String,
    /// The port, 1-65535.
    pub port: u16,
}

/// A listening address (`--listen`, `--admin`, `listen =`): an IP literal and a port, since a
/// socket binds to an address of this host, not to a name.
pub fn parse_bind_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("invalid address \"{s}\" (expected IP:PORT, e.g. 127.0.0.1:8080 or [::]:8080)")
    })
}

impl HostPort {
    /// The address when the host is an IP literal, so that it needs no resolution.
    pub fn literal(&self) -> Option<SocketAddr> {
        let ip = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.literal() {
            Some(addr) => addr.fmt(f),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid target \"{s}\" ({TARGET_FORMS})");
        let text = s.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(bad());
            }
            return Ok(HostPort::from(addr));
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?;
        if !is_host_name(host) {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A DNS name (RFC 1123 labels: letters, digits and inner hyphens, at most 63 bytes each, 253
/// in all), optionally ending with the root dot. A bare IPv6 literal or an all-digit "name"
/// (a mistyped IPv4 address such as `10.0.0`) is not one.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(label_ok)
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let table = [
            ("127.0.0.1:9001", "127.0.0.1", 9001, true),
            ("[::1]:80", "::1", 80, true),
            ("localhost:9001", "localhost", 9001, false),
            ("Backend.Internal:80", "backend.internal", 80, false),
            ("api-1.example.com.:443", "api-1.example.com.", 443, false),
            (" web:65535 ", "web", 65535, false),
        ];
        for (text, host, port, literal) in table {
            let t: HostPort = text.parse().expect(text);
            assert_eq!((t.host.as_str(), t.port), (host, port), "{text}");
            assert_eq!(t.literal().is_some(), literal, "{text}");
        }
    }

    #[test]
    fn refused_forms_name_the_value() {
        let table = [
            "",
            "localhost",
            "localhost:",
            "localhost:0",
            "127.0.0.1:0",
            "localhost:65536",
            "localhost:http",
            ":80",
            "-bad:80",
            "bad-:80",
            "a..b:80",
            "under_score:80",
            "10.0.0:80",
            "::1:80",
            "[::1]",
            "host/x:80",
        ];
        for text in table {
            let error = text.parse::<HostPort>().expect_err(text);
            assert_eq!(
                error,
                format!("invalid target \"{text}\" ({TARGET_FORMS})"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn bind_addresses_are_ip_literals() {
        assert_eq!(parse_bind_addr("[::]:80"), Ok("[::]:80".parse().unwrap()));
        for bad in ["localhost:80", "8080", ":8080", "1.2.3.4"] {
            assert_eq!(
                parse_bind_addr(bad),
                Err(format!(
                    "invalid address \"{bad}\" (expected IP:PORT, e.g. 127.0.0.1:8080 or [::]:8080)"
                ))
            );
        }
    }

    #[test]
    fn display_is_what_was_meant() {
        for text in ["127.0.0.1:1", "[::1]:2", "localhost:3"] {
            assert_eq!(text.parse::<HostPort>().expect(text).to_string(), text);
        }
    }
}
