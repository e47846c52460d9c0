//! lb's typed configuration.
//!
//! Every setting lb understands lives in [`Config`], with its default named once in a `DEFAULT_*`
//! constant, in one of two parts: [`LiveConfig`], which a reload replaces whole, and
//! [`RestartConfig`], which only a restart or an upgrade changes (a reload reports each of its
//! keys that changed, [`RestartConfig::changed`]). Which part a setting is in is its type, not a
//! list kept elsewhere. The config file ([`parse_file`]) and the command line each fill a
//! [`Layer`]; [`Config::layered`] stacks defaults, file and flags (flags win), and [`Config::validate`]
//! reports every problem before a socket is bound, so a bad setting never half-starts lb.
//!
//! Targets are held as written ([`HostPort`]: an IP literal or a host name) until
//! [`Config::layered`] resolves them through a [`Lookup`], so a [`LiveConfig`] holds addresses
//! only. Durations, addresses and counts have one parser each, shared by the file and the
//! flags, and every error names the value and what would be accepted.
//!
//! This crate must never do I/O: parsing and validating take values (the file's text) and return
//! values; name resolution and the token file come in through [`Lookup`].

#![forbid(unsafe_code)]

mod cluster;
mod duration;
mod file;
mod host_port;
mod layer;
mod live;
mod log_format;
mod lookup;
mod number;
mod restart;
mod summary;
mod tls;

pub use cluster::{ClusterConfig, DEFAULT_CLUSTER_PREFIX};
pub use duration::{parse_duration, parse_positive_duration, DURATION_FORMS};
pub use file::parse_file;
pub use host_port::{parse_bind_addr, HostPort, TARGET_FORMS};
pub use layer::{Layer, Layered};
pub use live::LiveConfig;
pub use log_format::LogFormat;
#[cfg(test)]
pub(crate) use lookup::LiteralsOnly;
pub use lookup::{Lookup, Resolved};
pub use number::{parse_bytes, parse_count};
pub use restart::RestartConfig;
pub use summary::Summary;
pub use tls::{pair_certs, CertPair, TlsConfig, TlsVersion};

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Default data-plane address (SPEC: `--listen`).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default control-plane address: loopback, so the registry cannot be changed from the network.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:8081";
/// Default listen backlog per worker socket.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// How long the kernel keeps a new connection that has not sent a byte before lb accepts it anyway
/// (`TCP_DEFER_ACCEPT`). A connection is usually accepted with its request already waiting, which
/// lb reads at once instead of after one more event-loop round. Zero turns it off.
pub const DEFAULT_DEFER_ACCEPT: Duration = Duration::from_millis(1_000);
/// Time allowed to connect to an upstream before answering 504.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Time allowed for an upstream to send its response head before answering 504.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_millis(60_000);
/// Deadline for a client's whole request head (slowloris defence), 408 when exceeded.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_millis(10_000);
/// How long an idle keep-alive client connection is kept open.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(60_000);
/// How long shutdown waits for in-flight requests before exiting anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Hard cap on the idle upstream connections one worker keeps per target. The pool otherwise
/// follows the worker's concurrency (it keeps what its open client connections can reuse), so the
/// cap only bounds file descriptors; it is sized for thousands of busy connections, as HAProxy's
/// `http-reuse always` keeps every idle connection a server had in use.
pub const DEFAULT_POOL_IDLE_PER_TARGET: usize = 65_536;
/// How long an idle upstream connection is kept before it is closed.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(60_000);
/// Time between two active health probes of one target.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(2_000);
/// Time one active health probe may take (connect, send, status line).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Consecutive good probes that bring a down target back.
pub const DEFAULT_HEALTH_RISE: u32 = 2;
/// Consecutive failed probes that take a target out of round robin.
pub const DEFAULT_HEALTH_FALL: u32 = 3;
/// How long a target whose connect failed (passive check) stays out of round robin.
pub const DEFAULT_HEALTH_BACKOFF: Duration = Duration::from_millis(5_000);
/// Client connections one worker serves at once; at the limit it stops accepting and the listen
/// backlog holds new connections (as nginx's `worker_connections` and HAProxy's `maxconn` do).
pub const DEFAULT_MAX_CONNECTIONS: usize = 65_536;
/// Concurrent streams one HTTP/2 client connection may open (beyond it: REFUSED_STREAM), as
/// nginx's `http2_max_concurrent_streams` default.
pub const DEFAULT_H2_MAX_STREAMS: u32 = 128;

/// How many workers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One per CPU this process may run on (affinity mask and cgroup quota respected).
    Auto,
    /// Exactly this many (at least 1).
    Count(usize),
}

impl std::str::FromStr for Workers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Workers::Auto);
        }
        match s.parse::<usize>() {
            Ok(0) => Err("workers must be at least 1".to_string()),
            Ok(n) => Ok(Workers::Count(n)),
            Err(_) => Err(format!(
                "workers must be `auto` or a positive number, not `{s}`"
            )),
        }
    }
}

/// A route given at start-up: `PREFIX=HOST:PORT[,HOST:PORT...]`, or a `[[route]]` of the file.
///
/// `T` is how a target is held: [`HostPort`] as written (a [`Layer`]), [`SocketAddr`] once
/// resolved (a [`LiveConfig`]), so a route that reaches the registry cannot hold a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute<T = SocketAddr> {
    /// The host the route is bound to (`api.example.com`, or `*.example.com`); `None`: a
    /// host-less route, for requests whose host has no route of its own. Checked by the
    /// registry when the routes are applied.
    pub host: Option<String>,
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// Targets in the order they are registered (round-robin order).
    pub targets: Vec<T>,
    /// The targets written with a weight (`{ addr = "HOST:PORT", weight = N }`), with it; a
    /// target not listed has weight 1. Checked by the registry when the routes are applied.
    pub weights: Vec<(T, u16)>,
    /// Active health check path for this route's targets; `None` uses [`HealthConfig::check`].
    pub health_check: Option<String>,
    /// Strip the prefix before forwarding (the SPEC's default); `false` forwards the request
    /// target unchanged.
    pub strip_prefix: bool,
    /// This route's upstream connect timeout; `None` uses [`LiveConfig::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// This route's upstream response timeout; `None` uses [`LiveConfig::upstream_timeout`].
    pub upstream_timeout: Option<Duration>,
    /// Its balancing policy (`round_robin`, `least_conn`, `hash`); `None` is round robin.
    /// Checked by the registry when the routes are applied.
    pub balance: Option<String>,
    /// What a `hash` route hashes (`client_ip`, `header:NAME`, `cookie:NAME`).
    pub hash_key: Option<String>,
    /// Consecutive failed answers that take a target out for the back-off; `None`: off.
    pub max_fails: Option<u16>,
    /// The statuses (500-599) that count as failures; `None`: 500, 502, 503, 504.
    pub fail_statuses: Option<Vec<u16>>,
    /// How many other targets a failed request may go to where that is safe; `None`: 1.
    pub retries: Option<u8>,
}

impl<T> StaticRoute<T> {
    /// The same route with other targets and weights (its resolution).
    pub fn with_targets<U>(&self, targets: Vec<U>, weights: Vec<(U, u16)>) -> StaticRoute<U> {
        StaticRoute {
            weights,
            host: self.host.clone(),
            prefix: self.prefix.clone(),
            targets,
            health_check: self.health_check.clone(),
            strip_prefix: self.strip_prefix,
            connect_timeout: self.connect_timeout,
            upstream_timeout: self.upstream_timeout,
            balance: self.balance.clone(),
            hash_key: self.hash_key.clone(),
            max_fails: self.max_fails,
            fail_statuses: self.fail_statuses.clone(),
            retries: self.retries,
        }
    }
}

impl<T: std::str::FromStr> std::str::FromStr for StaticRoute<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, list) = s.split_once('=').ok_or_else(|| {
            format!("invalid route \"{s}\" (expected PREFIX=HOST:PORT[,HOST:PORT...], e.g. /api=10.0.0.5:9001)")
        })?;
        if !prefix.starts_with('/') {
            return Err(format!(
                "invalid route \"{s}\": the prefix \"{prefix}\" must start with `/`"
            ));
        }
        let targets = list
            .split(',')
            .map(|item| item.trim().parse::<T>())
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| format!("route {prefix}: {e}"))?;
        Ok(StaticRoute {
            host: None,
            weights: Vec::new(),
            prefix: prefix.to_string(),
            targets,
            health_check: None,
            strip_prefix: true,
            connect_timeout: None,
            upstream_timeout: None,
            balance: None,
            hash_key: None,
            max_fails: None,
            fail_statuses: None,
            retries: None,
        })
    }
}

impl<T> StaticRoute<T> {
    /// Whether `self` and `other` stand for the same route: the same host (case aside, or
    /// both none) and the same [`prefix_key`].
    pub fn same_route<U>(&self, other: &StaticRoute<U>) -> bool {
        same_host(self.host.as_deref(), other.host.as_deref())
            && prefix_key(&self.prefix) == prefix_key(&other.prefix)
    }
}

/// Two routes' hosts name the same host: equal but for ASCII case, or both absent.
pub fn same_host(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// The prefix a route's `prefix` stands for, as the registry normalizes it: a trailing `/` is
/// ignored (`/a/` is `/a`; `/` stays `/`). Two routes with the same key are the same route.
pub fn prefix_key(prefix: &str) -> &str {
    match prefix.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Health checking: active probes (when a path is set) and the passive back-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// `GET` this path on every target; 2xx/3xx is success. `None`: no active checks (passive
    /// failures still take targets out for [`HealthConfig::backoff`]).
    pub check: Option<String>,
    /// See [`DEFAULT_HEALTH_INTERVAL`].
    pub interval: Duration,
    /// See [`DEFAULT_HEALTH_TIMEOUT`].
    pub timeout: Duration,
    /// See [`DEFAULT_HEALTH_RISE`].
    pub rise: u32,
    /// See [`DEFAULT_HEALTH_FALL`].
    pub fall: u32,
    /// See [`DEFAULT_HEALTH_BACKOFF`].
    pub backoff: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check: None,
            interval: DEFAULT_HEALTH_INTERVAL,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            rise: DEFAULT_HEALTH_RISE,
            fall: DEFAULT_HEALTH_FALL,
            backoff: DEFAULT_HEALTH_BACKOFF,
        }
    }
}

/// Everything one lb process runs with: the part a reload replaces, the part only a restart
/// changes, and how the process starts.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// What a running lb applies on reload (replaced whole).
    pub live: LiveConfig,
    /// What needs a restart or an upgrade; a reload names each key of it that changed.
    pub restart: RestartConfig,
    /// Start by taking over from the lb serving [`RestartConfig::upgrade_socket`] instead of
    /// binding (command line only: how this process starts, not a setting).
    pub takeover: bool,
}

/// The defaults above are literals checked by a unit test, so parsing them cannot fail at runtime.
pub(crate) fn parse_default(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A configuration problem, reported before anything is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A comma-separated list of URLs (`--cluster-etcd`), blanks trimmed, empty items dropped.
pub fn split_urls(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

impl Config {
    /// Checks the settings that clap cannot check one by one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (live, restart) = (&self.live, &self.restart);
        for route in &live.routes {
            for (name, d) in [
                ("connect", route.connect_timeout),
                ("upstream", route.upstream_timeout),
            ] {
                if d.is_some_and(|d| d.is_zero()) {
                    return Err(ConfigError(format!(
                        "route {}: timeouts.{name} = 0: expected a duration greater than 0",
                        route.prefix
                    )));
                }
            }
        }
        let health = &live.health;
        for (key, n) in [
            (
                "max_connections (--max-connections)",
                restart.max_connections,
            ),
            ("backlog (--backlog)", restart.backlog as usize),
            (
                "h2_max_streams (--h2-max-streams)",
                restart.h2_max_streams as usize,
            ),
            ("health.rise (--health-rise)", health.rise as usize),
            ("health.fall (--health-fall)", health.fall as usize),
        ] {
            if n == 0 {
                return Err(ConfigError(format!("{key} = 0: expected at least 1")));
            }
        }
        for (key, d) in [
            ("timeouts.connect (--connect-timeout)", live.connect_timeout),
            (
                "timeouts.upstream (--upstream-timeout)",
                live.upstream_timeout,
            ),
            ("timeouts.header (--header-timeout)", live.header_timeout),
            ("timeouts.idle (--idle-timeout)", live.idle_timeout),
            ("health.interval (--health-interval)", health.interval),
            ("health.timeout (--health-timeout)", health.timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!(
                    "{key} = 0: expected a duration greater than 0"
                )));
            }
        }
        restart.cluster.validate()?;
        if let Some(path) = &health.check {
            check_probe_path(path)
                .map_err(|e| ConfigError(format!("health.check (--health-check): {e}")))?;
        }
        for route in &live.routes {
            if !route.prefix.starts_with('/') {
                return Err(ConfigError(format!(
                    "route prefix \"{}\": expected a path starting with `/`",
                    route.prefix
                )));
            }
            if route.targets.is_empty() {
                return Err(ConfigError(format!(
                    "route {} has no targets (expected at least one HOST:PORT)",
                    route.prefix
                )));
            }
            if let Some(t) = route.targets.iter().find(|t| t.port() == 0) {
                return Err(ConfigError(format!(
                    "route {}: target {t} has port 0",
                    route.prefix
                )));
            }
            if let Some(path) = &route.health_check {
                check_probe_path(path).map_err(|e| {
                    ConfigError(format!("route {}: health_check: {e}", route.prefix))
                })?;
            }
        }
        if let Some(token) = &restart.admin_token {
            if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(ConfigError(
                    "the admin token (admin_token, --admin-token or its file) must be non-empty \
                     printable ASCII without spaces"
                        .into(),
                ));
            }
        }
        if self.takeover && restart.upgrade_socket.is_none() {
            return Err(ConfigError(
                "--takeover needs the upgrade socket of the running lb (--upgrade-socket)".into(),
            ));
        }
        restart.tls.validate(restart.listen, restart.admin)?;
        if restart.listen == restart.admin && restart.listen.port() != 0 {
            return Err(ConfigError(format!(
                "listen and admin are both {}: expected two different addresses",
                restart.listen
            )));
        }
        Ok(())
    }
}

/// A health check path is sent verbatim in a request line: origin form, no spaces or controls.
fn check_probe_path(path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') || path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(ConfigError(format!(
            "invalid health check path \"{path}\" (expected a path starting with `/`, without spaces or control characters)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        assert_eq!(
            Config::default().restart.listen,
            DEFAULT_LISTEN.parse().unwrap()
        );
        assert_eq!(
            Config::default().restart.admin,
            DEFAULT_ADMIN.parse().unwrap()
        );
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn workers_parse() {
        assert_eq!("auto".parse::<Workers>(), Ok(Workers::Auto));
        assert_eq!("3".parse::<Workers>(), Ok(Workers::Count(3)));
        assert!("0".parse::<Workers>().is_err());
        assert!("x".parse::<Workers>().is_err());
    }

    #[test]
    fn route_parse() {
        let r: StaticRoute<HostPort> = "/api=127.0.0.1:9001,[::1]:9002,localhost:80"
            .parse()
            .unwrap();
        assert_eq!(r.prefix, "/api");
        assert_eq!(r.targets.len(), 3);
        let table = [
            ("api=127.0.0.1:1", "invalid route \"api=127.0.0.1:1\": the prefix \"api\" must start with `/`"),
            ("/api", "invalid route \"/api\" (expected PREFIX=HOST:PORT[,HOST:PORT...], e.g. /api=10.0.0.5:9001)"),
            ("/api=127.0.0.1:0", "route /api: invalid target \"127.0.0.1:0\""),
            ("/api=localhost", "route /api: invalid target \"localhost\""),
        ];
        for (text, want) in table {
            let error = text.parse::<StaticRoute<HostPort>>().unwrap_err();
            assert!(error.starts_with(want), "{text}: {error}");
        }
    }

    #[test]
    fn prefix_keys() {
        for (prefix, key) in [
            ("/", "/"),
            ("//", "/"),
            ("/a", "/a"),
            ("/a/", "/a"),
            ("/a/b//", "/a/b"),
        ] {
            assert_eq!(prefix_key(prefix), key, "{prefix}");
        }
    }

    #[test]
    fn validation_errors_name_the_key_the_value_and_what_is_accepted() {
        type Change = fn(&mut Config);
        let table: [(Change, &str); 6] = [
            (
                |c| c.restart.max_connections = 0,
                "max_connections (--max-connections) = 0: expected at least 1",
            ),
            (
                |c| c.live.health.fall = 0,
                "health.fall (--health-fall) = 0: expected at least 1",
            ),
            (
                |c| c.live.idle_timeout = Duration::ZERO,
                "timeouts.idle (--idle-timeout) = 0: expected a duration greater than 0",
            ),
            (
                |c| c.live.health.check = Some("x".into()),
                "health.check (--health-check): invalid health check path \"x\" (expected a path",
            ),
            (
                |c| c.restart.admin = c.restart.listen,
                "listen and admin are both 0.0.0.0:8080: expected two different addresses",
            ),
            (
                |c| {
                    c.live.routes = vec!["/a=10.0.0.1:1".parse().unwrap()]
                        .into_iter()
                        .map(|r: StaticRoute| r.with_targets(Vec::new(), Vec::new()))
                        .collect()
                },
                "route /a has no targets (expected at least one HOST:PORT)",
            ),
        ];
        for (change, want) in table {
            let mut c = Config::default();
            change(&mut c);
            let error = c.validate().unwrap_err().0;
            assert!(error.starts_with(want), "{error}");
        }
    }

    #[test]
    fn health_settings_are_validated() {
        let mut c = Config::default();
        c.live.health.check = Some("/health?full=1".into());
        assert!(c.validate().is_ok());
        c.live.health.check = Some("health".into());
        assert!(c
            .validate()
            .unwrap_err()
            .0
            .contains("expected a path starting with `/`"));
        c.live.health.check = Some("/a b".into());
        assert!(c.validate().is_err());
        c.live.health.check = None;
        c.live.health.rise = 0;
        assert!(c.validate().is_err());
        c.live.health.rise = 1;
        c.live.health.interval = Duration::ZERO;
        assert!(c.validate().is_err());
        c.live.health.interval = DEFAULT_HEALTH_INTERVAL;
        c.restart.admin_token = Some("with space".into());
        assert!(c.validate().is_err());
        c.restart.admin_token = Some("s3cr3t".into());
        assert!(c.validate().is_ok());
    }
}
