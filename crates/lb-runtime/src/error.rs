//! [`RunError`]: why lb could not start or stopped with a failure, and its exit code.
//!
//! A leaf: it imports nothing of this crate, so every part can return it without importing the
//! supervisor.

use lb_config::ConfigError;
use std::fmt;

/// Why lb could not start or stopped with a failure.
#[derive(Debug)]
pub enum RunError {
    /// Bad configuration: exit code 2.
    Config(String),
    /// A runtime failure (bind, thread, signal set-up): exit code 1.
    Runtime(String),
}

impl RunError {
    /// The process exit code for this error (clap's convention: 2 for bad arguments).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 2,
            RunError::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(m) | RunError::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> Self {
        RunError::Config(e.0)
    }
}
