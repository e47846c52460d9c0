//! A named OS thread running one async service on its own current-thread tokio runtime
//! ([`spawn_runtime_thread`]: the health and signal threads), and the same with a way to stop it
//! ([`ServiceThread`]: the control-plane and upgrade-socket threads).
//!
//! The runtime is built before the thread starts, so a runtime that cannot be built is the
//! caller's start-up error rather than a thread that ends at once with only a log line.
//!
//! Invariant: once [`ServiceThread::stop`] returns (or the value is dropped) the thread has
//! ended, so nothing the service does can happen after it. The service must resolve soon after
//! its [`Stopped`] signal turns true; stopping waits for it.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;
use tokio::sync::watch;
use tracing::error;

/// Starts thread `lb-<name>` and runs the future `service()` makes to completion on a fresh
/// current-thread runtime (IO and time drivers enabled). The future is made on the new thread,
/// so it need not be `Send`. Fails, starting nothing, if the runtime or the thread cannot be made.
pub(crate) fn spawn_runtime_thread<S, F>(name: &str, service: S) -> io::Result<JoinHandle<()>>
where
    S: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("lb-{name}"))
        .spawn(move || runtime.block_on(service()))
}

/// Turns true when the service is asked to stop (`stopped.wait_for(|s| *s)`); an error from the
/// watch means the owner is gone, which is a stop as well.
pub(crate) type Stopped = watch::Receiver<bool>;

/// A running service thread and the way to stop it.
#[derive(Debug)]
pub(crate) struct ServiceThread {
    /// Short name for logs (`admin`, `upgrade`); the thread is called `lb-<name>`.
    name: &'static str,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ServiceThread {
    /// Starts thread `lb-<name>` and runs `service(stopped)` on it as [`spawn_runtime_thread`]
    /// does.
    pub(crate) fn spawn<S, F>(name: &'static str, service: S) -> io::Result<ServiceThread>
    where
        S: FnOnce(Stopped) -> F + Send + 'static,
        F: Future<Output = ()>,
    {
        let (stop, stopped) = watch::channel(false);
        let thread = spawn_runtime_thread(name, move || service(stopped))?;
        Ok(ServiceThread {
            name,
            stop,
            thread: Some(thread),
        })
    }

    /// Signals the service to stop and waits for the thread to end.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the {} thread panicked", self.name);
            }
        }
    }
}

impl Drop for ServiceThread {
    fn drop(&mut self) {
        self.stop();
    }
}
