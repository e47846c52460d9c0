//! A route's balancing policy: how a pick chooses among the route's healthy targets.
//!
//! - `round_robin` (the default): the route's (smooth weighted) schedule indexed by its cursor.
//! - `least_conn`: the target with the fewest requests in flight over all workers, ties broken
//!   in round-robin order (the scan starts at the cursor's position).
//! - `hash`: a Maglev table over the targets, indexed by a hash of the request's key
//!   ([`HashKey`]); a request without a value for the key falls back to round robin.
//!
//! A policy is a plain `Copy` value (a header or cookie name is held inline, at most
//! [`MAX_KEY_NAME`] bytes), so route options stay `Copy` and no pick clones anything.

use crate::error::RegistryError;
use std::fmt;

/// Longest header or cookie name a hash key may name.
pub const MAX_KEY_NAME: usize = 48;

/// How a route picks its target (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin, exact over all workers.
    #[default]
    RoundRobin,
    /// Fewest requests in flight; ties in round-robin order.
    LeastConn,
    /// Consistent hashing of the key over a Maglev table.
    Hash(HashKey),
}

/// What a `hash` route hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey {
    /// The TCP peer's address.
    ClientIp,
    /// The first value of this request header (name compared without regard to case).
    Header(KeyName),
    /// The value of this cookie in the `Cookie` header (name compared exactly).
    Cookie(KeyName),
}

/// A header or cookie name, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyName {
    bytes: [u8; MAX_KEY_NAME],
    len: u8,
}

impl KeyName {
    fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= MAX_KEY_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"=;,\"".contains(&b));
        if !ok {
            return None;
        }
        let mut bytes = [0; MAX_KEY_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(KeyName {
            bytes,
            len: u8::try_from(name.len()).ok()?,
        })
    }

    /// The name as configured.
    pub fn as_str(&self) -> &str {
        // Built from a `&str` of ASCII bytes only.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Balance {
    /// The policy a configuration names: `balance` (`round_robin`, `least_conn`, `hash`; absent
    /// is `round_robin`) and, for `hash` only, `hash_key` (`client_ip`, `header:NAME`,
    /// `cookie:NAME`; absent is `client_ip`). The error says what is accepted.
    pub fn parse(balance: Option<&str>, hash_key: Option<&str>) -> Result<Self, RegistryError> {
        let invalid = |m: String| Err(RegistryError::InvalidValue(m));
        match (balance.unwrap_or("round_robin"), hash_key) {
            ("round_robin", None) => Ok(Balance::RoundRobin),
            ("least_conn", None) => Ok(Balance::LeastConn),
            ("hash", key) => Ok(Balance::Hash(HashKey::parse(key.unwrap_or("client_ip"))?)),
            ("round_robin" | "least_conn", Some(_)) => {
                invalid("hash_key is only for balance = \"hash\"".to_string())
            }
            (other, _) => invalid(format!(
                "balance {other:?} is not a policy; expected \"round_robin\", \"least_conn\" or \"hash\""
            )),
        }
    }

    /// The policy's name, as `GET /routes` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastConn => "least_conn",
            Balance::Hash(_) => "hash",
        }
    }

    /// The hash key, as configured, for a `hash` route.
    pub fn hash_key(&self) -> Option<String> {
        match self {
            Balance::Hash(key) => Some(key.to_string()),
            _ => None,
        }
    }

    /// Whether picks of this policy count requests in flight on their target (the caller
    /// then ends the count when the exchange ends, see [`crate::Target::start_request`]).
    #[inline]
    pub fn counts_in_flight(&self) -> bool {
        matches!(self, Balance::LeastConn)
    }
}

impl HashKey {
    fn parse(key: &str) -> Result<Self, RegistryError> {
        let parsed = match key.split_once(':') {
            None if key == "client_ip" => Some(HashKey::ClientIp),
            Some(("header", name)) => KeyName::new(name).map(HashKey::Header),
            Some(("cookie", name)) => KeyName::new(name).map(HashKey::Cookie),
            _ => None,
        };
        parsed.ok_or_else(|| {
            RegistryError::InvalidValue(format!(
                "hash_key {key:?} is not a key; expected \"client_ip\", \"header:NAME\" or \
                 \"cookie:NAME\" (a name of at most {MAX_KEY_NAME} visible characters)"
            ))
        })
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::ClientIp => f.write_str("client_ip"),
            HashKey::Header(name) => write!(f, "header:{}", name.as_str()),
            HashKey::Cookie(name) => write!(f, "cookie:{}", name.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `balance` and `hash_key` as configured, and the name and key `GET /routes` shows.
    type Shown<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

    #[test]
    fn policies_parse_and_show_as_configured() {
        let ok: &[Shown] = &[
            (None, None, "round_robin", None),
            (Some("round_robin"), None, "round_robin", None),
            (Some("least_conn"), None, "least_conn", None),
            (Some("hash"), None, "hash", Some("client_ip")),
            (Some("hash"), Some("client_ip"), "hash", Some("client_ip")),
            (
                Some("hash"),
                Some("header:X-User"),
                "hash",
                Some("header:X-User"),
            ),
            (Some("hash"), Some("cookie:sid"), "hash", Some("cookie:sid")),
        ];
        for &(balance, key, name, shown) in ok {
            let b = Balance::parse(balance, key).expect("valid");
            assert_eq!((b.name(), b.hash_key().as_deref()), (name, shown));
        }
        let long = format!("header:{}", "x".repeat(49));
        let bad: &[(Option<&str>, Option<&str>, &str)] = &[
            (Some("random"), None, "balance"),
            (Some("least_conn"), Some("client_ip"), "hash_key"),
            (Some("hash"), Some("header:"), "hash_key"),
            (Some("hash"), Some("cookie:a=b"), "hash_key"),
            (Some("hash"), Some("path"), "hash_key"),
            (Some("hash"), Some(&long), "hash_key"),
        ];
        for &(balance, key, field) in bad {
            let err = Balance::parse(balance, key)
                .expect_err("invalid")
                .to_string();
            assert!(err.starts_with(field), "{balance:?} {key:?}: {err}");
        }
    }
}
