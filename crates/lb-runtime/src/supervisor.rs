//! Starting, watching and stopping the workers, the admin thread and the health thread.
//!
//! [`start`]: validate the configuration; build the registry (state file first, then the
//! configured routes); bind the admin socket and start the control plane; start the health
//! thread; bind one `SO_REUSEPORT` socket per worker (the first one resolves port 0, the others
//! share its port) and keep a duplicate of each; start the workers one by one, each reporting
//! ready. [`run`] then prints the ready line and handles events: SIGINT/SIGTERM drain and stop,
//! SIGHUP reloads the config file, and a worker that exits (a panic) is respawned on the same
//! CPU and the same socket (after a growing delay when it keeps panicking: `respawn`), so the
//! other workers, the round-robin order and even the connections queued on the dead worker's
//! socket are unaffected.

use crate::admin::AdminThread;
use crate::cpus::{allowed_cpus, cpu_for, worker_count};
use crate::handover::Origin;
use crate::health::{self, ProbePlan, SharedPlan};
use crate::listener::{bind_reuseport, ensure_free, plain};
use crate::reload::{reload, ConfigSource};
use crate::respawn::Respawns;
use crate::sockopt::set_defer_accept;
use crate::state::StateFile;
use crate::upgrade::{self, Inherited, Request, UpgradeThread};
use crate::worker::{self, Launch};
use crossbeam_channel::{unbounded, Receiver, Sender};
use lb_admin::ControlPlane;
use lb_config::{Config, ConfigError, StaticRoute};
use lb_proxy::{AccessLog, Tuning, WorkerConfig, WorkerStats};
use lb_registry::{HealthPolicy, Registry, RouteOptions};
use parking_lot::RwLock;
use std::fmt;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{watch, Notify};
use tracing::{debug, error, info, warn};

/// Why lb could not start or stopped with a failure.
#[derive(Debug)]
pub enum RunError {
    /// Bad configuration: exit code 2.
    Config(String),
    /// A runtime failure (bind, thread, signal set-up): exit code 1.
    Runtime(String),
}

impl RunError {
    /// The process exit code for this error (clap's convention: 2 for bad arguments).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 2,
            RunError::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(m) | RunError::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> Self {
        RunError::Config(e.0)
    }
}

/// What workers (and the signal thread) tell the supervisor.
#[derive(Debug)]
pub(crate) enum Event {
    Ready {
        worker: usize,
        pinned: bool,
    },
    Failed {
        worker: usize,
        error: String,
    },
    Exited {
        worker: usize,
        panicked: bool,
    },
    Signal(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
    /// A request on the upgrade socket.
    Upgrade {
        request: Request,
        stream: UnixStream,
    },
    /// SIGUSR2: start a successor that takes over (as `lb upgrade`).
    UpgradeSignal,
    /// The successor process exited before it took over.
    SuccessorExited(String),
}

/// A running lb: its addresses, its registry, its threads and sockets, and the way to stop it.
#[derive(Debug)]
pub struct Handle {
    listen: SocketAddr,
    admin: SocketAddr,
    workers: usize,
    registry: Arc<Registry>,
    /// The configuration in force (routes and health follow reloads).
    pub(crate) config: Config,
    /// The state file, when there is one.
    pub(crate) state: Option<Arc<StateFile>>,
    /// What the health thread probes (replaced on a reload).
    pub(crate) probe_plan: SharedPlan,
    stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    pub(crate) events: Receiver<Event>,
    pub(crate) events_tx: Sender<Event>,
    /// The supervisor's duplicate of each worker's listening socket (see `worker`).
    pub(crate) sockets: Vec<TcpListener>,
    /// The supervisor's duplicate of the admin socket.
    pub(crate) admin_socket: Option<TcpListener>,
    pub(crate) admin_thread: Option<AdminThread>,
    /// The control plane, to start it again after a handover that failed.
    pub(crate) plane: ControlPlane,
    /// The supervisor's duplicate of the upgrade socket, and the thread accepting on it.
    pub(crate) upgrade_socket: Option<UnixListener>,
    pub(crate) upgrade_thread: Option<UpgradeThread>,
    /// An upgrade in progress: the `lb upgrade` client to answer, if any.
    pub(crate) pending_upgrade: Option<Option<UnixStream>>,
    /// How this process was started (for the successor).
    pub(crate) origin: Origin,
    health_thread: Option<JoinHandle<()>>,
    /// Timeouts and body limit shared by the workers; a reload updates them in place.
    pub(crate) tuning: Arc<Tuning>,
    /// The workers' end of the access log (when on) and the thread writing it.
    access_log: Option<(AccessLog, JoinHandle<()>)>,
    pub(crate) worker_threads: Vec<Option<JoinHandle<()>>>,
    cpus: Vec<core_affinity::CoreId>,
    pub(crate) stats: Vec<Arc<WorkerStats>>,
    panics: Arc<Vec<Arc<Notify>>>,
    restarts: Arc<Vec<AtomicU64>>,
    /// When each worker last started and when a dead one is due to be respawned.
    pub(crate) respawns: Respawns,
}

impl Handle {
    /// The data-plane address every worker accepts on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The control-plane address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The registry the workers route with.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The ready line of the SPEC.
    pub fn ready_line(&self) -> String {
        format!(
            "listening on {} (admin {}, {} workers)",
            self.listen, self.admin, self.workers
        )
    }

    /// Stops accepting, drains every worker (each bounded by the drain timeout) and joins all
    /// threads.
    pub fn shutdown(mut self) {
        if let Some(mut upgrade) = self.upgrade_thread.take() {
            upgrade.stop();
        }
        let _ = self.stop.send(true);
        // With the workers' own descriptors, these close the sockets: new connections are
        // refused from now on.
        self.sockets.clear();
        if let Some(mut admin) = self.admin_thread.take() {
            admin.stop();
        }
        self.admin_socket = None;
        for thread in self.worker_threads.drain(..).flatten() {
            if thread.join().is_err() {
                error!("a worker thread panicked during shutdown");
            }
        }
        if let Some(thread) = self.health_thread.take() {
            let _ = thread.join();
        }
        if let Some((log, writer)) = self.access_log.take() {
            // The writer ends once the last sender (the workers' are gone) is dropped.
            drop(log);
            let _ = writer.join();
        }
    }

    /// The settings worker `id` starts with, on `listener`.
    fn launch(&self, id: usize, listener: TcpListener) -> Launch {
        Launch {
            id,
            listener,
            cpu: cpu_for(id, &self.cpus),
            cfg: {
                let cfg = WorkerConfig::new(id, &self.config, self.tuning.clone());
                match &self.access_log {
                    Some((log, _)) => cfg.with_access_log(log.clone()),
                    None => cfg,
                }
            },
            registry: self.registry.clone(),
            stats: self.stats[id].clone(),
            stop: self.stop_rx.clone(),
            events: self.events_tx.clone(),
            panic: self.panics[id].clone(),
        }
    }

    /// Starts worker `id` on (a duplicate of) its socket.
    pub(crate) fn spawn_worker(&mut self, id: usize) -> Result<(), RunError> {
        let listener = self.sockets[id]
            .try_clone()
            .map_err(|e| RunError::Runtime(format!("worker {id} socket: {}", plain(&e))))?;
        let thread = worker::spawn(self.launch(id, listener))
            .map_err(|e| RunError::Runtime(format!("cannot start worker {id}: {e}")))?;
        self.worker_threads[id] = Some(thread);
        self.respawns.started(id, Instant::now());
        Ok(())
    }
}

/// Starts lb and returns once every worker is accepting.
pub fn start(config: Config) -> Result<Handle, RunError> {
    config.validate()?;
    let mut inherited = match (&config.upgrade_socket, config.takeover) {
        (Some(path), true) => Some(upgrade::take_over(path).map_err(RunError::Runtime)?),
        _ => None,
    };
    let mut workers = worker_count(config.workers);
    if let Some(inherited) = &inherited {
        if inherited.workers.len() > workers {
            // Every inherited socket must keep being served: closing one would reset its queue.
            warn!(
                inherited = inherited.workers.len(),
                configured = workers,
                "running one worker per inherited socket"
            );
            workers = inherited.workers.len();
        }
    }
    let registry = Arc::new(Registry::with_policy(
        workers,
        health_policy(&config.health),
    ));
    // The state file first, then the configured routes on top of it.
    let state = config
        .state
        .clone()
        .map(|path| Arc::new(StateFile::new(path)));
    if let Some(inherited) = &mut inherited {
        // The running lb's registry is the newest there is; the state file holds the same.
        inherited
            .restore_into(&registry, &config)
            .map_err(|e| RunError::Runtime(format!("takeover: {e}")))?;
        info!(
            targets = registry.targets().len(),
            "registry taken over from the running lb"
        );
    } else if let Some(state) = &state {
        if state.load_into(&registry).map_err(RunError::Runtime)? {
            info!(
                targets = registry.targets().len(),
                "registry loaded from the state file"
            );
        }
    }
    crate::reload::configure(&registry, &config)?;
    // Saved once at start: a state file that cannot be written stops lb now, not at the first
    // registration.
    if let Some(state) = &state {
        state.save(&registry).map_err(RunError::Runtime)?;
    }

    let (stop, stop_rx) = watch::channel(false);
    let (events_tx, events) = unbounded();
    let stats: Vec<Arc<WorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    let restarts: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
    let panics: Arc<Vec<Arc<Notify>>> = Arc::new((0..workers).map(|_| Arc::default()).collect());

    let admin_socket = match &mut inherited {
        Some(inherited) => inherited
            .admin
            .try_clone()
            .map_err(|e| RunError::Runtime(format!("inherited admin socket: {}", plain(&e))))?,
        None => TcpListener::bind(config.admin)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                RunError::Runtime(format!(
                    "cannot listen on {} (admin): {}",
                    config.admin,
                    plain(&e)
                ))
            })?,
    };
    let upgrade_socket =
        match (&inherited, &config.upgrade_socket) {
            (Some(inherited), _) => Some(inherited.upgrade.try_clone().map_err(|e| {
                RunError::Runtime(format!("inherited upgrade socket: {}", plain(&e)))
            })?),
            (None, Some(path)) => Some(upgrade::bind(path).map_err(RunError::Runtime)?),
            (None, None) => None,
        };
    let admin = admin_socket
        .local_addr()
        .map_err(|e| RunError::Runtime(format!("admin listener: {}", plain(&e))))?;
    let plane = control_plane(
        &config,
        &registry,
        &stats,
        &restarts,
        &panics,
        state.clone(),
    );
    let admin_thread = admin_socket
        .try_clone()
        .and_then(|l| AdminThread::spawn(l, plane.clone()))
        .map_err(|e| RunError::Runtime(format!("cannot start the admin thread: {e}")))?;

    let probe_plan: SharedPlan = Arc::new(RwLock::new(ProbePlan::from_config(&config)));
    let health_thread = health::spawn(registry.clone(), probe_plan.clone(), stop_rx.clone())
        .map_err(|e| RunError::Runtime(format!("cannot start the health thread: {e}")))?;

    let access_log = if config.access_log {
        let (log, writer) = lb_proxy::access_log();
        let thread = std::thread::Builder::new()
            .name("lb-access-log".to_string())
            .spawn(move || writer.run_tracing())
            .map_err(|e| RunError::Runtime(format!("cannot start the access log thread: {e}")))?;
        Some((log, thread))
    } else {
        None
    };

    let cpus = if config.pin {
        allowed_cpus()
    } else {
        Vec::new()
    };
    let (sockets, listen) = match &inherited {
        Some(inherited) => inherited_workers(inherited, workers, config.backlog)?,
        None => bind_workers(config.listen, workers, config.backlog)?,
    };
    for socket in &sockets {
        set_defer_accept(socket, config.defer_accept)
            .map_err(|e| RunError::Runtime(format!("cannot defer accepts: {}", plain(&e))))?;
    }

    let mut handle = Handle {
        listen,
        admin,
        workers,
        registry,
        config: config.clone(),
        state,
        probe_plan,
        stop,
        stop_rx,
        events,
        events_tx,
        sockets,
        admin_socket: Some(admin_socket),
        admin_thread: Some(admin_thread),
        plane,
        upgrade_socket,
        upgrade_thread: None,
        pending_upgrade: None,
        origin: Origin::current(),
        health_thread: Some(health_thread),
        tuning: Arc::new(Tuning::new(&config)),
        access_log,
        worker_threads: (0..workers).map(|_| None).collect(),
        cpus,
        stats,
        panics,
        restarts,
        respawns: Respawns::new(workers),
    };
    let mut pinned_all = config.pin;
    for id in 0..workers {
        if let Err(e) = handle.spawn_worker(id) {
            handle.shutdown();
            return Err(e);
        }
        match handle.events.recv() {
            Ok(Event::Ready { worker, pinned }) => {
                debug!(worker, pinned, "worker accepting");
                pinned_all &= pinned;
            }
            Ok(Event::Failed { worker, error }) => {
                handle.shutdown();
                return Err(RunError::Runtime(format!(
                    "worker {worker} cannot listen on {}: {error}",
                    config.listen
                )));
            }
            other => {
                handle.shutdown();
                return Err(RunError::Runtime(format!(
                    "worker {id} stopped during start-up ({other:?})"
                )));
            }
        }
    }
    let cpu_ids: Vec<usize> = handle.cpus.iter().map(|c| c.id).collect();
    info!(workers, cpus = ?cpu_ids, pinned = pinned_all, "workers started");
    if let Some(mut inherited) = inherited {
        // Every worker accepts on the inherited sockets: the old lb may stop now.
        if let Err(e) = upgrade::confirm(&mut inherited.stream) {
            warn!(error = %e, "could not tell the old lb that the takeover is complete");
        }
        info!("took over from the running lb; it now drains and exits");
    }
    if let Some(socket) = &handle.upgrade_socket {
        let thread = socket
            .try_clone()
            .and_then(|s| UpgradeThread::spawn(s, handle.events_tx.clone()));
        match thread {
            Ok(thread) => handle.upgrade_thread = Some(thread),
            Err(e) => {
                handle.shutdown();
                return Err(RunError::Runtime(format!(
                    "cannot serve the upgrade socket: {e}"
                )));
            }
        }
    }
    Ok(handle)
}

/// The inherited worker sockets, plus new ones on the same port when more workers are wanted.
fn inherited_workers(
    inherited: &Inherited,
    workers: usize,
    backlog: u32,
) -> Result<(Vec<TcpListener>, SocketAddr), RunError> {
    let fail =
        |e: std::io::Error| RunError::Runtime(format!("inherited worker socket: {}", plain(&e)));
    let mut sockets = inherited
        .workers
        .iter()
        .map(TcpListener::try_clone)
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let addr = sockets[0].local_addr().map_err(fail)?;
    while sockets.len() < workers {
        sockets.push(bind_reuseport(addr, backlog).map_err(fail)?);
    }
    Ok((sockets, addr))
}

/// One `SO_REUSEPORT` socket per worker on `listen`; the first resolves port 0 for the others.
fn bind_workers(
    listen: SocketAddr,
    workers: usize,
    backlog: u32,
) -> Result<(Vec<TcpListener>, SocketAddr), RunError> {
    let fail =
        |e: std::io::Error| RunError::Runtime(format!("cannot listen on {listen}: {}", plain(&e)));
    ensure_free(listen).map_err(fail)?;
    let first = bind_reuseport(listen, backlog).map_err(fail)?;
    let addr = first.local_addr().map_err(fail)?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(bind_reuseport(addr, backlog).map_err(fail)?);
    }
    Ok((sockets, addr))
}

/// The control plane: registry, metrics (per-worker counters and restarts), state file, token,
/// and the debug panic hook.
fn control_plane(
    config: &Config,
    registry: &Arc<Registry>,
    stats: &[Arc<WorkerStats>],
    restarts: &Arc<Vec<AtomicU64>>,
    panics: &Arc<Vec<Arc<Notify>>>,
    state: Option<Arc<StateFile>>,
) -> ControlPlane {
    let stats = stats.to_vec();
    let restarts = restarts.clone();
    let metrics: lb_admin::MetricsSource = Arc::new(move |out: &mut String| {
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
    });
    let mut plane = ControlPlane::new(registry.clone(), metrics);
    plane.persist = state.map(|state| {
        let hook: lb_admin::PersistHook =
            Arc::new(move |export: &lb_registry::Export| state.save_export(export));
        hook
    });
    plane.token = config.admin_token.as_deref().map(Arc::from);
    let panics = panics.clone();
    plane.panic_hook = Some(Arc::new(move |worker: usize| match panics.get(worker) {
        Some(trigger) => {
            trigger.notify_one();
            true
        }
        None => false,
    }));
    plane
}

/// Runs lb until SIGINT or SIGTERM: start, print the ready line, wait, drain, return. SIGHUP is
/// logged and ignored (there is no file to reload).
pub fn run(config: Config) -> Result<(), RunError> {
    run_with(config, None)
}

/// Loads the configuration from `source` and runs lb like [`run`]; SIGHUP reloads `source`.
pub fn run_from(source: ConfigSource) -> Result<(), RunError> {
    let config = source.load()?;
    run_with(config, Some(source))
}

fn run_with(config: Config, source: Option<ConfigSource>) -> Result<(), RunError> {
    let mut handle = start(config)?;
    crate::signals::install(handle.events_tx.clone())?;
    println!("{}", handle.ready_line());
    let _ = std::io::stdout().flush();
    crate::notify::ready();
    let result = loop {
        match handle.next_event() {
            Ok(Event::Signal(name)) => {
                info!(signal = name, "shutting down: draining in-flight requests");
                crate::notify::stopping();
                break Ok(());
            }
            Ok(Event::Reload) => match &source {
                Some(source) if source.file.is_some() => reload(&mut handle, source),
                _ => warn!("SIGHUP ignored: lb was started without --config"),
            },
            Ok(Event::Exited { worker, panicked }) => {
                if let Err(e) = handle.respawn(worker, panicked) {
                    break Err(e);
                }
            }
            Ok(Event::Ready { worker, .. }) => {
                if let Some(n) = handle.restarts.get(worker) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                info!(worker, "respawned worker accepting");
            }
            Ok(Event::Failed { worker, error }) => {
                break Err(RunError::Runtime(format!(
                    "respawned worker {worker} failed: {error}"
                )));
            }
            Ok(Event::Upgrade {
                request: Request::Takeover(version),
                stream,
            }) => {
                if handle.hand_over(stream, version) {
                    info!("handed over to the new lb: draining in-flight requests");
                    break Ok(());
                }
            }
            Ok(Event::Upgrade {
                request: Request::Upgrade,
                stream,
            }) => handle.start_successor(Some(stream)),
            Ok(Event::UpgradeSignal) => handle.start_successor(None),
            Ok(Event::SuccessorExited(why)) => handle.successor_failed(&why),
            Err(e) => break Err(e),
        }
    };
    handle.shutdown();
    info!("stopped");
    result
}

/// The registry's health thresholds from the configuration.
pub(crate) fn health_policy(health: &lb_config::HealthConfig) -> HealthPolicy {
    HealthPolicy {
        rise: health.rise,
        fall: health.fall,
        backoff: health.backoff,
    }
}

/// The registry's options for a configured route.
pub(crate) fn route_options(route: &StaticRoute) -> RouteOptions {
    RouteOptions {
        strip_prefix: route.strip_prefix,
        connect_timeout: route.connect_timeout,
        upstream_timeout: route.upstream_timeout,
    }
}
