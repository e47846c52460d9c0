//! One request served to its end, whatever framing brought it: upstream pool -> forward the head
//! -> stream the body -> read the answer -> stream it back, with the timeouts and the retry rule.
//!
//! The request arrives routed (`route`) with its upstream head already written; the client side
//! is a [`Client`], which alone knows how the client's bytes are framed (the HTTP/1.1 connection
//! in `h1` today, an HTTP/2 stream later). The exchange never writes an answer of lb's own: it
//! returns exactly one [`Outcome`], and the connection that drives it answers, logs and decides
//! what happens to the client connection, once.
//!
//! Invariants: a request is retried only as [`policy::retry`] says; an upstream connection goes
//! back to the pool only after a complete exchange that left no stray bytes; once any byte of the
//! upstream's response has reached the client, the outcome is [`Outcome::Relayed`] (never an
//! answer of lb's own).

use crate::policy::{self, Attempt, Body, Failure, Retry};
use crate::relay::{fill, write_all, RelayError};
use crate::route::Routed;
use crate::timer::within;
use crate::upstream;
use crate::upstream_pool::Upstream;
use crate::worker::Worker;
use lb_http::{
    parse_response, BodyKind, ErrorKind, HttpError, ResponseHead, EMPTY_HEADER, MAX_HEADERS,
};
use std::io;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant, Sleep};
use tracing::{debug, info};

/// How long lb waits for an upstream's `100 Continue` before sending its own, so a client that
/// waits for one is not stalled by an upstream that never sends interim responses.
const EXPECT_CONTINUE_WAIT: Duration = Duration::from_secs(1);

const CLOSED_EARLY: HttpError = HttpError::new(
    ErrorKind::UpstreamReset,
    "the upstream closed the connection without a response",
);

/// lb's answer to a request body over `--max-body`.
pub(crate) const BODY_TOO_LARGE: HttpError = HttpError::new(
    ErrorKind::BodyTooLarge,
    "request body is larger than allowed",
);

/// The client side of an exchange. How the client's bytes are framed, and which client
/// timeouts apply, is its business; the exchange only hands it bytes and upstream sockets.
pub(crate) trait Client {
    /// RFC 9110 §15.2: whether this client may be sent interim (1xx) responses.
    fn accepts_interim(&self) -> bool;

    /// Writes the client's form of the upstream response head `head` into `out` (or, for a
    /// client whose heads are not bytes, keeps it until [`Client::send`] or
    /// [`Client::relay_response`]); `keep_alive` says whether the client connection stays open
    /// after this response.
    fn response_head(&mut self, head: &ResponseHead<'_, '_>, keep_alive: bool, out: &mut Vec<u8>);

    /// Sends `head` (an interim response head written by [`Client::response_head`]).
    async fn send(&mut self, head: &[u8]) -> io::Result<()>;

    /// Sends lb's own `100 Continue`, for a client that waits for one before its body.
    async fn send_continue(&mut self) -> io::Result<()>;

    /// Streams the request body, of framing `body`, to `upstream` after `head` (bytes that go
    /// first: the upstream request head when it is still unsent). Writes to the upstream wait at
    /// most `write_timeout`. Returns the body bytes sent.
    async fn send_body(
        &mut self,
        upstream: &mut TcpStream,
        head: &mut Vec<u8>,
        body: BodyKind,
        write_timeout: Duration,
    ) -> Result<u64, RelayError>;

    /// Sends the final response head in `head` and streams the response body, of framing
    /// `body`, from `upstream` (its first bytes already in `buf`; bytes past its end stay
    /// there). Reads from the upstream wait at most `read_timeout`. Returns the body bytes
    /// sent.
    async fn relay_response(
        &mut self,
        upstream: &mut TcpStream,
        head: &mut Vec<u8>,
        buf: &mut Vec<u8>,
        body: BodyKind,
        read_timeout: Duration,
    ) -> Result<u64, RelayError>;

    /// After a `101`: sends `to_client` (the `101` head and whatever the upstream already sent
    /// in the new protocol), then carries bytes both ways until either side closes. Returns the
    /// bytes carried (to the client, to the upstream).
    async fn tunnel(
        &mut self,
        upstream: &mut TcpStream,
        to_client: &[u8],
        write_timeout: Duration,
    ) -> io::Result<(u64, u64)>;
}

/// What an exchange borrows from the connection that drives it.
pub(crate) struct Lane<'t> {
    /// The connection's one timer ([`within`]).
    pub(crate) timer: Pin<&'t mut Sleep>,
    /// Heads being written: the upstream request head (kept until a bodiless request is
    /// answered, so a stale connection can be retried), then the client's response head.
    pub(crate) out: Vec<u8>,
    /// Upstream bytes not yet forwarded.
    pub(crate) up: Vec<u8>,
}

/// A request as the exchange needs it, whatever framing brought it. Its upstream head is in
/// [`Lane::out`].
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) routed: Routed,
    /// The request body's framing towards the upstream.
    pub(crate) body: BodyKind,
    /// `HEAD`: the response has no body whatever its head says.
    pub(crate) head_request: bool,
    /// RFC 9110 §9.2.2: sending it twice has the effect of sending it once.
    pub(crate) idempotent: bool,
    pub(crate) expect_continue: bool,
    /// The client asked to switch protocols: a `101` is an answer, not an error.
    pub(crate) upgrade: bool,
    /// The client connection may stay open after the response (as the request asked).
    pub(crate) keep_alive: bool,
    /// When the head was complete: request latency is measured from here.
    pub(crate) started: Instant,
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The upstream's response went to the client, whole (`complete`) or cut short.
    Relayed {
        status: u16,
        /// Response body bytes sent to the client.
        bytes: u64,
        complete: bool,
        /// The response head told the client that the connection closes.
        close: bool,
        /// The response body's framing, as the upstream sent it.
        body: BodyKind,
    },
    /// A `101` turned the connection into a tunnel, now closed, after carrying these bytes
    /// (0 both ways when it ended in an error).
    Tunnel { to_client: u64, to_upstream: u64 },
    /// lb answers with its own response: nothing of a response has reached the client.
    Own(HttpError),
    /// The client went away; nobody to answer.
    ClientGone,
}

/// An exchange's result: its outcome, and what became of the request body on the client
/// connection. The target it last went to is in the request's [`Routed`].
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) outcome: Outcome,
    pub(crate) body: Body,
    /// Request body bytes that went upstream.
    pub(crate) sent: u64,
}

/// One parse of the upstream's bytes.
#[derive(Debug)]
enum Head {
    /// Not a whole head yet.
    Incomplete,
    /// A 1xx other than 101, rewritten into `out` when it is to be `forward`ed.
    Interim { status: u16, forward: bool },
    /// The final head, rewritten into `out`.
    Final(Response),
}

/// The upstream's final response head, already rewritten into `out`.
#[derive(Debug, Clone, Copy)]
struct Response {
    status: u16,
    body: BodyKind,
    /// The upstream connection may be pooled after the body.
    reusable: bool,
    /// The client connection closes after this response.
    close: bool,
}

/// What reading the upstream's answer produced.
#[derive(Debug)]
enum Answer {
    /// A `100 Continue` (already passed on to the client), when asked to stop there.
    Continue,
    Final(Response),
}

/// Why no final response head came back from an upstream.
#[derive(Debug)]
enum HeadError {
    /// The upstream closed or failed before sending a single byte, and no interim response
    /// was passed on: a retry may be safe ([`policy::retry`]).
    ClosedEarly,
    /// The client went away while an interim response or lb's own `100` was sent.
    ClientGone,
    Fault(HttpError),
}

/// The upstream connection failed after part of the request or response went through.
const UPSTREAM_LOST: HttpError = HttpError::new(
    ErrorKind::UpstreamReset,
    "the upstream connection failed mid-exchange",
);

/// Serves `req` to its end through `client`. A retry changes `req`'s pick, so afterwards it
/// names the target the request last went to. The request is borrowed, not moved, so that it
/// is not copied in and out of the exchange on every request.
pub(crate) async fn serve<C: Client>(
    worker: &Worker,
    client: &mut C,
    lane: &mut Lane<'_>,
    req: &mut Request,
) -> Served {
    let body = Body::unread(req.body);
    let mut exchange = Exchange {
        worker,
        lane,
        req,
        body,
        sent: 0,
    };
    let outcome = exchange.run(client).await;
    Served {
        outcome,
        body: exchange.body,
        sent: exchange.sent,
    }
}

struct Exchange<'e, 't> {
    worker: &'e Worker,
    lane: &'e mut Lane<'t>,
    req: &'e mut Request,
    /// What became of the request body: read whole once `send_body` succeeded.
    body: Body,
    /// Request body bytes sent upstream.
    sent: u64,
}

impl Exchange<'_, '_> {
    async fn run<C: Client>(&mut self, client: &mut C) -> Outcome {
        let (mut upstream, resp) = match self.forward(client).await {
            Ok(answered) => answered,
            Err(HeadError::ClientGone) => return Outcome::ClientGone,
            Err(HeadError::ClosedEarly) => return Outcome::Own(CLOSED_EARLY),
            Err(HeadError::Fault(error)) => return Outcome::Own(error),
        };
        let picked = &self.req.routed.picked;
        self.worker.stats.response(resp.status);
        picked.answered(self.worker, resp.status);
        if resp.status == 101 {
            // The 101 head is in `out`, followed by whatever the upstream already sent in the
            // new protocol; from here on bytes flow both ways untouched.
            let head_len = self.lane.out.len() as u64;
            self.lane.out.extend_from_slice(&self.lane.up);
            let write = self.req.routed.upstream_timeout;
            let result = client.tunnel(&mut upstream, &self.lane.out, write).await;
            debug!(worker = self.worker.cfg.id, upstream = %picked.addr, ?result, "tunnel closed");
            let (to_client, to_upstream) = result.unwrap_or_default();
            return Outcome::Tunnel {
                to_client: to_client.saturating_sub(head_len),
                to_upstream,
            };
        }
        let relayed = client
            .relay_response(
                &mut upstream,
                &mut self.lane.out,
                &mut self.lane.up,
                resp.body,
                self.req.routed.upstream_timeout,
            )
            .await;
        self.worker.stats.latency(self.req.started.elapsed());
        let complete = relayed.is_ok();
        if let Err(error) = &relayed {
            debug!(worker = self.worker.cfg.id, upstream = %picked.addr, ?error, "response relay failed");
        } else if resp.reusable && self.lane.up.is_empty() {
            self.worker.pool.give(picked.addr, upstream);
        }
        self.lane.up.clear();
        Outcome::Relayed {
            status: resp.status,
            bytes: relayed.unwrap_or(0),
            complete,
            close: resp.close,
            body: resp.body,
        }
    }

    /// Connects (or reuses a pooled connection), sends the request and reads the final
    /// response head, retrying where [`policy::retry`] allows.
    async fn forward<C: Client>(
        &mut self,
        client: &mut C,
    ) -> Result<(Upstream, Response), HeadError> {
        let mut moves_left = self.req.routed.retries;
        let mut fresh = false;
        // The target that failed before the request moved on, and why: named once the next
        // one answered, so the log says what happened rather than what was about to be tried.
        let mut failed = None;
        self.lane.up.clear();
        loop {
            let req = &self.req;
            let (bodiless, idempotent) = (req.body == BodyKind::Empty, req.idempotent);
            let attempt = |reused| Attempt {
                reused,
                bodiless,
                idempotent,
                moves_left,
            };
            let connected = upstream::connect(
                self.worker,
                &req.routed.picked,
                req.routed.connect_timeout,
                fresh,
            )
            .await;
            let (mut upstream, reused) = match connected {
                Ok(connected) => connected,
                Err(error) => match policy::retry(Failure::Connect, attempt(false)) {
                    Retry::Reroute => match req.routed.picked.reroute(self.worker) {
                        Some(next) => {
                            debug!(worker = self.worker.cfg.id, upstream = %req.routed.picked.addr, next = %next.addr, %error, "target marked down; trying the next one");
                            failed = Some((req.routed.picked.addr, error.detail));
                            self.req.routed.picked = next;
                            moves_left = moves_left.saturating_sub(1);
                            fresh = false;
                            continue;
                        }
                        // With no other healthy target, the client hears about the failure it met.
                        None => return Err(HeadError::Fault(error)),
                    },
                    _ => return Err(HeadError::Fault(error)),
                },
            };
            match self.send_and_answer(client, &mut upstream).await {
                Ok(resp) => {
                    if let Some((addr, why)) = failed {
                        info!(worker = self.worker.cfg.id, failed = %addr, reason = why, upstream = %self.req.routed.picked.addr, status = resp.status, "retry succeeded");
                    }
                    return Ok((upstream, resp));
                }
                Err(HeadError::ClosedEarly) => {
                    match policy::retry(Failure::ClosedEarly, attempt(reused)) {
                        Retry::Fresh => fresh = true,
                        Retry::NextTarget | Retry::Reroute => {
                            let Some(next) = self.req.routed.picked.repick() else {
                                return Err(HeadError::ClosedEarly);
                            };
                            debug!(worker = self.worker.cfg.id, upstream = %self.req.routed.picked.addr, next = %next.addr, "the upstream closed without a response; retrying on the next target");
                            failed = Some((self.req.routed.picked.addr, CLOSED_EARLY.detail));
                            self.req.routed.picked = next;
                            moves_left = moves_left.saturating_sub(1);
                            fresh = false;
                        }
                        Retry::Answer => return Err(HeadError::ClosedEarly),
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Sends the head (in `out`) and the body, honouring `Expect: 100-continue`, and reads the
    /// final response head. `out` keeps the request head until a bodiless request got its
    /// answer, so a stale connection can be retried.
    async fn send_and_answer<C: Client>(
        &mut self,
        client: &mut C,
        upstream: &mut TcpStream,
    ) -> Result<Response, HeadError> {
        let upstream_write = self.req.routed.upstream_timeout;
        if self.req.body == BodyKind::Empty {
            write_all(upstream, &self.lane.out, upstream_write)
                .await
                .map_err(|_| HeadError::ClosedEarly)?;
            return self.read_final(client, upstream).await;
        }
        if self.req.expect_continue {
            // RFC 9110 §10.1.1: the client waits for 100 before sending the body. Pass the head
            // on, and let the upstream's answer (or lb's own 100 after a short wait) decide.
            write_all(upstream, &self.lane.out, upstream_write)
                .await
                .map_err(|_| HeadError::Fault(UPSTREAM_LOST))?;
            self.lane.out.clear();
            match timeout(
                EXPECT_CONTINUE_WAIT,
                self.read_answer(client, upstream, true),
            )
            .await
            {
                Ok(Ok(Answer::Continue)) => {}
                Ok(Ok(Answer::Final(mut resp))) => {
                    // Final answer before the body: the body's fate is unknown on both
                    // connections, so neither is reused.
                    resp.reusable = false;
                    resp.close = true;
                    return Ok(resp);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    client
                        .send_continue()
                        .await
                        .map_err(|_| HeadError::ClientGone)?;
                }
            }
        }
        self.sent = client
            .send_body(upstream, &mut self.lane.out, self.req.body, upstream_write)
            .await
            .map_err(|e| match e {
                RelayError::Invalid(error) => HeadError::Fault(error),
                RelayError::TooLarge => HeadError::Fault(BODY_TOO_LARGE),
                RelayError::Source => HeadError::ClientGone,
                RelayError::Sink => HeadError::Fault(UPSTREAM_LOST),
            })?;
        self.body = Body::Done;
        self.read_final(client, upstream).await
    }

    /// Reads the final response head, passing interim responses on.
    async fn read_final<C: Client>(
        &mut self,
        client: &mut C,
        upstream: &mut TcpStream,
    ) -> Result<Response, HeadError> {
        match self.read_answer(client, upstream, false).await? {
            Answer::Final(resp) => Ok(resp),
            Answer::Continue => Err(HeadError::Fault(HttpError::new(
                ErrorKind::UpstreamInvalid,
                "unexpected interim response",
            ))),
        }
    }

    /// Reads the upstream's response head within the upstream timeout. Interim 1xx responses go
    /// to clients that accept them and are dropped for others; with `stop_at_continue`, a
    /// `100 Continue` ends the read. The final head is rewritten into `out`.
    async fn read_answer<C: Client>(
        &mut self,
        client: &mut C,
        upstream: &mut TcpStream,
        stop_at_continue: bool,
    ) -> Result<Answer, HeadError> {
        let mut deadline = None;
        // After an interim response the request is answered in part (and `out` no longer holds
        // its head): a close is then a failure mid-exchange, never a retry.
        let mut interim = false;
        loop {
            match self.parse_answer(client, stop_at_continue)? {
                Head::Final(response) => return Ok(Answer::Final(response)),
                Head::Interim { status, forward } => {
                    interim = true;
                    if forward {
                        client
                            .send(&self.lane.out)
                            .await
                            .map_err(|_| HeadError::ClientGone)?;
                        // `out` may carry the request body's first bytes next.
                        self.lane.out.clear();
                    }
                    if status == 100 && stop_at_continue {
                        return Ok(Answer::Continue);
                    }
                    continue;
                }
                Head::Incomplete => {}
            }
            let wait = self.req.routed.upstream_timeout;
            let read = within(
                self.lane.timer.as_mut(),
                || *deadline.get_or_insert_with(|| Instant::now() + wait),
                fill(upstream, &mut self.lane.up),
            );
            match read.await {
                None => {
                    return Err(HeadError::Fault(HttpError::new(
                        ErrorKind::UpstreamTimeout,
                        "the upstream did not answer in time",
                    )))
                }
                Some(Ok(0) | Err(_)) if self.lane.up.is_empty() && !interim => {
                    return Err(HeadError::ClosedEarly)
                }
                Some(Ok(0) | Err(_)) => return Err(HeadError::Fault(UPSTREAM_LOST)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Parses one response head from `up`, without I/O: the head (interim or final) is
    /// rewritten into `out` and consumed from `up`. Kept out of the async read loop so the
    /// parser's header array never lives across an await, where it would sit in every
    /// connection's future (4 KiB each, idle connections included).
    fn parse_answer<C: Client>(
        &mut self,
        client: &mut C,
        stop_at_continue: bool,
    ) -> Result<Head, HeadError> {
        let lane = &mut *self.lane;
        if lane.up.is_empty() {
            return Ok(Head::Incomplete);
        }
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let parsed = parse_response(&lane.up, &mut headers, self.req.head_request)
            .map_err(|e| HeadError::Fault(HttpError::new(ErrorKind::UpstreamInvalid, e.detail)))?;
        let Some(resp) = parsed else {
            return Ok(Head::Incomplete);
        };
        let (head_len, status) = (resp.head_len, resp.status);
        if status == 101 && !self.req.upgrade {
            return Err(HeadError::Fault(HttpError::new(
                ErrorKind::UpstreamInvalid,
                "the upstream switched protocols without an upgrade request",
            )));
        }
        let head = if (100..200).contains(&status) && status != 101 {
            let forward = client.accepts_interim();
            if forward {
                lane.out.clear();
                client.response_head(&resp, self.req.keep_alive, &mut lane.out);
            }
            Head::Interim { status, forward }
        } else {
            // A drain that began while the request was on its way closes the connection after
            // this answer, and says so.
            let keep_alive = policy::response_keeps_alive(
                self.req.keep_alive,
                self.worker.drain.is_draining(),
                stop_at_continue,
            );
            lane.out.clear();
            client.response_head(&resp, keep_alive, &mut lane.out);
            Head::Final(Response {
                status,
                body: resp.body,
                reusable: resp.reusable,
                close: !keep_alive,
            })
        };
        lane.up.drain(..head_len);
        Ok(head)
    }
}
