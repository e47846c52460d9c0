//! Route names: the prefix a route is registered at, the host it may be bound to (virtual
//! hosts), the name that carries both, and the host of a request as routing compares it. A
//! leaf: it imports nothing of the crate but its error type.
//!
//! A route is named by its host and its prefix written together, `api.example.com/v1` (or just
//! `/v1` for a host-less route): a host never contains `/` and a prefix always starts with one,
//! so the first `/` splits a name unambiguously ([`split_route`]). Every change, the table and
//! the state file's pairs use that one name, so a host-bound route and a host-less one with the
//! same prefix are two routes with their own targets and cursor.
//!
//! A route's host is lower-case, an exact name (`api.example.com`) or a one-label wildcard
//! (`*.example.com`, which matches `a.example.com` but neither `example.com` nor
//! `a.b.example.com`). A request's host is its `Host` lower-cased with the port removed, written
//! into a caller's buffer so that routing never allocates ([`request_host`]).

use crate::error::RegistryError;

/// Longest host name (RFC 1035 §2.3.4); a longer request host matches no host-bound route.
pub const MAX_HOST: usize = 253;

/// Checks a route's host and returns its normalized (lower-case) form: labels of letters,
/// digits, `-` and `_`, separated by `.`, optionally after a leading `*.`; at most
/// [`MAX_HOST`] bytes.
pub fn normalize_host(host: &str) -> Result<String, RegistryError> {
    let invalid = || {
        RegistryError::InvalidValue(format!(
            "host {host:?} must be a host name such as api.example.com, or a one-label \
             wildcard such as *.example.com, without a port"
        ))
    };
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if host.len() > MAX_HOST || !labels_ok {
        return Err(invalid());
    }
    Ok(host.to_ascii_lowercase())
}

/// Checks a route prefix and returns its normalized form: must start with `/`, no `?`, `#`,
/// whitespace or control characters; trailing `/` removed except for the root `/`.
pub fn normalize_prefix(path: &str) -> Result<String, RegistryError> {
    if !path.starts_with('/') {
        return Err(RegistryError::InvalidPath(
            "path must start with `/`".to_string(),
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(RegistryError::InvalidPath(format!(
            "path must not contain {c:?}"
        )));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

/// The name of the route at `path` on `host` (see the module docs), both normalized and checked.
pub fn route_name(host: Option<&str>, path: &str) -> Result<String, RegistryError> {
    let prefix = normalize_prefix(path)?;
    Ok(match host {
        Some(host) => join_route(Some(&normalize_host(host)?), &prefix),
        None => prefix,
    })
}

/// The name of the route at the normalized `prefix` on the normalized `host`: what
/// [`split_route`] takes apart (the registry's listings give host and prefix separately;
/// per-route figures and cluster keys are named by the whole).
pub fn join_route(host: Option<&str>, prefix: &str) -> String {
    match host {
        Some(host) => format!("{host}{prefix}"),
        None => prefix.to_string(),
    }
}

/// A route's name (`[host]/prefix`, see the module docs) normalized and checked.
pub(crate) fn normalize_route(route: &str) -> Result<String, RegistryError> {
    match split_route(route) {
        (host, path) if path.starts_with('/') => route_name(host, path),
        _ => Err(RegistryError::InvalidPath(
            "path must start with `/`".to_string(),
        )),
    }
}

/// A route's name split into its host (`None` for a host-less route) and its prefix.
pub fn split_route(route: &str) -> (Option<&str>, &str) {
    match route.find('/') {
        Some(0) | None => (None, route),
        Some(at) => (Some(&route[..at]), &route[at..]),
    }
}

/// The host of a request (`raw`: the Host value or the absolute-form authority) as routing
/// compares it: lower-cased into `buf`, the port and one trailing `.` removed. `None` when it
/// is empty, longer than [`MAX_HOST`] or not ASCII: such a request matches host-less routes only.
pub fn request_host<'b>(raw: &[u8], buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let name = if raw.first() == Some(&b'[') {
        // An IPv6 literal keeps its brackets; the port is what follows `]`.
        &raw[..raw
            .iter()
            .position(|&b| b == b']')
            .map_or(raw.len(), |at| at + 1)]
    } else {
        &raw[..raw.iter().position(|&b| b == b':').unwrap_or(raw.len())]
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST {
        return None;
    }
    let out = &mut buf[..name.len()];
    for (o, &b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

/// The parent a one-label wildcard would be written for: `a.example.com` -> `example.com`.
#[inline]
pub(crate) fn wildcard_parent(host: &str) -> Option<&str> {
    host.split_once('.').map(|(_, parent)| parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_names_split_back_into_host_and_prefix() {
        for (host, prefix, name) in [
            (None, "/", "/"),
            (None, "/api", "/api"),
            (Some("api.example.com"), "/v1", "api.example.com/v1"),
            (Some("*.example.com"), "/", "*.example.com/"),
        ] {
            assert_eq!(join_route(host, prefix), name);
            assert_eq!(split_route(name), (host, prefix));
        }
    }

    #[test]
    fn route_hosts_are_checked_and_lower_cased() {
        let ok = [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("*.example.com", "*.example.com"),
            ("localhost", "localhost"),
            ("10.0.0.1", "10.0.0.1"),
            ("my_host-1.lan", "my_host-1.lan"),
        ];
        for (host, want) in ok {
            assert_eq!(normalize_host(host).as_deref(), Ok(want), "{host}");
        }
        let long = "a.".repeat(127);
        for bad in [
            "",
            "*.",
            "*",
            "a.*.com",
            "**.a.com",
            "a..b",
            ".a",
            "a.",
            "a:80",
            "a/b",
            "a b",
            "[::1]",
            long.as_str(),
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn route_names_carry_the_host_before_the_prefix() {
        assert_eq!(route_name(None, "/a/").as_deref(), Ok("/a"));
        assert_eq!(route_name(Some("A.com"), "/").as_deref(), Ok("a.com/"));
        assert_eq!(split_route("a.com/x"), (Some("a.com"), "/x"));
        assert_eq!(split_route("/x/y"), (None, "/x/y"));
        assert_eq!(normalize_route("A.com/x/").as_deref(), Ok("a.com/x"));
        assert!(normalize_route("a.com").is_err());
        assert!(normalize_route("a:1/x").is_err());
    }

    #[test]
    fn request_hosts_lose_the_port_and_the_case() {
        let table: &[(&[u8], Option<&str>)] = &[
            (b"Example.COM", Some("example.com")),
            (b"example.com:8080", Some("example.com")),
            (b"example.com.", Some("example.com")),
            (b"example.com.:80", Some("example.com")),
            (b"[::1]:8080", Some("[::1]")),
            (b"[::1]", Some("[::1]")),
            (b"10.0.0.1:80", Some("10.0.0.1")),
            (b"", None),
            (b":80", None),
            (b"\xff", None),
        ];
        for (raw, want) in table {
            let mut buf = [0; MAX_HOST];
            assert_eq!(request_host(raw, &mut buf), *want, "{raw:?}");
        }
        let mut buf = [0; MAX_HOST];
        assert_eq!(request_host(&[b'a'; MAX_HOST + 1], &mut buf), None);
    }

    #[test]
    fn a_wildcard_covers_one_label() {
        assert_eq!(wildcard_parent("a.example.com"), Some("example.com"));
        assert_eq!(wildcard_parent("com"), None);
    }
}
