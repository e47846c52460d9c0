//! The clock behind registration ttls: a periodic tick that ends the leases that ran out.
//!
//! The tick lives with the control plane, not with the health thread, because an expiry is a
//! registry change like `/deregister`: it must go through the same save-first door with the
//! same persistence hook (the state file), and it must stop when the control plane is paused
//! (a zero-downtime upgrade hands the registry over meanwhile, and no change may slip in).
//! Running inside [`crate::serve_plane`] gives both for free: the tick starts and stops with
//! the listener.
//!
//! Cost: while no lease has run out, a tick is one read-locked scan of the table
//! ([`lb_registry::Registry::expiry_due`]); workers never wait for it. A lease ends at most one
//! tick late.

use crate::{api, ControlPlane};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info};

/// How often leases are checked: well under the shortest ttl (1 s).
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// While expiries cannot be saved, how often that is logged (every tick retries them).
pub(crate) const SAVE_FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Whether a failure to save expiries at `now` is logged, when the last line was at `last`
/// (`None`: the failure is new): the first one at once, then one per
/// [`SAVE_FAILURE_LOG_EVERY`].
fn log_failure(last: Option<Instant>, now: Instant) -> bool {
    last.map_or(true, |at| now.duration_since(at) >= SAVE_FAILURE_LOG_EVERY)
}

/// Ends expired leases every [`TICK`], forever (the caller drops or aborts it).
pub(crate) async fn run(plane: Arc<ControlPlane>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // When the failure to save expiries was last logged; `None` while saves work.
    let mut logged: Option<Instant> = None;
    loop {
        tick.tick().await;
        match api::expire(&plane, SystemTime::now()) {
            Ok(()) => {
                if logged.take().is_some() {
                    info!("expired registrations saved and removed again");
                }
            }
            Err(why) => {
                let now = Instant::now();
                if log_failure(logged, now) {
                    error!(
                        %why,
                        "expired registrations not removed: the state file cannot be saved \
                         (retried every tick, logged every 30 s while it fails)"
                    );
                    logged = Some(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_logged_at_once_then_every_thirty_seconds() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let table = [
            (None, t0, true),
            (Some(t0), t0 + TICK, false),
            (Some(t0), t0 + s(29), false),
            (Some(t0), t0 + SAVE_FAILURE_LOG_EVERY, true),
            (Some(t0), t0 + s(90), true),
        ];
        for (last, now, want) in table {
            assert_eq!(log_failure(last, now), want, "last {last:?}, now {now:?}");
        }
    }
}
