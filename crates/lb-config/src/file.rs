//! The TOML config file (`--config lb.toml`) into a [`Layer`].
//!
//! Every table is `deny_unknown_fields`, so a typo is an error rather than a silently ignored
//! setting, and every error names the file and the line (from the parser's span); a syntax
//! error also names the column and says in plain words what is wrong. Durations are strings
//! with a unit (`"250ms"`, `"5s"`, `"2m"`) or integers in milliseconds
//! ([`crate::parse_duration`], shared with the flags). Two `[[route]]` entries for one prefix
//! (`/a` and `/a/` are one) are an error naming both. The shape is documented, with every key,
//! in `docs/lb.example.toml`, which a test parses.

use crate::layer::Layer;
use crate::{
    parse_bind_addr, parse_duration, prefix_key, same_host, CertPair, ConfigError, HostPort,
    StaticRoute, TlsVersion, Workers,
};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default, deserialize_with = "address")]
    listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "address")]
    admin: Option<SocketAddr>,
    #[serde(default, deserialize_with = "workers")]
    workers: Option<Workers>,
    pin: Option<bool>,
    backlog: Option<u32>,
    max_body: Option<u64>,
    max_connections: Option<usize>,
    h2_max_streams: Option<u32>,
    access_log: Option<bool>,
    state: Option<PathBuf>,
    admin_token: Option<String>,
    admin_token_file: Option<PathBuf>,
    upgrade_socket: Option<PathBuf>,
    #[serde(default)]
    timeouts: Timeouts,
    #[serde(default)]
    health: Health,
    #[serde(default)]
    cluster: Cluster,
    #[serde(default, rename = "route")]
    routes: Vec<Route>,
    #[serde(default)]
    tls: Tls,
}

/// `[tls]` with its `[[tls.cert]]` entries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    #[serde(default, deserialize_with = "address")]
    listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "tls_version")]
    min_version: Option<TlsVersion>,
    #[serde(default, rename = "cert")]
    certs: Vec<TlsCert>,
    ticket_keys: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsCert {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Timeouts {
    #[serde(default, deserialize_with = "duration")]
    connect: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    upstream: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    header: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    idle: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    drain: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    defer_accept: Option<Duration>,
}

/// `[cluster]`: `etcd` is a list of URLs or one comma-separated string (as the flag takes).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    #[serde(default, deserialize_with = "url_list")]
    etcd: Vec<String>,
    prefix: Option<String>,
    node_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Health {
    check: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    rise: Option<u32>,
    fall: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    backoff: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    host: Option<String>,
    prefix: Spanned<String>,
    #[serde(deserialize_with = "targets")]
    targets: Vec<(HostPort, Option<u16>)>,
    health_check: Option<String>,
    strip_prefix: Option<bool>,
    #[serde(default)]
    timeouts: RouteTimeouts,
    balance: Option<String>,
    hash_key: Option<String>,
    max_fails: Option<u16>,
    fail_statuses: Option<Vec<u16>>,
    retries: Option<u8>,
}

/// `[route.timeouts]`: the upstream-side timeouts one route may set for itself (the client-side
/// ones apply before a request is routed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteTimeouts {
    #[serde(default, deserialize_with = "duration")]
    connect: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    upstream: Option<Duration>,
}

/// Parses the text of a config file; `origin` names it in errors (`"lb.toml line 3: ..."`).
pub fn parse_file(text: &str, origin: &str) -> Result<Layer, ConfigError> {
    if let Err(e) = toml::from_str::<toml::Table>(text) {
        return Err(syntax_error(text, origin, &e));
    }
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().trim_end_matches('.');
        match e.span() {
            Some(span) => {
                let line = line_of(text, span.start);
                // A type error points at the value: name the key it belongs to as well.
                let key = text
                    .lines()
                    .nth(line - 1)
                    .and_then(|l| l.split_once('='))
                    .map(|(k, _)| k.trim())
                    .filter(|k| !k.is_empty() && !message.contains(&format!("`{k}`")));
                match key {
                    Some(key) => {
                        ConfigError(format!("{origin} line {line}, key `{key}`: {message}"))
                    }
                    None => ConfigError(format!("{origin} line {line}: {message}")),
                }
            }
            None => ConfigError(format!("{origin}: {message}")),
        }
    })?;
    check_duplicate_prefixes(&file.routes, text, origin)?;
    if file.admin_token.is_some() && file.admin_token_file.is_some() {
        return Err(ConfigError(format!(
            "{origin}: admin_token and admin_token_file are both set (expected one of them)"
        )));
    }
    Ok(Layer {
        listen: file.listen,
        admin: file.admin,
        workers: file.workers,
        pin: file.pin,
        backlog: file.backlog,
        defer_accept: file.timeouts.defer_accept,
        routes: file
            .routes
            .into_iter()
            .map(|r| StaticRoute {
                host: r.host,
                prefix: r.prefix.into_inner(),
                weights: r
                    .targets
                    .iter()
                    .filter_map(|(t, w)| Some((t.clone(), (*w)?)))
                    .collect(),
                targets: r.targets.into_iter().map(|(t, _)| t).collect(),
                health_check: r.health_check,
                strip_prefix: r.strip_prefix.unwrap_or(true),
                connect_timeout: r.timeouts.connect,
                upstream_timeout: r.timeouts.upstream,
                balance: r.balance,
                hash_key: r.hash_key,
                max_fails: r.max_fails,
                fail_statuses: r.fail_statuses,
                retries: r.retries,
            })
            .collect(),
        connect_timeout: file.timeouts.connect,
        upstream_timeout: file.timeouts.upstream,
        header_timeout: file.timeouts.header,
        idle_timeout: file.timeouts.idle,
        drain_timeout: file.timeouts.drain,
        max_body: file.max_body,
        max_connections: file.max_connections,
        h2_max_streams: file.h2_max_streams,
        access_log: file.access_log,
        health_check: file.health.check,
        health_interval: file.health.interval,
        health_timeout: file.health.timeout,
        health_rise: file.health.rise,
        health_fall: file.health.fall,
        health_backoff: file.health.backoff,
        state: file.state,
        admin_token: file.admin_token,
        admin_token_file: file.admin_token_file,
        upgrade_socket: file.upgrade_socket,
        cluster_etcd: file.cluster.etcd,
        cluster_prefix: file.cluster.prefix,
        node_name: file.cluster.node_name,
        tls_listen: file.tls.listen,
        tls_min_version: file.tls.min_version,
        tls_ticket_keys: file.tls.ticket_keys,
        tls_certs: file
            .tls
            .certs
            .into_iter()
            .map(|c| CertPair {
                cert: c.cert,
                key: c.key,
            })
            .collect(),
        takeover: false,
    })
}

/// `["http://a:2379", "http://b:2379"]` or `"http://a:2379,http://b:2379"`.
fn url_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(urls) => urls,
        Raw::Text(text) => crate::split_urls(&text),
    })
}

/// `"auto"` or a positive integer.
fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Workers>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Count(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Count(0) => Err(de::Error::custom("workers must be at least 1")),
        Raw::Count(n) => Ok(Some(Workers::Count(
            usize::try_from(n).map_err(|_| de::Error::custom("workers is too large"))?,
        ))),
        Raw::Text(s) => s.parse().map(Some).map_err(de::Error::custom),
    }
}

/// `"250ms"`, `"5s"`, `"2m"`, or an integer number of milliseconds.
fn tls_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TlsVersion>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(de::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Some(Duration::from_millis(ms))),
        Raw::Text(s) => parse_duration(&s).map(Some).map_err(de::Error::custom),
    }
}

/// A listening address: an IP literal and a port.
fn address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse_bind_addr(&text).map(Some).map_err(de::Error::custom)
}

/// `"HOST:PORT"` strings, each checked by [`HostPort`]'s parser (which names the value).
fn targets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(HostPort, Option<u16>)>, D::Error> {
    Vec::<TargetEntry>::deserialize(d)?
        .into_iter()
        .map(|t| {
            let (addr, weight) = match t {
                TargetEntry::Addr(addr) => (addr, None),
                TargetEntry::Weighted { addr, weight } => (addr, Some(weight)),
            };
            Ok((addr.parse().map_err(de::Error::custom)?, weight))
        })
        .collect()
}

/// One entry of a route's `targets`: `"HOST:PORT"`, or `{ addr = "HOST:PORT", weight = N }`.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum TargetEntry {
    Addr(String),
    Weighted { addr: String, weight: u16 },
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A TOML syntax error in plain words, with its line and column and the line itself.
fn syntax_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().trim_end_matches('.');
    let Some(span) = e.span() else {
        return ConfigError(format!("{origin}: not valid TOML: {message}"));
    };
    let start = span.start.min(text.len());
    let line = line_of(text, start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let source = text.lines().nth(line - 1).unwrap_or("").trim();
    // The common slip: a text value (an address, a path, a duration) without its quotes.
    let unquoted = source.split_once('=').and_then(|(key, value)| {
        let value = value.trim();
        let plain = !value.is_empty()
            && !value.starts_with(['"', '\'', '[', '{'])
            && value.parse::<f64>().is_err()
            && !matches!(value, "true" | "false");
        plain.then(|| format!("; text needs double quotes: {} = \"{value}\"", key.trim()))
    });
    ConfigError(format!(
        "{origin} line {line}, column {column}: not valid TOML ({message}) in `{source}`{}",
        unquoted.unwrap_or_default()
    ))
}

/// Two `[[route]]` entries that stand for one prefix: an error naming both, by line.
fn check_duplicate_prefixes(routes: &[Route], text: &str, origin: &str) -> Result<(), ConfigError> {
    for (i, later) in routes.iter().enumerate() {
        let key = prefix_key(later.prefix.get_ref());
        if let Some(first) = routes[..i].iter().find(|r| {
            prefix_key(r.prefix.get_ref()) == key
                && same_host(r.host.as_deref(), later.host.as_deref())
        }) {
            return Err(ConfigError(format!(
                "{origin} line {}: route prefix \"{}\" is the same prefix as \"{}\" of the route at line {} \
                 (a trailing `/` is ignored); expected each prefix in one [[route]] only",
                line_of(text, later.prefix.span().start),
                later.prefix.get_ref(),
                first.prefix.get_ref(),
                line_of(text, first.prefix.span().start),
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, LiteralsOnly};

    /// Resolves `localhost` only, as /etc/hosts does.
    struct Localhost;

    impl crate::Lookup for Localhost {
        fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
            match host {
                "localhost" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
                _ => Err("unknown host".into()),
            }
        }

        fn read_file(&mut self, path: &std::path::Path) -> Result<String, String> {
            LiteralsOnly.read_file(path)
        }
    }

    fn layered(layer: &Layer) -> Config {
        Config::layered(Some(layer), &Layer::default(), &mut LiteralsOnly)
            .unwrap()
            .config
    }

    #[test]
    fn a_target_may_carry_a_weight_and_a_host_name_passes_it_to_its_addresses() {
        let text = "[[route]]\nhost = \"Api.Test\"\nprefix = \"/a\"\n\
                    targets = [{ addr = \"localhost:81\", weight = 5 }, \"10.0.0.2:82\"]\n\
                    balance = \"least_conn\"\nmax_fails = 3\n";
        let layer = parse_file(text, "t.toml").unwrap();
        let config = Config::layered(Some(&layer), &Layer::default(), &mut Localhost)
            .unwrap()
            .config;
        let route = &config.live.routes[0];
        assert_eq!(route.host.as_deref(), Some("Api.Test"));
        assert_eq!(route.weights, [(SocketAddr::from(([127, 0, 0, 1], 81)), 5)]);
        assert_eq!(route.targets.len(), 2);
        assert_eq!(
            (route.balance.as_deref(), route.max_fails),
            (Some("least_conn"), Some(3))
        );
        let bad = "[[route]]\nprefix = \"/a\"\ntargets = [{ addr = \"10.0.0.1:1\", wieght = 5 }]\n";
        assert!(parse_file(bad, "t.toml").is_err());
    }

    #[test]
    fn route_timeouts_are_parsed_and_zero_is_refused() {
        let text = "[[route]]\nprefix = \"/a\"\ntargets = [\"127.0.0.1:1\"]\n\
                    [route.timeouts]\nconnect = \"250ms\"\nupstream = \"2s\"\n";
        let layer = parse_file(text, "t.toml").unwrap();
        let config = layered(&layer);
        assert_eq!(
            config.live.routes[0].connect_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            config.live.routes[0].upstream_timeout,
            Some(Duration::from_secs(2))
        );
        assert!(config.validate().is_ok());
        let zero = text.replace("\"2s\"", "\"0ms\"");
        let layer = parse_file(&zero, "t.toml").unwrap();
        let config = layered(&layer);
        assert!(config
            .validate()
            .unwrap_err()
            .0
            .contains("route /a: timeouts.upstream = 0: expected a duration greater than 0"));
        let unknown = text.replace("connect =", "conect =");
        assert!(parse_file(&unknown, "t.toml")
            .unwrap_err()
            .0
            .contains("conect"));
    }

    #[test]
    fn a_full_file() {
        let layer = parse_file(
            r#"
listen = "127.0.0.1:0"
workers = 3
admin_token = "x"

[timeouts]
connect = "250ms"
drain = 1500

[health]
check = "/h"
rise = 4

[[route]]
prefix = "/api"
targets = ["10.0.0.1:80", "[::1]:81"]
health_check = "/ping"
"#,
            "t.toml",
        )
        .unwrap();
        let c = layered(&layer);
        assert_eq!(c.restart.workers, Workers::Count(3));
        assert_eq!(c.live.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.restart.drain_timeout, Duration::from_millis(1500));
        assert_eq!(c.live.health.check.as_deref(), Some("/h"));
        assert_eq!(c.live.health.rise, 4);
        assert_eq!(c.live.health.fall, crate::DEFAULT_HEALTH_FALL);
        assert_eq!(c.live.routes.len(), 1);
        assert_eq!(c.live.routes[0].targets.len(), 2);
        assert_eq!(c.live.routes[0].health_check.as_deref(), Some("/ping"));
        assert!(c.validate().is_ok());
        assert_eq!(
            parse_file(r#"workers = "auto""#, "t").unwrap().workers,
            Some(Workers::Auto)
        );
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let cases = [
            (
                "listen = \"127.0.0.1:0\"\nlisn = 1\n",
                "t.toml line 2",
                "lisn",
            ),
            ("[timeouts]\nconect = \"1s\"\n", "t.toml line 2", "conect"),
            (
                "[health]\n\ncheck = \"/h\"\nrise = \"two\"\n",
                "t.toml line 4",
                "rise",
            ),
            (
                "[[route]]\nprefix = \"/a\"\ntargets = [\"nope\"]\n",
                "t.toml line 3, key `targets`: invalid target \"nope\" (expected HOST:PORT",
                "",
            ),
            (
                "[[route]]\nprefix = \"/a\"\ntargets = [\"localhost:80\", \"10.0.0.1\"]\n",
                "t.toml line 3, key `targets`: invalid target \"10.0.0.1\"",
                "",
            ),
            (
                "listen = 127.0.0.1:8080\n",
                "t.toml line 1, column 15: not valid TOML (invalid float, expected nothing) \
                 in `listen = 127.0.0.1:8080`; text needs double quotes: listen = \"127.0.0.1:8080\"",
                "",
            ),
            (
                "listen = \"a\"\n[[route]\n",
                "t.toml line 2, column 9: not valid TOML",
                "[[route]",
            ),
            (
                "[[route]]\nprefix = \"/a\"\ntargets = [\"10.0.0.1:1\"]\n\
                 [[route]]\nprefix = \"/b\"\ntargets = [\"10.0.0.1:2\"]\n\
                 [[route]]\nprefix = \"/a/\"\ntargets = [\"10.0.0.1:3\"]\n",
                "t.toml line 8: route prefix \"/a/\" is the same prefix as \"/a\" of the route at line 2",
                "",
            ),
            (
                "admin_token = \"x\"\nadmin_token_file = \"/t\"\n",
                "t.toml: admin_token and admin_token_file are both set",
                "",
            ),
            ("[[route]]\nprefix = \"/a\"\n", "t.toml line 1", "targets"),
            (
                "[timeouts]\nidle = \"5h\"\n",
                "t.toml line 2, key `idle`: invalid duration \"5h\" (expected e.g. 250ms, 5s, 2m or milliseconds)",
                "",
            ),
            ("workers = 0\n", "t.toml line 1", "at least 1"),
            (
                "admin = \"localhost:1\"\n",
                "t.toml line 1, key `admin`: invalid address \"localhost:1\" (expected IP:PORT",
                "",
            ),
            ("listen = \n", "t.toml line 1", ""),
        ];
        for (text, at, key) in cases {
            let error = parse_file(text, "t.toml").unwrap_err().0;
            assert!(error.starts_with(at), "{text:?}: {error}");
            assert!(error.contains(key), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_tls_section() {
        let text = "[tls]\nlisten = \"127.0.0.1:8443\"\nmin_version = \"1.3\"\n\
                    [[tls.cert]]\ncert = \"a.crt\"\nkey = \"a.key\"\n\
                    [[tls.cert]]\ncert = \"b.crt\"\nkey = \"b.key\"\n";
        let config = layered(&parse_file(text, "t.toml").unwrap());
        let tls = &config.restart.tls;
        assert_eq!(tls.listen, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(tls.min_version, crate::TlsVersion::Tls13);
        assert_eq!(tls.certs.len(), 2);
        assert_eq!(tls.certs[1].key, PathBuf::from("b.key"));
        assert!(config.validate().is_ok());
        let bad = text.replace("\"1.3\"", "\"1.1\"");
        let error = parse_file(&bad, "t.toml").unwrap_err().0;
        assert!(error.contains("line 3") && error.contains("1.1"), "{error}");
        let no_key = "[tls]\n[[tls.cert]]\ncert = \"a.crt\"\n";
        assert!(parse_file(no_key, "t.toml").unwrap_err().0.contains("key"));
    }

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let text = include_str!("../../../docs/lb.example.toml");
        let layer = parse_file(text, "docs/lb.example.toml").unwrap();
        let c = Config::layered(Some(&layer), &Layer::default(), &mut Localhost)
            .unwrap()
            .config;
        c.validate().unwrap();
        assert!(!c.live.routes.is_empty(), "the example shows routes");
        assert!(
            c.live.health.check.is_some(),
            "the example shows health checks"
        );
        assert!(c.restart.state.is_some(), "the example shows a state file");
    }
}
