//! The start-up log line: one INFO line that says what this lb runs (version, config file,
//! addresses, workers and CPUs, routes and targets, health settings), so that a log read
//! days later answers "what was running?" without the command line; and the warning for more
//! workers than CPUs to run them.
//!
//! Invariant: it reports what is running (bound addresses, the registry after the state
//! file or the takeover), not only what was asked for.

use lb_config::HealthConfig;
use lb_registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing::{info, warn};

/// What the start-up line needs from the configuration, taken before the parts consume it.
#[derive(Debug, Clone)]
pub(crate) struct Startup {
    /// `--config`, when there is one.
    pub(crate) file: Option<PathBuf>,
    /// The health settings in one phrase.
    pub(crate) health: String,
}

impl Startup {
    pub(crate) fn new(file: Option<PathBuf>, health: &HealthConfig) -> Startup {
        Startup {
            file,
            health: health.summary(),
        }
    }

    /// Logs the line once every worker accepts.
    pub(crate) fn log(
        &self,
        listen: SocketAddr,
        tls: Option<SocketAddr>,
        admin: SocketAddr,
        cpus: &[usize],
        pinned: bool,
        registry: &Registry,
    ) {
        let config = self
            .file
            .as_ref()
            .map_or("none".to_string(), |p| p.display().to_string());
        info!(
            version = %env!("CARGO_PKG_VERSION"),
            config = %config,
            %listen,
            tls = %tls.map_or_else(|| "off".to_string(), |a| a.to_string()),
            %admin,
            workers = cpus.len().max(1),
            cpus = ?cpus,
            pinned,
            routes = registry.routes().len(),
            targets = registry.targets().len(),
            health = %self.health,
            "lb started"
        );
    }
}

/// Why `workers` workers on `usable` CPUs deserve a warning, if they do: more workers than
/// CPUs share cores, so they preempt each other and add latency rather than throughput.
pub(crate) fn too_many_workers(workers: usize, usable: usize) -> Option<String> {
    (workers > usable).then(|| {
        format!(
            "{workers} workers on {usable} usable CPUs: workers will share CPUs and preempt each \
             other; --workers auto runs one per usable CPU"
        )
    })
}

/// The CPUs this process may run on (affinity mask and cgroup quota respected).
pub(crate) fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Logs [`too_many_workers`] for this process's usable CPUs.
pub(crate) fn warn_if_too_many_workers(workers: usize) {
    let usable = usable_cpus();
    if let Some(why) = too_many_workers(workers, usable) {
        warn!(workers, usable_cpus = usable, "{why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_workers_than_cpus_is_worth_a_warning() {
        for (workers, usable, warned) in [
            (1, 1, false),
            (2, 4, false),
            (4, 4, false),
            (5, 4, true),
            (99, 2, true),
        ] {
            assert_eq!(
                too_many_workers(workers, usable).is_some(),
                warned,
                "{workers} on {usable}"
            );
        }
    }
}
