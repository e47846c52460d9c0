//! The control-plane endpoints: which method and path do what, and what they answer.
//!
//! Pure request -> response mapping over the [`ControlPlane`]: no socket here, so every endpoint
//! is testable without one. Only a fully validated [`payload::TargetSpec`] reaches the
//! registry; each change it makes is logged at info with the prefix and the target, and is saved
//! by the persistence hook (the state file) before it is applied
//! ([`lb_registry::Registry::apply_saved`]): a change that cannot be saved is not applied and is
//! answered `500`, so a `2xx` always means "durable", and nobody ever routes with a change that
//! the file does not hold.
//!
//! With an admin token, every call except `GET /healthz` and `GET /` must carry `Authorization:
//! Bearer <token>`; anything else is `401` and touches nothing. `GET /` is the status page, the
//! same static text for everyone: it holds no data and is what asks for the token, which it
//! then sends with each `GET /stats`.

use crate::head::Head;
use crate::response::Response;
use crate::{auth, cluster, listing, metrics, stats, ControlPlane};
use lb_registry::{Change, Deregistration, Expiry, Refused, Registered, Registration, Terms};
use std::time::SystemTime;
use tracing::{debug, error, info, warn};

/// Methods the read-only endpoints take (HEAD answers as GET would, without the body).
const READ_METHODS: &str = "GET, HEAD";

/// The status page: one self-contained file (inline CSS and JS, no external URL).
pub(crate) const STATUS_PAGE: &str = include_str!("status.html");

/// What the browser lets the status page do: its own inline script and style, and requests to
/// the admin listener only (`/stats`). So even a route name that slipped past the page's
/// escaping could load nothing and send the token nowhere.
const STATUS_PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Endpoints that answer without the admin token: the liveness probe, and the page that asks
/// for the token (it carries no data of its own).
fn open_without_token(path: &str) -> bool {
    matches!(path, "/healthz" | "/")
}

/// Answers one request. `body` is the complete request body.
pub(crate) async fn handle(head: &Head, body: &[u8], plane: &ControlPlane) -> Response {
    let (method, path) = (head.method.as_str(), head.path.as_str());
    let read = matches!(method, "GET" | "HEAD");
    if !open_without_token(path) {
        if let Some(token) = &plane.token {
            if !auth::authorized(head.authorization.as_deref(), token) {
                warn!(method, path, "admin call without a valid token refused");
                return Response::error(401, "this call needs Authorization: Bearer <admin token>")
                    .with_challenge();
            }
        }
    }
    match path {
        "/register" | "/deregister" if method == "POST" => {
            let spec = match crate::payload::parse(body) {
                Ok(spec) => spec,
                Err(message) => return Response::error(400, &message),
            };
            match (&plane.cluster, path) {
                (Some(c), "/register") => cluster::register(spec, c).await,
                (Some(c), _) => cluster::deregister(spec, c).await,
                (None, "/register") => register(spec, plane),
                (None, _) => deregister(spec, plane),
            }
        }
        "/cluster" if read => cluster::status(plane.cluster.as_deref()),
        "/targets" if read => listing::targets(&plane.registry, SystemTime::now()),
        "/routes" if read => listing::routes(&plane.registry),
        "/metrics" if read => Response::text(
            200,
            metrics::CONTENT_TYPE,
            metrics::render(&plane.registry, &plane.metrics),
        ),
        "/healthz" if read => Response::text(200, "text/plain", "ok".to_string()),
        "/stats" if read => stats::answer(plane, SystemTime::now()),
        "/" if read => Response::text(200, "text/html; charset=utf-8", STATUS_PAGE.to_string())
            .with_policy(STATUS_PAGE_POLICY),
        #[cfg(debug_assertions)]
        "/debug/panic" if method == "POST" => debug_panic(&head.query, plane),
        "/register" | "/deregister" => {
            Response::error(405, &format!("{path} takes POST")).with_allow("POST")
        }
        "/targets" | "/routes" | "/metrics" | "/healthz" | "/stats" | "/cluster" | "/" => {
            Response::error(405, &format!("{path} takes GET")).with_allow(READ_METHODS)
        }
        _ => Response::error(
            404,
            "unknown endpoint; the control plane serves /, /register, /deregister, /targets, \
             /routes, /stats, /cluster, /metrics and /healthz",
        ),
    }
}

/// Applies `change`, saved first by the persistence hook when there is one. A change that cannot
/// be saved is not applied, and answered `500`; the sentence says "undone" as it always did, since
/// to the operator the change did not happen. An invalid change is answered `400`.
fn apply<C: Change>(plane: &ControlPlane, change: &C) -> Result<C::Outcome, Response> {
    saved_first(plane, change).map_err(|refused| match refused {
        Refused::Invalid(error) => Response::error(400, &error.to_string()),
        Refused::NotSaved(why) => {
            error!(%why, "registry change not saved, so not applied");
            Response::error(
                500,
                &format!("the change could not be saved ({why}), so it was undone"),
            )
        }
    })
}

/// Applies `change` through the registry's one door, saved first by the persistence hook when
/// there is one; what was refused, and why, is the caller's to answer or log.
fn saved_first<C: Change>(plane: &ControlPlane, change: &C) -> Result<C::Outcome, Refused<String>> {
    match &plane.persist {
        Some(save) => plane.registry.apply_saved(change, |export| save(export)),
        None => plane.registry.apply(change).map_err(Refused::Invalid),
    }
}

/// `POST /register`: 201 when the target is new, 200 when it was already there (renewed: its
/// lease starts afresh, and the weight or ttl the body gives replaces the stored one).
fn register(spec: crate::payload::TargetSpec, plane: &ControlPlane) -> Response {
    let change = Registration::api(&spec.route, spec.addr, spec.terms, SystemTime::now());
    match apply(plane, &change) {
        Ok(Registered::New) => {
            info!(path = %spec.route, target = %spec.addr, "target registered");
            Response::json(201, &spec.reply("registered"))
        }
        Ok(Registered::Adopted) => {
            // Already served because of the configuration; the API now holds it too, which
            // the state file records, so that a reload dropping it from the file keeps it.
            info!(path = %spec.route, target = %spec.addr, "configured target registered");
            Response::json(200, &spec.reply("already registered"))
        }
        Ok(Registered::Renewed) => {
            debug!(path = %spec.route, target = %spec.addr, "registration renewed");
            Response::json(200, &spec.reply("already registered"))
        }
        Ok(Registered::Existing) => {
            debug!(path = %spec.route, target = %spec.addr, "target was already registered");
            Response::json(200, &spec.reply("already registered"))
        }
        Err(refused) => refused,
    }
}

/// `POST /deregister`: 200 when the target was removed, 404 when it was not registered there.
/// When it was the API's last target on a prefix the configuration does not name, the prefix
/// goes too (the registry decides), and its requests fall through to a shorter one.
fn deregister(spec: crate::payload::TargetSpec, plane: &ControlPlane) -> Response {
    if spec.terms != Terms::default() {
        return Response::error(400, "weight and ttl belong to /register, not /deregister");
    }
    let change = Deregistration {
        path: &spec.route,
        addr: spec.addr,
    };
    match apply(plane, &change) {
        Ok(true) => {
            info!(path = %spec.route, target = %spec.addr, "target deregistered");
            Response::json(200, &spec.reply("deregistered"))
        }
        Ok(false) => Response::error(
            404,
            &format!("{} is not registered on {}", spec.addr, spec.route),
        ),
        Err(refused) => refused,
    }
}

/// Ends the leases that ran out by `now` (the expiry tick, see `expiry`): saved first like any
/// change, so a target whose expiry cannot be saved keeps routing until a later tick saves it.
/// In cluster mode etcd's leases expire registrations, and the watch removes them. Returns why
/// the state file refused the change; the tick decides how often to say so (it retries every
/// tick, and one log line per tick would flood the log while the disk stays full).
pub(crate) fn expire(plane: &ControlPlane, now: SystemTime) -> Result<(), String> {
    if plane.cluster.is_some() || !plane.registry.expiry_due(now) {
        return Ok(());
    }
    match saved_first(plane, &Expiry { now }) {
        Ok(expired) => {
            for (path, target) in expired {
                info!(%path, %target, "registration expired (no heartbeat within its ttl), target removed");
            }
            Ok(())
        }
        Err(Refused::NotSaved(why)) => Err(why),
        Err(Refused::Invalid(error)) => {
            debug!(%error, "expiry not applied, retried next tick");
            Ok(())
        }
    }
}

/// `POST /debug/panic?worker=N` (debug builds only): makes worker N panic, to test respawning.
#[cfg(debug_assertions)]
fn debug_panic(query: &str, plane: &ControlPlane) -> Response {
    let worker = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("worker="))
        .and_then(|n| n.parse::<usize>().ok());
    let (Some(worker), Some(hook)) = (worker, &plane.panic_hook) else {
        return Response::error(400, "use POST /debug/panic?worker=N");
    };
    if hook(worker) {
        warn!(worker, "debug hook: making a worker panic");
        Response::json(
            200,
            &serde_json::json!({"worker": worker, "status": "panicking"}),
        )
    } else {
        Response::error(404, &format!("no worker {worker}"))
    }
}
