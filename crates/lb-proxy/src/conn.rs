//! One client connection, one exchange after another:
//! accept -> parse -> route -> pick -> upstream pool -> forward -> respond.
//!
//! Invariants: a fault on this connection never touches another one; an upstream connection goes
//! back to the pool only after a complete exchange that left no stray bytes; lb answers with its own
//! error response only while nothing of the upstream's response has been sent to the client.

use crate::relay::{fill, read_more, relay_body, write_all, Limits, RelayError};
use crate::worker::Worker;
use lb_http::{
    error_response, parse_request, parse_response, write_request_head, write_response_head,
    BodyKind, ClientSide, ErrorKind, HttpError, Source, Version, EMPTY_HEADER, MAX_HEADERS,
};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, info};

/// Serves one accepted client connection until it closes.
pub(crate) async fn serve(worker: &Worker, client: TcpStream, peer: SocketAddr) {
    worker.stats.accepted();
    // Nagle would hold back small heads waiting for an ACK; every write here is a whole unit.
    let _ = client.set_nodelay(true);
    let mut conn = ClientConn {
        worker,
        client,
        peer: peer.ip(),
        inbuf: Vec::new(),
        outbuf: Vec::new(),
        upbuf: Vec::new(),
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

/// A parsed, routed request whose upstream head is ready in `outbuf`.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    target: SocketAddr,
    head_len: usize,
    body: BodyKind,
    keep_alive: bool,
    version: Version,
    head_request: bool,
}

impl Prepared {
    /// Whether lb may answer an error itself and keep reading requests: only when no request body
    /// is left unread on the connection.
    fn recoverable(&self) -> bool {
        self.keep_alive && self.body == BodyKind::Empty
    }

    fn fault(&self, error: HttpError) -> Fault {
        Fault::Answer {
            error,
            close: !self.recoverable(),
            consumed: 0,
        }
    }
}

/// The upstream's response head, already rewritten into `outbuf`.
#[derive(Debug, Clone, Copy)]
struct Response {
    status: u16,
    body: BodyKind,
    reusable: bool,
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
    client: TcpStream,
    peer: IpAddr,
    /// Client bytes not yet consumed (request heads, body bytes, pipelined requests).
    inbuf: Vec<u8>,
    /// Heads being written: the upstream request head, then the client response head.
    outbuf: Vec<u8>,
    /// Upstream bytes not yet forwarded.
    upbuf: Vec<u8>,
}

impl ClientConn<'_> {
    async fn run(&mut self) {
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
    /// (idle timeout, EOF, or the worker is draining).
    async fn wait_for_request(&mut self) -> bool {
        let drain_started = self.worker.drain.started();
        if self.worker.drain.is_draining() {
            return false;
        }
        tokio::select! {
            ready = timeout(self.worker.cfg.idle_timeout, self.client.readable()) => {
                matches!(ready, Ok(Ok(())))
            }
            () = drain_started => false,
        }
    }

    /// One request and its response.
    async fn exchange(&mut self) -> Result<Next, Fault> {
        let Some(req) = self.read_request().await? else {
            return Ok(Next::Close);
        };
        self.worker.stats.request();
        self.inbuf.drain(..req.head_len);
        let keep_alive = req.keep_alive && !self.worker.drain.is_draining();

        let (mut upstream, resp) = self.forward_request(&req, keep_alive).await?;

        let limits = Limits {
            read: self.worker.cfg.upstream_timeout,
            write: self.worker.cfg.idle_timeout,
            max_len: None,
        };
        self.worker.stats.response(resp.status);
        let relayed = relay_body(
            &mut upstream,
            &mut self.client,
            &mut self.outbuf,
            &mut self.upbuf,
            resp.body,
            limits,
        )
        .await;
        if let Err(error) = relayed {
            // Part of the response may be out already: closing is the only honest ending.
            debug!(worker = self.worker.cfg.id, upstream = %req.target, ?error, "response relay failed");
            return Ok(Next::Close);
        }
        if resp.reusable && self.upbuf.is_empty() {
            self.worker.pool.give(req.target, upstream);
        }
        self.upbuf.clear();
        Ok(if keep_alive && resp.body != BodyKind::CloseDelimited {
            Next::KeepAlive
        } else {
            Next::Close
        })
    }

    /// Reads until a complete request head is parsed, routed and rewritten into `outbuf`. `None`
    /// when the client went away (or stayed silent) before sending a full head.
    async fn read_request(&mut self) -> Result<Option<Prepared>, Fault> {
        let deadline = Instant::now() + self.worker.cfg.header_timeout;
        loop {
            if !self.inbuf.is_empty() {
                if let Some(req) = self.prepare()? {
                    return Ok(Some(req));
                }
            }
            let limit = deadline.saturating_duration_since(Instant::now());
            match read_more(&mut self.client, &mut self.inbuf, limit).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut && !self.inbuf.is_empty() => {
                    return Err(Fault::fatal(HttpError::new(
                        ErrorKind::HeaderTimeout,
                        "request head not received in time",
                    )));
                }
                Err(_) => return Ok(None),
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
        let refuse = |error| Fault::Answer {
            error,
            close: !(req.keep_alive && req.body == BodyKind::Empty),
            consumed: req.head_len,
        };
        if let (BodyKind::Length(len), Some(max)) = (req.body, self.worker.cfg.max_body) {
            if len > max {
                return Err(Fault::fatal(BODY_TOO_LARGE));
            }
        }
        if req.method == "CONNECT" {
            return Err(Fault::fatal(HttpError::new(
                ErrorKind::MethodNotAllowed,
                "CONNECT is not supported",
            )));
        }
        let mut routes = self.worker.routes.borrow_mut();
        let Some(route) = routes.current().lookup(req.target) else {
            return Err(refuse(HttpError::new(
                ErrorKind::NoRoute,
                "no route matches the request path",
            )));
        };
        let Some(target) = route.route.pick() else {
            return Err(refuse(HttpError::new(
                ErrorKind::NoTarget,
                "no target is registered for this route",
            )));
        };
        target.record_request(self.worker.cfg.id);
        self.outbuf.clear();
        write_request_head(&req, route.lead(), route.rest, self.peer, &mut self.outbuf);
        Ok(Some(Prepared {
            target: target.addr(),
            head_len: req.head_len,
            body: req.body,
            keep_alive: req.keep_alive,
            version: req.version,
            head_request: req.method == "HEAD",
        }))
    }

    /// Sends the request (head in `outbuf`, body from the client) and reads the response head.
    /// A bodiless request whose reused upstream connection turns out stale is retried once on a
    /// fresh connection: nothing of it can have been processed.
    async fn forward_request(
        &mut self,
        req: &Prepared,
        keep_alive: bool,
    ) -> Result<(TcpStream, Response), Fault> {
        let mut fresh = false;
        loop {
            let (mut upstream, reused) = self
                .upstream(req.target, fresh)
                .await
                .map_err(|e| req.fault(e))?;
            let retry_allowed = reused && req.body == BodyKind::Empty;
            if req.body == BodyKind::Empty {
                if write_all(
                    &mut upstream,
                    &self.outbuf,
                    self.worker.cfg.upstream_timeout,
                )
                .await
                .is_err()
                {
                    if retry_allowed {
                        fresh = true;
                        continue;
                    }
                    return Err(req.fault(HttpError::new(
                        ErrorKind::UpstreamReset,
                        "upstream connection failed while sending the request",
                    )));
                }
            } else {
                self.send_body(&mut upstream, req).await?;
            }
            match self
                .read_response_head(&mut upstream, req, keep_alive)
                .await
            {
                Ok(resp) => return Ok((upstream, resp)),
                Err(HeadError::ClosedEarly) if retry_allowed => fresh = true,
                Err(HeadError::ClosedEarly) => {
                    return Err(req.fault(HttpError::new(
                        ErrorKind::UpstreamReset,
                        "upstream closed the connection without a response",
                    )))
                }
                Err(HeadError::ClientGone) => return Err(Fault::ClientGone),
                Err(HeadError::Fault(error)) => return Err(req.fault(error)),
            }
        }
    }

    /// Streams the request body after the head. Any failure here leaves the client stream in an
    /// unknown state, so every fault closes the connection.
    async fn send_body(&mut self, upstream: &mut TcpStream, req: &Prepared) -> Result<(), Fault> {
        let limits = Limits {
            read: self.worker.cfg.idle_timeout,
            write: self.worker.cfg.upstream_timeout,
            max_len: self.worker.cfg.max_body,
        };
        relay_body(
            &mut self.client,
            upstream,
            &mut self.outbuf,
            &mut self.inbuf,
            req.body,
            limits,
        )
        .await
        .map_err(|e| {
            Fault::fatal(match e {
                RelayError::Invalid(error) => error,
                RelayError::TooLarge => BODY_TOO_LARGE,
                RelayError::Source => HttpError::new(
                    ErrorKind::BadRequest,
                    "client stopped sending the request body",
                ),
                RelayError::Sink => HttpError::new(
                    ErrorKind::UpstreamReset,
                    "upstream connection failed while sending the request body",
                ),
            })
        })
    }

    /// An idle pooled connection to `target` (unless `fresh`), or a new one.
    async fn upstream(
        &mut self,
        target: SocketAddr,
        fresh: bool,
    ) -> Result<(TcpStream, bool), HttpError> {
        if !fresh {
            if let Some(stream) = self.worker.pool.take(target) {
                self.worker.stats.pool(true);
                return Ok((stream, true));
            }
        }
        self.worker.stats.pool(false);
        match timeout(self.worker.cfg.connect_timeout, TcpStream::connect(target)).await {
            Err(_) => Err(HttpError::new(
                ErrorKind::ConnectTimeout,
                "timed out connecting to the upstream",
            )),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(HttpError::new(
                ErrorKind::UpstreamConnect,
                "the upstream refused the connection",
            )),
            Ok(Err(_)) => Err(HttpError::new(
                ErrorKind::UpstreamConnect,
                "could not connect to the upstream",
            )),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok((stream, false))
            }
        }
    }

    /// Reads the upstream's response head (interim 1xx responses are passed to the client) and
    /// writes the client's response head into `outbuf`.
    async fn read_response_head(
        &mut self,
        upstream: &mut TcpStream,
        req: &Prepared,
        keep_alive: bool,
    ) -> Result<Response, HeadError> {
        let deadline = Instant::now() + self.worker.cfg.upstream_timeout;
        self.upbuf.clear();
        loop {
            if !self.upbuf.is_empty() {
                let mut headers = [EMPTY_HEADER; MAX_HEADERS];
                let parsed =
                    parse_response(&self.upbuf, &mut headers, req.head_request).map_err(|e| {
                        HeadError::Fault(HttpError::new(ErrorKind::UpstreamInvalid, e.detail))
                    })?;
                if let Some(resp) = parsed {
                    let head_len = resp.head_len;
                    if resp.status == 101 {
                        return Err(HeadError::Fault(HttpError::new(
                            ErrorKind::UpstreamInvalid,
                            "upstream switched protocols without an upgrade request",
                        )));
                    }
                    if (100..200).contains(&resp.status) {
                        // Interim response: pass it on verbatim and wait for the final one.
                        let interim = &self.upbuf[..head_len];
                        write_all(&mut self.client, interim, self.worker.cfg.idle_timeout)
                            .await
                            .map_err(|_| HeadError::ClientGone)?;
                        self.upbuf.drain(..head_len);
                        continue;
                    }
                    let client = ClientSide {
                        version: req.version,
                        keep_alive,
                    };
                    self.outbuf.clear();
                    write_response_head(&resp, client, &mut self.outbuf);
                    let response = Response {
                        status: resp.status,
                        body: resp.body,
                        reusable: resp.reusable,
                    };
                    self.upbuf.drain(..head_len);
                    return Ok(response);
                }
            }
            match timeout_at(deadline, fill(upstream, &mut self.upbuf)).await {
                Err(_) => {
                    return Err(HeadError::Fault(HttpError::new(
                        ErrorKind::UpstreamTimeout,
                        "the upstream did not answer in time",
                    )))
                }
                Ok(Ok(0)) | Ok(Err(_)) if self.upbuf.is_empty() => {
                    return Err(HeadError::ClosedEarly)
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return Err(HeadError::Fault(HttpError::new(
                        ErrorKind::UpstreamReset,
                        "the upstream closed the connection mid-response",
                    )))
                }
                Ok(Ok(_)) => {}
            }
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
        self.outbuf.clear();
        error_response(error.kind, error.detail, close, &mut self.outbuf);
        let sent = write_all(&mut self.client, &self.outbuf, self.worker.cfg.idle_timeout).await;
        if close || sent.is_err() {
            return Next::Close;
        }
        self.inbuf.drain(..consumed.min(self.inbuf.len()));
        Next::KeepAlive
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

const BODY_TOO_LARGE: HttpError = HttpError::new(
    ErrorKind::BodyTooLarge,
    "request body is larger than allowed",
);
