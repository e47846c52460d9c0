//! The request-target and its four forms (RFC 9112 §3.2): which ones lb accepts for which method,
//! and what it forwards for each.
//!
//! - origin-form (`/path?query`): forwarded byte for byte after the route prefix; no
//!   percent-decoding, no dot-segment or slash normalisation, because any normalisation is a
//!   second reading of the path that the upstream might not share.
//! - absolute-form (`http://authority/path?query`, §3.2.2): only the `http` scheme. The path and
//!   query become the origin-form target and the authority replaces Host.
//! - authority-form (`host:port`, §3.2.3): only with CONNECT, which the proxy refuses (501).
//! - asterisk-form (`*`, §3.2.4): only with OPTIONS.
//!
//! Anything else, and any fragment (`#`, which no form allows), is a 400. Nothing here allocates;
//! every result borrows from the request line.

use crate::head::is_host_byte;

/// A request-target after its form was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'b> {
    /// What lb routes on and forwards: the origin-form path and query, `*`, or, for CONNECT,
    /// the target as sent.
    pub(crate) path: &'b str,
    /// The authority of an absolute-form target, which replaces Host (RFC 9112 §3.2.2).
    pub(crate) authority: Option<&'b [u8]>,
}

/// Checks `target`'s form against `method` and splits an absolute-form target.
pub(crate) fn request_target<'b>(
    method: &str,
    target: &'b str,
) -> Result<Target<'b>, &'static str> {
    // RFC 9112 §3.2: no form has a fragment; some servers cut the path at `#`, others do not.
    if target.contains('#') {
        return Err("fragment in request target");
    }
    let origin = |path| {
        Ok(Target {
            path,
            authority: None,
        })
    };
    if target.starts_with('/') {
        return origin(target);
    }
    if target == "*" {
        // §3.2.4: "only used for a server-wide OPTIONS request".
        return if method == "OPTIONS" {
            origin(target)
        } else {
            Err("asterisk-form target with a method other than OPTIONS")
        };
    }
    if method == "CONNECT" {
        // §3.2.3: authority-form is only for CONNECT; the proxy refuses CONNECT itself.
        return origin(target);
    }
    absolute_form(target)
}

/// `absolute-form = absolute-URI` (RFC 9112 §3.2.2) with the `http` scheme: `http://` authority,
/// then a path starting with `/` or nothing. A target that is not an absolute URI at all, or has
/// another scheme, is a 400: lb only proxies plain HTTP and never guesses at other forms.
fn absolute_form(target: &str) -> Result<Target<'_>, &'static str> {
    let Some((scheme, rest)) = target.split_once(':') else {
        return Err("invalid request target");
    };
    if !is_scheme(scheme) {
        return Err("invalid request target");
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return Err("invalid request target");
    };
    // RFC 3986 §3.1: schemes compare case-insensitively.
    if !scheme.eq_ignore_ascii_case("http") {
        return Err("absolute-form target with a scheme other than http");
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // RFC 9110 §4.2.1: "A recipient that processes such a URI reference [an http URI with an
    // empty host] MUST reject it as invalid".
    if authority.is_empty() || authority.starts_with(':') {
        return Err("absolute-form target without a host");
    }
    // RFC 9110 §4.2.4: userinfo is deprecated; a recipient "SHOULD ... treat its presence as an
    // error", since it has been used to disguise the real host.
    if authority.contains('@') {
        return Err("userinfo in absolute-form target");
    }
    if !authority.bytes().all(is_host_byte) {
        return Err("invalid authority in absolute-form target");
    }
    let path = match path.as_bytes().first() {
        // §3.2.2 via §3.2.1: an empty path is sent as "/".
        None => "/",
        Some(b'/') => path,
        // `http://host?q` would have to become `/?q`, which is not a slice of the request: lb
        // refuses it rather than allocate per request for a form no real client sends.
        _ => return Err("absolute-form target with a query but no path"),
    };
    Ok(Target {
        path,
        authority: Some(authority.as_bytes()),
    })
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, target: &'static str) -> (&'static str, Option<&'static str>) {
        let t = request_target(method, target).unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        let authority = t.authority.map(|a| std::str::from_utf8(a).unwrap_or("?"));
        (t.path, authority)
    }

    fn err(method: &str, target: &str) -> &'static str {
        match request_target(method, target) {
            Err(e) => e,
            Ok(t) => panic!("{method} {target}: {t:?}"),
        }
    }

    #[test]
    fn origin_form_as_is() {
        assert_eq!(ok("GET", "/a%2Fb/../c?x=/y"), ("/a%2Fb/../c?x=/y", None));
        assert_eq!(ok("GET", "//double"), ("//double", None));
        assert_eq!(ok("OPTIONS", "/"), ("/", None));
    }

    #[test]
    fn absolute_form_split() {
        assert_eq!(
            ok("GET", "http://example.com:8080/x?q=1"),
            ("/x?q=1", Some("example.com:8080"))
        );
        assert_eq!(ok("GET", "http://example.com"), ("/", Some("example.com")));
        assert_eq!(ok("GET", "HTTP://Example.COM/"), ("/", Some("Example.COM")));
        assert_eq!(ok("POST", "http://[::1]:80/p"), ("/p", Some("[::1]:80")));
        assert_eq!(ok("GET", "http://h/a/../b"), ("/a/../b", Some("h")));
    }

    #[test]
    fn absolute_form_rejections() {
        assert_eq!(
            err("GET", "https://example.com/"),
            "absolute-form target with a scheme other than http"
        );
        assert_eq!(
            err("GET", "ftp://example.com/"),
            "absolute-form target with a scheme other than http"
        );
        assert_eq!(err("GET", "http:/x"), "invalid request target");
        assert_eq!(err("GET", "http:x"), "invalid request target");
        assert_eq!(err("GET", "1http://h/"), "invalid request target");
        assert_eq!(
            err("GET", "http:///x"),
            "absolute-form target without a host"
        );
        assert_eq!(
            err("GET", "http://:80/x"),
            "absolute-form target without a host"
        );
        assert_eq!(
            err("GET", "http://u:p@h/x"),
            "userinfo in absolute-form target"
        );
        assert_eq!(
            err("GET", "http://a\"b/x"),
            "invalid authority in absolute-form target"
        );
        assert_eq!(
            err("GET", "http://h?q"),
            "absolute-form target with a query but no path"
        );
    }

    #[test]
    fn asterisk_only_for_options() {
        assert_eq!(ok("OPTIONS", "*"), ("*", None));
        assert_eq!(
            err("GET", "*"),
            "asterisk-form target with a method other than OPTIONS"
        );
        assert_eq!(err("OPTIONS", "*x"), "invalid request target");
    }

    #[test]
    fn authority_form_only_for_connect() {
        assert_eq!(ok("CONNECT", "example.com:443"), ("example.com:443", None));
        // "example.com" has the syntax of a scheme, but "443" is no `//` authority.
        assert_eq!(err("GET", "example.com:443"), "invalid request target");
        assert_eq!(err("GET", "example.com"), "invalid request target");
        assert_eq!(err("GET", "1.2.3.4:80"), "invalid request target");
    }

    #[test]
    fn fragments_rejected_in_every_form() {
        for (m, t) in [
            ("GET", "/a#b"),
            ("GET", "/#"),
            ("GET", "http://h/x#y"),
            ("GET", "http://h#y"),
        ] {
            assert_eq!(err(m, t), "fragment in request target", "{t}");
        }
    }
}
