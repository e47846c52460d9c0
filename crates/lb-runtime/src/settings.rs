//! The live settings part: the configuration in force, the timeouts shared with the workers
//! ([`Tuning`]), the prober and its plan, and the state file; and what a reload (SIGHUP)
//! changes in them.
//!
//! A reload applies what can change without a restart: the routes given by the configuration
//! (`config_routes`), the health-check settings, the connect/upstream/header/idle timeouts and
//! the body limit (shared with the workers, taking effect for the next wait that starts).
//! Everything else (listen, admin, workers, drain timeout, connection limit, state, admin token)
//! needs a restart or an upgrade, and a reload that changes it says so in the log. An invalid
//! file changes nothing.

use crate::config_routes::{health_policy, needs_restart, reconfigure};
use crate::config_source::ConfigSource;
use crate::error::RunError;
use crate::prober::{ProbePlan, Prober};
use crate::state::StateFile;
use lb_config::Config;
use lb_proxy::Tuning;
use lb_registry::{Reconfigured, Registry};
use std::sync::Arc;
use tracing::{error, info, warn};

/// The settings a running lb applies, and the parts that follow them.
#[derive(Debug)]
pub(crate) struct LiveSettings {
    /// The configuration in force (routes and health follow reloads).
    config: Config,
    /// Timeouts and body limit shared by the workers; a reload updates them in place.
    tuning: Arc<Tuning>,
    /// The health thread, probing as the configuration in force says.
    prober: Prober,
    /// The state file, when there is one.
    state: Option<Arc<StateFile>>,
}

impl LiveSettings {
    /// The settings of `config`, with the prober started on `registry`.
    pub(crate) fn start(
        config: Config,
        registry: Arc<Registry>,
        state: Option<Arc<StateFile>>,
    ) -> Result<Self, RunError> {
        let prober = Prober::start(registry, ProbePlan::from_config(&config))
            .map_err(|e| RunError::Runtime(format!("cannot start the health thread: {e}")))?;
        Ok(LiveSettings {
            tuning: Arc::new(Tuning::new(&config)),
            config,
            prober,
            state,
        })
    }

    /// The timeouts and body limit the workers share.
    pub(crate) fn tuning(&self) -> &Arc<Tuning> {
        &self.tuning
    }

    /// Reloads from `source`; an invalid configuration is logged and ignored.
    pub(crate) fn reload(&mut self, registry: &Registry, source: &ConfigSource) {
        let new = match source.load() {
            Ok(new) => new,
            Err(e) => {
                error!(error = %e, "configuration reload rejected; the running configuration stays");
                return;
            }
        };
        let old = self.config.clone();
        let done = match reconfigure(registry, &old, &new) {
            Ok(done) => done,
            Err(e) => {
                // `load` checked every route as the registry does, so this is not expected.
                error!(error = %e, "configuration reload rejected; the running configuration stays");
                return;
            }
        };
        let Reconfigured { added, removed, .. } = done;
        // Only what the API holds is saved, so a removed prefix (the configuration's alone) leaves
        // the file as it was.
        if added + removed > 0 {
            if let Some(state) = &self.state {
                if let Err(e) = state.save(registry) {
                    error!(error = %e, "the reloaded routes could not be saved");
                }
            }
        }
        registry.set_policy(health_policy(&new.health));
        self.tuning.update(&new);
        self.prober.replace_plan(ProbePlan::from_config(&new));
        for setting in needs_restart(&old, &new) {
            warn!(
                setting,
                "changed in the config file; it takes a restart or an upgrade to apply"
            );
        }
        info!(added, removed, "configuration reloaded");
        self.config = Config {
            routes: new.routes,
            health: new.health,
            connect_timeout: new.connect_timeout,
            upstream_timeout: new.upstream_timeout,
            header_timeout: new.header_timeout,
            idle_timeout: new.idle_timeout,
            max_body: new.max_body,
            ..old
        };
    }

    /// Stops the prober.
    pub(crate) fn stop(&mut self) {
        self.prober.stop();
    }
}
