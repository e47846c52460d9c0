//! Zero-downtime upgrade: the running lb hands its listening sockets and its registry to a new lb
//! over a unix socket (`upgrade_socket`), the way HAProxy (`-x`), Envoy (hot restart) and
//! Pingora (upgrade socket) do.
//!
//! Why not "start a second lb on the port with `SO_REUSEPORT`, then stop the first": each
//! `SO_REUSEPORT` socket has its own accept queue, and closing a socket resets the connections
//! still queued on it (see the test in lb-socket's `listener`). Passing the *same* sockets (new
//! descriptors for the same open files, `SCM_RIGHTS`) keeps every queue alive: the old lb stops
//! accepting, the new one accepts whatever is queued.
//!
//! The exchange, on one unix stream connection:
//!
//! 1. the new lb (`--takeover`) connects and sends `TAKEOVER <v>\n`, `v` being the newest
//!    manifest version it reads (a bare `TAKEOVER` means 1);
//! 2. the old lb pauses its control plane (so the registry stops changing), then sends the
//!    descriptors `[upgrade socket, admin socket, worker sockets...]` (in batches of messages
//!    when there are many workers, see lb-socket's `fd_pass`) and a length-prefixed JSON manifest of the
//!    newest version both read: worker count and routes; version 1 has each route's targets,
//!    version 2 adds the registry's run-time state (round-robin positions, request counts,
//!    health), read at this moment: both are the registry's export ([`lb_registry::Export`]),
//!    version 1 in its [`lb_registry::ListedRoute`] form; version 3 adds the TLS worker
//!    sockets (`tls_workers` of them, after the clear-text ones);
//! 3. the new lb restores the registry, starts its workers on the received sockets and,
//!    when every worker accepts, sends `READY <pid>\n`;
//! 4. the old lb stops accepting and drains (in-flight requests finish) and exits 0. If the new
//!    lb fails or goes silent instead, the old one resumes its control plane and goes on.
//!
//! Both directions work with lb versions older than manifest version 2: such an old lb closes
//! the connection on `TAKEOVER 3` without sending anything, and the new lb asks again with a
//! bare `TAKEOVER` (routes only, positions and health start fresh); such a new lb asks with a
//! bare `TAKEOVER` and gets version 1. An lb of version 2 answers `TAKEOVER 3` with version 2
//! (no TLS sockets: the new lb binds its own), and is answered version 2 when it asks for it.
//!
//! `UPGRADE\n` (sent by `lb upgrade`, or SIGUSR2) asks the running lb to start its successor
//! itself: the same executable path and arguments plus `--takeover`; the answer, once the
//! handover is over, is `DONE <pid>\n` or `FAILED <reason>\n`.

use crate::event::{Event, UpgradeRequest};
use crate::prober::ProbePlan;
use crate::service_thread::ServiceThread;
use crossbeam_channel::Sender;
use lb_config::LiveConfig;
use lb_registry::{Export, ExportedRoute, Import, ListedRoute, Registry, Scope};
use lb_socket::plain;
use lb_socket::{recv_fds, send_fds};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;
use tracing::{debug, error, warn};

/// How long either side waits for the other during a handover.
pub(crate) const HANDOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// The newest manifest version this lb reads and writes (1: routes; 2: with their run-time
/// state; 3: and the TLS sockets).
const VERSION: u32 = 3;
/// Largest manifest accepted (routes of a big registry).
const MAX_MANIFEST: u32 = 64 * 1024 * 1024;

/// What the old lb tells the new one besides the descriptors; `R` is [`ListedRoute`] in version
/// 1 and [`ExportedRoute`] (with run-time state) in version 2.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest<R> {
    version: u32,
    workers: usize,
    /// TLS sockets sent after the worker sockets (version 3; absent, and none sent, before).
    #[serde(default, skip_serializing_if = "is_zero")]
    tls_workers: usize,
    routes: Vec<R>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A manifest's version, read first: it says how to read the rest.
#[derive(Debug, Deserialize)]
struct ManifestVersion {
    version: u32,
}

/// What a new lb receives from the old one.
#[derive(Debug)]
pub(crate) struct Inherited {
    pub(crate) upgrade: UnixListener,
    pub(crate) admin: TcpListener,
    pub(crate) workers: Vec<TcpListener>,
    /// The TLS worker sockets (none from an lb without TLS or before manifest version 3).
    pub(crate) tls: Vec<TcpListener>,
    /// The registry as the old lb sent it.
    pub(crate) registry: Export,
    /// The connection to the old lb, for `READY`.
    pub(crate) stream: UnixStream,
}

impl Inherited {
    /// Installs the inherited registry into `registry` (a new one, before the workers start).
    /// Health from active checks is kept only on the routes that `config` probes: elsewhere
    /// nothing would ever probe a target back in.
    pub(crate) fn restore_into(
        &mut self,
        registry: &Registry,
        config: &LiveConfig,
    ) -> Result<(), String> {
        let plan = ProbePlan::from_config(config);
        let carried = Import {
            export: std::mem::take(&mut self.registry),
            now: Instant::now(),
            wall: SystemTime::now(),
            probed: &|prefix| plan.path_for(prefix).is_some(),
        };
        registry.apply(&carried).map_err(|e| e.to_string())
    }
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
                plain(&e)
            )
        })?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on the upgrade socket {name}: {}", plain(&e)))?;
    Ok(listener)
}

/// The new lb's side: asks the lb on `path` for its sockets and registry.
pub(crate) fn take_over(path: &Path) -> Result<Inherited, String> {
    match exchange(path, VERSION)? {
        Some(inherited) => Ok(inherited),
        None => {
            warn!(
                "the running lb predates manifest version 2: round-robin positions, \
                 request counts and health start fresh"
            );
            exchange(path, 1)?.ok_or_else(|| {
                format!(
                    "takeover through {}: the running lb closed the connection without sending its sockets (see its log)",
                    path.display()
                )
            })
        }
    }
}

/// One takeover request asking for a manifest of at most `version`. `Ok(None)`: the old lb
/// closed the connection before sending anything (an lb that does not know the request).
fn exchange(path: &Path, version: u32) -> Result<Option<Inherited>, String> {
    let name = path.display();
    let fail = |what: &str, e: io::Error| format!("takeover through {name}: {what}: {}", plain(&e));
    let mut stream = UnixStream::connect(path)
        .map_err(|e| fail("no running lb answers on the upgrade socket", e))?;
    stream
        .set_read_timeout(Some(HANDOVER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDOVER_TIMEOUT)))
        .map_err(|e| fail("socket options", e))?;
    let request = if version == 1 {
        "TAKEOVER\n".to_string()
    } else {
        format!("TAKEOVER {version}\n")
    };
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("sending the request", e))?;
    let mut fds = match recv_fds(&stream) {
        Ok(fds) => fds,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(fail("receiving the sockets", e)),
    };
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
    let invalid = |e: serde_json::Error| format!("takeover through {name}: invalid manifest: {e}");
    let sent = serde_json::from_slice::<ManifestVersion>(&json)
        .map_err(invalid)?
        .version;
    let (workers, tls_workers, registry) = match sent {
        1 => {
            let m: Manifest<ListedRoute> = serde_json::from_slice(&json).map_err(invalid)?;
            let routes = m.routes.into_iter().map(ExportedRoute::from).collect();
            (m.workers, 0, Export { routes })
        }
        2 | 3 => {
            let m: Manifest<ExportedRoute> = serde_json::from_slice(&json).map_err(invalid)?;
            (m.workers, m.tls_workers, Export { routes: m.routes })
        }
        _ => {
            return Err(format!(
                "takeover through {name}: manifest version {sent} is not supported (this lb reads 1 to {VERSION})"
            ))
        }
    };
    if fds.len() != workers + tls_workers + 2 || workers == 0 {
        return Err(format!(
            "takeover through {name}: the running lb sent {} sockets for {workers} workers \
             and {tls_workers} TLS sockets",
            fds.len(),
        ));
    }
    let tls: Vec<TcpListener> = fds
        .split_off(2 + workers)
        .into_iter()
        .map(TcpListener::from)
        .collect();
    let workers: Vec<TcpListener> = fds
        .split_off(2)
        .into_iter()
        .map(TcpListener::from)
        .collect();
    let admin = TcpListener::from(fds.remove(1));
    let upgrade = UnixListener::from(fds.remove(0));
    Ok(Some(Inherited {
        upgrade,
        admin,
        workers,
        tls,
        registry,
        stream,
    }))
}

/// The new lb's side: every worker accepts; the old lb may stop.
pub(crate) fn confirm(stream: &mut UnixStream) -> io::Result<()> {
    stream.write_all(format!("READY {}\n", std::process::id()).as_bytes())
}

/// The sockets one lb hands to its successor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandedSockets<'a> {
    pub(crate) upgrade: &'a UnixListener,
    pub(crate) admin: &'a TcpListener,
    pub(crate) workers: &'a [TcpListener],
    /// TLS worker sockets; sent from manifest version 3 on only.
    pub(crate) tls: &'a [TcpListener],
}

/// The old lb's side: sends the sockets and the registry in a manifest of version `version`
/// (at most [`VERSION`]), then waits for `READY <pid>`; returns the new lb's pid.
pub(crate) fn hand_over(
    stream: &mut UnixStream,
    sockets: HandedSockets<'_>,
    registry: &Registry,
    version: u32,
) -> io::Result<String> {
    let HandedSockets {
        upgrade,
        admin,
        workers,
        tls,
    } = sockets;
    stream.set_read_timeout(Some(HANDOVER_TIMEOUT))?;
    stream.set_write_timeout(Some(HANDOVER_TIMEOUT))?;
    // A successor reading version 2 or less knows no TLS sockets: it binds its own, if any.
    let tls = if version >= 3 { tls } else { &[] };
    let mut fds = vec![upgrade.as_raw_fd(), admin.as_raw_fd()];
    fds.extend(workers.iter().map(AsRawFd::as_raw_fd));
    fds.extend(tls.iter().map(AsRawFd::as_raw_fd));
    send_fds(stream, &fds)?;
    // Read as late as possible: what the workers route from here on is not carried over.
    let export = registry.export(Scope::Carried(Instant::now()));
    let json = if version < 2 {
        serde_json::to_vec(&Manifest {
            version: 1,
            workers: workers.len(),
            tls_workers: 0,
            routes: export.routes.iter().map(ListedRoute::from).collect(),
        })
    } else {
        serde_json::to_vec(&Manifest {
            version: version.min(VERSION),
            workers: workers.len(),
            tls_workers: tls.len(),
            routes: export.routes,
        })
    }
    .map_err(io::Error::other)?;
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
            plain(&e)
        )
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.write_all(b"UPGRADE\n"))
        .map_err(|e| format!("upgrade request to {name}: {}", plain(&e)))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("no answer from {name}: {}", plain(&e)))?;
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

/// `TAKEOVER`, `TAKEOVER <version>` or `UPGRADE`; a takeover asking for a newer manifest than
/// this lb writes gets this lb's newest.
fn parse_request(line: &[u8]) -> Option<UpgradeRequest> {
    match line {
        b"TAKEOVER" => Some(UpgradeRequest::Takeover(1)),
        b"UPGRADE" => Some(UpgradeRequest::Upgrade),
        _ => {
            let version: u32 = std::str::from_utf8(line.strip_prefix(b"TAKEOVER ")?)
                .ok()?
                .parse()
                .ok()?;
            (version >= 1).then_some(UpgradeRequest::Takeover(version.min(VERSION)))
        }
    }
}

/// Reads the one request line (byte by byte: nothing after it may be consumed) and returns a
/// blocking std stream for the supervisor.
async fn read_request(
    mut stream: tokio::net::UnixStream,
) -> io::Result<(UpgradeRequest, UnixStream)> {
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
    let request = parse_request(&line)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown request"))?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok((request, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::thread::JoinHandle;

    fn socket_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lb-upgrade-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("upgrade.sock")
    }

    fn target(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// A running lb on `path` with two workers, whose route "/" has made four picks over three
    /// targets. It takes one connection per entry of `answers`: `true` hands over as lb does,
    /// `false` closes without a word (an lb that does not know the request line). Returns the
    /// request lines it read and its worker addresses, then its TLS ones (sent before it starts).
    fn old_lb(path: &Path, answers: Vec<bool>) -> (JoinHandle<Vec<String>>, Vec<SocketAddr>) {
        let upgrade = UnixListener::bind(path).unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").unwrap();
        let workers: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let tls: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs = workers
            .iter()
            .chain(&tls)
            .map(|w| w.local_addr().unwrap())
            .collect();
        let registry = Registry::new(2);
        for port in [1, 2, 3] {
            registry.register("/", target(port)).unwrap();
        }
        let route = registry.snapshot();
        for _ in 0..4 {
            route.lookup("/").unwrap().route.pick();
        }
        let thread = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for answer in answers {
                let (mut stream, _) = upgrade.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                let request = parse_request(line.as_bytes());
                lines.push(line);
                if let (true, Some(UpgradeRequest::Takeover(version))) = (answer, request) {
                    let sockets = HandedSockets {
                        upgrade: &upgrade,
                        admin: &admin,
                        workers: &workers,
                        tls: &tls,
                    };
                    hand_over(&mut stream, sockets, &registry, version).unwrap();
                }
            }
            lines
        });
        (thread, addrs)
    }

    /// Takes over from the lb on `path`: the worker sockets and a registry restored from it.
    fn take(path: &Path) -> (Inherited, Registry) {
        let mut inherited = take_over(path).unwrap();
        confirm(&mut inherited.stream).unwrap();
        let registry = Registry::new(2);
        inherited
            .restore_into(&registry, &LiveConfig::default())
            .unwrap();
        (inherited, registry)
    }

    fn next_pick(registry: &Registry) -> SocketAddr {
        let snapshot = registry.snapshot();
        let route = snapshot.lookup("/").unwrap().route;
        route.pick().unwrap().addr()
    }

    #[test]
    fn a_takeover_carries_the_sockets_and_the_round_robin_position() {
        let path = socket_path("carry");
        let (old, addrs) = old_lb(&path, vec![true]);
        let (inherited, registry) = take(&path);
        assert_eq!(old.join().unwrap(), ["TAKEOVER 3"]);
        let have: Vec<_> = inherited
            .workers
            .iter()
            .chain(&inherited.tls)
            .map(|w| w.local_addr().unwrap())
            .collect();
        assert_eq!(have, addrs);
        assert_eq!(next_pick(&registry), target(2), "pick 4 of three targets");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_lb_without_manifest_version_2_is_asked_again_for_version_1() {
        let path = socket_path("fallback");
        let (old, addrs) = old_lb(&path, vec![false, true]);
        let (inherited, registry) = take(&path);
        assert_eq!(old.join().unwrap(), ["TAKEOVER 3", "TAKEOVER"]);
        assert_eq!(inherited.workers.len(), 2);
        assert!(inherited.tls.is_empty(), "version 1 carries no TLS sockets");
        assert_eq!(addrs.len(), 4);
        let routes = registry.routes();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].targets, [target(1), target(2), target(3)]);
        assert_eq!(
            next_pick(&registry),
            target(1),
            "version 1: the order starts over"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request(b"TAKEOVER"),
            Some(UpgradeRequest::Takeover(1))
        );
        assert_eq!(
            parse_request(b"TAKEOVER 2"),
            Some(UpgradeRequest::Takeover(2))
        );
        assert_eq!(
            parse_request(b"TAKEOVER 3"),
            Some(UpgradeRequest::Takeover(3))
        );
        assert_eq!(
            parse_request(b"TAKEOVER 7"),
            Some(UpgradeRequest::Takeover(VERSION)),
            "a newer lb gets this lb's newest"
        );
        assert_eq!(parse_request(b"UPGRADE"), Some(UpgradeRequest::Upgrade));
        for bad in [
            &b"TAKEOVER 0"[..],
            b"TAKEOVER x",
            b"TAKEOVER ",
            b"takeover",
            b"",
        ] {
            assert_eq!(
                parse_request(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
