//! The HTTP/1.1 client connection: one request after another on one socket.
//!
//! Per request, top to bottom: wait for it (idle timeout, drain grace) -> read and parse its
//! head (`lb-http`; header timeout) -> route and pick (`route`), rewriting the head for the
//! upstream -> consume the head -> serve it (`exchange`) -> [`Connection::finish`]: lb's own
//! answer if one is due, the access log line, and what [`policy::next`] says of the connection.
//!
//! Invariants: every request gets exactly one answer and one log line, both from `finish`; a
//! head's bytes are consumed in one place, [`Connection::consume`], as [`policy::consumed`] says,
//! so no head is parsed or answered twice; the connection goes on only when `policy::next` says
//! the byte stream is in sync. A fault on this connection never touches another one. A
//! connection whose first bytes are the HTTP/2 preface (prior knowledge, h2c) is handed to `h2`
//! whole, the bytes read so far replayed.

mod client;

use crate::access_log::Entry;
use crate::exchange::{self, Lane, Outcome, Request, BODY_TOO_LARGE};
use crate::h2;
use crate::policy::{self, Answer, Body, Consumed, End, Loudness, Next};
use crate::relay::{fill, write_all};
use crate::request_id;
use crate::route::{self, Routed};
use crate::timer::within;
use crate::transport::Transport;
use crate::worker::Worker;
use client::H1Client;
use lb_http::{
    dechunk_for, error_response, names_other_protocol, parse_request, write_request_head, BodyKind,
    ChunkedDecoder, ClientAddr, ClientSide, ErrorKind, HttpError, Version, EMPTY_HEADER,
    MAX_HEADERS,
};
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info};

/// How long a keep-alive connection that is idle when a drain begins may still bring its next
/// request (answered with `Connection: close`). A client that has just read a keep-alive answer
/// may be sending already: closing under it would fail that request. nginx and HAProxy close such
/// connections at once; a client without retries (wrk, scripts) then counts an error per
/// connection at every reload.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Longest a closing connection discards what its client still sends ([`policy::lingers`]).
const LINGER: Duration = Duration::from_secs(2);

/// Most bytes a closing connection discards before it closes anyway.
const LINGER_BYTES: usize = 1 << 20;

const HEAD_TIMEOUT: HttpError = HttpError::new(
    ErrorKind::HeaderTimeout,
    "request head not received in time",
);

/// Serves one accepted client connection until it closes. `head_deadline`, when set, is when
/// the first request head must be complete (a TLS connection's deadline runs from accept,
/// through its handshake); otherwise it runs from the first read that has to wait.
pub(crate) async fn serve<S: Transport + 'static>(
    worker: &Rc<Worker>,
    socket: S,
    peer: SocketAddr,
    head_deadline: Option<Instant>,
) {
    worker.stats.accepted();
    let scheme = socket.scheme();
    let tls = socket.tls_version();
    let timer = pin!(sleep_until(Instant::now()));
    let mut conn = Connection {
        worker,
        client: H1Client {
            worker,
            socket,
            inbuf: Vec::new(),
            side: ClientSide {
                version: Version::Http11,
                keep_alive: true,
            },
            unconfirmed: false,
        },
        lane: Lane {
            timer,
            out: Vec::new(),
            up: Vec::new(),
        },
        peer: peer.ip(),
        peer_text: ClientAddr::new(peer.ip()).with_scheme(scheme),
        head_deadline,
        tls,
        request_line: String::new(),
        request_id: String::new(),
        fresh: true,
        http2: false,
    };
    conn.run().await;
    let http2 = conn.http2.then(|| std::mem::take(&mut conn.client.inbuf));
    conn.release_buffers();
    if let Some(read) = http2 {
        let io = h2::Replay::new(read, conn.client.socket);
        // Boxed: HTTP/2's connection state would otherwise sit in every HTTP/1.1 connection's
        // future too.
        let link = h2::Link {
            addr: peer,
            scheme,
            tls,
        };
        Box::pin(h2::serve(worker, io, link)).await;
    }
    worker.stats.closed();
}

struct Connection<'w, S> {
    worker: &'w Worker,
    client: H1Client<'w, S>,
    lane: Lane<'w>,
    peer: IpAddr,
    /// `peer` as written into every request's `X-Forwarded-For`, formatted once at accept.
    peer_text: ClientAddr,
    /// When the next head must be complete, if fixed before its first read (see [`serve`]).
    head_deadline: Option<Instant>,
    /// The TLS version for the access log (`-` in clear text).
    tls: &'static str,
    /// `METHOD target` of the current request, kept only when the access log is on.
    request_line: String,
    /// The current request's `X-Request-ID`, kept only when the access log is on.
    request_id: String,
    /// No request head was read yet: the connection may still turn out to be HTTP/2.
    fresh: bool,
    /// It did: the connection goes on in `h2`.
    http2: bool,
}

/// A request head read off the connection, and what became of it before any upstream I/O.
struct Head {
    /// What the head took of the input.
    consumed: Consumed,
    /// The request allows keep-alive (and no drain had begun when it was parsed).
    keep_alive: bool,
    /// The body's framing (`Empty` when the head was not understood).
    body: BodyKind,
    /// Routed and rewritten for the upstream, or the error lb answers with.
    routed: Result<Request, Refused>,
}

/// A request lb answers itself without contacting an upstream.
struct Refused {
    error: HttpError,
    /// When the request's head began (parsed) or began to arrive (not understood).
    since: Instant,
}

/// One request's end, as [`Connection::finish`] needs it.
struct Finished<'r> {
    head: Consumed,
    body: Body,
    /// Request body bytes that went upstream.
    sent: u64,
    keep_alive: bool,
    outcome: Outcome,
    /// Where the request went (its last pick), when it was routed.
    routed: Option<&'r Routed>,
    started: Instant,
}

impl<S: Transport> Connection<'_, S> {
    async fn run(&mut self) {
        if self.worker.cfg.read_at_accept {
            self.acquire_buffers();
            self.client.unconfirmed = self.client.socket.read_waiting(&mut self.client.inbuf) > 0;
        }
        loop {
            if self.client.inbuf.is_empty() {
                // Idle between requests: hold no buffers while waiting.
                self.release_buffers();
                if !self.wait_for_request().await {
                    return;
                }
                self.acquire_buffers();
            }
            if self.request().await == Next::Close {
                return;
            }
        }
    }

    /// Waits until the client sends the next request; false when it should be closed instead
    /// (idle timeout, EOF, or the end of the drain grace). A first request whose deadline runs
    /// from accept ([`serve`]) waits until that deadline, not for the idle timeout.
    async fn wait_for_request(&mut self) -> bool {
        let drain_started = self.worker.drain.started();
        let client = &mut self.client;
        let head_deadline = self.head_deadline;
        if !self.worker.drain.is_draining() {
            tokio::select! {
                ready = within(
                    self.lane.timer.as_mut(),
                    || head_deadline.unwrap_or_else(|| Instant::now() + self.worker.cfg.tuning.idle()),
                    client.socket.readable(&mut client.unconfirmed),
                ) => return matches!(ready, Some(Ok(()))),
                () = drain_started => {}
            }
        }
        // Draining: one last request within the grace, answered with `Connection: close`.
        let ready = within(
            self.lane.timer.as_mut(),
            || Instant::now() + DRAIN_GRACE,
            client.socket.readable(&mut client.unconfirmed),
        );
        matches!(ready.await, Some(Ok(())))
    }

    /// One request, from its head to the decision about the connection.
    async fn request(&mut self) -> Next {
        let Some(mut head) = self.read_head().await else {
            return Next::Close;
        };
        self.consume(head.consumed);
        if head.body == BodyKind::Empty {
            self.park_input();
        }
        let finished = match &mut head.routed {
            Ok(req) => {
                self.worker.stats.request();
                let served =
                    exchange::serve(self.worker, &mut self.client, &mut self.lane, req).await;
                Finished {
                    head: head.consumed,
                    body: served.body,
                    sent: served.sent,
                    keep_alive: head.keep_alive,
                    outcome: served.outcome,
                    routed: Some(&req.routed),
                    started: req.started,
                }
            }
            Err(refused) => Finished {
                head: head.consumed,
                body: Body::unread(head.body),
                sent: 0,
                keep_alive: head.keep_alive,
                outcome: Outcome::Own(refused.error),
                routed: None,
                started: refused.since,
            },
        };
        self.finish(finished).await
    }

    /// Gives the input buffer back to the worker's free list while it holds nothing: a bodiless
    /// request read whole needs no input buffer while its answer comes, so a busy connection
    /// holds two buffers instead of three (the next read takes one again). Pipelined bytes keep
    /// it.
    fn park_input(&mut self) {
        if self.client.inbuf.is_empty() {
            let parked = std::mem::take(&mut self.client.inbuf);
            self.worker.buffers.give(parked);
        }
    }

    /// Drops the bytes a head took from the input, as [`policy::consumed`] decided.
    fn consume(&mut self, consumed: Consumed) {
        if let Consumed::Head(len) = consumed {
            self.client.inbuf.drain(..len.min(self.client.inbuf.len()));
        }
    }

    /// Reads until a complete request head is parsed and prepared. `None` when the client went
    /// away (or stayed silent) before sending a full head.
    async fn read_head(&mut self) -> Option<Head> {
        self.request_line.clear();
        self.request_id.clear();
        // One deadline for the whole head (slowloris), fixed when the first read has to wait.
        let mut deadline = self.head_deadline.take();
        let header = self.worker.cfg.tuning.header();
        loop {
            if self.fresh && self.client.inbuf.starts_with(h2::PREFACE_START) {
                self.http2 = true;
                return None;
            }
            if self.fresh && names_other_protocol(&self.client.inbuf) {
                debug!(worker = self.worker.cfg.id, peer = %self.peer, "not HTTP; closing");
                return None;
            }
            if !self.client.inbuf.is_empty() {
                if let Some(head) = self.prepare() {
                    self.fresh = false;
                    return Some(head);
                }
            }
            let client = &mut self.client;
            let read = within(
                self.lane.timer.as_mut(),
                || *deadline.get_or_insert_with(|| Instant::now() + header),
                fill(&mut client.socket, &mut client.inbuf),
            );
            match read.await {
                Some(Ok(0)) => return None,
                Some(Ok(_)) => {}
                None if !self.client.inbuf.is_empty() => {
                    let since = deadline.map_or_else(Instant::now, |d: Instant| d - header);
                    return Some(unframed(HEAD_TIMEOUT, since));
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Parse -> route -> pick -> rewrite into `out`, without I/O. `None`: the head is incomplete.
    fn prepare(&mut self) -> Option<Head> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let mut req = match parse_request(&self.client.inbuf, &mut headers) {
            Ok(Some(req)) => req,
            Ok(None) => return None,
            Err(error) => return Some(unframed(error, Instant::now())),
        };
        let started = Instant::now();
        if self.worker.cfg.access_log.is_some() {
            self.request_line.clear();
            self.request_line.push_str(req.method);
            self.request_line.push(' ');
            self.request_line.push_str(req.target);
        }
        let keep_alive = req.keep_alive && !self.worker.drain.is_draining();
        self.client.side = ClientSide {
            version: req.version,
            keep_alive,
        };
        let consumed = policy::consumed(Some(req.head_len));
        let refuse = |error| Head {
            consumed,
            keep_alive,
            body: req.body,
            routed: Err(Refused {
                error,
                since: started,
            }),
        };
        if let (BodyKind::Length(len), Some(max)) = (req.body, self.worker.cfg.tuning.max_body()) {
            if len > max {
                return Some(refuse(BODY_TOO_LARGE));
            }
        }
        if req.body == BodyKind::Chunked {
            // Framing errors already in the buffer are answered before any upstream is
            // contacted, so the backend never sees a connection for a request lb refuses.
            let buffered = self.client.inbuf.get(req.head_len..).unwrap_or_default();
            if let Err(error) = ChunkedDecoder::new().scan(buffered) {
                return Some(refuse(error));
            }
        }
        if req.method == "CONNECT" {
            return Some(refuse(HttpError::new(
                ErrorKind::NotImplemented,
                "CONNECT is not supported: lb is not a forward proxy",
            )));
        }
        // RFC 9112 §3.3: a request without a Host (HTTP/1.0 allows that) gets the address the
        // client connected to as its host, since the upstream request is HTTP/1.1 and must name
        // one. Only such requests pay for the formatting.
        let local;
        if req.host.is_none() {
            local = self.client.socket.local_addr().map(|a| a.to_string());
            req.host = local.as_deref().ok().map(str::as_bytes);
        }
        let own;
        let id = match request_id::kept(req.headers) {
            Some(id) => id,
            None => {
                own = self.worker.ids.next();
                own.as_bytes()
            }
        };
        if self.worker.cfg.access_log.is_some() {
            // Visible ASCII only (`request_id`), so this is the id byte for byte.
            self.request_id.push_str(&String::from_utf8_lossy(id));
        }
        let out = &mut self.lane.out;
        let peer = &self.peer_text;
        let routed = route::route(self.worker, &req, self.peer, |lead, rest| {
            out.clear();
            write_request_head(&req, lead, rest, peer, id, out);
        });
        let routed = match routed {
            Ok(routed) => routed,
            Err(error) => return Some(refuse(error)),
        };
        Some(Head {
            consumed,
            keep_alive,
            body: req.body,
            routed: Ok(Request {
                routed,
                body: req.body,
                head_request: req.method == "HEAD",
                idempotent: matches!(
                    req.method,
                    "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
                ),
                expect_continue: req.expect_continue,
                upgrade: req.upgrade,
                keep_alive,
                started,
            }),
        })
    }

    /// Ends one request: lb's own answer when one is due, the one access log line, and the
    /// decision about the connection, which is made before the answer is written so that the
    /// answer says `Connection: close` exactly when the connection closes.
    async fn finish(&mut self, end: Finished<'_>) -> Next {
        let answer = match end.outcome {
            Outcome::Own(error) => Answer::Own(error.kind),
            Outcome::Relayed {
                complete,
                close,
                body,
                ..
            } => Answer::Relayed {
                complete,
                close,
                close_delimited: body == BodyKind::CloseDelimited
                    || dechunk_for(self.client.side, body),
            },
            Outcome::Tunnel { .. } => Answer::Tunnel,
            Outcome::ClientGone => Answer::ClientGone,
        };
        let ending = End {
            head: end.head,
            body: end.body,
            keep_alive: end.keep_alive,
            draining: self.worker.drain.is_draining(),
            answer,
        };
        let mut next = policy::next(ending);
        let target = end.routed.map(|r| r.picked.addr);
        let (status, bytes) = match end.outcome {
            Outcome::Own(error) => {
                let status = error.kind.status();
                self.worker.stats.response(status);
                if let Some(routed) = end.routed {
                    routed.picked.answered(self.worker, status);
                }
                if !self.answer(error, target, next).await {
                    next = Next::Close;
                }
                (status, error.detail.len() as u64 + 1)
            }
            Outcome::Relayed { status, bytes, .. } => (status, bytes),
            Outcome::Tunnel { to_client, .. } => (101, to_client),
            Outcome::ClientGone => return Next::Close,
        };
        let sent = match end.outcome {
            Outcome::Tunnel { to_upstream, .. } => to_upstream,
            _ => end.sent,
        };
        let elapsed = end.started.elapsed();
        if let Some(prefix) = end.routed.and_then(|r| r.picked.prefix()) {
            let stats = &self.worker.stats.routes;
            (self.worker.route_clock).observe(stats, prefix, status, elapsed);
        }
        self.log(status, target, (bytes, sent), elapsed);
        if policy::lingers(ending, !self.client.inbuf.is_empty()) {
            self.linger().await;
        }
        next
    }

    /// Closes lb's side and discards what the client still sends, until it closes too or
    /// [`LINGER`] / [`LINGER_BYTES`] run out, so the answer is read before the socket goes.
    async fn linger(&mut self) {
        use tokio::io::AsyncWriteExt as _;
        let client = &mut self.client;
        if client.socket.shutdown().await.is_err() {
            return;
        }
        if client.inbuf.capacity() == 0 {
            client.inbuf = self.worker.buffers.take();
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            client.inbuf.clear();
            let read = within(
                self.lane.timer.as_mut(),
                || deadline,
                fill(&mut client.socket, &mut client.inbuf),
            );
            match read.await {
                Some(Ok(n)) if n > 0 => discarded += n,
                _ => break,
            }
        }
        client.inbuf.clear();
    }

    /// Writes lb's own answer to `error` for a request that went to `upstream` (its last
    /// pick, when it was routed); false when the client could not take it.
    async fn answer(&mut self, error: HttpError, upstream: Option<SocketAddr>, next: Next) -> bool {
        let worker = self.worker.cfg.id;
        // `-` like the access log when no upstream was picked (no route, a client fault).
        let upstream = Upstream(upstream);
        match policy::loudness(error.kind) {
            Loudness::Quiet => {
                debug!(worker, peer = %self.peer, %upstream, %error, "request refused")
            }
            Loudness::Loud => {
                info!(worker, peer = %self.peer, %upstream, %error, "request failed")
            }
        }
        let out = &mut self.lane.out;
        out.clear();
        error_response(error.kind, error.detail, next == Next::Close, out);
        let idle = self.worker.cfg.tuning.idle();
        write_all(&mut self.client.socket, out, idle).await.is_ok()
    }

    /// Writes the access log line of the current request, when the access log is on; `bytes`
    /// are (to the client, to the upstream).
    fn log(&self, status: u16, target: Option<SocketAddr>, bytes: (u64, u64), elapsed: Duration) {
        if let Some(log) = &self.worker.cfg.access_log {
            log.log(Entry {
                worker: self.worker.cfg.id,
                client: self.peer,
                request: &self.request_line,
                status,
                target,
                bytes: bytes.0,
                bytes_up: bytes.1,
                elapsed,
                request_id: &self.request_id,
                tls: self.tls,
            });
        }
    }

    fn acquire_buffers(&mut self) {
        let bufs = [
            &mut self.client.inbuf,
            &mut self.lane.out,
            &mut self.lane.up,
        ];
        for buf in bufs {
            if buf.capacity() == 0 {
                *buf = self.worker.buffers.take();
            }
        }
    }

    fn release_buffers(&mut self) {
        let bufs = [
            &mut self.client.inbuf,
            &mut self.lane.out,
            &mut self.lane.up,
        ];
        for buf in bufs {
            self.worker.buffers.give(std::mem::take(buf));
        }
    }
}

/// An upstream address in a log line, `-` when there is none.
struct Upstream(Option<SocketAddr>);

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A head that was not understood: where the next request starts is unknown.
fn unframed(error: HttpError, since: Instant) -> Head {
    Head {
        consumed: policy::consumed(None),
        keep_alive: false,
        body: BodyKind::Empty,
        routed: Err(Refused { error, since }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffers::BufferPool;
    use crate::drain::Drain;
    use crate::request_id::RequestIds;
    use crate::splice::Splicer;
    use crate::tuning::{Tuning, TuningValues};
    use crate::upstream_pool::UpstreamPool;
    use crate::worker::{WorkerConfig, WorkerSettings};
    use lb_registry::{Registry, SnapshotCache};
    use std::cell::RefCell;
    use std::sync::Arc;

    /// Every connection, idle ones included, holds its `serve` future: its size is the
    /// per-connection memory floor (10,000 idle keep-alive connections x this). A header array
    /// kept across an await once made it 5,264 bytes.
    #[test]
    fn a_connection_future_stays_small() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let secs = Duration::from_secs;
            let settings = WorkerSettings {
                drain_timeout: secs(30),
                pool_idle_per_target: 64,
                pool_idle_timeout: secs(60),
                max_connections: 65_536,
                read_at_accept: true,
                splice: true,
                h2: Default::default(),
            };
            let tuning = Tuning::new(TuningValues {
                connect: secs(5),
                upstream: secs(60),
                header: secs(10),
                idle: secs(60),
                max_body: None,
            });
            let worker = Rc::new(Worker {
                pool: UpstreamPool::new(1, Duration::from_secs(1)),
                routes: RefCell::new(SnapshotCache::new(Arc::new(Registry::new(1)))),
                buffers: BufferPool::default(),
                splicer: Splicer::new(true, Arc::default()),
                drain: Drain::default(),
                stats: Arc::default(),
                ids: RequestIds::new(1, 0),
                route_clock: Default::default(),
                cfg: WorkerConfig::new(0, settings, Arc::new(tuning)),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let future = serve(&worker, stream, addr, None);
            let size = std::mem::size_of_val(&future);
            assert!(size <= 2048, "serve future is {size} bytes");
        });
    }
}
