//! The worker set: every worker thread with its socket, CPU, counters and respawn schedule, and
//! the access log they write to.
//!
//! It owns what only the workers use; the supervisor starts it, passes it the `Exited` / `Ready`
//! events of its workers, and stops it. A worker that dies is respawned on the same CPU and the
//! same socket (a duplicate the set keeps in [`Listeners`]), at once or after its back-off
//! (`respawn`), so the other workers, the round-robin order and the connections queued on the
//! dead worker's socket are unaffected.
//!
//! Invariants: worker `i` always runs on `listeners.http.sockets[i]`, with `stats[i]`; the set
//! never waits for a back-off (the supervisor's loop calls [`WorkerSet::spawn_due`] when
//! [`WorkerSet::next_due`] is reached).

use crate::cpus::cpu_for;
use crate::error::RunError;
use crate::event::Event;
use crate::listeners::Listeners;
use crate::respawn::Respawns;
use crate::worker_thread::{self, Launch};
use crossbeam_channel::Sender;
use lb_admin::{CountsSource, DataPlaneCounts, MetricsSource, PanicHook, WorkerCounts};
use lb_proxy::{WorkerConfig, WorkerStats};
use lb_registry::Registry;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

/// The workers of one lb process.
#[derive(Debug)]
pub(crate) struct WorkerSet {
    /// The supervisor's duplicate of each worker's listening socket.
    listeners: Listeners,
    /// What every worker is started with but its id (`base.id` is ignored).
    base: WorkerConfig,
    registry: Arc<Registry>,
    cpus: Vec<core_affinity::CoreId>,
    stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    events: Sender<Event>,
    /// Each returns how many connections its drain timeout cut.
    threads: Vec<Option<JoinHandle<usize>>>,
    stats: Vec<Arc<WorkerStats>>,
    panics: Arc<Vec<Arc<Notify>>>,
    restarts: Arc<Vec<AtomicU64>>,
    /// When each worker last started and when a dead one is due to be respawned.
    respawns: Respawns,
    /// The thread writing the access log (when on); the workers hold its senders.
    access_log_writer: Option<JoinHandle<()>>,
}

impl WorkerSet {
    /// A set of `count` workers (none started yet) serving `listeners` with `base`'s settings,
    /// pinned to `cpus` (empty: unpinned). With `access_log`, a thread writes their access log.
    pub(crate) fn new(
        count: usize,
        listeners: Listeners,
        base: WorkerConfig,
        registry: Arc<Registry>,
        cpus: Vec<core_affinity::CoreId>,
        events: Sender<Event>,
        access_log: bool,
    ) -> Result<Self, RunError> {
        let (base, access_log_writer) = if access_log {
            let (log, writer) = lb_proxy::access_log();
            let thread = std::thread::Builder::new()
                .name("lb-access-log".to_string())
                .spawn(move || writer.run_tracing())
                .map_err(|e| {
                    RunError::Runtime(format!("cannot start the access log thread: {e}"))
                })?;
            (base.with_access_log(log), Some(thread))
        } else {
            (base, None)
        };
        let (stop, stop_rx) = watch::channel(false);
        Ok(WorkerSet {
            listeners,
            base,
            registry,
            cpus,
            stop,
            stop_rx,
            events,
            threads: (0..count).map(|_| None).collect(),
            stats: (0..count).map(|_| Arc::default()).collect(),
            panics: Arc::new((0..count).map(|_| Arc::default()).collect()),
            restarts: Arc::new((0..count).map(|_| AtomicU64::new(0)).collect()),
            respawns: Respawns::new(count),
            access_log_writer,
        })
    }

    /// Number of workers.
    pub(crate) fn len(&self) -> usize {
        self.stats.len()
    }

    /// The sockets the workers serve (handed over in an upgrade).
    pub(crate) fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// The CPU ids the workers are pinned to (empty: unpinned).
    pub(crate) fn cpu_ids(&self) -> Vec<usize> {
        self.cpus.iter().map(|c| c.id).collect()
    }

    /// Starts worker `id` on (a duplicate of) its socket.
    pub(crate) fn spawn(&mut self, id: usize) -> Result<(), RunError> {
        let sockets = self.listeners.for_worker(id)?;
        let launch = Launch {
            id,
            sockets,
            cpu: cpu_for(id, &self.cpus),
            cfg: WorkerConfig {
                id,
                ..self.base.clone()
            },
            registry: self.registry.clone(),
            stats: self.stats[id].clone(),
            stop: self.stop_rx.clone(),
            events: self.events.clone(),
            panic: self.panics[id].clone(),
        };
        let thread = worker_thread::spawn(launch)
            .map_err(|e| RunError::Runtime(format!("cannot start worker {id}: {e}")))?;
        self.threads[id] = Some(thread);
        self.respawns.started(id, Instant::now());
        Ok(())
    }

    /// Worker `id` exited while lb runs: reap its thread, and start it again (same CPU, same
    /// socket, same counters) now or, when it keeps dying, once its back-off is over.
    pub(crate) fn respawn(&mut self, id: usize, panicked: bool) -> Result<(), RunError> {
        if let Some(thread) = self.threads.get_mut(id).and_then(Option::take) {
            let _ = thread.join();
        }
        // The dead worker's connections went with it.
        if let Some(stats) = self.stats.get(id) {
            stats.reset_active();
        }
        let delay = self.respawns.died(id, Instant::now());
        let what = if panicked {
            "worker panicked"
        } else {
            "worker stopped unexpectedly"
        };
        if delay.is_zero() {
            error!(worker = id, "{what}; respawning it");
            self.spawn(id)
        } else {
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            error!(worker = id, delay_ms, "{what}; respawning it in {delay:?}");
            Ok(())
        }
    }

    /// A respawned worker accepts again: count the restart.
    pub(crate) fn respawned(&self, id: usize) {
        if let Some(n) = self.restarts.get(id) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        info!(worker = id, "respawned worker accepting");
    }

    /// The earliest pending respawn, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.respawns.next_due()
    }

    /// Starts the workers whose back-off ran out by `now`.
    pub(crate) fn spawn_due(&mut self, now: Instant) -> Result<(), RunError> {
        for id in self.respawns.take_due(now) {
            self.spawn(id)?;
        }
        Ok(())
    }

    /// The `/metrics` text of the workers: their counters and restarts.
    pub(crate) fn metrics(&self) -> MetricsSource {
        let stats = self.stats.clone();
        let restarts = self.restarts.clone();
        Arc::new(move |out: &mut String| {
            WorkerStats::render_all(&stats, out);
            out.push_str(
                "# HELP lb_worker_restarts_total Times the supervisor respawned a worker.\n\
                 # TYPE lb_worker_restarts_total counter\n",
            );
            for (worker, n) in restarts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lb_worker_restarts_total{{worker=\"{worker}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        })
    }

    /// The counts `/stats` samples every second: per worker, and request latency by route.
    pub(crate) fn counts(&self) -> CountsSource {
        let stats = self.stats.clone();
        Arc::new(move || DataPlaneCounts {
            workers: stats
                .iter()
                .map(|w| WorkerCounts {
                    accepted: w.accepted_total(),
                    open: w.active_now(),
                    requests: w.requests_total(),
                })
                .collect(),
            latency_bounds: WorkerStats::latency_bounds(),
            route_latency: WorkerStats::route_latency_all(&stats),
        })
    }

    /// The CPU each worker is pinned to (`None` for all when unpinned), by worker id.
    pub(crate) fn worker_cpus(&self) -> Vec<Option<usize>> {
        (0..self.len())
            .map(|id| cpu_for(id, &self.cpus).map(|c| c.id))
            .collect()
    }

    /// `POST /debug/panic?worker=N` (debug builds): makes worker N panic; `false` for no such
    /// worker.
    pub(crate) fn panic_hook(&self) -> PanicHook {
        let panics = self.panics.clone();
        Arc::new(move |worker: usize| match panics.get(worker) {
            Some(trigger) => {
                trigger.notify_one();
                true
            }
            None => false,
        })
    }

    /// Tells every worker to stop accepting and drain, and closes the supervisor's sockets:
    /// new connections are refused from now on.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.send(true);
        self.listeners.close();
    }

    /// Waits for every worker (each bounded by its drain timeout), then for the access log.
    /// Logs the connections the drain timeout cut over all workers, when it cut any.
    pub(crate) fn join(&mut self) {
        let mut cut = 0;
        for thread in self.threads.drain(..).flatten() {
            match thread.join() {
                Ok(n) => cut += n,
                Err(_) => error!("a worker thread panicked during shutdown"),
            }
        }
        if cut > 0 {
            warn!(
                cut,
                "drain timeout reached: {cut} connections cut over all workers"
            );
        }
        if let Some(writer) = self.access_log_writer.take() {
            // The writer ends once the last sender is dropped: the workers' went with them.
            self.base.access_log = None;
            let _ = writer.join();
        }
    }
}
