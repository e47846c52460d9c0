//! Starting, watching and stopping the workers and the admin thread.

use crate::cpus::{allowed_cpus, cpu_for, worker_count};
use crate::health::{self, ProbePlan, SharedPlan};
use crate::listener::{bind_reuseport, ensure_free, plain};
use crate::reload::{reload, ConfigSource};
use crate::state::StateFile;
use crossbeam_channel::{unbounded, Receiver, Sender};
use lb_config::{Config, ConfigError};
use lb_proxy::{WorkerConfig, WorkerStats};
use lb_registry::{HealthPolicy, Registry};
use parking_lot::RwLock;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;
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
enum Event {
    Ready {
        worker: usize,
        addr: SocketAddr,
        pinned: bool,
    },
    Failed {
        worker: usize,
        error: String,
    },
    Exited {
        worker: usize,
    },
    Signal(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
}

/// A running lb: its addresses, its registry, and the way to stop it.
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
    events: Receiver<Event>,
    events_tx: Sender<Event>,
    threads: Vec<JoinHandle<()>>,
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
        let _ = self.stop.send(true);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                error!("a worker thread panicked during shutdown");
            }
        }
    }
}

/// Starts lb and returns once every worker is accepting.
pub fn start(config: Config) -> Result<Handle, RunError> {
    config.validate()?;
    let workers = worker_count(config.workers);
    let registry = Arc::new(Registry::with_policy(
        workers,
        health_policy(&config.health),
    ));
    // The state file first, then the configured routes on top of it.
    let state = config
        .state
        .clone()
        .map(|path| Arc::new(StateFile::new(path)));
    if let Some(state) = &state {
        if state.load_into(&registry).map_err(RunError::Runtime)? {
            info!(
                targets = registry.targets().len(),
                "registry loaded from the state file"
            );
        }
    }
    for route in &config.routes {
        for &target in &route.targets {
            registry
                .register(&route.prefix, target)
                .map_err(|e| RunError::Config(format!("route {}: {e}", route.prefix)))?;
        }
    }
    // Saved once at start: a state file that cannot be written stops lb now, not at the first
    // registration.
    if let Some(state) = &state {
        state.save(&registry).map_err(RunError::Runtime)?;
    }

    let (stop, stop_rx) = watch::channel(false);
    let (events_tx, events) = unbounded();
    let stats: Vec<Arc<WorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    let mut threads = Vec::with_capacity(workers + 1);

    let (admin, admin_thread) =
        spawn_admin(&config, &registry, &stats, state.clone(), stop_rx.clone())?;
    threads.push(admin_thread);
    let probe_plan: SharedPlan = Arc::new(RwLock::new(ProbePlan::from_config(&config)));
    let health_thread = health::spawn(registry.clone(), probe_plan.clone(), stop_rx.clone())
        .map_err(|e| RunError::Runtime(format!("cannot start the health thread: {e}")))?;
    threads.push(health_thread);

    let cpus = if config.pin {
        allowed_cpus()
    } else {
        Vec::new()
    };
    ensure_free(config.listen).map_err(|e| {
        RunError::Runtime(format!("cannot listen on {}: {}", config.listen, plain(&e)))
    })?;

    let mut handle = Handle {
        listen: config.listen,
        admin,
        workers,
        registry,
        config: config.clone(),
        state,
        probe_plan,
        stop,
        events,
        events_tx,
        threads,
    };
    // Worker 0 binds first so that port 0 resolves to one real port the others then share.
    let mut pinned_all = config.pin;
    for (worker, worker_stats) in stats.iter().enumerate() {
        let spawned = spawn_worker(
            worker,
            handle.listen,
            &config,
            cpu_for(worker, &cpus),
            handle.registry.clone(),
            worker_stats.clone(),
            stop_rx.clone(),
            handle.events_tx.clone(),
        );
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => {
                handle.shutdown();
                return Err(RunError::Runtime(format!(
                    "cannot start worker {worker}: {e}"
                )));
            }
        };
        handle.threads.push(thread);
        match handle.events.recv() {
            Ok(Event::Ready {
                worker,
                addr,
                pinned,
            }) => {
                debug!(worker, %addr, pinned, "worker accepting");
                handle.listen = addr;
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
                    "worker {worker} stopped during start-up ({other:?})"
                )));
            }
        }
    }
    let cpu_ids: Vec<usize> = cpus.iter().map(|c| c.id).collect();
    info!(workers, cpus = ?cpu_ids, pinned = pinned_all, "workers started");
    Ok(handle)
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
    install_signals(handle.events_tx.clone())?;
    println!("{}", handle.ready_line());
    let _ = std::io::stdout().flush();
    let result = loop {
        match handle.events.recv() {
            Ok(Event::Signal(name)) => {
                info!(signal = name, "shutting down: draining in-flight requests");
                break Ok(());
            }
            Ok(Event::Reload) => match &source {
                Some(source) if source.file.is_some() => reload(&mut handle, source),
                _ => warn!("SIGHUP ignored: lb was started without --config"),
            },
            Ok(Event::Exited { worker }) => {
                error!(worker, "worker stopped unexpectedly; shutting down");
                break Err(RunError::Runtime(format!(
                    "worker {worker} stopped unexpectedly"
                )));
            }
            Ok(other) => warn!(?other, "unexpected supervisor event"),
            Err(_) => break Err(RunError::Runtime("supervisor channel closed".to_string())),
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

/// Binds the admin listener and serves the control plane on a thread of its own.
fn spawn_admin(
    config: &Config,
    registry: &Arc<Registry>,
    stats: &[Arc<WorkerStats>],
    state: Option<Arc<StateFile>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), RunError> {
    let listener = std::net::TcpListener::bind(config.admin)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            RunError::Runtime(format!(
                "cannot listen on {} (admin): {}",
                config.admin,
                plain(&e)
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Runtime(format!("admin listener: {}", plain(&e))))?;
    let registry = registry.clone();
    let stats = stats.to_vec();
    let metrics: lb_admin::MetricsSource = Arc::new(move |out: &mut String| {
        WorkerStats::render_all(&stats, out);
    });
    let mut plane = lb_admin::ControlPlane::new(registry, metrics);
    plane.persist = state.map(|state| {
        let hook: lb_admin::PersistHook = Arc::new(move |registry: &Registry| state.save(registry));
        hook
    });
    plane.token = config.admin_token.as_deref().map(Arc::from);
    let thread = std::thread::Builder::new()
        .name("lb-admin".to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    error!(error = %e, "cannot build the admin runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        error!(error = %e, "cannot register the admin listener");
                        return;
                    }
                };
                let shutdown = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                lb_admin::serve_plane(listener, plane, shutdown).await;
            });
        })
        .map_err(|e| RunError::Runtime(format!("cannot start the admin thread: {e}")))?;
    Ok((addr, thread))
}

/// Starts worker `id`: pin, build its runtime, bind its own listener, report ready, serve.
#[allow(clippy::too_many_arguments)]
fn spawn_worker(
    id: usize,
    addr: SocketAddr,
    config: &Config,
    cpu: Option<core_affinity::CoreId>,
    registry: Arc<Registry>,
    stats: Arc<WorkerStats>,
    mut stop: watch::Receiver<bool>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    let cfg = WorkerConfig::new(id, config);
    let backlog = config.backlog;
    std::thread::Builder::new()
        .name(format!("lb-worker-{id}"))
        .spawn(move || {
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
                    return;
                }
            };
            runtime.block_on(async {
                let listener = match bind_reuseport(addr, backlog)
                    .and_then(tokio::net::TcpListener::from_std)
                {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = events.send(Event::Failed {
                            worker: id,
                            error: plain(&e),
                        });
                        return;
                    }
                };
                let local = listener.local_addr().unwrap_or(addr);
                let _ = events.send(Event::Ready {
                    worker: id,
                    addr: local,
                    pinned,
                });
                let shutdown = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                lb_proxy::serve(listener, registry, cfg, stats, shutdown).await;
            });
            let _ = events.send(Event::Exited { worker: id });
        })
}

/// Turns SIGINT and SIGTERM (stop) and SIGHUP (reload) into supervisor events. Returns once the handlers are installed, so a
/// signal sent right after the ready line is never lost.
fn install_signals(events: Sender<Event>) -> Result<(), RunError> {
    use tokio::signal::unix::{signal, SignalKind};
    let (installed_tx, installed) = crossbeam_channel::bounded::<Result<(), String>>(1);
    std::thread::Builder::new()
        .name("lb-signals".to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = installed_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let (mut term, mut int, mut hup) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::hangup()),
                ) {
                    (Ok(t), Ok(i), Ok(h)) => (t, i, h),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        let _ = installed_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = installed_tx.send(Ok(()));
                loop {
                    let event = tokio::select! {
                        _ = term.recv() => Event::Signal("SIGTERM"),
                        _ = int.recv() => Event::Signal("SIGINT"),
                        _ = hup.recv() => Event::Reload,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            });
        })
        .map_err(|e| RunError::Runtime(format!("cannot start the signal thread: {e}")))?;
    match installed.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RunError::Runtime(format!(
            "cannot install signal handlers: {e}"
        ))),
        Err(_) => Err(RunError::Runtime(
            "signal handlers not installed in time".to_string(),
        )),
    }
}
