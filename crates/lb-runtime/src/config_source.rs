//! Where the configuration comes from: [`ConfigSource`], the config file (optional) plus the
//! command-line [`Layer`] on top. It is read again on every reload, so flags keep overriding the
//! file and host names are resolved anew. Loading checks everything a start or a reload would
//! refuse, before anything changes, and binds nothing (`lb check` is a load and no more).

use crate::config_routes::check_routes;
use crate::error::RunError;
use lb_config::{parse_file, Config, Layer, Lookup, Resolved};
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
