//! The upgrade part: the running lb's side of a zero-downtime upgrade (see `upgrade` for the
//! protocol). It owns the upgrade socket, the thread accepting on it, the upgrade in progress
//! and how this process was started; it hands the sockets and the registry to a new lb, and
//! starts that new lb on request.
//!
//! Invariant: at most one upgrade is in progress; its `lb upgrade` client, if any, gets exactly
//! one answer line. The parts it hands over (admin socket, listeners, registry) are lent by the
//! supervisor for the one call, never kept.

use crate::admin::AdminServer;
use crate::error::RunError;
use crate::event::Event;
use crate::listeners::Listeners;
use crate::upgrade::{self, UpgradeThread};
use crossbeam_channel::Sender;
use lb_registry::Registry;
use std::ffi::OsString;
use std::os::unix::net::{UnixListener, UnixStream};
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

/// The upgrade socket and what goes on on it.
#[derive(Debug)]
pub(crate) struct Upgrades {
    /// The part's duplicate of the upgrade socket; `None`: lb runs without one.
    socket: Option<UnixListener>,
    thread: Option<UpgradeThread>,
    /// An upgrade in progress: the `lb upgrade` client to answer, if any.
    pending: Option<Option<UnixStream>>,
    /// How this process was started (for the successor).
    origin: Origin,
    events: Sender<Event>,
}

impl Upgrades {
    /// The part for `socket` (none: upgrades are refused); nothing is served before
    /// [`Upgrades::serve`].
    pub(crate) fn new(socket: Option<UnixListener>, events: Sender<Event>) -> Self {
        Upgrades {
            socket,
            thread: None,
            pending: None,
            origin: Origin::current(),
            events,
        }
    }

    /// Starts accepting requests on the upgrade socket, if there is one.
    pub(crate) fn serve(&mut self) -> Result<(), RunError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let thread = socket
            .try_clone()
            .and_then(|s| UpgradeThread::spawn(s, self.events.clone()))
            .map_err(|e| RunError::Runtime(format!("cannot serve the upgrade socket: {e}")))?;
        self.thread = Some(thread);
        Ok(())
    }

    /// Stops accepting on the upgrade socket.
    pub(crate) fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }

    /// Hands everything to the new lb on `stream`, the registry in a manifest of version
    /// `version`. `true`: it took over, this lb must drain and exit. `false`: it failed; this lb
    /// resumed its control plane and goes on.
    pub(crate) fn hand_over(
        &mut self,
        mut stream: UnixStream,
        version: u32,
        admin: &mut AdminServer,
        listeners: &Listeners,
        registry: &Registry,
    ) -> bool {
        let Some(upgrade_socket) = &self.socket else {
            return false;
        };
        info!("a new lb asks to take over: pausing the control plane");
        // After this, no API call changes the registry until the new lb serves the admin socket
        // (calls meanwhile wait in the admin socket's queue, which the new lb inherits).
        admin.pause();
        let Some(admin_socket) = admin.socket() else {
            // Closed only by a shutdown, which ends the event loop first.
            return false;
        };
        let sockets = upgrade::HandedSockets {
            upgrade: upgrade_socket,
            admin: admin_socket,
            workers: &listeners.http.sockets,
            tls: listeners.tls.as_ref().map_or(&[], |group| &group.sockets),
        };
        let result = upgrade::hand_over(&mut stream, sockets, registry, version);
        match result {
            Ok(pid) => {
                self.stop();
                info!(pid, "the new lb took over");
                self.answer_pending(&format!("DONE {pid}"));
                true
            }
            Err(e) => {
                error!(error = %e, "handover failed; this lb goes on serving");
                admin.resume();
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
        if self.socket.is_none() {
            return refuse(client, "this lb runs without an upgrade socket");
        }
        if self.pending.is_some() {
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
        self.pending = Some(client);
        let events = self.events.clone();
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
        if self.pending.is_some() {
            error!(why, "upgrade failed; this lb goes on serving");
            self.answer_pending(&format!("FAILED {why}"));
        }
    }

    fn answer_pending(&mut self, line: &str) {
        if let Some(Some(mut client)) = self.pending.take() {
            upgrade::reply(&mut client, line);
        }
    }
}
