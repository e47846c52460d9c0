//! The supervisor: starts the parts of an lb process, then dispatches events to them until a
//! stop. It holds no state of its own beyond the parts and the event channel.
//!
//! The parts, each owning its state: the worker set (`workers`: threads, sockets by kind in
//! `listeners`, counters, respawn schedule, access log), the admin server (`admin`), the upgrade
//! part (`handover`: upgrade socket, its thread, the upgrade in progress), and the live settings
//! (`settings`: configuration in force, tuning, prober, state file). The registry is shared by
//! all of them (the workers read its snapshots, the control plane and reloads change it).
//!
//! [`start`]: validate the configuration; build the registry (state file first, then the
//! configured routes); bind the admin socket, the upgrade socket and one `SO_REUSEPORT` socket
//! per worker (the first one resolves port 0, the others share its port); start the prober,
//! the control plane and the workers one by one, each reporting ready. [`run`] then prints the
//! ready line and dispatches events: SIGINT/SIGTERM drain and stop, SIGHUP reloads the config
//! file (settings), a worker that exits (a panic) is respawned (workers), and requests on the
//! upgrade socket hand everything over (handover).

use crate::admin::AdminServer;
use crate::cluster_link::{self, ClusterLink};
use crate::config_routes::{configure, health_policy};
use crate::config_source::ConfigSource;
use crate::cpus::{allowed_cpus, worker_count};
use crate::error::RunError;
use crate::event::{Event, UpgradeRequest};
use crate::handover::Upgrades;
use crate::listeners::Listeners;
use crate::proxy_settings::worker_settings;
use crate::settings::LiveSettings;
use crate::startup::{warn_if_too_many_workers, Startup};
use crate::state::StateFile;
use crate::tls_termination::TlsTermination;
use crate::upgrade::{self, Inherited};
use crate::workers::WorkerSet;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use lb_admin::{About, ControlPlane, Listener};
use lb_config::{Config, LiveConfig, RestartConfig};
use lb_proxy::WorkerConfig;
use lb_registry::Registry;
use lb_socket::plain;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, info, warn};

/// A running lb: its addresses, its registry, its parts, and the way to stop it.
#[derive(Debug)]
pub struct Handle {
    registry: Arc<Registry>,
    workers: WorkerSet,
    admin: AdminServer,
    upgrades: Upgrades,
    settings: LiveSettings,
    cluster: Option<ClusterLink>,
    /// TLS termination, when on.
    tls: Option<TlsTermination>,
    events: Receiver<Event>,
    events_tx: Sender<Event>,
}

/// What the event loop does after an event.
enum Flow {
    Continue,
    Stop(Result<(), RunError>),
}

impl Handle {
    /// The data-plane address every worker accepts on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.workers.listeners().http.addr
    }

    /// The HTTPS address every worker accepts on, when TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.workers
            .listeners()
            .tls
            .as_ref()
            .map(|group| group.addr)
    }

    /// The control-plane address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The registry the workers route with.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The ready line of the SPEC: `listening on ADDR[, tls ADDR] (admin ADDR, N workers)`.
    pub fn ready_line(&self) -> String {
        let tls = self
            .tls_addr()
            .map_or_else(String::new, |addr| format!(", tls {addr}"));
        format!(
            "listening on {}{tls} (admin {}, {} workers)",
            self.listen_addr(),
            self.admin_addr(),
            self.workers()
        )
    }

    /// Stops accepting, drains every worker (each bounded by the drain timeout) and joins all
    /// threads.
    pub fn shutdown(mut self) {
        self.upgrades.stop();
        self.workers.stop();
        self.admin.shutdown();
        self.workers.join();
        self.settings.stop();
        if let Some(cluster) = &mut self.cluster {
            cluster.stop();
        }
    }

    /// The next event; respawns the workers whose back-off ran out while waiting for it.
    fn next_event(&mut self) -> Result<Event, RunError> {
        let closed = || RunError::Runtime("supervisor channel closed".to_string());
        loop {
            let Some(due) = self.workers.next_due() else {
                return self.events.recv().map_err(|_| closed());
            };
            match self.events.recv_deadline(due) {
                Ok(event) => return Ok(event),
                Err(RecvTimeoutError::Disconnected) => return Err(closed()),
                Err(RecvTimeoutError::Timeout) => self.workers.spawn_due(Instant::now())?,
            }
        }
    }

    /// Passes `event` to the part it concerns.
    fn dispatch(&mut self, event: Event, source: Option<&ConfigSource>) -> Flow {
        match event {
            Event::Signal(name) => {
                info!(signal = name, "shutting down: draining in-flight requests");
                crate::notify::stopping();
                return Flow::Stop(Ok(()));
            }
            Event::Reload => {
                if let Some(tls) = &self.tls {
                    tls.reload();
                }
                match source {
                    Some(source) if source.file.is_some() => {
                        self.settings.reload(&self.registry, source);
                    }
                    _ if self.tls.is_some() => {}
                    _ => warn!("SIGHUP ignored: lb was started without --config"),
                }
            }
            Event::Exited { worker, panicked } => {
                if let Err(e) = self.workers.respawn(worker, panicked) {
                    return Flow::Stop(Err(e));
                }
            }
            Event::Ready { worker, .. } => self.workers.respawned(worker),
            Event::Failed { worker, error } => {
                return Flow::Stop(Err(RunError::Runtime(format!(
                    "respawned worker {worker} failed: {error}"
                ))));
            }
            Event::Upgrade {
                request: UpgradeRequest::Takeover(version),
                stream,
            } => {
                let handed_over = self.upgrades.hand_over(
                    stream,
                    version,
                    &mut self.admin,
                    self.workers.listeners(),
                    &self.registry,
                );
                if handed_over {
                    info!("handed over to the new lb: draining in-flight requests");
                    return Flow::Stop(Ok(()));
                }
            }
            Event::Upgrade {
                request: UpgradeRequest::Upgrade,
                stream,
            } => self.upgrades.start_successor(Some(stream)),
            Event::UpgradeSignal => self.upgrades.start_successor(None),
            Event::SuccessorExited(why) => self.upgrades.successor_failed(&why),
        }
        Flow::Continue
    }

    /// Starts every worker, one by one, each reporting ready; `listen` names the address in the
    /// error.
    fn start_workers(
        &mut self,
        pin: bool,
        listen: SocketAddr,
        startup: &Startup,
    ) -> Result<(), RunError> {
        let mut pinned_all = pin;
        for id in 0..self.workers.len() {
            self.workers.spawn(id)?;
            match self.events.recv() {
                Ok(Event::Ready { worker, pinned }) => {
                    debug!(worker, pinned, "worker accepting");
                    pinned_all &= pinned;
                }
                Ok(Event::Failed { worker, error }) => {
                    return Err(RunError::Runtime(format!(
                        "worker {worker} cannot listen on {listen}: {error}"
                    )));
                }
                other => {
                    return Err(RunError::Runtime(format!(
                        "worker {id} stopped during start-up ({other:?})"
                    )));
                }
            }
        }
        startup.log(
            self.listen_addr(),
            self.tls_addr(),
            self.admin_addr(),
            &self.workers.cpu_ids(),
            pinned_all,
            &self.registry,
        );
        Ok(())
    }
}

/// Starts lb and returns once every worker is accepting.
pub fn start(config: Config) -> Result<Handle, RunError> {
    start_with(config, None)
}

/// [`start`], with the config file (if any) named in the start-up line.
fn start_with(config: Config, file: Option<PathBuf>) -> Result<Handle, RunError> {
    config.validate()?;
    // Certificate files are read before any socket is bound: a bad one never half-starts lb.
    let tls = TlsTermination::start(&config.restart.tls)?;
    let startup = Startup::new(file, &config.live.health);
    let Config {
        live,
        restart,
        takeover,
    } = config;
    let mut inherited = match (&restart.upgrade_socket, takeover) {
        (Some(path), true) => Some(upgrade::take_over(path).map_err(RunError::Runtime)?),
        _ => None,
    };
    let mut workers = worker_count(restart.workers);
    warn_if_too_many_workers(workers);
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
    let registry = Arc::new(Registry::with_policy(workers, health_policy(&live.health)));
    let cluster = cluster_link::settings(&restart.cluster);
    if let Some(cluster) = &cluster {
        registry.set_cursor_start(lb_cluster::cursor_seed(&cluster.node));
    }
    let state = registry_at_start(&registry, &live, restart.state.clone(), inherited.as_mut())?;
    let cluster = cluster
        .map(|c| ClusterLink::start(c, registry.clone(), state.clone()))
        .transpose()?;

    let (events_tx, events) = unbounded();
    let admin_socket = match &inherited {
        Some(inherited) => inherited
            .admin
            .try_clone()
            .map_err(|e| RunError::Runtime(format!("inherited admin socket: {}", plain(&e))))?,
        None => TcpListener::bind(restart.admin)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                RunError::Runtime(format!(
                    "cannot listen on {} (admin): {}",
                    restart.admin,
                    plain(&e)
                ))
            })?,
    };
    let upgrade_socket =
        match (&inherited, &restart.upgrade_socket) {
            (Some(inherited), _) => Some(inherited.upgrade.try_clone().map_err(|e| {
                RunError::Runtime(format!("inherited upgrade socket: {}", plain(&e)))
            })?),
            (None, Some(path)) => Some(upgrade::bind(path).map_err(RunError::Runtime)?),
            (None, None) => None,
        };
    let settings = LiveSettings::start(live, restart.clone(), registry.clone(), state.clone())?;
    let tls_listen = tls.as_ref().map(|tls| tls.listen);
    let listeners = match &inherited {
        Some(inherited) => Listeners::inherit(inherited, tls_listen, workers, restart.backlog)?,
        None => Listeners::bind(restart.listen, tls_listen, workers, restart.backlog)?,
    };
    listeners.defer_accept(restart.defer_accept)?;
    let cpus = if restart.pin {
        allowed_cpus()
    } else {
        Vec::new()
    };
    let mut worker_config =
        WorkerConfig::new(0, worker_settings(&restart), settings.tuning().clone());
    if let Some(tls) = &tls {
        worker_config = worker_config.with_tls(tls.config().clone());
    }
    let worker_set = WorkerSet::new(
        workers,
        listeners,
        worker_config,
        registry.clone(),
        cpus,
        events_tx.clone(),
        restart.access_log,
    )?;
    let listeners = worker_set.listeners();
    let tls_listener = listeners.tls.as_ref().map(|group| Listener {
        kind: "tls",
        addr: group.addr,
    });
    let about = About {
        listeners: [Listener {
            kind: "http",
            addr: listeners.http.addr,
        }]
        .into_iter()
        .chain(tls_listener)
        .chain([Listener {
            kind: "admin",
            addr: admin_socket
                .local_addr()
                .map_err(|e| RunError::Runtime(format!("admin listener: {}", plain(&e))))?,
        }])
        .collect(),
        worker_cpus: worker_set.worker_cpus(),
        config_file: startup.file.as_ref().map(|f| f.display().to_string()),
        ..About::unknown()
    };
    let plane = control_plane(
        &restart,
        &registry,
        &worker_set,
        state,
        about,
        cluster.as_ref(),
    );
    let admin = AdminServer::start(admin_socket, plane)?;
    let mut handle = Handle {
        registry,
        workers: worker_set,
        admin,
        upgrades: Upgrades::new(upgrade_socket, events_tx.clone()),
        settings,
        cluster,
        tls,
        events,
        events_tx,
    };
    if let Err(e) = handle.start_workers(restart.pin, restart.listen, &startup) {
        handle.shutdown();
        return Err(e);
    }
    if let Some(mut inherited) = inherited {
        // Every worker accepts on the inherited sockets: the old lb may stop now.
        if let Err(e) = upgrade::confirm(&mut inherited.stream) {
            warn!(error = %e, "could not tell the old lb that the takeover is complete");
        }
        info!("took over from the running lb; it now drains and exits");
    }
    if let Err(e) = handle.upgrades.serve() {
        handle.shutdown();
        return Err(e);
    }
    Ok(handle)
}

/// Fills `registry` at start: from the old lb of an upgrade or else from the state file, then
/// the configured routes on top; returns the state file, saved once.
fn registry_at_start(
    registry: &Registry,
    config: &LiveConfig,
    state: Option<PathBuf>,
    inherited: Option<&mut Inherited>,
) -> Result<Option<Arc<StateFile>>, RunError> {
    let state = state.map(|path| Arc::new(StateFile::new(path)));
    if let Some(inherited) = inherited {
        // The running lb's registry is the newest there is; the state file holds the same.
        inherited
            .restore_into(registry, config)
            .map_err(|e| RunError::Runtime(format!("takeover: {e}")))?;
        info!(
            targets = registry.targets().len(),
            "registry taken over from the running lb"
        );
    } else if let Some(state) = &state {
        if state.load_into(registry).map_err(RunError::Runtime)? {
            info!(
                targets = registry.targets().len(),
                "registry loaded from the state file"
            );
        }
    }
    configure(registry, config)?;
    // Saved once at start: a state file that cannot be written stops lb now, not at the first
    // registration.
    if let Some(state) = &state {
        state.save(registry).map_err(RunError::Runtime)?;
    }
    Ok(state)
}

/// The control plane: registry, metrics (per-worker counters and restarts, the cluster link's),
/// state file, token, the debug panic hook, the cluster link, and what `/stats` shows (`about`,
/// the workers' counts).
fn control_plane(
    config: &RestartConfig,
    registry: &Arc<Registry>,
    workers: &WorkerSet,
    state: Option<Arc<StateFile>>,
    about: About,
    cluster: Option<&ClusterLink>,
) -> ControlPlane {
    let mut metrics = workers.metrics();
    if let Some(link) = cluster {
        let (workers, cluster) = (metrics, link.cluster().clone());
        metrics = Arc::new(move |out: &mut String| {
            workers(out);
            cluster.status().render(out);
        });
    }
    let mut plane = ControlPlane::new(registry.clone(), metrics);
    plane.about = about;
    plane.counts = Some(workers.counts());
    plane.cluster = cluster.map(|link| link.cluster().clone());
    plane.persist = state.map(|state| {
        let hook: lb_admin::PersistHook =
            Arc::new(move |export: &lb_registry::Export| state.save_export(export));
        hook
    });
    plane.token = config.admin_token.as_deref().map(Arc::from);
    plane.panic_hook = Some(workers.panic_hook());
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
    let file = source.as_ref().and_then(|s| s.file.clone());
    let mut handle = start_with(config, file)?;
    crate::signals::install(handle.events_tx.clone())?;
    println!("{}", handle.ready_line());
    let _ = std::io::stdout().flush();
    crate::notify::ready();
    let result = loop {
        let event = match handle.next_event() {
            Ok(event) => event,
            Err(e) => break Err(e),
        };
        if let Flow::Stop(result) = handle.dispatch(event, source.as_ref()) {
            break result;
        }
    };
    handle.shutdown();
    info!("stopped");
    result
}
