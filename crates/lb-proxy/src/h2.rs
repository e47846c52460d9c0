//! The HTTP/2 client connection (RFC 9113): one `h2` server connection, each stream one request.
//!
//! The connection task drives the `h2` state machine (`accept` does every read and write of the
//! connection) and spawns one task per stream on the worker's `LocalSet` (`stream`), which routes,
//! picks and serves its request through the same `exchange` as an HTTP/1.1 request, with an
//! HTTP/2 [`crate::exchange::Client`] (`client`). Streams share nothing but the connection: a
//! stream whose client stops reading waits for flow-control credit alone, while the others and
//! the upstream pool go on.
//!
//! Invariants: the connection is polled until `h2` says it is closed, so streams in flight finish
//! after a GOAWAY (drain, upgrade, idle); no stream task outlives its connection task (the drain
//! counts connections, not streams); the limits that end an abusive connection with GOAWAY
//! (reset floods, header size) are set in one place, [`builder`], and the ones `h2` lacks (PING
//! and SETTINGS floods, streams reset after lb forwarded them) are counted in one place, `flood`.

mod client;
mod flood;
mod replay;
mod stream;

pub(crate) use replay::Replay;

use crate::worker::{H2Settings, Worker};
use bytes::Bytes;
use flood::{Abuse, Guard};
use h2::Reason;
use lb_http::{Scheme, MAX_HEAD_BYTES};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info};

/// The first bytes of the HTTP/2 connection preface (RFC 9113 §3.4) that no HTTP/1.1 request
/// can start with: enough to hand a clear-text connection to HTTP/2 (prior knowledge, h2c).
pub(crate) const PREFACE_START: &[u8] = b"PRI * HTTP/2";

/// Each stream's receive window: one request body may have this much in flight. 1 Gbit/s at
/// 10 ms of round trip needs 1.25 MB in flight (bandwidth x delay); 2 MiB lets one upload reach
/// 1.68 Gbit/s at 10 ms (16.8 Gbit/s at 1 ms), where the 65,535-byte default caps it at
/// 52 Mbit/s. It is credit, not memory: lb forwards DATA as it arrives and returns the credit
/// once the upstream took the bytes, so it holds this much only for a stream whose upstream
/// stops reading.
const STREAM_WINDOW: u32 = 2 << 20;

/// The connection's receive window, shared by its streams: two full stream windows, so one
/// stalled upload cannot take the whole connection's credit. The worst a connection can make lb
/// buffer (every upstream stalled) is this, 4 MiB.
const CONNECTION_WINDOW: u32 = 4 << 20;

/// Streams a client may have reset before lb accepted them (Rapid Reset, CVE-2023-44487):
/// beyond it `h2` ends the connection with GOAWAY (ENHANCE_YOUR_CALM).
const MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// Streams lb may have reset because of the client's protocol errors (MadeYouReset,
/// CVE-2025-8671) before `h2` ends the connection with GOAWAY.
const MAX_LOCAL_ERROR_RESETS: usize = 100;

/// How long a connection that went idle, or got a GOAWAY with nothing in flight, may take to
/// close (the GOAWAY's PING round trip) before lb drops it.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Who a connection's streams come from, as the upstream head and the access log say it: the
/// peer's address, the scheme it came in by (`X-Forwarded-Proto`) and its TLS version (`-` in
/// clear text).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub(crate) addr: SocketAddr,
    pub(crate) scheme: Scheme,
    pub(crate) tls: &'static str,
}

/// The `h2` server settings lb runs every connection with: its windows, its stream limit, a
/// header list no larger than an HTTP/1.1 head may be, and the reset-flood limits.
fn builder(settings: H2Settings) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(settings.max_streams)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS));
    builder
}

/// Serves one HTTP/2 client connection over `io` (a clear-text socket whose bytes already read
/// are replayed, or a TLS stream whose ALPN chose `h2`) until it closes. The connection preface
/// must arrive within the header timeout; with no stream open for the idle timeout, or when a
/// drain begins, lb sends GOAWAY and lets streams in flight finish.
pub(crate) async fn serve<T>(worker: &Rc<Worker>, io: T, link: Link)
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let id = worker.cfg.id;
    let peer = link.addr;
    let abuse = Rc::new(Abuse::new(Instant::now()));
    let shaken = timeout(
        worker.cfg.tuning.header(),
        builder(worker.cfg.h2).handshake::<_, Bytes>(Guard::new(io, abuse.clone())),
    );
    let mut conn = match shaken.await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => {
            debug!(worker = id, %peer, %error, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            debug!(worker = id, %peer, "HTTP/2 preface not received in time");
            return;
        }
    };
    worker.stats.h2_connection();
    let mut streams = JoinSet::new();
    let mut drain = pin!(worker.drain.started());
    let mut going_away = false;
    // Armed while no stream is open: the idle timeout, then (going away) the close grace.
    let mut idle = pin!(sleep_until(Instant::now() + worker.cfg.tuning.idle()));
    loop {
        if worker.drain.is_draining() && !going_away {
            conn.graceful_shutdown();
            going_away = true;
            idle.as_mut().reset(Instant::now() + CLOSE_GRACE);
        }
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let (worker, abuse) = (worker.clone(), abuse.clone());
                    // Boxed: a stream's future is kilobytes (the exchange's state), and tokio
                    // moves a task's future and its stages by value (spawn, running, finished,
                    // read): behind a box each move is a pointer, not a copy of the state.
                    streams.spawn_local(Box::pin(async move {
                        stream::serve(&worker, &abuse, request, respond, link).await;
                    }));
                }
                Some(Err(error)) => {
                    debug!(worker = id, %peer, %error, "HTTP/2 connection failed");
                    break;
                }
                None => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {
                if streams.is_empty() {
                    let wait = if going_away { CLOSE_GRACE } else { worker.cfg.tuning.idle() };
                    idle.as_mut().reset(Instant::now() + wait);
                }
            }
            () = &mut drain, if !going_away => {}
            () = abuse.reported() => {
                info!(worker = id, %peer, "HTTP/2 flood (control frames or resets); closing the connection");
                conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                // Let `h2` write the GOAWAY; streams the flood opened meanwhile are dropped.
                let _ = timeout(CLOSE_GRACE, async {
                    while conn.accept().await.is_some() {}
                })
                .await;
                break;
            }
            () = idle.as_mut(), if streams.is_empty() => {
                if going_away {
                    // The GOAWAY's round trip did not complete: nothing is in flight, so
                    // nothing is lost by dropping the connection.
                    break;
                }
                debug!(worker = id, %peer, "HTTP/2 connection idle; going away");
                conn.graceful_shutdown();
                going_away = true;
                idle.as_mut().reset(Instant::now() + CLOSE_GRACE);
            }
        }
    }
    // The connection is gone: whatever a stream still waits for can reach no client.
    streams.shutdown().await;
    worker.stats.h2_closed();
}
