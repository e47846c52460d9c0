//! Zero-downtime upgrade: the running lb hands its listening sockets and its registry to a new lb
//! over a unix socket (`upgrade_socket`), the way HAProxy (`-x`), Envoy (hot restart) and
//! Pingora (upgrade socket) do.
//!
//! Why not "start a second lb on the port with `SO_REUSEPORT`, then stop the first": each
//! `SO_REUSEPORT` socket has its own accept queue, and closing a socket resets the connections
//! still queued on it (see the test in `listener`). Passing the *same* sockets (new descriptors
//! for the same open files, `SCM_RIGHTS`) keeps every queue alive: the old lb stops accepting,
//! the new one accepts whatever is queued.
//!
//! The exchange, on one unix stream connection:
//!
//! 1. the new lb (`--takeover`) connects and sends `TAKEOVER\n`;
//! 2. the old lb pauses its control plane (so the registry stops changing), then sends one
//!    message with the descriptors `[upgrade socket, admin socket, worker sockets...]` and
//!    a length-prefixed JSON manifest (worker count, registry routes);
//! 3. the new lb restores the registry, starts its workers on the received sockets and,
//!    when every worker accepts, sends `READY <pid>\n`;
//! 4. the old lb stops accepting and drains (in-flight requests finish) and exits 0. If the new
//!    lb fails or goes silent instead, the old one resumes its control plane and goes on.
//!
//! `UPGRADE\n` (sent by `lb upgrade`, or SIGUSR2) asks the running lb to start its successor
//! itself: the same executable path and arguments plus `--takeover`; the answer, once the
//! handover is over, is `DONE <pid>\n` or `FAILED <reason>\n`.

use crate::fd_pass::{recv_fds, send_fds, MAX_FDS};
use crate::service_thread::ServiceThread;
use crate::state::SavedRoute;
use crate::supervisor::Event;
use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tracing::{debug, error, warn};

/// How long either side waits for the other during a handover.
pub(crate) const HANDOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// The manifest's format version.
const VERSION: u32 = 1;
/// Largest manifest accepted (routes of a big registry).
const MAX_MANIFEST: u32 = 64 * 1024 * 1024;

/// What the old lb tells the new one besides the descriptors.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    workers: usize,
    routes: Vec<SavedRoute>,
}

/// A request arriving on the upgrade socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// A new lb wants the sockets and the registry.
    Takeover,
    /// `lb upgrade`: start a successor and answer when it took over.
    Upgrade,
}

/// What a new lb receives from the old one.
#[derive(Debug)]
pub(crate) struct Inherited {
    pub(crate) upgrade: UnixListener,
    pub(crate) admin: TcpListener,
    pub(crate) workers: Vec<TcpListener>,
    pub(crate) routes: Vec<SavedRoute>,
    /// The connection to the old lb, for `READY`.
    pub(crate) stream: UnixStream,
}

/// The upgrade socket of an lb that starts fresh. A live lb already answering there is an
/// error (use `--takeover`); a stale socket file left by a crash is replaced.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, String> {
    let name = path.display();
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "an lb already serves the upgrade socket {name}; start with --takeover to take over from it"
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            format!(
                "cannot remove the stale upgrade socket {name}: {}",
                crate::listener::plain(&e)
            )
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        format!(
            "cannot listen on the upgrade socket {name}: {}",
            crate::listener::plain(&e)
        )
    })?;
    Ok(listener)
}

/// The new lb's side: asks the lb on `path` for its sockets and registry.
pub(crate) fn take_over(path: &Path) -> Result<Inherited, String> {
    let name = path.display();
    let fail = |what: &str, e: io::Error| {
        format!(
            "takeover through {name}: {what}: {}",
            crate::listener::plain(&e)
        )
    };
    let mut stream = UnixStream::connect(path)
        .map_err(|e| fail("no running lb answers on the upgrade socket", e))?;
    stream
        .set_read_timeout(Some(HANDOVER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDOVER_TIMEOUT)))
        .map_err(|e| fail("socket options", e))?;
    stream
        .write_all(b"TAKEOVER\n")
        .map_err(|e| fail("sending the request", e))?;
    let mut fds = recv_fds(&stream).map_err(|e| fail("receiving the sockets", e))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| fail("receiving the manifest", e))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_MANIFEST {
        return Err(format!(
            "takeover through {name}: manifest of {len} bytes is too large"
        ));
    }
    let mut json = vec![0u8; len as usize];
    stream
        .read_exact(&mut json)
        .map_err(|e| fail("receiving the manifest", e))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| format!("takeover through {name}: invalid manifest: {e}"))?;
    if manifest.version != VERSION || fds.len() != manifest.workers + 2 || manifest.workers == 0 {
        return Err(format!(
            "takeover through {name}: the running lb sent {} sockets for {} workers (manifest version {})",
            fds.len(),
            manifest.workers,
            manifest.version
        ));
    }
    let workers: Vec<TcpListener> = fds
        .split_off(2)
        .into_iter()
        .map(TcpListener::from)
        .collect();
    let admin = TcpListener::from(fds.remove(1));
    let upgrade = UnixListener::from(fds.remove(0));
    Ok(Inherited {
        upgrade,
        admin,
        workers,
        routes: manifest.routes,
        stream,
    })
}

/// The new lb's side: every worker accepts; the old lb may stop.
pub(crate) fn confirm(stream: &mut UnixStream) -> io::Result<()> {
    stream.write_all(format!("READY {}\n", std::process::id()).as_bytes())
}

/// The old lb's side: sends the sockets and the registry, then waits for `READY <pid>`;
/// returns the new lb's pid.
pub(crate) fn hand_over(
    stream: &mut UnixStream,
    upgrade: &UnixListener,
    admin: &TcpListener,
    workers: &[TcpListener],
    routes: Vec<SavedRoute>,
) -> io::Result<String> {
    stream.set_read_timeout(Some(HANDOVER_TIMEOUT))?;
    stream.set_write_timeout(Some(HANDOVER_TIMEOUT))?;
    let mut fds = vec![upgrade.as_raw_fd(), admin.as_raw_fd()];
    fds.extend(workers.iter().map(AsRawFd::as_raw_fd));
    if fds.len() > MAX_FDS {
        return Err(io::Error::other(format!(
            "{} workers are more than one handover message can carry",
            workers.len()
        )));
    }
    send_fds(stream, &fds)?;
    let manifest = Manifest {
        version: VERSION,
        workers: workers.len(),
        routes,
    };
    let json = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let len = u32::try_from(json.len()).map_err(io::Error::other)?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&json)?;
    let mut line = String::new();
    BufReader::new(&*stream).read_line(&mut line)?;
    match line.trim_end().strip_prefix("READY ") {
        Some(pid) => Ok(pid.to_string()),
        None => Err(io::Error::other(
            "the new lb stopped before it was ready (see its log)",
        )),
    }
}

/// Answers an `lb upgrade` client.
pub(crate) fn reply(client: &mut UnixStream, line: &str) {
    let _ = client.write_all(format!("{line}\n").as_bytes());
}

/// `lb upgrade`: asks the lb on `path` to start its successor; returns its answer line.
pub fn request_upgrade(path: &Path, timeout: Duration) -> Result<String, String> {
    let name = path.display();
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "no running lb answers on the upgrade socket {name}: {}",
            crate::listener::plain(&e)
        )
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.write_all(b"UPGRADE\n"))
        .map_err(|e| format!("upgrade request to {name}: {}", crate::listener::plain(&e)))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("no answer from {name}: {}", crate::listener::plain(&e)))?;
    let line = line.trim_end();
    match line.strip_prefix("DONE ") {
        Some(pid) => Ok(pid.to_string()),
        None => Err(line
            .strip_prefix("FAILED ")
            .unwrap_or("the running lb closed the connection")
            .to_string()),
    }
}

/// The thread that accepts requests on the upgrade socket and passes them to the supervisor.
#[derive(Debug)]
pub(crate) struct UpgradeThread(ServiceThread);

impl UpgradeThread {
    /// Accepts on `listener` (a duplicate; it is made non-blocking) until stopped.
    pub(crate) fn spawn(listener: UnixListener, events: Sender<Event>) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let thread = ServiceThread::spawn("upgrade", move |mut stopped| async move {
            let listener = match tokio::net::UnixListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    error!(error = %e, "cannot register the upgrade socket");
                    return;
                }
            };
            loop {
                let accepted = tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => match read_request(stream).await {
                        Ok((request, stream)) => {
                            if events.send(Event::Upgrade { request, stream }).is_err() {
                                return;
                            }
                        }
                        Err(e) => debug!(error = %e, "upgrade socket: bad request"),
                    },
                    Err(e) => {
                        warn!(error = %e, "upgrade socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })?;
        Ok(UpgradeThread(thread))
    }

    /// Stops accepting and joins the thread.
    pub(crate) fn stop(&mut self) {
        self.0.stop();
    }
}

/// Reads the one request line (byte by byte: nothing after it may be consumed) and returns a
/// blocking std stream for the supervisor.
async fn read_request(mut stream: tokio::net::UnixStream) -> io::Result<(Request, UnixStream)> {
    let mut line = Vec::new();
    let read = async {
        loop {
            let byte = stream.read_u8().await?;
            if byte == b'\n' {
                return Ok::<_, io::Error>(());
            }
            line.push(byte);
            if line.len() > 64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request line too long",
                ));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let request = match line.as_slice() {
        b"TAKEOVER" => Request::Takeover,
        b"UPGRADE" => Request::Upgrade,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unknown request",
            ))
        }
    };
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok((request, stream))
}
