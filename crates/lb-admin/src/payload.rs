//! The JSON body of `/register` and `/deregister`: `{"path":"/test","ip":"10.0.0.5","port":9001}`,
//! and for `/register` optionally `"weight"` (1 to 1000) and `"ttl"` (seconds, 1 to 86400); for
//! both optionally `"host"` (`api.example.com`, or a wildcard `*.example.com`), which binds the
//! route to that host.
//!
//! Validation is complete before the registry is touched, and every refusal is one plain sentence
//! for the `400` body. Fields are typed loosely on purpose (`ip` a string, `port` any JSON
//! number, `weight` and `ttl` any JSON value) so that a wrong value gets a message naming that
//! field rather than a generic type error.

use lb_registry::{
    check_ttl, check_weight, normalize_host, normalize_prefix, route_name, RegistryError, Terms,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

/// The body as sent; `deny_unknown_fields` so that a typo (`"prot"`) is an error, not a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    #[serde(default)]
    host: Option<String>,
    path: String,
    ip: String,
    port: serde_json::Number,
    #[serde(default)]
    weight: Option<Value>,
    #[serde(default)]
    ttl: Option<Value>,
}

/// A validated target: a normalized route prefix and the address to send its traffic to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TargetSpec {
    /// The host the route is bound to, lower-cased; `None` for a host-less route.
    pub(crate) host: Option<String>,
    /// The prefix as the registry stores it (`/test/` becomes `/test`).
    pub(crate) path: String,
    /// The route's name as the registry's changes take it ([`lb_registry::route_name`]).
    pub(crate) route: String,
    /// The target address.
    pub(crate) addr: SocketAddr,
    /// The weight and ttl the body gave (a JSON `null` counts as not given).
    pub(crate) terms: Terms,
}

impl TargetSpec {
    /// The answer body for a successful change: the target (with its route's host, when it has
    /// one), and what happened to it.
    pub(crate) fn reply(&self, status: &str) -> Value {
        let mut reply = json!({
            "path": self.path,
            "ip": self.addr.ip().to_string(),
            "port": self.addr.port(),
            "status": status,
        });
        if let Some(host) = &self.host {
            reply["host"] = json!(host);
        }
        reply
    }
}

/// Parses and validates a request body; the error is the sentence for the `400` answer.
pub(crate) fn parse(body: &[u8]) -> Result<TargetSpec, String> {
    let body = body.trim_ascii();
    if body.is_empty() {
        return Err("request body is empty; send a JSON object with path, ip and port".into());
    }
    // serde would also accept a JSON array for a struct; the API takes objects only.
    if !body.starts_with(b"{") {
        return Err("request body must be a JSON object with path, ip and port".into());
    }
    let body: TargetBody =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let path = normalize_prefix(&body.path).map_err(|e| e.to_string())?;
    let host = body
        .host
        .as_deref()
        .map(normalize_host)
        .transpose()
        .map_err(|e| e.to_string())?;
    let route = route_name(host.as_deref(), &path).map_err(|e| e.to_string())?;
    let ip: IpAddr = body
        .ip
        .parse()
        .map_err(|_| "ip must be an IPv4 or IPv6 address literal".to_string())?;
    let port = body
        .port
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| "port must be an integer between 1 and 65535".to_string())?;
    let terms = Terms {
        weight: body.weight.map(|w| integer(&w, check_weight)).transpose()?,
        ttl: body.ttl.map(|t| integer(&t, check_ttl)).transpose()?,
    };
    Ok(TargetSpec {
        host,
        path,
        route,
        addr: SocketAddr::new(ip, port),
        terms,
    })
}

/// `value` as a non-negative JSON integer checked by `check`; any other JSON value (a string,
/// a fraction, a negative number) gets the sentence `check` gives for an out-of-range one,
/// which names the field and its bounds.
fn integer<T>(value: &Value, check: fn(u64) -> Result<T, RegistryError>) -> Result<T, String> {
    // u64::MAX is out of range for every field, so `check` words the refusal.
    check(value.as_u64().unwrap_or(u64::MAX)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ipv4_and_ipv6_and_normalizes_the_path() {
        let spec = parse(br#" {"path":"/test/","ip":"10.0.0.5","port":9001} "#).unwrap();
        assert_eq!(spec.path, "/test");
        assert_eq!(spec.addr, "10.0.0.5:9001".parse().unwrap());
        let spec = parse(br#"{"port":1,"ip":"::1","path":"/"}"#).unwrap();
        assert_eq!(spec.addr, "[::1]:1".parse().unwrap());
        assert_eq!(
            spec.reply("registered"),
            json!({"path":"/","ip":"::1","port":1,"status":"registered"})
        );
        assert_eq!(spec.terms, Terms::default());
    }

    #[test]
    fn a_host_binds_the_route_and_is_lower_cased() {
        let spec =
            parse(br#"{"host":"API.Example.com","path":"/v1/","ip":"10.0.0.5","port":1}"#).unwrap();
        assert_eq!(spec.host.as_deref(), Some("api.example.com"));
        assert_eq!(
            (spec.path.as_str(), spec.route.as_str()),
            ("/v1", "api.example.com/v1")
        );
        assert_eq!(spec.reply("registered")["host"], json!("api.example.com"));
        let spec =
            parse(br#"{"host":"*.example.com","path":"/","ip":"10.0.0.5","port":1}"#).unwrap();
        assert_eq!(spec.route, "*.example.com/");
        for bad in ["a:80", "a/b", "", "x.*.com"] {
            let body = json!({"host": bad, "path": "/", "ip": "10.0.0.5", "port": 1});
            let err = parse(body.to_string().as_bytes()).unwrap_err();
            assert!(err.starts_with("host "), "{bad}: {err}");
        }
    }

    /// Each row: the optional fields sent, the terms they make (`null` is not given).
    #[test]
    fn takes_weight_and_ttl_when_given() {
        let table = [
            ("", None, None),
            (r#","weight":1"#, Some(1), None),
            (r#","weight":1000,"ttl":86400"#, Some(1000), Some(86_400)),
            (r#","ttl":1"#, None, Some(1)),
            (r#","weight":null,"ttl":null"#, None, None),
        ];
        for (extra, weight, ttl) in table {
            let body = format!(r#"{{"path":"/a","ip":"10.0.0.1","port":80{extra}}}"#);
            let spec = parse(body.as_bytes()).unwrap();
            let want = Terms {
                weight,
                ttl: ttl.map(std::time::Duration::from_secs),
            };
            assert_eq!(spec.terms, want, "{body}");
        }
    }

    #[test]
    fn refuses_each_bad_field_with_a_sentence_about_it() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("[\"/a\",\"10.0.0.1\",80]", "JSON object"),
            ("{", "invalid JSON"),
            (r#"{"path":"/a","ip":"10.0.0.1"}"#, "missing field `port`"),
            (
                r#"{"path":"/a","ip":"10.0.0.1","port":80,"x":1}"#,
                "unknown field `x`",
            ),
            (
                r#"{"path":"/a","path":"/b","ip":"10.0.0.1","port":80}"#,
                "duplicate field",
            ),
            (r#"{"path":"/a","ip":"10.0.0.1","port":80} x"#, "trailing"),
            (r#"{"path":"/a","ip":"10.0.0.256","port":80}"#, "ip must be"),
            (r#"{"path":"/a","ip":"[::1]","port":80}"#, "ip must be"),
            (r#"{"path":"/a","ip":5,"port":80}"#, "invalid type"),
            (r#"{"path":"/a","ip":"10.0.0.1","port":0}"#, "port must be"),
            (
                r#"{"path":"/a","ip":"10.0.0.1","port":70000}"#,
                "port must be",
            ),
            (r#"{"path":"/a","ip":"10.0.0.1","port":-1}"#, "port must be"),
            (
                r#"{"path":"/a","ip":"10.0.0.1","port":1.5}"#,
                "port must be",
            ),
            (
                r#"{"path":"/a","ip":"10.0.0.1","port":"80"}"#,
                "invalid type",
            ),
            (
                r#"{"path":"a","ip":"10.0.0.1","port":80}"#,
                "must start with",
            ),
            (
                r#"{"path":"/a?b","ip":"10.0.0.1","port":80}"#,
                "must not contain",
            ),
            (
                r#"{"path":"/a b","ip":"10.0.0.1","port":80}"#,
                "must not contain",
            ),
            (
                r#"{"path":"/a\u0001","ip":"10.0.0.1","port":80}"#,
                "must not contain",
            ),
        ];
        let terms = [
            (
                r#""weight":0"#,
                "weight must be an integer between 1 and 1000",
            ),
            (r#""weight":1001"#, "weight must be"),
            (r#""weight":2.5"#, "weight must be"),
            (r#""weight":-1"#, "weight must be"),
            (r#""weight":"5""#, "weight must be"),
            (r#""weight":[5]"#, "weight must be"),
            (
                r#""ttl":0"#,
                "ttl must be an integer number of seconds between 1 and 86400",
            ),
            (r#""ttl":86401"#, "ttl must be"),
            (r#""ttl":1.5"#, "ttl must be"),
            (r#""ttl":"30s""#, "ttl must be"),
            (r#""ttl":true"#, "ttl must be"),
        ];
        let cases = cases
            .iter()
            .map(|&(b, e)| (b.to_string(), e))
            .chain(terms.iter().map(|&(t, e)| {
                (
                    format!(r#"{{"path":"/a","ip":"10.0.0.1","port":80,{t}}}"#),
                    e,
                )
            }));
        for (body, expected) in cases {
            let error = parse(body.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }
}
