//! One worker thread: pinned to its CPU, its own current-thread tokio runtime, serving one
//! `SO_REUSEPORT` listening socket until the worker set (`workers`) says stop.
//!
//! The socket is bound at start and the worker set keeps a duplicate of it: when a worker dies (a
//! panic), its socket stays open, connections keep queueing in its accept queue, and the
//! respawned worker serves them from the same socket; nothing queued is lost. The same
//! duplicates are what a zero-downtime upgrade hands to the next process.
//!
//! However the thread ends (return or panic), it reports [`Event::Exited`] from a drop guard,
//! so the supervisor always learns about it.

use crate::event::Event;
use crate::listeners::WorkerSockets;
use core_affinity::CoreId;
use crossbeam_channel::Sender;
use lb_proxy::{WorkerConfig, WorkerListeners, WorkerStats};
use lb_registry::Registry;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{watch, Notify};
use tracing::warn;

/// Everything a worker thread is started with.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) id: usize,
    pub(crate) sockets: WorkerSockets,
    pub(crate) cpu: Option<CoreId>,
    pub(crate) cfg: WorkerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) events: Sender<Event>,
    /// Debug builds: notified by `POST /debug/panic?worker=N`, makes the worker panic.
    pub(crate) panic: Arc<Notify>,
}

/// Sends [`Event::Exited`] when the worker thread ends, panicking or not.
struct ExitNotice {
    worker: usize,
    events: Sender<Event>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Exited {
            worker: self.worker,
            panicked: std::thread::panicking(),
        });
    }
}

/// Starts the worker thread.
/// The thread returns how many connections its drain timeout cut.
pub(crate) fn spawn(launch: Launch) -> std::io::Result<JoinHandle<usize>> {
    let Launch {
        id,
        sockets,
        cpu,
        cfg,
        registry,
        stats,
        mut stop,
        events,
        panic,
    } = launch;
    std::thread::Builder::new()
        .name(format!("lb-worker-{id}"))
        .spawn(move || {
            let _notice = ExitNotice {
                worker: id,
                events: events.clone(),
            };
            let pinned = match cpu {
                Some(core) if core_affinity::set_for_current(core) => true,
                Some(core) => {
                    warn!(
                        worker = id,
                        cpu = core.id,
                        "could not pin worker; running unpinned"
                    );
                    false
                }
                None => false,
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = events.send(Event::Failed {
                        worker: id,
                        error: e.to_string(),
                    });
                    return 0;
                }
            };
            runtime.block_on(async {
                let listeners = match listeners(sockets) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = events.send(Event::Failed {
                            worker: id,
                            error: lb_socket::plain(&e),
                        });
                        return 0;
                    }
                };
                let _ = events.send(Event::Ready { worker: id, pinned });
                let shutdown = async move {
                    #[cfg(debug_assertions)]
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => {}
                        () = panic.notified() => {
                            panic!("worker {id}: panic injected through POST /debug/panic")
                        }
                    }
                    #[cfg(not(debug_assertions))]
                    {
                        let _ = panic;
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    }
                };
                lb_proxy::serve(listeners, registry, cfg, stats, shutdown).await
            })
        })
}

/// The worker's sockets, registered with its own runtime.
fn listeners(sockets: WorkerSockets) -> std::io::Result<WorkerListeners> {
    let http = tokio::net::TcpListener::from_std(sockets.http)?;
    let tls = sockets
        .tls
        .map(tokio::net::TcpListener::from_std)
        .transpose()?;
    Ok(WorkerListeners { http, tls })
}
