//! One HTTP/2 stream, one request: its head made into the head lb forwards (`lb-http`) -> route
//! and pick (`route`, the same cursor as HTTP/1.1) -> serve it (`exchange`, through the stream's
//! [`H2Client`]) -> [`finish`]: lb's own answer if one is due, the metrics and the access log
//! line.
//!
//! Invariants: every stream gets exactly one answer or a reset, and one log line, both from
//! `finish` (a stream the client reset before its answer is logged, not answered); a fault on one
//! stream never touches another stream or the connection.

use super::client::H2Client;
use super::flood::Abuse;
use super::Link;
use crate::access_log::Entry;
use crate::exchange::{self, Lane, Outcome, Request, BODY_TOO_LARGE};
use crate::policy::{self, Loudness};
use crate::request_id;
use crate::route::{self, Routed};
use crate::worker::Worker;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, COOKIE};
use http::request::Parts;
use http::{Response, StatusCode};
use lb_http::{
    http2_request, write_request_head, BodyKind, ClientAddr, ErrorKind, Header, HttpError,
    MAX_HEADERS,
};
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info};

const TOO_MANY_FIELDS: HttpError =
    HttpError::new(ErrorKind::HeadersTooLarge, "too many header fields");

const CONNECT: HttpError = HttpError::new(
    ErrorKind::NotImplemented,
    "CONNECT is not supported: lb is not a forward proxy",
);

/// What a stream's log line says besides its outcome.
struct Line {
    link: Link,
    /// When the stream's head arrived.
    started: Instant,
    /// `METHOD target`, kept only when the access log is on.
    request: String,
    /// Kept only when the access log is on.
    request_id: String,
}

/// Serves one stream of `peer`'s connection to its end; a stream the client reset after lb
/// had routed it spends from the connection's reset budget (`abuse`).
pub(super) async fn serve(
    worker: &Worker,
    abuse: &Abuse,
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    link: Link,
) {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let end_stream = body.is_end_stream();
    let mut client = H2Client::new(worker, body, respond);
    let mut lane = Lane {
        timer: pin!(sleep_until(started)),
        out: worker.buffers.take(),
        up: worker.buffers.take(),
    };
    let mut line = Line {
        link,
        started,
        request: String::new(),
        request_id: String::new(),
    };
    match prepare(worker, &parts, end_stream, &mut lane.out, &mut line) {
        Ok(mut req) => {
            worker.stats.request();
            worker.stats.h2_stream();
            let served = exchange::serve(worker, &mut client, &mut lane, &mut req).await;
            if client.reset_by_client().await {
                abuse.stream_reset();
            }
            let routed = Some(&req.routed);
            finish(
                worker,
                &mut client,
                &line,
                served.outcome,
                routed,
                served.sent,
            );
        }
        Err(error) => finish(worker, &mut client, &line, Outcome::Own(error), None, 0),
    }
    worker.buffers.give(lane.out);
    worker.buffers.give(lane.up);
}

/// The stream's request made into the upstream head (in `out`), routed and picked, or the error
/// lb answers with; never any I/O.
fn prepare(
    worker: &Worker,
    parts: &Parts,
    end_stream: bool,
    out: &mut Vec<u8>,
    line: &mut Line,
) -> Result<Request, HttpError> {
    let method = parts.method.as_str();
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    if worker.cfg.access_log.is_some() {
        line.request = format!("{method} {target}");
    }
    if parts.method == http::Method::CONNECT {
        return Err(CONNECT);
    }
    if parts.headers.len() > MAX_HEADERS {
        return Err(TOO_MANY_FIELDS);
    }
    // RFC 9113 §8.2.3: cookie crumbs are joined with "; " before going to HTTP/1.1.
    let mut cookie = Vec::new();
    let mut fields = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if name == COOKIE {
            if !cookie.is_empty() {
                cookie.extend_from_slice(b"; ");
            }
            cookie.extend_from_slice(value.as_bytes());
        } else {
            fields.push(Header {
                name: name.as_str(),
                value: value.as_bytes(),
            });
        }
    }
    if !cookie.is_empty() {
        fields.push(Header {
            name: COOKIE.as_str(),
            value: &cookie,
        });
    }
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let head = http2_request(method, target, &fields, authority, end_stream)?;
    if let (BodyKind::Length(len), Some(max)) = (head.body, worker.cfg.tuning.max_body()) {
        if len > max {
            return Err(BODY_TOO_LARGE);
        }
    }
    let own;
    let id = match request_id::kept(&fields) {
        Some(id) => id,
        None => {
            own = worker.ids.next();
            own.as_bytes()
        }
    };
    if worker.cfg.access_log.is_some() {
        line.request_id = String::from_utf8_lossy(id).into_owned();
    }
    let peer_text = ClientAddr::new(line.link.addr.ip()).with_scheme(line.link.scheme);
    let routed = route::route(worker, &head, line.link.addr.ip(), |lead, rest| {
        out.clear();
        write_request_head(&head, lead, rest, &peer_text, id, out);
    })?;
    Ok(Request {
        routed,
        body: head.body,
        head_request: parts.method == http::Method::HEAD,
        idempotent: parts.method.is_idempotent(),
        expect_continue: head.expect_continue,
        upgrade: false,
        keep_alive: true,
        started: Instant::now(),
    })
}

/// Ends one stream: lb's own answer when one is due, the counters and the one log line.
fn finish(
    worker: &Worker,
    client: &mut H2Client<'_>,
    line: &Line,
    outcome: Outcome,
    routed: Option<&Routed>,
    sent: u64,
) {
    let peer = line.link.addr;
    let target = routed.map(|r| r.picked.addr);
    let (status, bytes) = match outcome {
        Outcome::Own(error) => {
            let status = error.kind.status();
            worker.stats.response(status);
            if let Some(routed) = routed {
                routed.picked.answered(worker, status);
            }
            let id = worker.cfg.id;
            match policy::loudness(error.kind) {
                Loudness::Quiet => debug!(worker = id, %peer, ?target, %error, "request refused"),
                Loudness::Loud => info!(worker = id, %peer, ?target, %error, "request failed"),
            }
            answer(client, error);
            (status, error.detail.len() as u64 + 1)
        }
        Outcome::Relayed { status, bytes, .. } => (status, bytes),
        // An HTTP/2 stream asks for no upgrade, so it never becomes a tunnel.
        Outcome::Tunnel { .. } | Outcome::ClientGone => return,
    };
    let elapsed = line.started.elapsed();
    if let Some(prefix) = routed.and_then(|r| r.picked.prefix()) {
        (worker.route_clock).observe(&worker.stats.routes, prefix, status, elapsed);
    }
    log(worker, line, status, target, (bytes, sent), elapsed);
}

/// lb's own answer to `error` on this stream: the same status and `text/plain` sentence as
/// over HTTP/1.1. A client that reset the stream meanwhile gets nothing.
fn answer(client: &mut H2Client<'_>, error: HttpError) {
    let body = Bytes::from(format!("{}\n", error.detail));
    let mut resp = Response::new(());
    *resp.status_mut() =
        StatusCode::from_u16(error.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let fields = resp.headers_mut();
    fields.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    fields.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    // A sentence fits the stream's initial window, so queueing it whole is bounded.
    if let Ok(mut send) = client.respond.send_response(resp, false) {
        let _ = send.send_data(body, true);
    }
}

/// Writes the stream's access log line, when the access log is on; `bytes` are (to the client,
/// to the upstream).
fn log(
    worker: &Worker,
    line: &Line,
    status: u16,
    target: Option<SocketAddr>,
    bytes: (u64, u64),
    elapsed: Duration,
) {
    if let Some(log) = &worker.cfg.access_log {
        log.log(Entry {
            worker: worker.cfg.id,
            client: line.link.addr.ip(),
            request: &line.request,
            status,
            target,
            bytes: bytes.0,
            bytes_up: bytes.1,
            elapsed,
            request_id: &line.request_id,
            tls: line.link.tls,
        });
    }
}
