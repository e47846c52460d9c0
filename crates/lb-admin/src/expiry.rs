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
use tokio::time::MissedTickBehavior;

/// How often leases are checked: well under the shortest ttl (1 s).
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// Ends expired leases every [`TICK`], forever (the caller drops or aborts it).
pub(crate) async fn run(plane: Arc<ControlPlane>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        api::expire(&plane, SystemTime::now());
    }
}
