//! Where the configuration comes from: [`ConfigSource`], the config file (optional) plus the
//! command-line [`Layer`] on top. It is read again on every reload, so flags keep overriding the
//! file and host names are resolved anew. Loading checks everything a start or a reload would
//! refuse, before anything changes, and binds nothing. [`ConfigSource::check`] (`lb check`) is a
//! load plus what a start would read besides: the state file.

use crate::config_routes::check_routes;
use crate::error::RunError;
use crate::startup::{too_many_workers, usable_cpus};
use crate::state::StateFile;
use lb_config::{parse_file, Config, Layer, Lookup, Resolved};
use lb_registry::Registry;
use lb_socket::plain;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use tracing::info;

/// The configuration's origin: an optional TOML file with the command-line flags on top.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config FILE.toml`.
    pub file: Option<PathBuf>,
    /// The flags given on the command line.
    pub flags: Layer,
}

/// The system's resolver (`getaddrinfo`, so `/etc/hosts` and the search domains apply) and
/// file system.
struct System;

impl Lookup for System {
    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        (host, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| plain(&e))
    }

    fn read_file(&mut self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| plain(&e))
    }
}

impl ConfigSource {
    /// Reads the file (if any), stacks defaults, file and flags, resolves host names, reads the
    /// token file, and validates. Every problem is a [`RunError::Config`] (exit code 2) naming
    /// the file or the flag; each host name's addresses are logged.
    pub fn load(&self) -> Result<Config, RunError> {
        let file = match &self.file {
            None => None,
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    RunError::Config(format!("cannot read the config file {name}: {}", plain(&e)))
                })?;
                Some(parse_file(&text, &name)?)
            }
        };
        let layered = Config::layered(file.as_ref(), &self.flags, &mut System)?;
        let config = layered.config;
        config.validate()?;
        check_routes(&config.live).map_err(RunError::Config)?;
        layered.resolved.iter().for_each(log_resolved);
        Ok(config)
    }
}

/// What `lb check` found: the configuration a start would run, and what a start would warn
/// about.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The loaded, validated configuration.
    pub config: Config,
    /// Start-up warnings, one sentence each.
    pub warnings: Vec<String>,
}

impl ConfigSource {
    /// [`ConfigSource::load`], and the state file read as a start would read it (into a
    /// scratch registry: nothing runs), so that a corrupt state file fails the check rather
    /// than the start. Every problem is a [`RunError::Config`].
    pub fn check(&self) -> Result<Checked, RunError> {
        let config = self.load()?;
        if let Some(path) = &config.restart.state {
            StateFile::new(path.clone())
                .load_into(&Registry::new(1))
                .map_err(RunError::Config)?;
        }
        // Certificates, keys and ticket keys are read and checked as a start would.
        crate::tls_termination::TlsTermination::start(&config.restart.tls)?;
        let workers = crate::cpus::worker_count(config.restart.workers);
        let warnings = too_many_workers(workers, usable_cpus())
            .into_iter()
            .collect();
        Ok(Checked { config, warnings })
    }
}

fn log_resolved(r: &Resolved) {
    let addrs: Vec<String> = r.addrs.iter().map(ToString::to_string).collect();
    info!(
        route = %r.prefix,
        target = %r.target,
        addrs = %addrs.join(","),
        "resolved host name {} to {}",
        r.target.host,
        addrs.join(", ")
    );
}
