//! Health of one registered target: the state machine behind "is it in the pick list?".
//!
//! Two sources move a target out of round robin:
//! - **active** checks (`rise`/`fall`): `fall` consecutive failed probes take it out, `rise`
//!   consecutive good ones bring it back;
//! - **passive** failures: the data path saw a connect fail ([`crate::Registry::mark_down`]); the
//!   target is out until its back-off has passed, then the health thread revives it.
//!
//! A target is healthy when neither source holds it down. Pure: time is a value passed in.
//!
//! A zero-downtime upgrade carries the state to the next lb process as a [`CarriedHealth`], so
//! a target that is down stays down there until that process's own checks or back-off say
//! otherwise.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// Consecutive good probes that bring a target back, by default.
pub const DEFAULT_RISE: u32 = 2;
/// Consecutive failed probes that take a target out, by default.
pub const DEFAULT_FALL: u32 = 3;
/// How long a passive failure keeps a target out, by default.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(5);

/// Thresholds for moving targets in and out of round robin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive good probes that bring a down target back (at least 1).
    pub rise: u32,
    /// Consecutive failed probes that take an up target out (at least 1).
    pub fall: u32,
    /// How long a passive failure keeps a target out.
    pub backoff: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            backoff: DEFAULT_BACKOFF,
        }
    }
}

/// The result of one active probe, as shown by `GET /targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutcome {
    /// The probe counted as a success (a 2xx or 3xx answer).
    pub ok: bool,
    /// What happened, in a few words: `"200"`, `"503"`, `"connection refused"`, `"timed out"`.
    pub detail: String,
}

impl CheckOutcome {
    /// A probe answered with `status`; 2xx and 3xx count as success.
    pub fn status(status: u16) -> Self {
        CheckOutcome {
            ok: (200..400).contains(&status),
            detail: status.to_string(),
        }
    }

    /// A probe that got no usable answer.
    pub fn failed(why: impl Into<String>) -> Self {
        CheckOutcome {
            ok: false,
            detail: why.into(),
        }
    }
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// One target's health as it travels to the next lb process in an upgrade. A back-off's end is
/// a reading of this process's monotonic clock, meaningless in another process, so it travels as
/// the time left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedHealth {
    /// The active checks consider the target up.
    pub active_up: bool,
    /// Consecutive probe results against `active_up` (towards `rise` or `fall`).
    pub streak: u32,
    /// Time left in a passive back-off; `None` when no back-off holds the target down.
    pub backoff_left: Option<Duration>,
    /// The last probe's result.
    pub last_check: Option<CheckOutcome>,
}

impl Default for CarriedHealth {
    /// What a new target starts with: up, nothing probed, no back-off.
    fn default() -> Self {
        CarriedHealth {
            active_up: true,
            streak: 0,
            backoff_left: None,
            last_check: None,
        }
    }
}

/// One target's health state.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    /// Active checks consider it up (true until `fall` failures in a row).
    active_up: bool,
    /// Consecutive probe results against the current active state.
    streak: u32,
    /// Held down by a passive failure until this instant.
    passive_until: Option<Instant>,
    /// The last probe's result.
    last_check: Option<CheckOutcome>,
    /// When that probe ended (wall clock, for the status page); `None` before the first probe
    /// in this process (an upgrade carries the result, not its time).
    checked_at: Option<SystemTime>,
}

impl Default for Health {
    /// A new target is in round robin until something says otherwise.
    fn default() -> Self {
        Health {
            active_up: true,
            streak: 0,
            passive_until: None,
            last_check: None,
            checked_at: None,
        }
    }
}

impl Health {
    /// In the pick list?
    pub(crate) fn healthy(&self) -> bool {
        self.active_up && self.passive_until.is_none()
    }

    pub(crate) fn last_check(&self) -> Option<&CheckOutcome> {
        self.last_check.as_ref()
    }

    pub(crate) fn checked_at(&self) -> Option<SystemTime> {
        self.checked_at
    }

    pub(crate) fn passive_down(&self) -> bool {
        self.passive_until.is_some()
    }

    /// A passive failure at `now`. `false` when it was already held down (the back-off is not
    /// extended: requests that picked it before it left the pick list fail into the same window).
    pub(crate) fn mark_down(&mut self, now: Instant, backoff: Duration) -> bool {
        if self.passive_until.is_some() {
            return false;
        }
        self.passive_until = Some(now + backoff);
        true
    }

    /// Ends a passive back-off that has run out by `now`; `true` when it did.
    pub(crate) fn revive(&mut self, now: Instant) -> bool {
        match self.passive_until {
            Some(until) if until <= now => {
                self.passive_until = None;
                true
            }
            _ => false,
        }
    }

    /// The state to hand to the next lb process, as of `now`.
    pub(crate) fn carry(&self, now: Instant) -> CarriedHealth {
        CarriedHealth {
            active_up: self.active_up,
            streak: self.streak,
            backoff_left: self
                .passive_until
                .map(|until| until.saturating_duration_since(now)),
            last_check: self.last_check.clone(),
        }
    }

    /// The state carried from the previous lb process, as of `now` here. `probed`: this process
    /// probes the target's route. When it does not, the active part starts fresh (up): nothing
    /// here would ever probe a target back in.
    pub(crate) fn from_carried(carried: CarriedHealth, now: Instant, probed: bool) -> Self {
        let passive_until = carried.backoff_left.map(|left| now + left);
        if probed {
            Health {
                active_up: carried.active_up,
                streak: carried.streak,
                passive_until,
                last_check: carried.last_check,
                checked_at: None,
            }
        } else {
            Health {
                passive_until,
                ..Health::default()
            }
        }
    }

    /// [`Health::record`] of a probe that ended at `at`.
    pub(crate) fn record_at(
        &mut self,
        outcome: CheckOutcome,
        policy: &HealthPolicy,
        at: SystemTime,
    ) {
        self.record(outcome, policy);
        self.checked_at = Some(at);
    }

    /// Counts one probe result against the thresholds.
    pub(crate) fn record(&mut self, outcome: CheckOutcome, policy: &HealthPolicy) {
        if outcome.ok == self.active_up {
            self.streak = 0;
        } else {
            self.streak += 1;
            let needed = if self.active_up {
                policy.fall
            } else {
                policy.rise
            };
            if self.streak >= needed.max(1) {
                self.active_up = !self.active_up;
                self.streak = 0;
            }
        }
        self.last_check = Some(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            rise: 2,
            fall: 3,
            backoff: Duration::from_secs(5),
        }
    }

    #[test]
    fn fall_then_rise_need_consecutive_results() {
        let p = policy();
        let mut h = Health::default();
        let bad = || CheckOutcome::failed("connection refused");
        h.record(bad(), &p);
        h.record(bad(), &p);
        h.record(CheckOutcome::status(200), &p); // breaks the streak
        h.record(bad(), &p);
        h.record(bad(), &p);
        assert!(h.healthy(), "two failures in a row are not three");
        h.record(bad(), &p);
        assert!(!h.healthy());
        assert_eq!(
            h.last_check().map(|c| c.detail.as_str()),
            Some("connection refused")
        );
        h.record(CheckOutcome::status(301), &p);
        assert!(!h.healthy(), "one success is not two");
        h.record(CheckOutcome::status(500), &p);
        h.record(CheckOutcome::status(204), &p);
        assert!(!h.healthy());
        h.record(CheckOutcome::status(204), &p);
        assert!(h.healthy());
    }

    #[test]
    fn passive_back_off_is_not_extended_and_ends_at_its_deadline() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(h.mark_down(t0, p.backoff));
        assert!(!h.healthy());
        assert!(!h.mark_down(t0 + Duration::from_secs(4), p.backoff));
        assert!(!h.revive(t0 + Duration::from_millis(4_999)));
        assert!(h.revive(t0 + Duration::from_secs(5)));
        assert!(h.healthy());
    }

    #[test]
    fn passive_and_active_both_have_to_agree() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.record(CheckOutcome::failed("timed out"), &p);
        }
        h.mark_down(t0, p.backoff);
        h.revive(t0 + p.backoff);
        assert!(!h.healthy(), "still down by active checks");
        h.record(CheckOutcome::status(200), &p);
        h.record(CheckOutcome::status(200), &p);
        assert!(h.healthy());
    }

    #[test]
    fn carried_health_keeps_the_streak_and_the_time_left() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.record(CheckOutcome::failed("connection refused"), &p);
        }
        h.record(CheckOutcome::status(200), &p);
        h.mark_down(t0, p.backoff);
        let carried = h.carry(t0 + Duration::from_secs(2));
        assert_eq!(carried.backoff_left, Some(Duration::from_secs(3)));

        // In the next process (another clock reading), one more good probe brings it back
        // (rise 2), and the back-off ends 3 s after the import.
        let t1 = t0 + Duration::from_secs(100);
        let mut next = Health::from_carried(carried.clone(), t1, true);
        assert!(!next.healthy());
        assert!(!next.revive(t1 + Duration::from_millis(2_999)));
        assert!(next.revive(t1 + Duration::from_secs(3)));
        assert!(!next.healthy(), "still down by active checks");
        next.record(CheckOutcome::status(200), &p);
        assert!(next.healthy());

        // A process that does not probe the route keeps only the back-off.
        let unprobed = Health::from_carried(carried, t1, false);
        assert!(unprobed.passive_down());
        assert!(unprobed.active_up && unprobed.last_check.is_none());
    }

    #[test]
    fn statuses_2xx_and_3xx_are_success() {
        assert!(CheckOutcome::status(200).ok);
        assert!(CheckOutcome::status(399).ok);
        assert!(!CheckOutcome::status(199).ok);
        assert!(!CheckOutcome::status(404).ok);
        assert!(!CheckOutcome::status(503).ok);
    }
}
