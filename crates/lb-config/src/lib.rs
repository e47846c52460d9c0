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
//! This crate must never do I/O: parsing and validating take values (the file's text) and return
//! values.

#![forbid(unsafe_code)]

mod file;
mod layer;
mod live;
mod log_format;
mod restart;

pub use file::parse_file;
pub use layer::Layer;
pub use live::LiveConfig;
pub use log_format::LogFormat;
pub use restart::RestartConfig;

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
/// Idle upstream connections kept per target per worker.
pub const DEFAULT_POOL_IDLE_PER_TARGET: usize = 64;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// Targets in the order they are registered (round-robin order).
    pub targets: Vec<SocketAddr>,
    /// Active health check path for this route's targets; `None` uses [`HealthConfig::check`].
    pub health_check: Option<String>,
    /// Strip the prefix before forwarding (the SPEC's default); `false` forwards the request
    /// target unchanged.
    pub strip_prefix: bool,
    /// This route's upstream connect timeout; `None` uses [`LiveConfig::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// This route's upstream response timeout; `None` uses [`LiveConfig::upstream_timeout`].
    pub upstream_timeout: Option<Duration>,
}

impl std::str::FromStr for StaticRoute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, list) = s.split_once('=').ok_or_else(|| {
            format!("route `{s}` is not of the form PREFIX=HOST:PORT[,HOST:PORT...]")
        })?;
        if !prefix.starts_with('/') {
            return Err(format!("route prefix `{prefix}` must start with `/`"));
        }
        let mut targets = Vec::new();
        for item in list.split(',') {
            let addr = item
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("route target `{item}` is not an IP:PORT address"))?;
            if addr.port() == 0 {
                return Err(format!("route target `{item}` has port 0"));
            }
            targets.push(addr);
        }
        Ok(StaticRoute {
            prefix: prefix.to_string(),
            targets,
            health_check: None,
            strip_prefix: true,
            connect_timeout: None,
            upstream_timeout: None,
        })
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
                        "route {}: the {name} timeout must be greater than 0",
                        route.prefix
                    )));
                }
            }
        }
        if restart.max_connections == 0 {
            return Err(ConfigError("max connections must be at least 1".into()));
        }
        if restart.backlog == 0 {
            return Err(ConfigError("backlog must be at least 1".into()));
        }
        for (name, d) in [
            ("connect timeout", live.connect_timeout),
            ("upstream timeout", live.upstream_timeout),
            ("header timeout", live.header_timeout),
            ("idle timeout", live.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!("{name} must be greater than 0")));
            }
        }
        let health = &live.health;
        for (name, d) in [
            ("health interval", health.interval),
            ("health timeout", health.timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!("{name} must be greater than 0")));
            }
        }
        if health.rise == 0 || health.fall == 0 {
            return Err(ConfigError(
                "health rise and fall must be at least 1".into(),
            ));
        }
        if let Some(path) = &health.check {
            check_probe_path(path)?;
        }
        for route in &live.routes {
            if !route.prefix.starts_with('/') {
                return Err(ConfigError(format!(
                    "route prefix `{}` must start with `/`",
                    route.prefix
                )));
            }
            if route.targets.is_empty() {
                return Err(ConfigError(format!(
                    "route {} has no targets",
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
                check_probe_path(path)
                    .map_err(|e| ConfigError(format!("route {}: {e}", route.prefix)))?;
            }
        }
        if let Some(token) = &restart.admin_token {
            if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(ConfigError(
                    "the admin token must be non-empty printable ASCII without spaces".into(),
                ));
            }
        }
        if self.takeover && restart.upgrade_socket.is_none() {
            return Err(ConfigError(
                "--takeover needs the upgrade socket of the running lb (--upgrade-socket)".into(),
            ));
        }
        if restart.listen == restart.admin && restart.listen.port() != 0 {
            return Err(ConfigError(format!(
                "the data plane and the admin listener cannot share {}",
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
            "health check path `{path}` must start with `/` and hold no spaces or control characters"
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
        let r: StaticRoute = "/api=127.0.0.1:9001,[::1]:9002".parse().unwrap();
        assert_eq!(r.prefix, "/api");
        assert_eq!(r.targets.len(), 2);
        assert!("api=127.0.0.1:1".parse::<StaticRoute>().is_err());
        assert!("/api".parse::<StaticRoute>().is_err());
        assert!("/api=localhost:80".parse::<StaticRoute>().is_err());
        assert!("/api=127.0.0.1:0".parse::<StaticRoute>().is_err());
    }

    #[test]
    fn health_settings_are_validated() {
        let mut c = Config::default();
        c.live.health.check = Some("/health?full=1".into());
        assert!(c.validate().is_ok());
        c.live.health.check = Some("health".into());
        assert!(c.validate().unwrap_err().0.contains("must start with `/`"));
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
