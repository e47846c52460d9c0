//! A named OS thread running one async service on its own current-thread tokio runtime, with a
//! way to stop it: the shape shared by the control-plane thread and the upgrade-socket thread.
//!
//! Invariant: once [`ServiceThread::stop`] returns (or the value is dropped) the thread has
//! ended, so nothing the service does can happen after it. The service must resolve soon after
//! its [`Stopped`] signal turns true; stopping waits for it.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;
use tokio::sync::watch;
use tracing::error;

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
    /// Starts thread `lb-<name>` and runs `service(stopped)` on a fresh current-thread runtime
    /// (IO and time drivers enabled) until it resolves. A runtime that cannot be built is logged
    /// and the thread ends at once: the caller only learns of it through the missing service,
    /// as a thread cannot hand back its start-up error without the caller blocking on it.
    pub(crate) fn spawn<S, F>(name: &'static str, service: S) -> io::Result<ServiceThread>
    where
        S: FnOnce(Stopped) -> F + Send + 'static,
        F: Future<Output = ()>,
    {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(format!("lb-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!(error = %e, "cannot build the {name} runtime");
                        return;
                    }
                };
                runtime.block_on(service(stopped));
            })?;
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
