//! systemd's readiness protocol (`sd_notify`), without libsystemd: one datagram to the unix
//! socket named by `$NOTIFY_SOCKET`, when that variable is set (it is under `Type=notify`).
//!
//! lb sends `READY=1` with `MAINPID=<its pid>` once every worker accepts, so that after a
//! zero-downtime upgrade systemd follows the new process (the unit needs `NotifyAccess=all`,
//! since the new process is not the one systemd started), and `STOPPING=1` when a signal stops
//! it. Without `$NOTIFY_SOCKET` nothing is sent; a failed send is logged at debug and ignored.

use std::os::unix::net::UnixDatagram;
use tracing::debug;

/// Sends `state` (newline-separated `KEY=value` lines) to systemd, if it listens.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket name (Linux).
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        debug!(error = %e, "sd_notify failed");
    }
}

/// `READY=1` and this process as the service's main process.
pub(crate) fn ready() {
    notify(&format!("READY=1\nMAINPID={}\n", std::process::id()));
}

/// `STOPPING=1`.
pub(crate) fn stopping() {
    notify("STOPPING=1\n");
}
