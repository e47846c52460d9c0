//! Where the configuration comes from: [`ConfigSource`], the config file (optional) plus the
//! command-line [`Layer`] on top. It is read again on every reload, so flags keep overriding the
//! file. Loading checks everything a start or a reload would refuse, before anything changes.

use crate::config_routes::check_routes;
use crate::error::RunError;
use lb_config::{parse_file, Config, Layer};
use lb_socket::plain;
use std::path::PathBuf;

/// The configuration's origin: an optional TOML file with the command-line flags on top.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config FILE.toml`.
    pub file: Option<PathBuf>,
    /// The flags given on the command line.
    pub flags: Layer,
}

impl ConfigSource {
    /// Reads the file (if any), stacks defaults, file and flags, and validates. Every problem is
    /// a [`RunError::Config`] (exit code 2) naming the file.
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
        let config = Config::layered(file.as_ref(), &self.flags);
        config.validate()?;
        check_routes(&config.live).map_err(RunError::Config)?;
        Ok(config)
    }
}
