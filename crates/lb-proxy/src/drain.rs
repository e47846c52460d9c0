//! Graceful shutdown of one worker: stop accepting, close idle connections, let busy ones finish
//! their current exchange (answered with `Connection: close`), and tell the worker when none is left.

use std::cell::Cell;
use tokio::sync::Notify;

/// Drain state shared by a worker's accept loop and its connections (single thread: `Cell`).
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: Cell<bool>,
    active: Cell<usize>,
    /// Wakes connections waiting idle for their next request.
    wake_idle: Notify,
    /// Signalled when the last active connection ends during a drain.
    all_done: Notify,
}

impl Drain {
    /// Registers a live connection; the returned guard unregisters it when dropped.
    pub(crate) fn enter(&self) -> ActiveGuard<'_> {
        self.active.set(self.active.get() + 1);
        ActiveGuard { drain: self }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
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

/// Keeps a connection counted as active.
#[derive(Debug)]
pub(crate) struct ActiveGuard<'a> {
    drain: &'a Drain,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        let left = self.drain.active.get().saturating_sub(1);
        self.drain.active.set(left);
        if left == 0 {
            // notify_one stores a permit, so a drain that starts waiting later still sees it.
            self.drain.all_done.notify_one();
        }
    }
}
