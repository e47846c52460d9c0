//! The data plane's own settings types, filled from the configuration's parts: lb-proxy does
//! not know lb-config, so this is where one becomes the other.

use lb_config::{LiveConfig, RestartConfig};
use lb_proxy::{H2Settings, TuningValues, WorkerSettings};

/// The workers' live timeouts and body limit from the live part.
pub(crate) fn tuning_values(live: &LiveConfig) -> TuningValues {
    TuningValues {
        connect: live.connect_timeout,
        upstream: live.upstream_timeout,
        header: live.header_timeout,
        idle: live.idle_timeout,
        max_body: live.max_body,
    }
}

/// What every worker starts with, from the restart-only part.
pub(crate) fn worker_settings(restart: &RestartConfig) -> WorkerSettings {
    WorkerSettings {
        drain_timeout: restart.drain_timeout,
        // More idle connections per target than client connections could never be reused.
        pool_idle_per_target: restart.pool_idle_per_target.min(restart.max_connections),
        pool_idle_timeout: restart.pool_idle_timeout,
        max_connections: restart.max_connections,
        read_at_accept: !restart.defer_accept.is_zero(),
        splice: splice_on(std::env::var_os(SPLICE_KNOB).as_deref()),
        h2: H2Settings {
            max_streams: restart.h2_max_streams,
        },
    }
}

/// The benchmark knob that turns the zero-copy body path off (`LB_SPLICE=off`), so that
/// `scripts/bench.sh bigbody` can measure lb's copy path in the same build. Not a setting:
/// nothing but a measurement has a reason to copy what the kernel can move.
const SPLICE_KNOB: &str = "LB_SPLICE";

/// Whether the knob's value leaves splicing on: anything but `off` does.
fn splice_on(knob: Option<&std::ffi::OsStr>) -> bool {
    !matches!(knob, Some(v) if v == "off")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn only_off_turns_splicing_off() {
        assert!(splice_on(None));
        assert!(splice_on(Some(OsStr::new("on"))));
        assert!(splice_on(Some(OsStr::new(""))));
        assert!(!splice_on(Some(OsStr::new("off"))));
    }
}
