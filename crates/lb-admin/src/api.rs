//! The control-plane endpoints: which method and path do what, and what they answer.
//!
//! Pure request -> response mapping over the [`Registry`]: no I/O here, so every endpoint is
//! testable without a socket. Only a fully validated [`payload::TargetSpec`] reaches the
//! registry; each change it makes is logged at info with the prefix and the target.

use crate::payload;
use crate::response::Response;
use crate::{metrics, MetricsSource};
use lb_registry::{Registered, Registry};
use serde_json::{json, Value};
use tracing::{debug, info};

/// Methods the read-only endpoints take (HEAD answers as GET would, without the body).
const READ_METHODS: &str = "GET, HEAD";

/// Answers one request. `body` is the complete request body.
pub(crate) fn handle(
    method: &str,
    path: &str,
    body: &[u8],
    registry: &Registry,
    metrics: &MetricsSource,
) -> Response {
    let read = matches!(method, "GET" | "HEAD");
    match path {
        "/register" if method == "POST" => register(body, registry),
        "/deregister" if method == "POST" => deregister(body, registry),
        "/targets" if read => targets(registry),
        "/metrics" if read => Response::text(
            200,
            metrics::CONTENT_TYPE,
            metrics::render(registry, metrics),
        ),
        "/healthz" if read => Response::text(200, "text/plain", "ok".to_string()),
        "/register" | "/deregister" => {
            Response::error(405, &format!("{path} takes POST")).with_allow("POST")
        }
        "/targets" | "/metrics" | "/healthz" => {
            Response::error(405, &format!("{path} takes GET")).with_allow(READ_METHODS)
        }
        _ => Response::error(
            404,
            "unknown endpoint; the control plane serves /register, /deregister, /targets, \
             /metrics and /healthz",
        ),
    }
}

/// `POST /register`: 201 when the target is new, 200 when it was already there.
fn register(body: &[u8], registry: &Registry) -> Response {
    let spec = match payload::parse(body) {
        Ok(spec) => spec,
        Err(message) => return Response::error(400, &message),
    };
    match registry.register(&spec.path, spec.addr) {
        Ok(Registered::New) => {
            info!(path = %spec.path, target = %spec.addr, "target registered");
            Response::json(201, &spec.reply("registered"))
        }
        Ok(Registered::Existing) => {
            debug!(path = %spec.path, target = %spec.addr, "target was already registered");
            Response::json(200, &spec.reply("already registered"))
        }
        Err(error) => Response::error(400, &error.to_string()),
    }
}

/// `POST /deregister`: 200 when the target was removed, 404 when it was not registered there.
fn deregister(body: &[u8], registry: &Registry) -> Response {
    let spec = match payload::parse(body) {
        Ok(spec) => spec,
        Err(message) => return Response::error(400, &message),
    };
    match registry.deregister(&spec.path, spec.addr) {
        Ok(true) => {
            info!(path = %spec.path, target = %spec.addr, "target deregistered");
            Response::json(200, &spec.reply("deregistered"))
        }
        Ok(false) => Response::error(
            404,
            &format!("{} is not registered on {}", spec.addr, spec.path),
        ),
        Err(error) => Response::error(400, &error.to_string()),
    }
}

/// `GET /targets`: every target, ordered by prefix, then round-robin order.
fn targets(registry: &Registry) -> Response {
    let list: Vec<Value> = registry
        .targets()
        .into_iter()
        .map(|t| {
            json!({
                "path": t.path,
                "ip": t.addr.ip().to_string(),
                "port": t.addr.port(),
                "healthy": t.healthy,
                "last_check": t.last_check.as_ref().map(|c| json!({"ok": c.ok, "detail": c.detail})),
                "requests": t.requests,
            })
        })
        .collect();
    Response::json(200, &Value::Array(list))
}
