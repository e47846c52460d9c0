//! The `lb` binary: parses the command line, sets up logging, and hands over to `lb_runtime`.
//! No logic of its own beyond turning flags into a [`Config`].

use clap::{Args, Parser, Subcommand};
use lb_config::{Config, HealthConfig, StaticRoute, Workers};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Thread-per-core HTTP/1.1 load balancer with exact cross-core round robin.
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
    /// Run lb on 127.0.0.1:8080 with three echo backends on "/".
    Demo,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Data-plane address.
    #[arg(long, default_value = lb_config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Control-plane address.
    #[arg(long, default_value = lb_config::DEFAULT_ADMIN)]
    admin: SocketAddr,
    /// Number of workers: `auto` (one per usable CPU) or a number.
    #[arg(long, default_value = "auto")]
    workers: Workers,
    /// Do not pin workers to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Targets registered at start-up: PREFIX=HOST:PORT[,HOST:PORT...] (repeatable).
    #[arg(long = "route", value_name = "PREFIX=HOST:PORT[,HOST:PORT...]")]
    routes: Vec<StaticRoute>,
    /// Listen backlog of each worker's socket.
    #[arg(long, default_value_t = lb_config::DEFAULT_BACKLOG, value_parser = clap::value_parser!(u32).range(1..))]
    backlog: u32,
    /// Upstream connect timeout in milliseconds (504 beyond).
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_CONNECT_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    connect_timeout: u64,
    /// Time to the upstream's response head in milliseconds (504 beyond).
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_UPSTREAM_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    upstream_timeout: u64,
    /// Time for a client to send a whole request head, in milliseconds (408 beyond).
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_HEADER_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Idle keep-alive client connection timeout in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_IDLE_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Largest request body in bytes (413 beyond); unlimited when not set.
    #[arg(long, value_name = "BYTES")]
    max_body: Option<u64>,
    /// Client connections each worker serves at once; beyond it the listen backlog holds them.
    #[arg(long, value_name = "N", default_value_t = lb_config::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// How long shutdown waits for in-flight requests, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_DRAIN_TIMEOUT))]
    drain_timeout: u64,
    /// State file: the registry is saved there on every change and loaded at start.
    #[arg(long, value_name = "FILE")]
    state: Option<std::path::PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every control-plane call except /healthz.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Active health check: GET this path on every target (2xx/3xx is healthy).
    #[arg(long, value_name = "PATH")]
    health_check: Option<String>,
    /// Time between two health probes of a target, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_HEALTH_INTERVAL), value_parser = clap::value_parser!(u64).range(1..))]
    health_interval: u64,
    /// Time one health probe may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_HEALTH_TIMEOUT), value_parser = clap::value_parser!(u64).range(1..))]
    health_timeout: u64,
    /// Consecutive good probes that bring a down target back.
    #[arg(long, value_name = "N", default_value_t = lb_config::DEFAULT_HEALTH_RISE, value_parser = clap::value_parser!(u32).range(1..))]
    health_rise: u32,
    /// Consecutive failed probes that take a target out of round robin.
    #[arg(long, value_name = "N", default_value_t = lb_config::DEFAULT_HEALTH_FALL, value_parser = clap::value_parser!(u32).range(1..))]
    health_fall: u32,
    /// How long a target whose connect failed stays out of round robin, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(lb_config::DEFAULT_HEALTH_BACKOFF))]
    health_backoff: u64,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Name sent in `X-Backend` and the body.
    #[arg(long, default_value = "echo")]
    name: String,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RunArgs {
    fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            admin: self.admin,
            workers: self.workers,
            pin: !self.no_pin,
            backlog: self.backlog,
            routes: self.routes,
            connect_timeout: Duration::from_millis(self.connect_timeout),
            upstream_timeout: Duration::from_millis(self.upstream_timeout),
            header_timeout: Duration::from_millis(self.header_timeout),
            idle_timeout: Duration::from_millis(self.idle_timeout),
            drain_timeout: Duration::from_millis(self.drain_timeout),
            max_body: self.max_body,
            max_connections: self.max_connections,
            health: HealthConfig {
                check: self.health_check,
                interval: Duration::from_millis(self.health_interval),
                timeout: Duration::from_millis(self.health_timeout),
                rise: self.health_rise,
                fall: self.health_fall,
                backoff: Duration::from_millis(self.health_backoff),
            },
            state: self.state,
            admin_token: self.admin_token,
            ..Config::default()
        }
    }
}

/// Logs go to stderr (stdout carries the ready line); the level comes from `LB_LOG`
/// (error, warn, info, debug, trace; default info).
fn init_logging() {
    let level = std::env::var("LB_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Some(Command::Run(args)) => lb_runtime::run((*args).into_config()),
        None => lb_runtime::run(cli.run.into_config()),
        Some(Command::Demo) => lb_runtime::run_demo(),
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
