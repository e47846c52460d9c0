//! The etcd key of one registration: `<prefix>targets/<host or _>/<urlencoded path>/<ip:port>`.
//!
//! One key per target, so that a registration, a heartbeat or a removal touches one key, a
//! transaction can compare that key's revision, and a lease can hold it alone. The host segment
//! is `_` for host-less routes (a host name never is `_`), so that virtual hosts fit the layout
//! without a migration. The path is percent-encoded whole (its `/` included), so each segment
//! of the key is free of `/` and decoding is a plain split.
//!
//! Pure: [`TargetKey::encode`] and [`TargetKey::decode`] are inverse on every valid key, and
//! decoding checks what the registry would check (a normalized prefix, a usable address), so
//! a key someone else wrote under the prefix is refused here, not half-applied.

use lb_registry::normalize_prefix;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The segment under the prefix that holds the targets.
const TARGETS: &str = "targets/";
/// The host segment of a host-less route.
const NO_HOST: &str = "_";

/// One registration's identity: host (none for host-less routes), route prefix, target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    /// The virtual host, lower-case; `None` for a host-less route.
    pub host: Option<String>,
    /// The normalized route prefix.
    pub path: String,
    /// The target address.
    pub addr: SocketAddr,
}

impl TargetKey {
    /// A host-less key.
    pub fn new(path: &str, addr: SocketAddr) -> Self {
        TargetKey {
            host: None,
            path: path.to_string(),
            addr,
        }
    }

    /// The route's name as the registry's changes take it: the host (if any), then the prefix
    /// ([`lb_registry::route_name`]'s form).
    pub fn route(&self) -> String {
        lb_registry::join_route(self.host.as_deref(), &self.path)
    }

    /// Where every target key starts under `prefix` (what the watch and the reads cover).
    pub fn range(prefix: &str) -> String {
        format!("{prefix}{TARGETS}")
    }

    /// The key under `prefix`.
    pub fn encode(&self, prefix: &str) -> String {
        let host = self.host.as_deref().unwrap_or(NO_HOST);
        format!(
            "{prefix}{TARGETS}{}/{}/{}",
            escape(host),
            escape(&self.path),
            self.addr
        )
    }

    /// The key `raw` read under `prefix`; the error says in one sentence why it is not one.
    pub fn decode(prefix: &str, raw: &[u8]) -> Result<Self, String> {
        let raw = std::str::from_utf8(raw).map_err(|_| "key is not UTF-8".to_string())?;
        let rest = raw
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(TARGETS))
            .ok_or_else(|| format!("key {raw:?} is not under {prefix}{TARGETS}"))?;
        let mut parts = rest.split('/');
        let (Some(host), Some(path), Some(addr), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("key {raw:?} is not <host>/<path>/<ip:port>"));
        };
        let host = unescape(host).ok_or_else(|| format!("key {raw:?}: bad escape in host"))?;
        let path = unescape(path).ok_or_else(|| format!("key {raw:?}: bad escape in path"))?;
        let normalized = normalize_prefix(&path).map_err(|e| format!("key {raw:?}: {e}"))?;
        if normalized != path {
            return Err(format!("key {raw:?}: path is not normalized"));
        }
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("key {raw:?}: {addr:?} is not ip:port"))?;
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(format!("key {raw:?}: {addr} is not a usable target"));
        }
        let host = match host.as_str() {
            NO_HOST => None,
            "" => return Err(format!("key {raw:?}: empty host")),
            _ => Some(host),
        };
        Ok(TargetKey { host, path, addr })
    }
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~ *` (so `/` and `%` are encoded).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'*') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The inverse of [`escape`]; `None` on a broken escape or bytes that are not UTF-8.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Each row: the key, what it encodes to under `/lb/`.
    #[test]
    fn encoding_table() {
        let table = [
            (
                TargetKey::new("/", addr("10.0.0.5:9001")),
                "/lb/targets/_/%2F/10.0.0.5:9001",
            ),
            (
                TargetKey::new("/api/v1", addr("[::1]:80")),
                "/lb/targets/_/%2Fapi%2Fv1/[::1]:80",
            ),
            (
                TargetKey {
                    host: Some("*.example.com".into()),
                    path: "/a%b".into(),
                    addr: addr("10.0.0.1:1"),
                },
                "/lb/targets/*.example.com/%2Fa%25b/10.0.0.1:1",
            ),
        ];
        for (key, raw) in table {
            assert_eq!(key.encode("/lb/"), raw);
            assert_eq!(TargetKey::decode("/lb/", raw.as_bytes()), Ok(key), "{raw}");
        }
    }

    /// Each row: a raw key that must be refused.
    #[test]
    fn refused_keys() {
        let table = [
            "/other/targets/_/%2F/10.0.0.5:9001",
            "/lb/targets/_/%2F",
            "/lb/targets/_/%2F/10.0.0.5:9001/x",
            "/lb/targets/_/%2F/10.0.0.5",
            "/lb/targets/_/%2F/10.0.0.5:0",
            "/lb/targets/_/%2F/0.0.0.0:80",
            "/lb/targets/_/%2Fa%2F/10.0.0.5:80",
            "/lb/targets/_/a/10.0.0.5:80",
            "/lb/targets/_/%2F%zz/10.0.0.5:80",
            "/lb/targets/_/%2F%FF/10.0.0.5:80",
            "/lb/targets//%2F/10.0.0.5:80",
        ];
        for raw in table {
            assert!(TargetKey::decode("/lb/", raw.as_bytes()).is_err(), "{raw}");
        }
    }

    proptest! {
        /// Every normalized prefix and address survives the round trip.
        #[test]
        fn round_trip(segments in proptest::collection::vec("[a-zA-Z0-9%~._ä-]{1,8}", 0..4),
                      host in proptest::option::of("[a-z0-9.*-]{1,12}"),
                      ip in any::<[u8; 4]>(), port in 1u16..) {
            let path = format!("/{}", segments.join("/"));
            prop_assume!(normalize_prefix(&path).ok().as_deref() == Some(path.as_str()));
            prop_assume!(host.as_deref() != Some(NO_HOST));
            let addr = SocketAddr::from((ip, port));
            prop_assume!(!addr.ip().is_unspecified());
            let key = TargetKey { host, path, addr };
            prop_assert_eq!(TargetKey::decode("/p/", key.encode("/p/").as_bytes()), Ok(key));
        }
    }
}
