//! What a registration carries besides its address: a weight, and a lease (the heartbeat).
//!
//! A target registered with a ttl holds a [`Lease`]: it stays in routing until `expires`, and
//! every registration of it again (a heartbeat) starts the lease afresh. The lease is wall-clock
//! time ([`SystemTime`]) because the state file keeps it across a restart, where an `Instant`
//! means nothing; the registry stays pure: every step that needs the time takes it as a value.
//!
//! The bounds ([`check_weight`], [`check_ttl`]) are pure functions checked before a change
//! touches the table; the control plane calls them too, so that a bad field is answered with a
//! sentence naming it before anything else is looked at.
//!
//! [`Expiry`] is the change that removes what ran out: an API registration whose lease ended
//! leaves routing (a target the configuration also names stays, without its lease), and a
//! prefix left with no one wanting it goes with it, as a deregistration would take it.

use super::RegistryError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A target's weight when the registration gives none.
pub const DEFAULT_WEIGHT: u16 = 1;
/// The largest weight a registration may give.
pub const MAX_WEIGHT: u16 = 1000;
/// The longest ttl a registration may give: one day, past which a heartbeat is no heartbeat.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// The optional fields of a registration: each one given replaces the stored value, each one
/// omitted keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terms {
    /// The target's weight (1 to [`MAX_WEIGHT`]): its share of the route's weighted round robin.
    pub weight: Option<u16>,
    /// The lease length (1 s to [`MAX_TTL`], whole seconds).
    pub ttl: Option<Duration>,
}

impl Terms {
    /// Both fields within their bounds; the error names the field.
    pub fn check(&self) -> Result<(), RegistryError> {
        if let Some(weight) = self.weight {
            check_weight(u64::from(weight))?;
        }
        if let Some(ttl) = self.ttl {
            if ttl.subsec_nanos() != 0 {
                return Err(ttl_error());
            }
            check_ttl(ttl.as_secs())?;
        }
        Ok(())
    }
}

/// `weight` as a stored weight: an integer from 1 to [`MAX_WEIGHT`].
pub fn check_weight(weight: u64) -> Result<u16, RegistryError> {
    u16::try_from(weight)
        .ok()
        .filter(|w| (1..=MAX_WEIGHT).contains(w))
        .ok_or_else(|| {
            RegistryError::InvalidValue(format!(
                "weight must be an integer between 1 and {MAX_WEIGHT}"
            ))
        })
}

/// `seconds` as a lease length: an integer from 1 to [`MAX_TTL`].
pub fn check_ttl(seconds: u64) -> Result<Duration, RegistryError> {
    if (1..=MAX_TTL.as_secs()).contains(&seconds) {
        Ok(Duration::from_secs(seconds))
    } else {
        Err(ttl_error())
    }
}

fn ttl_error() -> RegistryError {
    RegistryError::InvalidValue(format!(
        "ttl must be an integer number of seconds between 1 and {}",
        MAX_TTL.as_secs()
    ))
}

/// A registration that lasts `ttl` unless renewed: it ends at `expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// How long each renewal lasts.
    pub ttl: Duration,
    /// When it ends unless renewed (wall-clock, so that a state file can keep it).
    pub expires: SystemTime,
}

impl Lease {
    /// A lease of `ttl` starting at `now`.
    pub fn starting(ttl: Duration, now: SystemTime) -> Self {
        Lease {
            ttl,
            expires: now + ttl,
        }
    }

    /// The lease ended by `now` (an expiry exactly at `now` has ended).
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires <= now
    }

    /// Time left at `now`; zero once ended.
    pub fn left(&self, now: SystemTime) -> Duration {
        self.expires.duration_since(now).unwrap_or(Duration::ZERO)
    }

    /// The end as milliseconds since the Unix epoch (how the state file writes it); 0 for a
    /// time before the epoch.
    pub fn expires_unix_ms(&self) -> u64 {
        let ms = self
            .expires
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// A lease read back from its ttl in seconds and its end in Unix milliseconds.
    pub fn from_unix_ms(ttl_s: u64, expires_unix_ms: u64) -> Self {
        Lease {
            ttl: Duration::from_secs(ttl_s),
            expires: UNIX_EPOCH + Duration::from_millis(expires_unix_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: the weight sent, whether it is accepted.
    #[test]
    fn weight_bounds() {
        let table = [
            (0, false),
            (1, true),
            (2, true),
            (1000, true),
            (1001, false),
            (65_536 + 1, false),
            (u64::MAX, false),
        ];
        for (weight, ok) in table {
            let checked = check_weight(weight);
            assert_eq!(checked.is_ok(), ok, "{weight}");
            if let Err(e) = checked {
                assert!(e.to_string().starts_with("weight must be"), "{e}");
            }
        }
    }

    /// Each row: the ttl sent in seconds, whether it is accepted.
    #[test]
    fn ttl_bounds() {
        let table = [
            (0, false),
            (1, true),
            (86_400, true),
            (86_401, false),
            (u64::MAX, false),
        ];
        for (seconds, ok) in table {
            let checked = check_ttl(seconds);
            assert_eq!(checked.is_ok(), ok, "{seconds}");
            if let Err(e) = checked {
                assert!(e.to_string().starts_with("ttl must be"), "{e}");
            }
        }
        let half = Terms {
            weight: None,
            ttl: Some(Duration::from_millis(1500)),
        };
        assert!(half.check().is_err());
    }

    #[test]
    fn a_lease_ends_at_its_expiry_and_survives_the_unix_ms_round_trip() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lease = Lease::starting(Duration::from_secs(2), start);
        let table = [
            (Duration::ZERO, false, Duration::from_secs(2)),
            (Duration::from_millis(1999), false, Duration::from_millis(1)),
            (Duration::from_secs(2), true, Duration::ZERO),
            (Duration::from_secs(60), true, Duration::ZERO),
        ];
        for (after, expired, left) in table {
            assert_eq!(lease.expired(start + after), expired, "{after:?}");
            assert_eq!(lease.left(start + after), left, "{after:?}");
        }
        let back = Lease::from_unix_ms(2, lease.expires_unix_ms());
        assert_eq!(back, lease);
    }
}
