//! The control-plane thread: its own current-thread runtime serving the admin listener.
//!
//! The supervisor binds the admin socket and keeps a duplicate, so the control plane can be
//! stopped and started again on the same socket (a zero-downtime upgrade pauses it while the
//! registry is handed over) without a connection being refused in between.

use crate::service_thread::ServiceThread;
use lb_admin::ControlPlane;
use tracing::error;

/// A running control-plane thread and the way to stop it.
#[derive(Debug)]
pub(crate) struct AdminThread(ServiceThread);

impl AdminThread {
    /// Serves `plane` on `listener` (non-blocking) until [`AdminThread::stop`].
    pub(crate) fn spawn(
        listener: std::net::TcpListener,
        plane: ControlPlane,
    ) -> std::io::Result<AdminThread> {
        let thread = ServiceThread::spawn("admin", move |mut stopped| async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    error!(error = %e, "cannot register the admin listener");
                    return;
                }
            };
            let shutdown = async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            lb_admin::serve_plane(listener, plane, shutdown).await;
        })?;
        Ok(AdminThread(thread))
    }

    /// Stops serving (answers in progress are finished, bounded by lb-admin's grace period) and
    /// waits for the thread; after it returns no registry change comes from this thread.
    pub(crate) fn stop(&mut self) {
        self.0.stop();
    }
}
