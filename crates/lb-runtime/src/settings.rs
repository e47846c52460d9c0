//! The live settings part: the configuration in force, the timeouts shared with the workers
//! ([`Tuning`]), the prober and its plan, and the state file; and what a reload (SIGHUP)
//! changes in them.
//!
//! A reload replaces the configuration's live part ([`LiveConfig`]) whole: the routes
//! (`config_routes`), the health-check settings, the connect/upstream/header/idle timeouts and
//! the body limit (shared with the workers, taking effect for the next wait that starts). The
//! restart-only part ([`RestartConfig`]: listen, admin, workers, drain timeout, connection
//! limit, state, admin token, ...) stays as it started, and a reload names in the log each of
//! its keys the file changed. An invalid file changes nothing.

use crate::config_routes::{health_policy, reconfigure};
use crate::config_source::ConfigSource;
use crate::error::RunError;
use crate::prober::{ProbePlan, Prober};
use crate::proxy_settings::tuning_values;
use crate::state::StateFile;
use lb_config::{LiveConfig, RestartConfig};
use lb_proxy::Tuning;
use lb_registry::{Export, Reconfigured, Registry};
use std::sync::Arc;
use tracing::{error, info, warn};

/// The settings a running lb applies, and the parts that follow them.
#[derive(Debug)]
pub(crate) struct LiveSettings {
    /// The live part in force: the last one loaded.
    live: LiveConfig,
    /// The restart-only part this process started with.
    restart: RestartConfig,
    /// Timeouts and body limit shared by the workers; a reload updates them in place.
    tuning: Arc<Tuning>,
    /// The health thread, probing as the configuration in force says.
    prober: Prober,
    /// The state file, when there is one.
    state: Option<Arc<StateFile>>,
}

impl LiveSettings {
    /// The settings `live` and `restart`, with the prober started on `registry`.
    pub(crate) fn start(
        live: LiveConfig,
        restart: RestartConfig,
        registry: Arc<Registry>,
        state: Option<Arc<StateFile>>,
    ) -> Result<Self, RunError> {
        let prober = Prober::start(registry, ProbePlan::from_config(&live))
            .map_err(|e| RunError::Runtime(format!("cannot start the health thread: {e}")))?;
        Ok(LiveSettings {
            tuning: Arc::new(Tuning::new(tuning_values(&live))),
            live,
            restart,
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
        // Only what the API holds is saved, so a removed prefix (the configuration's alone) leaves
        // the file as it was.
        let state = &self.state;
        let save = |export: &Export| {
            if let Some(state) = state {
                if let Err(e) = state.save_export(export) {
                    error!(error = %e, "the reloaded routes could not be saved");
                }
            }
        };
        let done = match reconfigure(registry, &self.live, &new.live, save) {
            Ok(done) => done,
            Err(e) => {
                // `load` checked every route as the registry does, so this is not expected.
                error!(error = %e, "configuration reload rejected; the running configuration stays");
                return;
            }
        };
        let Reconfigured { added, removed, .. } = done;
        registry.set_policy(health_policy(&new.live.health));
        self.tuning.update(tuning_values(&new.live));
        self.prober.replace_plan(ProbePlan::from_config(&new.live));
        for setting in self.restart.changed(&new.restart) {
            warn!(
                setting,
                "changed in the config file; it takes a restart or an upgrade to apply"
            );
        }
        info!(added, removed, "configuration reloaded");
        self.live = new.live;
    }

    /// Stops the prober.
    pub(crate) fn stop(&mut self) {
        self.prober.stop();
    }
}
