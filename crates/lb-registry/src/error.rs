//! Why a registry change was refused: the one error type of the crate, with a sentence for
//! whoever asked (the admin API's `400` body, the start-up error). A leaf: it imports nothing
//! of the crate.

use std::fmt;

/// Why a registry change was refused. The registry is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The path is not a valid route prefix; the text says why in one sentence.
    InvalidPath(String),
    /// The target address cannot be used (port 0, unspecified address).
    InvalidTarget(String),
    /// A registration's weight or ttl is out of bounds; the text names the field.
    InvalidValue(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::InvalidPath(m)
            | RegistryError::InvalidTarget(m)
            | RegistryError::InvalidValue(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RegistryError {}

impl RegistryError {
    /// The same error, its sentence prefixed with what it is about (`route "/a": ...`).
    pub(crate) fn within(self, context: &str) -> Self {
        match self {
            RegistryError::InvalidPath(m) => RegistryError::InvalidPath(format!("{context}: {m}")),
            RegistryError::InvalidTarget(m) => {
                RegistryError::InvalidTarget(format!("{context}: {m}"))
            }
            RegistryError::InvalidValue(m) => {
                RegistryError::InvalidValue(format!("{context}: {m}"))
            }
        }
    }
}
