//! Graceful shutdown of one worker: stop accepting, let busy connections finish their current
//! exchange (answered with `Connection: close`), give idle ones a short grace for one last request
//! (`conn.rs`, `DRAIN_GRACE`), and tell the worker when none is left.

use std::cell::Cell;
use tokio::sync::Notify;

/// Drain state shared by a worker's accept loop and its connections (single thread: `Cell`).
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: Cell<bool>,
    active: Cell<usize>,
    /// Wakes connections waiting idle for their next request: their wait turns into the grace.
    wake_idle: Notify,
    /// Signalled when the last active connection ends during a drain.
    all_done: Notify,
    /// Signalled whenever a connection ends (the accept loop waits on it at the connection limit).
    slot_freed: Notify,
}

impl Drain {
    /// Counts a new connection as active (from accept on, before its task first runs, so the
    /// connection limit holds even when many connections are accepted in one burst).
    pub(crate) fn enter(&self) {
        self.active.set(self.active.get() + 1);
    }

    /// Counts a connection as ended; wakes the accept loop and a waiting drain.
    pub(crate) fn leave(&self) {
        let left = self.active.get().saturating_sub(1);
        self.active.set(left);
        // notify_one stores a permit: a waiter that starts waiting later still sees it.
        self.slot_freed.notify_one();
        if left == 0 {
            self.all_done.notify_one();
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Connections currently served.
    pub(crate) fn active(&self) -> usize {
        self.active.get()
    }

    /// Completes after some connection ended (immediately if one ended since the last wait).
    pub(crate) async fn slot_freed(&self) {
        self.slot_freed.notified().await;
    }

    /// A future that completes when a drain starts. Create it *before* checking
    /// [`Drain::is_draining`], so a drain starting in between is not missed.
    pub(crate) fn started(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake_idle.notified()
    }

    /// Starts draining and waits until every connection has ended.
    pub(crate) async fn drain(&self) {
        self.draining.set(true);
        self.wake_idle.notify_waiters();
        while self.active.get() > 0 {
            self.all_done.notified().await;
        }
    }
}
