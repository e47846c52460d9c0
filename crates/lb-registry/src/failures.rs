//! Failure accounting per route, like nginx's `max_fails`/`fail_timeout`: a target whose
//! answers are `max_fails` consecutive failures (statuses of [`MaxFails`], lb's own 502/504
//! for a timeout or a bad response included) is taken out for the passive back-off, as a
//! refused connect is.
//!
//! The count is one shared counter per target ([`crate::Target::record_outcome`]); a success
//! only reads it (and writes 0 only when it was not 0), so a route whose targets answer well
//! makes no shared write for it. Off by default (`max_fails` 0).

use crate::error::RegistryError;

/// The statuses counted as failures when a route names none: 500, 502, 503, 504.
pub const DEFAULT_FAIL_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// A route's failure accounting: how many consecutive failures take a target out, and which
/// statuses (of 500-599) are failures. A plain `Copy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxFails {
    /// Consecutive failures that take a target out; 0: off.
    pub max_fails: u16,
    /// Bit `s - 500` set: status `s` is a failure.
    statuses: u128,
}

impl Default for MaxFails {
    fn default() -> Self {
        MaxFails::DISABLED
    }
}

/// The bit set of `statuses` (each within 500-599).
const fn bits(statuses: &[u16]) -> u128 {
    let mut b = 0;
    let mut i = 0;
    while i < statuses.len() {
        if statuses[i] >= 500 && statuses[i] < 600 {
            b |= 1 << (statuses[i] - 500);
        }
        i += 1;
    }
    b
}

impl MaxFails {
    /// Off (the default), with the default statuses.
    pub const DISABLED: MaxFails = MaxFails {
        max_fails: 0,
        statuses: bits(&DEFAULT_FAIL_STATUSES),
    };

    /// Accounting after `max_fails` consecutive answers with one of `statuses` (default
    /// [`DEFAULT_FAIL_STATUSES`]); every status must be within 500-599.
    pub fn new(max_fails: u16, statuses: Option<&[u16]>) -> Result<Self, RegistryError> {
        let statuses = statuses.unwrap_or(&DEFAULT_FAIL_STATUSES);
        if let Some(s) = statuses.iter().find(|s| !(500..600).contains(*s)) {
            return Err(RegistryError::InvalidValue(format!(
                "fail_statuses: {s} is not a 5xx status (expected 500 to 599)"
            )));
        }
        Ok(MaxFails {
            max_fails,
            statuses: bits(statuses),
        })
    }

    /// Whether the route counts failures at all.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.max_fails > 0
    }

    /// Whether an answer with `status` is a failure.
    #[inline]
    pub fn is_failure(&self, status: u16) -> bool {
        (500..600).contains(&status) && self.statuses & (1 << (status - 500)) != 0
    }

    /// The failure statuses, in order (for listings).
    pub fn statuses(&self) -> Vec<u16> {
        (500..600).filter(|&s| self.is_failure(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_as_configured() {
        let default = MaxFails::default();
        assert!(!default.enabled());
        assert_eq!(default.statuses(), DEFAULT_FAIL_STATUSES);
        let table = [
            (500, true),
            (502, true),
            (504, true),
            (501, false),
            (404, false),
            (200, false),
        ];
        for (status, failure) in table {
            assert_eq!(default.is_failure(status), failure, "{status}");
        }
        let custom = MaxFails::new(2, Some(&[599, 500])).expect("valid");
        assert!(custom.enabled() && custom.is_failure(599) && !custom.is_failure(502));
        assert!(MaxFails::new(2, Some(&[404])).is_err());
        assert!(MaxFails::new(2, Some(&[600])).is_err());
    }
}
