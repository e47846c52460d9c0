//! The TOML config file (`--config lb.toml`) into a [`Layer`].
//!
//! Every table is `deny_unknown_fields`, so a typo is an error rather than a silently ignored
//! setting, and every error names the file and the line (from the parser's span). Durations
//! are strings with a unit (`"250ms"`, `"5s"`, `"2m"`) or integers in milliseconds. The shape is
//! documented, with every key, in `docs/lb.example.toml`, which a test parses.

use crate::layer::Layer;
use crate::{ConfigError, StaticRoute, Workers};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    #[serde(default, deserialize_with = "workers")]
    workers: Option<Workers>,
    pin: Option<bool>,
    backlog: Option<u32>,
    max_body: Option<u64>,
    max_connections: Option<usize>,
    access_log: Option<bool>,
    state: Option<PathBuf>,
    admin_token: Option<String>,
    upgrade_socket: Option<PathBuf>,
    #[serde(default)]
    timeouts: Timeouts,
    #[serde(default)]
    health: Health,
    #[serde(default, rename = "route")]
    routes: Vec<Route>,
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
    prefix: String,
    targets: Vec<SocketAddr>,
    health_check: Option<String>,
    strip_prefix: Option<bool>,
    #[serde(default)]
    timeouts: RouteTimeouts,
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
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().trim_end_matches('.');
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
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
                prefix: r.prefix,
                targets: r.targets,
                health_check: r.health_check,
                strip_prefix: r.strip_prefix.unwrap_or(true),
                connect_timeout: r.timeouts.connect,
                upstream_timeout: r.timeouts.upstream,
            })
            .collect(),
        connect_timeout: file.timeouts.connect,
        upstream_timeout: file.timeouts.upstream,
        header_timeout: file.timeouts.header,
        idle_timeout: file.timeouts.idle,
        drain_timeout: file.timeouts.drain,
        max_body: file.max_body,
        max_connections: file.max_connections,
        access_log: file.access_log,
        health_check: file.health.check,
        health_interval: file.health.interval,
        health_timeout: file.health.timeout,
        health_rise: file.health.rise,
        health_fall: file.health.fall,
        health_backoff: file.health.backoff,
        state: file.state,
        admin_token: file.admin_token,
        upgrade_socket: file.upgrade_socket,
        takeover: false,
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

/// A number followed by `ms`, `s` or `m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let bad = || format!("`{s}` is not a duration like \"250ms\", \"5s\" or \"2m\"");
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn route_timeouts_are_parsed_and_zero_is_refused() {
        let text = "[[route]]\nprefix = \"/a\"\ntargets = [\"127.0.0.1:1\"]\n\
                    [route.timeouts]\nconnect = \"250ms\"\nupstream = \"2s\"\n";
        let layer = parse_file(text, "t.toml").unwrap();
        let config = Config::layered(Some(&layer), &Layer::default());
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
        let config = Config::layered(Some(&layer), &Layer::default());
        assert!(config
            .validate()
            .unwrap_err()
            .0
            .contains("upstream timeout"));
        let unknown = text.replace("connect =", "conect =");
        assert!(parse_file(&unknown, "t.toml")
            .unwrap_err()
            .0
            .contains("conect"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 7 s "), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "5", "5h", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
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
        let c = Config::layered(Some(&layer), &Layer::default());
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
                "t.toml line 3",
                "address",
            ),
            ("[[route]]\nprefix = \"/a\"\n", "t.toml line 1", "targets"),
            ("[timeouts]\nidle = \"5h\"\n", "t.toml line 2", "5h"),
            ("workers = 0\n", "t.toml line 1", "at least 1"),
            ("listen = \n", "t.toml line 1", ""),
        ];
        for (text, at, key) in cases {
            let error = parse_file(text, "t.toml").unwrap_err().0;
            assert!(error.starts_with(at), "{text:?}: {error}");
            assert!(error.contains(key), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let text = include_str!("../../../docs/lb.example.toml");
        let layer = parse_file(text, "docs/lb.example.toml").unwrap();
        let c = Config::layered(Some(&layer), &Layer::default());
        c.validate().unwrap();
        assert!(!c.live.routes.is_empty(), "the example shows routes");
        assert!(
            c.live.health.check.is_some(),
            "the example shows health checks"
        );
        assert!(c.restart.state.is_some(), "the example shows a state file");
    }
}
