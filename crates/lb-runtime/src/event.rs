//! What the supervisor's event loop reacts to: [`Event`], sent by the worker threads, the signal
//! thread, the upgrade-socket thread and the successor watcher.
//!
//! A leaf: it imports nothing of this crate, so the threads that send events need not import the
//! supervisor that receives them. An event carries values only; what to do with it is decided in
//! one place, the supervisor's loop.

use std::os::unix::net::UnixStream;

/// A request arriving on the upgrade socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeRequest {
    /// A new lb wants the sockets and the registry, in a manifest of at most this version.
    Takeover(u32),
    /// `lb upgrade`: start a successor and answer when it took over.
    Upgrade,
}

/// What workers (and the signal, upgrade and successor threads) tell the supervisor.
#[derive(Debug)]
pub(crate) enum Event {
    /// A worker accepts on its socket.
    Ready { worker: usize, pinned: bool },
    /// A worker could not start serving its socket.
    Failed { worker: usize, error: String },
    /// A worker thread ended (returned or panicked).
    Exited { worker: usize, panicked: bool },
    /// SIGINT or SIGTERM: drain and stop.
    Signal(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
    /// A request on the upgrade socket.
    Upgrade {
        request: UpgradeRequest,
        stream: UnixStream,
    },
    /// SIGUSR2: start a successor that takes over (as `lb upgrade`).
    UpgradeSignal,
    /// The successor process exited before it took over.
    SuccessorExited(String),
}
