//! The read-only listings of the registry: `GET /targets` (one row per target) and `GET /routes`
//! (one row per prefix, those without targets included, with its options and targets).
//! `GET /stats` (`stats`) builds on the same rows, so a field added here shows there too.
//!
//! Rows are derived `Serialize` structs so that the JSON keeps the SPEC's field order (a
//! `json!` map would sort the keys). The time a lease has left is computed here, at the edge,
//! from the wall clock the caller passes; the registry only stores the lease's end.
//!
//! `host` is the route's host (null for a host-less route), `balance` its policy, `hash_key`
//! the key of a `hash` route (null otherwise), `max_fails` its failure accounting (0: off) and
//! `retries` how many other targets a failed request may go to. Each target's requests in
//! flight (`in_flight`, counted on `least_conn` routes) is in the registry's listing for
//! whoever shows it.

use crate::response::Response;
use lb_registry::{Registry, RouteInfo, TargetInfo, STATUS_CLASSES};
use serde::Serialize;
use std::time::SystemTime;

/// One row of `GET /targets`, its fields in the SPEC's order.
#[derive(Serialize)]
pub(crate) struct TargetRow<'a> {
    path: &'a str,
    host: Option<&'a str>,
    ip: String,
    port: u16,
    weight: u16,
    healthy: bool,
    requests: u64,
    last_check: Option<CheckRow<'a>>,
    responses: ClassRow,
    /// The registration's ttl in seconds; null without one.
    ttl_s: Option<u64>,
    /// Whole seconds left (rounded up) before the target leaves unless registered again; null
    /// without a ttl.
    ttl_left_s: Option<u64>,
}

/// Responses a target's requests got, by status class.
#[derive(Serialize)]
struct ClassRow {
    #[serde(rename = "1xx")]
    informational: u64,
    #[serde(rename = "2xx")]
    success: u64,
    #[serde(rename = "3xx")]
    redirection: u64,
    #[serde(rename = "4xx")]
    client_error: u64,
    #[serde(rename = "5xx")]
    server_error: u64,
}

impl From<[u64; STATUS_CLASSES]> for ClassRow {
    fn from(
        [informational, success, redirection, client_error, server_error]: [u64; STATUS_CLASSES],
    ) -> Self {
        ClassRow {
            informational,
            success,
            redirection,
            client_error,
            server_error,
        }
    }
}

/// The last active health check of a target.
#[derive(Serialize)]
struct CheckRow<'a> {
    ok: bool,
    detail: &'a str,
    /// When it ended (Unix milliseconds); null when it ran in the process lb upgraded from.
    at_ms: Option<u64>,
}

/// One row of `GET /routes` (targets: [`RouteTargetRow`]) or of `GET /stats` (targets with
/// their rates).
#[derive(Serialize)]
pub(crate) struct RouteRow<'a, T> {
    host: Option<&'a str>,
    path: &'a str,
    strip_prefix: bool,
    balance: &'static str,
    hash_key: Option<String>,
    /// Consecutive failed answers that take a target out; 0: off.
    max_fails: u16,
    /// Other targets a failed request may go to where that is safe.
    retries: u8,
    targets: Vec<T>,
}

/// One target of a `GET /routes` row.
#[derive(Serialize)]
struct RouteTargetRow {
    ip: String,
    port: u16,
    weight: u16,
    healthy: bool,
}

/// `t` as a `GET /targets` row, as of `now`.
pub(crate) fn target_row(t: &TargetInfo, now: SystemTime) -> TargetRow<'_> {
    TargetRow {
        path: &t.path,
        host: t.host.as_deref(),
        ip: t.addr.ip().to_string(),
        port: t.addr.port(),
        weight: t.weight,
        healthy: t.healthy,
        requests: t.requests,
        last_check: t.last_check.as_ref().map(|c| CheckRow {
            ok: c.ok,
            detail: &c.detail,
            at_ms: t.last_check_at.map(unix_ms),
        }),
        responses: t.responses.into(),
        ttl_s: t.lease.map(|l| l.ttl.as_secs()),
        ttl_left_s: t
            .lease
            .map(|l| u64::try_from(l.left(now).as_millis().div_ceil(1000)).unwrap_or(u64::MAX)),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// `GET /targets`: every target, ordered by prefix, then round-robin order, as of `now`.
pub(crate) fn targets(registry: &Registry, now: SystemTime) -> Response {
    let targets = registry.targets();
    let rows: Vec<TargetRow<'_>> = targets.iter().map(|t| target_row(t, now)).collect();
    encode(&rows, "target")
}

/// `GET /routes`: every prefix in order, empty ones included.
pub(crate) fn routes(registry: &Registry) -> Response {
    let routes = registry.listing();
    let rows: Vec<RouteRow<'_, RouteTargetRow>> = routes
        .iter()
        .map(|r| {
            let targets = r
                .targets
                .iter()
                .map(|t| RouteTargetRow {
                    ip: t.addr.ip().to_string(),
                    port: t.addr.port(),
                    weight: t.weight,
                    healthy: t.healthy,
                })
                .collect();
            route_row(r, targets)
        })
        .collect();
    encode(&rows, "route")
}

/// `r`'s row with `targets` (one per target of `r`, in its order).
pub(crate) fn route_row<T>(r: &RouteInfo, targets: Vec<T>) -> RouteRow<'_, T> {
    RouteRow {
        host: r.host.as_deref(),
        path: &r.path,
        strip_prefix: r.options.strip_prefix,
        balance: r.options.balance.name(),
        hash_key: r.options.balance.hash_key(),
        max_fails: r.options.max_fails.max_fails,
        retries: r.options.retries,
        targets,
    }
}

/// `rows` as a JSON answer (`what` names them in the error, which cannot happen with these
/// types but is answered rather than unwrapped).
pub(crate) fn encode(rows: &impl Serialize, what: &str) -> Response {
    match serde_json::to_string(rows) {
        Ok(body) => Response::text(200, "application/json", body),
        Err(e) => Response::error(500, &format!("cannot encode the {what} list: {e}")),
    }
}
