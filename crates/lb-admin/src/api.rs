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
//! With an admin token, every call except `GET /healthz` must carry `Authorization: Bearer
//! <token>`; anything else is `401` and touches nothing.

use crate::head::Head;
use crate::response::Response;
use crate::{auth, listing, metrics, ControlPlane};
use lb_registry::{Change, Deregistration, Expiry, Refused, Registered, Registration, Terms};
use std::time::SystemTime;
use tracing::{debug, error, info, warn};

/// Methods the read-only endpoints take (HEAD answers as GET would, without the body).
const READ_METHODS: &str = "GET, HEAD";

/// Answers one request. `body` is the complete request body.
pub(crate) fn handle(head: &Head, body: &[u8], plane: &ControlPlane) -> Response {
    let (method, path) = (head.method.as_str(), head.path.as_str());
    let read = matches!(method, "GET" | "HEAD");
    if path != "/healthz" {
        if let Some(token) = &plane.token {
            if !auth::authorized(head.authorization.as_deref(), token) {
                warn!(method, path, "admin call without a valid token refused");
                return Response::error(401, "this call needs Authorization: Bearer <admin token>")
                    .with_challenge();
            }
        }
    }
    match path {
        "/register" if method == "POST" => register(body, plane),
        "/deregister" if method == "POST" => deregister(body, plane),
        "/targets" if read => listing::targets(&plane.registry, SystemTime::now()),
        "/routes" if read => listing::routes(&plane.registry),
        "/metrics" if read => Response::text(
            200,
            metrics::CONTENT_TYPE,
            metrics::render(&plane.registry, &plane.metrics),
        ),
        "/healthz" if read => Response::text(200, "text/plain", "ok".to_string()),
        #[cfg(debug_assertions)]
        "/debug/panic" if method == "POST" => debug_panic(&head.query, plane),
        "/register" | "/deregister" => {
            Response::error(405, &format!("{path} takes POST")).with_allow("POST")
        }
        "/targets" | "/routes" | "/metrics" | "/healthz" => {
            Response::error(405, &format!("{path} takes GET")).with_allow(READ_METHODS)
        }
        _ => Response::error(
            404,
            "unknown endpoint; the control plane serves /register, /deregister, /targets, \
             /routes, /metrics and /healthz",
        ),
    }
}

/// Applies `change`, saved first by the persistence hook when there is one. A change that cannot
/// be saved is not applied, and answered `500`; the sentence says "undone" as it always did, since
/// to the operator the change did not happen. An invalid change is answered `400`.
fn apply<C: Change>(plane: &ControlPlane, change: &C) -> Result<C::Outcome, Response> {
    let applied = match &plane.persist {
        Some(save) => plane.registry.apply_saved(change, |export| save(export)),
        None => plane.registry.apply(change).map_err(Refused::Invalid),
    };
    applied.map_err(|refused| match refused {
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

/// `POST /register`: 201 when the target is new, 200 when it was already there (renewed: its
/// lease starts afresh, and the weight or ttl the body gives replaces the stored one).
fn register(body: &[u8], plane: &ControlPlane) -> Response {
    let spec = match crate::payload::parse(body) {
        Ok(spec) => spec,
        Err(message) => return Response::error(400, &message),
    };
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
fn deregister(body: &[u8], plane: &ControlPlane) -> Response {
    let spec = match crate::payload::parse(body) {
        Ok(spec) => spec,
        Err(message) => return Response::error(400, &message),
    };
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
pub(crate) fn expire(plane: &ControlPlane, now: SystemTime) {
    if !plane.registry.expiry_due(now) {
        return;
    }
    match apply(plane, &Expiry { now }) {
        Ok(expired) => {
            for (path, target) in expired {
                info!(%path, %target, "registration expired (no heartbeat within its ttl), target removed");
            }
        }
        Err(refused) => debug!(
            status = refused.status(),
            "expiry not applied, retried next tick"
        ),
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
