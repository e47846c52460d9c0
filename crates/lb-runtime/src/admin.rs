//! The admin server part: the admin socket, the control plane it serves and the thread serving
//! it on its own current-thread runtime.
//!
//! The part keeps a duplicate of the admin socket, so the control plane can be paused and
//! resumed on the same socket (a zero-downtime upgrade pauses it while the registry is handed
//! over) without a connection being refused in between: calls meanwhile wait in the socket's
//! queue. Invariant: after [`AdminServer::pause`] returns, no registry change comes from the
//! control plane until [`AdminServer::resume`].

use crate::error::RunError;
use crate::service_thread::ServiceThread;
use lb_admin::ControlPlane;
use lb_socket::plain;
use std::net::{SocketAddr, TcpListener};
use tracing::error;

/// The control plane of one lb process.
#[derive(Debug)]
pub(crate) struct AdminServer {
    addr: SocketAddr,
    /// The part's duplicate of the admin socket; `None` once shut down.
    socket: Option<TcpListener>,
    /// What is served, kept to serve it again after a pause.
    plane: ControlPlane,
    thread: Option<ServiceThread>,
}

impl AdminServer {
    /// Serves `plane` on `socket` (non-blocking) from a thread of its own.
    pub(crate) fn start(socket: TcpListener, plane: ControlPlane) -> Result<Self, RunError> {
        let addr = socket
            .local_addr()
            .map_err(|e| RunError::Runtime(format!("admin listener: {}", plain(&e))))?;
        let mut server = AdminServer {
            addr,
            socket: Some(socket),
            plane,
            thread: None,
        };
        server
            .serve()
            .map_err(|e| RunError::Runtime(format!("cannot start the admin thread: {e}")))?;
        Ok(server)
    }

    /// The control-plane address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin socket (handed over in an upgrade); `None` once shut down.
    pub(crate) fn socket(&self) -> Option<&TcpListener> {
        self.socket.as_ref()
    }

    /// Stops serving (answers in progress are finished, bounded by lb-admin's grace period) and
    /// waits for the thread; the socket stays open, so new calls queue.
    pub(crate) fn pause(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }

    /// Serves again after [`AdminServer::pause`] (a handover that failed).
    pub(crate) fn resume(&mut self) {
        if let Err(e) = self.serve() {
            error!(error = %e, "cannot restart the control plane");
        }
    }

    /// Stops serving and closes the socket.
    pub(crate) fn shutdown(&mut self) {
        self.pause();
        self.socket = None;
    }

    fn serve(&mut self) -> std::io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let listener = socket.try_clone()?;
        let plane = self.plane.clone();
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
        self.thread = Some(thread);
        Ok(())
    }
}
