//! The running lb's side of a zero-downtime upgrade (see `upgrade` for the protocol): handing
//! the sockets and the registry to a new lb, and starting that new lb on request.

use crate::admin::AdminThread;
use crate::supervisor::{Event, Handle};
use crate::upgrade;
use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tracing::{error, info, warn};

/// How this process was started, so that `lb upgrade` can start its successor the same way
/// (the executable path is read at start: once the binary is replaced on disk, that path runs
/// the new one).
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub(crate) exe: Option<PathBuf>,
    pub(crate) args: Vec<OsString>,
}

impl Origin {
    /// This process's executable and arguments.
    pub(crate) fn current() -> Self {
        Origin {
            exe: std::env::current_exe().ok(),
            args: std::env::args_os().skip(1).collect(),
        }
    }
}

impl Handle {
    /// Hands everything to the new lb on `stream`, the registry in a manifest of version
    /// `version`. `true`: it took over, this lb must drain and exit. `false`: it failed; this lb
    /// resumed its control plane and goes on.
    pub(crate) fn hand_over(&mut self, mut stream: UnixStream, version: u32) -> bool {
        let (Some(upgrade_socket), Some(admin_socket)) = (&self.upgrade_socket, &self.admin_socket)
        else {
            return false;
        };
        info!("a new lb asks to take over: pausing the control plane");
        // After this, no API call changes the registry until the new lb serves the admin socket
        // (calls meanwhile wait in the admin socket's queue, which the new lb inherits).
        if let Some(mut admin) = self.admin_thread.take() {
            admin.stop();
        }
        let result = upgrade::hand_over(
            &mut stream,
            upgrade_socket,
            admin_socket,
            &self.sockets,
            self.registry(),
            version,
        );
        match result {
            Ok(pid) => {
                if let Some(mut thread) = self.upgrade_thread.take() {
                    thread.stop();
                }
                info!(pid, "the new lb took over");
                self.answer_pending(&format!("DONE {pid}"));
                true
            }
            Err(e) => {
                error!(error = %e, "handover failed; this lb goes on serving");
                match admin_socket
                    .try_clone()
                    .and_then(|l| AdminThread::spawn(l, self.plane.clone()))
                {
                    Ok(thread) => self.admin_thread = Some(thread),
                    Err(e) => error!(error = %e, "cannot restart the control plane"),
                }
                self.answer_pending(&format!("FAILED handover failed: {e}"));
                false
            }
        }
    }

    /// `lb upgrade` or SIGUSR2: starts the successor (same executable path and arguments, plus
    /// `--takeover`); `client` gets the answer once the handover is over.
    pub(crate) fn start_successor(&mut self, client: Option<UnixStream>) {
        let refuse = |client: Option<UnixStream>, why: &str| {
            warn!(why, "upgrade refused");
            if let Some(mut client) = client {
                upgrade::reply(&mut client, &format!("FAILED {why}"));
            }
        };
        if self.upgrade_socket.is_none() {
            return refuse(client, "this lb runs without an upgrade socket");
        }
        if self.pending_upgrade.is_some() {
            return refuse(client, "an upgrade is already in progress");
        }
        let Some(exe) = self.origin.exe.clone() else {
            return refuse(client, "the path of the lb executable is unknown");
        };
        let mut args: Vec<OsString> = self
            .origin
            .args
            .iter()
            .filter(|a| a.as_os_str() != "--takeover")
            .cloned()
            .collect();
        // `lb` alone means `lb run`; `--takeover` belongs to `run`, so make it explicit.
        if !matches!(args.first(), Some(a) if a.as_os_str() == "run") {
            args.insert(0, OsString::from("run"));
        }
        args.push(OsString::from("--takeover"));
        let spawned = Command::new(&exe).args(&args).stdin(Stdio::null()).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                return refuse(client, &format!("cannot start {}: {e}", exe.display()));
            }
        };
        info!(pid = child.id(), exe = %exe.display(), "started the successor; waiting for it to take over");
        self.pending_upgrade = Some(client);
        let events = self.events_tx.clone();
        // Reaps the successor if it dies before taking over; after a takeover this process
        // exits and the successor is re-parented.
        let _ = std::thread::Builder::new()
            .name("lb-successor".to_string())
            .spawn(move || {
                let status = child.wait();
                let why = match status {
                    Ok(status) => format!("the new lb exited ({status}) before it took over"),
                    Err(e) => format!("the new lb could not be watched: {e}"),
                };
                let _ = events.send(Event::SuccessorExited(why));
            });
    }

    /// The successor died before taking over.
    pub(crate) fn successor_failed(&mut self, why: &str) {
        if self.pending_upgrade.is_some() {
            error!(why, "upgrade failed; this lb goes on serving");
            self.answer_pending(&format!("FAILED {why}"));
        }
    }

    fn answer_pending(&mut self, line: &str) {
        if let Some(Some(mut client)) = self.pending_upgrade.take() {
            upgrade::reply(&mut client, line);
        }
    }
}
