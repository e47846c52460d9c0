//! The `lb` binary: parses the command line, sets up logging, and hands over to `lb_runtime`.
//! No logic of its own beyond turning flags into a [`Layer`] (the file is read by `lb_runtime`)
//! and wiring `lb demo` (`demo`: lb in front of built-in echo backends) and `lb check`
//! (`check`: load and show the configuration, start nothing).
//!
//! Every duration flag takes `250ms`, `5s`, `2m` or milliseconds, through the one parser the
//! config file uses.

#![forbid(unsafe_code)]

mod check;
mod demo;

use clap::{Args, Parser, Subcommand};
use lb_config::{
    pair_certs, parse_bind_addr, parse_bytes, parse_count, parse_duration, parse_positive_duration,
    HostPort, Layer, LogFormat, StaticRoute, TlsVersion, Workers,
};
use lb_runtime::ConfigSource;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Thread-per-core HTTP load balancer (HTTP/1.1 and HTTP/2 clients, HTTP/1.1 upstreams) with
/// exact cross-core round robin.
#[derive(Debug, Parser)]
#[command(name = "lb", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the load balancer (the default).
    Run(Box<RunArgs>),
    /// Run the tiny built-in backend (demos, tests, benchmarks).
    Echo(EchoArgs),
    /// Check the configuration (file and flags) as a start would, without binding a socket;
    /// print what would run. Exit 0 when it is valid, 2 when not.
    Check(Box<RunArgs>),
    /// Run lb on 127.0.0.1:8080 with three echo backends on "/".
    Demo(demo::DemoArgs),
    /// Zero-downtime upgrade: ask the running lb to start the lb binary now installed at its
    /// path, hand it its sockets and registry, and drain.
    Upgrade(UpgradeArgs),
}

#[derive(Debug, Args)]
struct UpgradeArgs {
    /// The running lb's upgrade socket (its --upgrade-socket).
    #[arg(long, value_name = "PATH")]
    upgrade_socket: PathBuf,
    /// How long to wait for the new lb to take over (250ms, 5s, 2m or milliseconds).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_positive_duration)]
    timeout: Duration,
}

/// `lb run` flags (DURATION: `250ms`, `5s`, `2m`, or milliseconds). Each is optional so that a flag left out leaves the config file's value (or
/// the default, shown in the help) in force: flags override the file.
#[derive(Debug, Args)]
struct RunArgs {
    /// Config file (TOML); see docs/lb.example.toml. SIGHUP reloads it.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Data-plane address [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    listen: Option<SocketAddr>,
    /// Control-plane address [default: 127.0.0.1:8081].
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    admin: Option<SocketAddr>,
    /// Number of workers: `auto` (one per usable CPU) or a number [default: auto].
    #[arg(long, value_name = "auto|N")]
    workers: Option<Workers>,
    /// Do not pin workers to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Targets registered at start-up: PREFIX=HOST:PORT[,HOST:PORT...] (repeatable).
    /// HOST is an IP address or a host name, resolved at start and on every reload.
    #[arg(long = "route", value_name = "PREFIX=HOST:PORT[,HOST:PORT...]")]
    routes: Vec<StaticRoute<HostPort>>,
    /// Listen backlog of each worker's socket [default: 4096].
    #[arg(long, value_name = "N", value_parser = parse_count::<u32>)]
    backlog: Option<u32>,
    /// Hold a new connection in the kernel until its first bytes arrive, at most this long
    /// (TCP_DEFER_ACCEPT, rounded up to seconds); 0 turns it off [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    defer_accept: Option<Duration>,
    /// Upstream connect timeout (504 beyond) [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    connect_timeout: Option<Duration>,
    /// Time to the upstream's response head (504 beyond) [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    upstream_timeout: Option<Duration>,
    /// Time for a client to send a whole request head (408 beyond) [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    header_timeout: Option<Duration>,
    /// Idle keep-alive client connection timeout [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    idle_timeout: Option<Duration>,
    /// Largest request body in bytes (413 beyond); unlimited when not set.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_body: Option<u64>,
    /// Client connections each worker serves at once; beyond it the listen backlog holds them
    /// [default: 65536].
    #[arg(long, value_name = "N", value_parser = parse_count::<usize>)]
    max_connections: Option<usize>,
    /// Concurrent streams per HTTP/2 client connection; beyond it RST_STREAM(REFUSED_STREAM)
    /// [default: 128].
    #[arg(long, value_name = "N", value_parser = parse_count::<u32>)]
    h2_max_streams: Option<u32>,
    /// Log one line per request to stderr (written by a thread of its own, never blocking a
    /// worker).
    #[arg(long)]
    access_log: bool,
    /// Log line format on stderr: `text`, or `json` (one object per line, for journald, Loki or
    /// ELK) [default: text].
    #[arg(long, value_name = "text|json")]
    log_format: Option<LogFormat>,
    /// How long shutdown waits for in-flight requests [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    drain_timeout: Option<Duration>,
    /// State file: the registry is saved there on every change and loaded at start.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every control-plane call except /healthz and
    /// the status page / (which asks for the token). The token shows in `ps`: prefer
    /// --admin-token-file.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Read the admin token from FILE (its content, trailing newline trimmed).
    #[arg(long, value_name = "FILE", conflicts_with = "admin_token")]
    admin_token_file: Option<PathBuf>,
    /// Unix socket on which this lb hands its sockets and registry to a successor (zero-downtime
    /// upgrade: `lb upgrade`, SIGUSR2, or a new `lb run ... --takeover`).
    #[arg(long, value_name = "PATH")]
    upgrade_socket: Option<PathBuf>,
    /// Take over the listening sockets and registry of the lb serving --upgrade-socket, which
    /// then drains and exits.
    #[arg(long)]
    takeover: bool,
    /// Cluster mode: share the registry with other lb nodes through these etcd members
    /// (`http://HOST:PORT`, comma-separated); /register and /deregister then write to etcd.
    #[arg(long, value_name = "URL[,URL...]")]
    cluster_etcd: Option<String>,
    /// The etcd key prefix the nodes of one cluster share [default: /lb/].
    #[arg(long, value_name = "KEY")]
    cluster_prefix: Option<String>,
    /// This node's name in the cluster (GET /cluster; its round-robin start offset)
    /// [default: the host name].
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// Active health check: GET this path on every target (2xx/3xx is healthy).
    #[arg(long, value_name = "PATH")]
    health_check: Option<String>,
    /// Time between two health probes of a target [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    health_interval: Option<Duration>,
    /// Time one health probe may take [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    health_timeout: Option<Duration>,
    /// Consecutive good probes that bring a down target back [default: 2].
    #[arg(long, value_name = "N", value_parser = parse_count::<u32>)]
    health_rise: Option<u32>,
    /// Consecutive failed probes that take a target out of round robin [default: 3].
    #[arg(long, value_name = "N", value_parser = parse_count::<u32>)]
    health_fall: Option<u32>,
    /// How long a target whose connect failed stays out of round robin [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    health_backoff: Option<Duration>,
    /// HTTPS data-plane address (TLS termination, off by default); needs --tls-cert/--tls-key.
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain (repeatable, paired in order with --tls-key; chosen by SNI, the
    /// first one is the default). SIGHUP re-reads every certificate and key.
    #[arg(long, value_name = "CERT.pem")]
    tls_cert: Vec<PathBuf>,
    /// PEM private key of the --tls-cert in the same position (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "KEY.pem")]
    tls_key: Vec<PathBuf>,
    /// Session-ticket keys shared by several lb nodes: one key per line, 64 hex digits; the
    /// first seals new tickets, all open them; SIGHUP re-reads the file [default: keys of this
    /// process, rotated every 6 hours].
    #[arg(long, value_name = "FILE")]
    tls_ticket_keys: Option<PathBuf>,
    /// Lowest TLS version accepted: 1.2 or 1.3 [default: 1.2].
    #[arg(long, value_name = "1.2|1.3")]
    tls_min_version: Option<TlsVersion>,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    listen: SocketAddr,
    /// Name sent in `X-Backend` and the body.
    #[arg(long, default_value = "echo")]
    name: String,
}

impl RunArgs {
    /// Where the configuration comes from: the file (if any) with these flags on top.
    fn into_source(self) -> Result<ConfigSource, lb_runtime::RunError> {
        let tls_certs = pair_certs(&self.tls_cert, &self.tls_key)?;
        let flags = Layer {
            listen: self.listen,
            admin: self.admin,
            workers: self.workers,
            pin: self.no_pin.then_some(false),
            backlog: self.backlog,
            defer_accept: self.defer_accept,
            routes: self.routes,
            connect_timeout: self.connect_timeout,
            upstream_timeout: self.upstream_timeout,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            drain_timeout: self.drain_timeout,
            max_body: self.max_body,
            max_connections: self.max_connections,
            h2_max_streams: self.h2_max_streams,
            access_log: self.access_log.then_some(true),
            health_check: self.health_check,
            health_interval: self.health_interval,
            health_timeout: self.health_timeout,
            health_rise: self.health_rise,
            health_fall: self.health_fall,
            health_backoff: self.health_backoff,
            state: self.state,
            admin_token: self.admin_token,
            admin_token_file: self.admin_token_file,
            upgrade_socket: self.upgrade_socket,
            cluster_etcd: self
                .cluster_etcd
                .map(|urls| lb_config::split_urls(&urls))
                .unwrap_or_default(),
            cluster_prefix: self.cluster_prefix,
            node_name: self.node_name,
            tls_listen: self.tls_listen,
            tls_min_version: self.tls_min_version,
            tls_certs,
            tls_ticket_keys: self.tls_ticket_keys,
            takeover: self.takeover,
        };
        Ok(ConfigSource {
            file: self.config,
            flags,
        })
    }
}

/// Logs go to stderr (stdout carries the ready line) in `format`; the level comes from `LB_LOG`
/// (error, warn, info, debug, trace; default info). JSON lines carry the event's target (the
/// access log's is `lb::access`), which text lines leave out.
fn init_logging(format: LogFormat) {
    let level = std::env::var("LB_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let logs = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Some(Command::Run(args)) => args.log_format,
        None => cli.run.log_format,
        Some(_) => None,
    };
    init_logging(format.unwrap_or_default());
    let result = match cli.command {
        Some(Command::Run(args)) => (*args).into_source().and_then(lb_runtime::run_from),
        None => cli.run.into_source().and_then(lb_runtime::run_from),
        Some(Command::Check(args)) => (*args)
            .into_source()
            .and_then(|source| check::run_check(&source)),
        Some(Command::Demo(args)) => demo::run_demo(&args),
        Some(Command::Upgrade(args)) => {
            lb_runtime::request_upgrade(&args.upgrade_socket, args.timeout)
                .map(|pid| println!("upgraded: the new lb (pid {pid}) took over"))
                .map_err(|e| lb_runtime::RunError::Runtime(format!("upgrade failed: {e}")))
        }
        Some(Command::Echo(args)) => lb_echo::run(args.listen, &args.name)
            .map_err(|e| lb_runtime::RunError::Runtime(format!("echo: {e}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
