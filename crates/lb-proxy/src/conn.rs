//! One client connection, one exchange after another:
//! accept -> parse -> route -> pick -> upstream pool -> forward -> respond.
//!
//! Invariants: a fault on this connection never touches another one; an upstream connection goes
//! back to the pool only after a complete exchange that left no stray bytes; lb answers with its own
//! error response only while nothing of the upstream's response has been sent to the client.

use crate::access_log::Entry;
use crate::relay::{
    fill, read_waiting, readable, relay_body, tunnel, write_all, Limits, RelayError,
};
use crate::timer::within;
use crate::upstream_pool::Upstream;
use crate::worker::Worker;
use lb_http::{
    dechunk_for, error_response, parse_request, parse_response, write_request_head,
    write_response_head, BodyKind, ChunkedDecoder, ClientAddr, ClientSide, ErrorKind, HttpError,
    Source, EMPTY_HEADER, MAX_HEADERS,
};
use lb_registry::{PinnedSnapshot, Slot};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tracing::{debug, info};

/// How long lb waits for an upstream's `100 Continue` before sending its own, so a client that
/// waits for one is not stalled by an upstream that never sends interim responses.
const EXPECT_CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// How long a keep-alive connection that is idle when a drain begins may still bring its next
/// request (answered with `Connection: close`). A client that has just read a keep-alive answer
/// may be sending already: closing under it would fail that request. nginx and HAProxy close such
/// connections at once; a client without retries (wrk, scripts) then counts an error per
/// connection at every reload.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// lb's own interim response for a client waiting on `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

const CLOSED_EARLY: HttpError = HttpError::new(
    ErrorKind::UpstreamReset,
    "the upstream closed the connection without a response",
);

const BODY_TOO_LARGE: HttpError = HttpError::new(
    ErrorKind::BodyTooLarge,
    "request body is larger than allowed",
);

/// Serves one accepted client connection until it closes.
pub(crate) async fn serve(worker: &Worker, client: TcpStream, peer: SocketAddr) {
    worker.stats.accepted();
    let timer = pin!(sleep_until(Instant::now()));
    let mut conn = ClientConn {
        worker,
        timer,
        client,
        peer: peer.ip(),
        peer_text: ClientAddr::new(peer.ip()),
        inbuf: Vec::new(),
        outbuf: Vec::new(),
        upbuf: Vec::new(),
        request_line: String::new(),
        unconfirmed: false,
    };
    conn.run().await;
    conn.release_buffers();
    worker.stats.closed();
}

/// What to do with the client connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

/// An exchange that ended before any byte of an upstream response reached the client.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// lb answers with its own response.
    Answer {
        error: HttpError,
        /// The connection must close after the answer (framing unknown, or body left unread).
        close: bool,
        /// Bytes of `inbuf` the failed request occupied (dropped when the connection continues).
        consumed: usize,
    },
    /// The client went away: nobody to answer.
    ClientGone,
}

impl Fault {
    /// A fault after which the request stream cannot be trusted: answer and close.
    fn fatal(error: HttpError) -> Self {
        Fault::Answer {
            error,
            close: true,
            consumed: 0,
        }
    }
}

/// A parsed, routed request whose upstream head is ready in `outbuf`; its head is still at the
/// start of `inbuf` until an upstream connection is established (so it can be routed again).
#[derive(Debug)]
struct Prepared {
    picked: Picked,
    head_len: usize,
    body: BodyKind,
    client: ClientSide,
    head_request: bool,
    /// RFC 9110 §9.2.2: sending it twice has the effect of sending it once.
    idempotent: bool,
    expect_continue: bool,
    upgrade: bool,
    /// When the head was complete: request latency is measured from here.
    started: Instant,
    /// The route's connect timeout, or the process-wide one.
    connect_timeout: Duration,
    /// The route's upstream response timeout, or the process-wide one.
    upstream_timeout: Duration,
}

impl Prepared {
    /// lb's answer to `error`: the connection goes on only when no request body is left unread.
    /// Counted on the picked target's series, since this is what its request got.
    fn fault(&self, error: HttpError) -> Fault {
        self.picked.answered(error.kind.status());
        Fault::Answer {
            error,
            close: !(self.client.keep_alive && self.body == BodyKind::Empty),
            consumed: 0,
        }
    }
}

/// The target a request was routed to, found again through the snapshot it was routed with
/// (kept alive by a worker-local `Rc`) to count the response on the target's series.
#[derive(Debug)]
struct Picked {
    /// The target's address: the upstream pool's key.
    addr: SocketAddr,
    snapshot: PinnedSnapshot,
    slot: Slot,
    worker: usize,
}

impl Picked {
    /// Picks another target of the same route for a retry ([`lb_registry::Snapshot::repick`])
    /// and counts the request on it.
    fn repick(&self) -> Option<Picked> {
        let (slot, target) = self.snapshot.repick(self.slot)?;
        target.record_request(self.worker);
        Some(Picked {
            addr: target.addr(),
            snapshot: self.snapshot.clone(),
            slot,
            worker: self.worker,
        })
    }

    /// Counts the status the client gets for this request on the picked target.
    fn answered(&self, status: u16) {
        if let Some(target) = self.snapshot.target(self.slot) {
            target.record_response(self.worker, status);
        }
    }
}

/// The upstream's final response head, already rewritten into `outbuf`.
#[derive(Debug, Clone, Copy)]
struct Response {
    status: u16,
    body: BodyKind,
    /// The upstream connection may be pooled after the body.
    reusable: bool,
    /// The client connection must close after this response.
    close: bool,
}

/// What reading the upstream's answer produced.
#[derive(Debug)]
enum Answer {
    /// A `100 Continue` (already passed on to the client), when asked to stop there.
    Continue,
    Final(Response),
}

/// One parse of the upstream's bytes.
#[derive(Debug)]
enum Head {
    /// Not a whole head yet.
    Incomplete,
    /// A 1xx other than 101, rewritten into `outbuf` when it is to be `forward`ed.
    Interim { status: u16, forward: bool },
    /// The final head, rewritten into `outbuf`.
    Final(Response),
}

/// Why no response head came back from an upstream.
#[derive(Debug)]
enum HeadError {
    /// The upstream closed or failed before sending a single byte: a reused connection that went
    /// stale, safe to retry when the request had no body.
    ClosedEarly,
    /// The client went away while an interim response was passed on.
    ClientGone,
    Fault(HttpError),
}

struct ClientConn<'w> {
    worker: &'w Worker,
    /// The deadline of whichever wait is under way ([`within`]).
    timer: Pin<&'w mut Sleep>,
    client: TcpStream,
    peer: IpAddr,
    /// `peer` as written into every request's `X-Forwarded-For`, formatted once at accept.
    peer_text: ClientAddr,
    /// Client bytes not yet consumed (request heads, body bytes, pipelined requests).
    inbuf: Vec<u8>,
    /// Heads being written: the upstream request head, then the client response head.
    outbuf: Vec<u8>,
    /// Upstream bytes not yet forwarded.
    upbuf: Vec<u8>,
    /// `METHOD target` of the current request, kept only when the access log is on.
    request_line: String,
    /// The first request was read at accept, past tokio: its readiness event is still to come.
    unconfirmed: bool,
}

impl ClientConn<'_> {
    async fn run(&mut self) {
        if self.worker.cfg.read_at_accept {
            self.acquire_buffers();
            self.unconfirmed = read_waiting(&self.client, &mut self.inbuf) > 0;
        }
        loop {
            if self.inbuf.is_empty() {
                // Idle between requests: hold no buffers while waiting.
                self.release_buffers();
                if !self.wait_for_request().await {
                    return;
                }
                self.acquire_buffers();
            }
            let next = match self.exchange().await {
                Ok(next) => next,
                Err(fault) => self.answer(fault).await,
            };
            if next == Next::Close {
                return;
            }
        }
    }

    /// Waits until the client sends the next request; false when it should be closed instead
    /// (idle timeout, EOF, or the end of the drain grace).
    async fn wait_for_request(&mut self) -> bool {
        let drain_started = self.worker.drain.started();
        if !self.worker.drain.is_draining() {
            tokio::select! {
                ready = within(
                    self.timer.as_mut(),
                    || Instant::now() + self.worker.cfg.tuning.idle(),
                    readable(&self.client, &mut self.unconfirmed),
                ) => return matches!(ready, Some(Ok(()))),
                () = drain_started => {}
            }
        }
        // Draining: one last request within the grace, answered with `Connection: close`.
        let ready = within(
            self.timer.as_mut(),
            || Instant::now() + DRAIN_GRACE,
            readable(&self.client, &mut self.unconfirmed),
        );
        matches!(ready.await, Some(Ok(())))
    }

    /// One request and its response.
    async fn exchange(&mut self) -> Result<Next, Fault> {
        let Some(req) = self.read_request().await? else {
            return Ok(Next::Close);
        };
        self.worker.stats.request();
        let (mut upstream, req, resp) = self.forward_request(req).await?;
        self.worker.stats.response(resp.status);
        req.picked.answered(resp.status);

        if resp.status == 101 {
            // The 101 head is in `outbuf`, followed by whatever the upstream already sent in the
            // new protocol; from here on bytes flow both ways untouched.
            self.log(resp.status, Some(req.picked.addr), 0, req.started);
            self.outbuf.extend_from_slice(&self.upbuf);
            let limits = self.limits(&req, None);
            let result = tunnel(
                &mut self.client,
                &mut upstream,
                &self.outbuf,
                &self.inbuf,
                limits,
            )
            .await;
            debug!(worker = self.worker.cfg.id, upstream = %req.picked.addr, ?result, "tunnel closed");
            return Ok(Next::Close);
        }

        let limits = Limits {
            read: req.upstream_timeout,
            write: self.worker.cfg.tuning.idle(),
            max_len: None,
        };
        let dechunk = dechunk_for(req.client, resp.body);
        let relayed = relay_body(
            &mut upstream,
            &mut self.client,
            &mut self.outbuf,
            &mut self.upbuf,
            resp.body,
            dechunk,
            limits,
        )
        .await;
        self.worker.stats.latency(req.started.elapsed());
        self.log(
            resp.status,
            Some(req.picked.addr),
            *relayed.as_ref().unwrap_or(&0),
            req.started,
        );
        if let Err(error) = relayed {
            // Part of the response may be out already: closing is the only honest ending.
            debug!(worker = self.worker.cfg.id, upstream = %req.picked.addr, ?error, "response relay failed");
            return Ok(Next::Close);
        }
        if resp.reusable && self.upbuf.is_empty() {
            self.worker.pool.give(req.picked.addr, upstream);
        }
        self.upbuf.clear();
        Ok(
            if resp.close || dechunk || resp.body == BodyKind::CloseDelimited {
                Next::Close
            } else {
                Next::KeepAlive
            },
        )
    }

    /// Reads until a complete request head is parsed, routed and rewritten into `outbuf`. `None`
    /// when the client went away (or stayed silent) before sending a full head.
    async fn read_request(&mut self) -> Result<Option<Prepared>, Fault> {
        self.request_line.clear();
        // One deadline for the whole head (slowloris), fixed when the first read has to wait.
        let mut deadline = None;
        loop {
            if !self.inbuf.is_empty() {
                if let Some(req) = self.prepare()? {
                    return Ok(Some(req));
                }
            }
            let header = self.worker.cfg.tuning.header();
            let read = within(
                self.timer.as_mut(),
                || *deadline.get_or_insert_with(|| Instant::now() + header),
                fill(&mut self.client, &mut self.inbuf),
            );
            match read.await {
                Some(Ok(0)) => return Ok(None),
                Some(Ok(_)) => {}
                None if !self.inbuf.is_empty() => {
                    return Err(Fault::fatal(HttpError::new(
                        ErrorKind::HeaderTimeout,
                        "request head not received in time",
                    )));
                }
                Some(Err(_)) | None => return Ok(None),
            }
        }
    }

    /// Parse -> route -> pick -> rewrite, without I/O. `Ok(None)`: the head is incomplete.
    fn prepare(&mut self) -> Result<Option<Prepared>, Fault> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let req = match parse_request(&self.inbuf, &mut headers) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(None),
            Err(error) => return Err(Fault::fatal(error)),
        };
        if self.worker.cfg.access_log.is_some() {
            self.request_line.clear();
            self.request_line.push_str(req.method);
            self.request_line.push(' ');
            self.request_line.push_str(req.target);
        }
        let client = ClientSide {
            version: req.version,
            keep_alive: req.keep_alive && !self.worker.drain.is_draining(),
        };
        let refuse = |error| Fault::Answer {
            error,
            close: !(client.keep_alive && req.body == BodyKind::Empty),
            consumed: req.head_len,
        };
        if let (BodyKind::Length(len), Some(max)) = (req.body, self.worker.cfg.tuning.max_body()) {
            if len > max {
                return Err(Fault::fatal(BODY_TOO_LARGE));
            }
        }
        if req.body == BodyKind::Chunked {
            // Framing errors already in the buffer are answered before any upstream is
            // contacted, so the backend never sees a connection for a request lb refuses.
            let buffered = self.inbuf.get(req.head_len..).unwrap_or_default();
            ChunkedDecoder::new().scan(buffered).map_err(Fault::fatal)?;
        }
        if req.method == "CONNECT" {
            return Err(Fault::fatal(HttpError::new(
                ErrorKind::MethodNotAllowed,
                "CONNECT is not supported",
            )));
        }
        let snapshot = self.worker.routes.borrow_mut().current().clone();
        let Some(route) = snapshot.lookup(req.target) else {
            return Err(refuse(HttpError::new(
                ErrorKind::NoRoute,
                "no route matches the request path",
            )));
        };
        let Some((slot, target)) = route.pick() else {
            return Err(refuse(HttpError::new(
                ErrorKind::NoTarget,
                "no healthy target is registered for this route",
            )));
        };
        target.record_request(self.worker.cfg.id);
        let options = *route.route.options();
        self.outbuf.clear();
        write_request_head(
            &req,
            route.lead(),
            route.rest,
            &self.peer_text,
            &mut self.outbuf,
        );
        Ok(Some(Prepared {
            picked: Picked {
                addr: target.addr(),
                snapshot,
                slot,
                worker: self.worker.cfg.id,
            },
            head_len: req.head_len,
            body: req.body,
            client,
            head_request: req.method == "HEAD",
            idempotent: matches!(
                req.method,
                "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
            ),
            expect_continue: req.expect_continue,
            upgrade: req.upgrade,
            started: Instant::now(),
            connect_timeout: options
                .connect_timeout
                .unwrap_or_else(|| self.worker.cfg.tuning.connect()),
            upstream_timeout: options
                .upstream_timeout
                .unwrap_or_else(|| self.worker.cfg.tuning.upstream()),
        }))
    }

    /// Connects (or reuses a pooled connection), sends the request and reads the final response
    /// head. A target that refuses or times out is marked down (passive health) and the request,
    /// of which nothing was sent, is routed once more to the next target in round-robin order.
    /// A bodiless request whose reused connection turns out stale is retried once on a fresh one;
    /// a bodiless idempotent one whose fresh connection closes without a response byte is sent
    /// once more to the route's next target (as nginx's `proxy_next_upstream error` does; the
    /// target is not marked down: it accepted the connection).
    async fn forward_request(
        &mut self,
        mut req: Prepared,
    ) -> Result<(Upstream, Prepared, Response), Fault> {
        let mut failed_over = false;
        let (mut upstream, mut reused) = loop {
            match self.upstream(&req, false).await {
                Ok(conn) => break conn,
                Err(error) if !failed_over => {
                    info!(worker = self.worker.cfg.id, upstream = %req.picked.addr, %error, "target marked down; trying the next one");
                    failed_over = true;
                    // With no other healthy target, the client hears about the failure it met.
                    req = match self.prepare() {
                        Ok(Some(next)) => next,
                        _ => return Err(req.fault(error)),
                    };
                }
                Err(error) => return Err(req.fault(error)),
            }
        };
        self.inbuf.drain(..req.head_len);
        self.upbuf.clear();
        loop {
            let bodiless = req.body == BodyKind::Empty;
            match self.send_and_answer(&mut upstream, &req).await {
                Ok(resp) => return Ok((upstream, req, resp)),
                Err(HeadError::ClosedEarly) if reused && bodiless => {
                    (upstream, reused) =
                        self.upstream(&req, true).await.map_err(|e| req.fault(e))?;
                }
                Err(HeadError::ClosedEarly) if bodiless && req.idempotent && !failed_over => {
                    let Some(picked) = req.picked.repick() else {
                        return Err(req.fault(CLOSED_EARLY));
                    };
                    info!(worker = self.worker.cfg.id, upstream = %req.picked.addr, next = %picked.addr, "the upstream closed without a response; retrying on the next target");
                    failed_over = true;
                    req.picked = picked;
                    (upstream, reused) =
                        self.upstream(&req, false).await.map_err(|e| req.fault(e))?;
                }
                Err(HeadError::ClosedEarly) => return Err(req.fault(CLOSED_EARLY)),
                Err(HeadError::ClientGone) => return Err(Fault::ClientGone),
                Err(HeadError::Fault(error)) => return Err(req.fault(error)),
            }
        }
    }

    /// Sends the head (in `outbuf`) and the body, honouring `Expect: 100-continue`, and reads
    /// the final response head. `outbuf` keeps the request head until a bodiless request got its
    /// answer, so a stale connection can be retried.
    async fn send_and_answer(
        &mut self,
        upstream: &mut TcpStream,
        req: &Prepared,
    ) -> Result<Response, HeadError> {
        let upstream_write = req.upstream_timeout;
        if req.body == BodyKind::Empty {
            write_all(upstream, &self.outbuf, upstream_write)
                .await
                .map_err(|_| HeadError::ClosedEarly)?;
            return self.read_final(upstream, req).await;
        }
        if req.expect_continue {
            // RFC 9110 §10.1.1: the client waits for 100 before sending the body. Pass the head
            // on, and let the upstream's answer (or lb's own 100 after a short wait) decide.
            write_all(upstream, &self.outbuf, upstream_write)
                .await
                .map_err(|_| upstream_lost())?;
            self.outbuf.clear();
            match timeout(EXPECT_CONTINUE_WAIT, self.read_answer(upstream, req, true)).await {
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
                    write_all(&mut self.client, CONTINUE, self.worker.cfg.tuning.idle())
                        .await
                        .map_err(|_| HeadError::ClientGone)?;
                }
            }
        }
        self.send_body(upstream, req).await?;
        self.read_final(upstream, req).await
    }

    /// Streams the request body after the head (still in `outbuf` unless already sent).
    async fn send_body(
        &mut self,
        upstream: &mut TcpStream,
        req: &Prepared,
    ) -> Result<(), HeadError> {
        let limits = self.limits(req, self.worker.cfg.tuning.max_body());
        relay_body(
            &mut self.client,
            upstream,
            &mut self.outbuf,
            &mut self.inbuf,
            req.body,
            false,
            limits,
        )
        .await
        .map(|_| ())
        .map_err(|e| match e {
            RelayError::Invalid(error) => HeadError::Fault(error),
            RelayError::TooLarge => HeadError::Fault(BODY_TOO_LARGE),
            RelayError::Source => HeadError::ClientGone,
            RelayError::Sink => upstream_lost(),
        })
    }

    /// Reads the final response head, passing interim responses on.
    async fn read_final(
        &mut self,
        upstream: &mut TcpStream,
        req: &Prepared,
    ) -> Result<Response, HeadError> {
        match self.read_answer(upstream, req, false).await? {
            Answer::Final(resp) => Ok(resp),
            Answer::Continue => Err(HeadError::Fault(HttpError::new(
                ErrorKind::UpstreamInvalid,
                "unexpected interim response",
            ))),
        }
    }

    /// Reads the upstream's response head within the upstream timeout. Interim 1xx responses go to
    /// clients that accept them (HTTP/1.1) and are dropped for others; with `stop_at_continue`, a
    /// `100 Continue` ends the read. The final head is rewritten into `outbuf`.
    async fn read_answer(
        &mut self,
        upstream: &mut TcpStream,
        req: &Prepared,
        stop_at_continue: bool,
    ) -> Result<Answer, HeadError> {
        let mut deadline = None;
        // After an interim response the request is answered in part (and `outbuf` no longer
        // holds its head): a close is then a failure mid-exchange, never a retry.
        let mut interim = false;
        loop {
            match self.parse_answer(req, stop_at_continue)? {
                Head::Final(response) => return Ok(Answer::Final(response)),
                Head::Interim { status, forward } => {
                    interim = true;
                    if forward {
                        write_all(
                            &mut self.client,
                            &self.outbuf,
                            self.worker.cfg.tuning.idle(),
                        )
                        .await
                        .map_err(|_| HeadError::ClientGone)?;
                        // `outbuf` may carry the request body's first bytes next.
                        self.outbuf.clear();
                    }
                    if status == 100 && stop_at_continue {
                        return Ok(Answer::Continue);
                    }
                    continue;
                }
                Head::Incomplete => {}
            }
            let read = within(
                self.timer.as_mut(),
                || *deadline.get_or_insert_with(|| Instant::now() + req.upstream_timeout),
                fill(upstream, &mut self.upbuf),
            );
            match read.await {
                None => {
                    return Err(HeadError::Fault(HttpError::new(
                        ErrorKind::UpstreamTimeout,
                        "the upstream did not answer in time",
                    )))
                }
                Some(Ok(0) | Err(_)) if self.upbuf.is_empty() && !interim => {
                    return Err(HeadError::ClosedEarly)
                }
                Some(Ok(0) | Err(_)) => return Err(upstream_lost()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Parses one response head from `upbuf`, without I/O: the head (interim or final) is
    /// rewritten into `outbuf` and consumed from `upbuf`. Kept out of the async read loop so the
    /// parser's header array never lives across an await, where it would sit in every
    /// connection's future (4 KiB each, idle connections included).
    fn parse_answer(&mut self, req: &Prepared, stop_at_continue: bool) -> Result<Head, HeadError> {
        if self.upbuf.is_empty() {
            return Ok(Head::Incomplete);
        }
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let parsed = parse_response(&self.upbuf, &mut headers, req.head_request)
            .map_err(|e| HeadError::Fault(HttpError::new(ErrorKind::UpstreamInvalid, e.detail)))?;
        let Some(resp) = parsed else {
            return Ok(Head::Incomplete);
        };
        let (head_len, status) = (resp.head_len, resp.status);
        if status == 101 && !req.upgrade {
            return Err(HeadError::Fault(HttpError::new(
                ErrorKind::UpstreamInvalid,
                "the upstream switched protocols without an upgrade request",
            )));
        }
        let head = if (100..200).contains(&status) && status != 101 {
            let forward = req.client.accepts_interim();
            if forward {
                self.outbuf.clear();
                write_response_head(&resp, req.client, &mut self.outbuf);
            }
            Head::Interim { status, forward }
        } else {
            let client = ClientSide {
                // A drain that began while the request was on its way closes the connection
                // after this answer, and says so.
                keep_alive: req.client.keep_alive
                    && !stop_at_continue
                    && !self.worker.drain.is_draining(),
                ..req.client
            };
            self.outbuf.clear();
            write_response_head(&resp, client, &mut self.outbuf);
            Head::Final(Response {
                status,
                body: resp.body,
                reusable: resp.reusable,
                close: !client.keep_alive,
            })
        };
        self.upbuf.drain(..head_len);
        Ok(head)
    }

    /// An idle pooled connection to the request's target (unless `fresh`), or a new one; the flag
    /// says whether it was reused. A connect that fails marks the target down.
    async fn upstream(
        &mut self,
        req: &Prepared,
        fresh: bool,
    ) -> Result<(Upstream, bool), HttpError> {
        let target = req.picked.addr;
        if !fresh {
            if let Some(stream) = self.worker.pool.take(target) {
                self.worker.stats.pool(true);
                return Ok((stream, true));
            }
        }
        self.worker.stats.pool(false);
        let error = match timeout(req.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((Upstream::new(stream, &self.worker.stats), false));
            }
            Err(_) => HttpError::new(
                ErrorKind::ConnectTimeout,
                "timed out connecting to the upstream",
            ),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => HttpError::new(
                ErrorKind::UpstreamConnect,
                "the upstream refused the connection",
            ),
            Ok(Err(_)) => HttpError::new(
                ErrorKind::UpstreamConnect,
                "could not connect to the upstream",
            ),
        };
        // Passive health: whoever asked, a failed connect takes the target out for its back-off.
        self.worker.routes.borrow().registry().mark_down(target);
        Err(error)
    }

    /// Timeouts for relays towards the upstream: client reads, upstream writes.
    fn limits(&self, req: &Prepared, max_len: Option<u64>) -> Limits {
        Limits {
            read: self.worker.cfg.tuning.idle(),
            write: req.upstream_timeout,
            max_len,
        }
    }

    /// Sends lb's own answer to a fault; decides whether the connection goes on.
    async fn answer(&mut self, fault: Fault) -> Next {
        let Fault::Answer {
            error,
            close,
            consumed,
        } = fault
        else {
            return Next::Close;
        };
        let close = close || self.worker.drain.is_draining();
        match error.kind.source() {
            Source::Client => {
                debug!(worker = self.worker.cfg.id, peer = %self.peer, %error, "client fault")
            }
            Source::Upstream | Source::Routing => {
                info!(worker = self.worker.cfg.id, peer = %self.peer, %error, "request failed")
            }
        }
        self.worker.stats.response(error.kind.status());
        self.log(
            error.kind.status(),
            None,
            error.detail.len() as u64 + 1,
            Instant::now(),
        );
        self.outbuf.clear();
        error_response(error.kind, error.detail, close, &mut self.outbuf);
        let sent = write_all(
            &mut self.client,
            &self.outbuf,
            self.worker.cfg.tuning.idle(),
        )
        .await;
        if close || sent.is_err() {
            return Next::Close;
        }
        self.inbuf.drain(..consumed.min(self.inbuf.len()));
        Next::KeepAlive
    }

    /// Writes the access log line of the current request, when the access log is on.
    fn log(&self, status: u16, target: Option<SocketAddr>, bytes: u64, started: Instant) {
        if let Some(log) = &self.worker.cfg.access_log {
            log.log(Entry {
                worker: self.worker.cfg.id,
                client: self.peer,
                request: &self.request_line,
                status,
                target,
                bytes,
                elapsed: started.elapsed(),
            });
        }
    }

    fn acquire_buffers(&mut self) {
        for buf in [&mut self.inbuf, &mut self.outbuf, &mut self.upbuf] {
            if buf.capacity() == 0 {
                *buf = self.worker.buffers.take();
            }
        }
    }

    fn release_buffers(&mut self) {
        for buf in [&mut self.inbuf, &mut self.outbuf, &mut self.upbuf] {
            self.worker.buffers.give(std::mem::take(buf));
        }
    }
}

/// The upstream connection failed after part of the request or response went through.
fn upstream_lost() -> HeadError {
    HeadError::Fault(HttpError::new(
        ErrorKind::UpstreamReset,
        "the upstream connection failed mid-exchange",
    ))
}
