//! The prober: the health thread, one for the whole process, never one per worker, and the plan
//! it follows ([`Prober`] owns both; a reload replaces the plan whole).
//!
//! It does two things on its own current-thread runtime:
//! - every 100 ms it ends the passive back-offs that ran out ([`Registry::revive_due`]; no lock
//!   is taken while nothing is held down), so a target whose connect failed comes back by itself;
//! - when a check path is configured (globally or per route), every interval it sends
//!   `GET PATH` to each registered target, all probes of a round at once, each bounded by the
//!   health timeout; a 2xx or 3xx status line is a success. Results go to
//!   [`Registry::record_check`], whose rise/fall thresholds decide when a target leaves or
//!   rejoins round robin.
//!
//! A probe reads only the status line and closes; it never retries and never blocks the
//! workers: every health change reaches them as a new registry snapshot.

use crate::service_thread::{ServiceThread, Stopped};
use lb_config::LiveConfig;
use lb_registry::{route_name, CheckOutcome, Registry};
use lb_socket::plain;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// How often passive back-offs are looked at: the precision of the back-off.
const REVIVE_TICK: Duration = Duration::from_millis(100);
/// Most bytes read while looking for the status line.
const STATUS_LINE_MAX: usize = 1024;

/// What the prober probes; replaced as a whole on a configuration reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProbePlan {
    /// Path probed on routes without a path of their own; `None`: those are not probed.
    default_path: Option<String>,
    /// Per-route paths, by route name (normalized prefix, after the host if any).
    per_route: HashMap<String, String>,
    /// Time between rounds.
    interval: Duration,
    /// Time one probe may take.
    timeout: Duration,
}

impl ProbePlan {
    /// The plan a configuration asks for.
    pub(crate) fn from_config(config: &LiveConfig) -> Self {
        let per_route = config
            .routes
            .iter()
            .filter_map(|r| {
                let path = r.health_check.clone()?;
                Some((route_name(r.host.as_deref(), &r.prefix).ok()?, path))
            })
            .collect();
        ProbePlan {
            default_path: config.health.check.clone(),
            per_route,
            interval: config.health.interval,
            timeout: config.health.timeout,
        }
    }

    /// The path to probe on the route named `prefix` (see [`lb_registry::route_name`]), if any.
    pub(crate) fn path_for(&self, prefix: &str) -> Option<&str> {
        self.per_route
            .get(prefix)
            .or(self.default_path.as_ref())
            .map(String::as_str)
    }
}

/// The health thread and the plan it reads at the start of every round.
#[derive(Debug)]
pub(crate) struct Prober {
    plan: Arc<RwLock<ProbePlan>>,
    thread: ServiceThread,
}

impl Prober {
    /// Starts the health thread on `registry`, probing as `plan` says.
    pub(crate) fn start(registry: Arc<Registry>, plan: ProbePlan) -> std::io::Result<Self> {
        let plan = Arc::new(RwLock::new(plan));
        let shared = plan.clone();
        let thread = ServiceThread::spawn("health", move |stop| run(registry, shared, stop))?;
        Ok(Prober { plan, thread })
    }

    /// Probes as `plan` says from the next round on (a reload).
    pub(crate) fn replace_plan(&self, plan: ProbePlan) {
        *self.plan.write() = plan;
    }

    /// Stops the health thread and waits for it; a round in progress is abandoned.
    pub(crate) fn stop(&mut self) {
        self.thread.stop();
    }
}

/// The health thread's loop, until `stop` turns true.
async fn run(registry: Arc<Registry>, plan: Arc<RwLock<ProbePlan>>, mut stop: Stopped) {
    let mut revive = tokio::time::interval(REVIVE_TICK);
    revive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_round = tokio::time::Instant::now();
    let mut round: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = revive.tick() => {
                let back = registry.revive_due(Instant::now());
                if back > 0 {
                    info!(targets = back, "back-off over; targets back in round robin");
                }
            }
            () = tokio::time::sleep_until(next_round) => {
                let plan = plan.read().clone();
                next_round += plan.interval;
                if round.as_ref().is_some_and(|r| !r.is_finished()) {
                    debug!("previous health round still running; skipping one");
                    continue;
                }
                round = Some(tokio::spawn(probe_round(registry.clone(), plan)));
            }
        }
    }
    if let Some(round) = round {
        round.abort();
    }
}

/// Probes every target that has a check path, all at once, and records the results.
async fn probe_round(registry: Arc<Registry>, plan: ProbePlan) {
    let mut probes = JoinSet::new();
    for target in registry.targets() {
        let route = target.route();
        let Some(path) = plan.path_for(&route) else {
            continue;
        };
        let path = path.to_string();
        let timeout = plan.timeout;
        probes.spawn(async move {
            let outcome = probe(target.addr, &path, timeout).await;
            (route, target.addr, outcome)
        });
    }
    while let Some(done) = probes.join_next().await {
        let Ok((route, addr, outcome)) = done else {
            continue;
        };
        let detail = outcome.detail.clone();
        match registry.record_check(&route, addr, outcome) {
            Some(true) => {
                info!(route = %route, target = %addr, check = %detail, "target healthy again")
            }
            Some(false) => warn!(route = %route, target = %addr, check = %detail, "target down"),
            None => debug!(route = %route, target = %addr, check = %detail, "health probe"),
        }
    }
}

/// One probe: connect, `GET path`, read the status line; all within `timeout`.
pub(crate) async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> CheckOutcome {
    match tokio::time::timeout(timeout, exchange(addr, path)).await {
        Err(_) => CheckOutcome::failed("timed out"),
        Ok(Err(why)) => CheckOutcome::failed(why),
        Ok(Ok(status)) => CheckOutcome::status(status),
    }
}

async fn exchange(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| plain(&e))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lb-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| plain(&e))?;
    let mut buf = Vec::with_capacity(256);
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]).ok_or_else(|| "invalid status line".to_string());
        }
        if buf.len() >= STATUS_LINE_MAX {
            return Err("invalid status line".to_string());
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| plain(&e))?;
        if n == 0 {
            return Err("closed without a response".to_string());
        }
    }
}

/// `HTTP/1.x NNN ...` -> `NNN` (RFC 9112 §4: status-line = HTTP-version SP status-code SP ...).
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), None);
        assert_eq!(parse_status_line(b"HTTP/2 200 OK"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn per_route_path_wins_over_the_default() {
        let mut config = LiveConfig::default();
        config.health.check = Some("/healthz".into());
        config.routes.push("/api/=127.0.0.1:1".parse().unwrap());
        config.routes[0].health_check = Some("/ping".into());
        let plan = ProbePlan::from_config(&config);
        assert_eq!(plan.path_for("/api"), Some("/ping"));
        assert_eq!(plan.path_for("/other"), Some("/healthz"));
        config.health.check = None;
        assert_eq!(ProbePlan::from_config(&config).path_for("/other"), None);
    }

    #[tokio::test]
    async fn probes_answer_refusal_and_silence() {
        use tokio::net::TcpListener;
        let ok = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ok_addr = ok.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = ok.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        });
        let outcome = probe(ok_addr, "/h", Duration::from_secs(10)).await;
        assert_eq!(outcome, CheckOutcome::status(204));

        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let outcome = probe(
            silent.local_addr().unwrap(),
            "/h",
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(outcome, CheckOutcome::failed("timed out"));

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let outcome = probe(closed, "/h", Duration::from_secs(10)).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.detail, "connection refused");
    }
}
