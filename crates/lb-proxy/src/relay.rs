//! Streaming a message body from one socket to another by its framing, never holding it whole.
//!
//! The body may start with bytes already read together with the head (`buf`); anything read past
//! the end of the body stays in `buf` (a pipelined next request). Memory per relay is one buffer.
//! Every read and write is bounded by an inactivity timeout, so a stalled peer frees the exchange.
//! A body lb passes on untouched may leave the copy path after its buffered bytes, for `splice`.

use crate::body_path;
use crate::buffers::BUF_SIZE;
use crate::splice::{Fault, Splicer};
use crate::transport::Transport;
use lb_http::{BodyKind, ChunkedDecoder, HttpError};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Which side of a relay failed: decides the status (if any can still be sent) and which
/// connections may be kept.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// Reading from the sender failed, timed out, or it closed before the body ended.
    Source,
    /// Writing to the receiver failed or timed out.
    Sink,
    /// The body's framing is invalid (bad chunk).
    Invalid(HttpError),
    /// The body grew past the configured limit.
    TooLarge,
}

/// Reads more bytes into `buf` (appending, growing it when nearly full). `Ok(0)` is EOF.
pub(crate) async fn fill(stream: &mut impl Transport, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < BUF_SIZE / 4 {
        buf.reserve(BUF_SIZE);
    }
    stream.read_buf(buf).await
}

/// [`fill`] with an inactivity timeout (`TimedOut` when it passes).
pub(crate) async fn read_more(
    stream: &mut impl Transport,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> io::Result<usize> {
    match timeout(limit, fill(stream, buf)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Writes all of `bytes`, with an inactivity timeout for the whole write. A head or a small body
/// almost always fits the socket buffer at once, so one non-blocking attempt comes first and the
/// timer is armed only for what is left (over TLS: also for records the socket did not take).
pub(crate) async fn write_all(
    stream: &mut impl Transport,
    bytes: &[u8],
    limit: Duration,
) -> io::Result<()> {
    let written = stream.write_now(bytes)?;
    let rest = bytes.get(written..).unwrap_or_default();
    if rest.is_empty() && !stream.unsent() {
        return Ok(());
    }
    let write = async {
        stream.write_all(rest).await?;
        stream.flush().await
    };
    match timeout(limit, write).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Timeouts of one relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest wait for the sender's next bytes.
    pub(crate) read: Duration,
    /// Longest wait for the receiver to take bytes.
    pub(crate) write: Duration,
    /// Largest body allowed (chunked bodies are checked as they stream); `None` is unlimited.
    pub(crate) max_len: Option<u64>,
}

/// A body's framing, and whether the relay decodes it (a chunked body for an HTTP/1.0 client:
/// only its payload is sent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    pub(crate) body: BodyKind,
    pub(crate) dechunk: bool,
}

/// Relays a body of framing `framing` from `src` to `dst`. `head` holds bytes to send first (a
/// message head); they go out together with the first body bytes in one write. Once the bytes
/// read with the head are sent, the rest takes the path [`body_path::path`] picks: spliced by
/// `splicer` or copied through `buf`. On success `buf` holds only bytes past the end of the
/// body, and the count of body bytes sent is returned.
pub(crate) async fn relay_body(
    src: &mut impl Transport,
    dst: &mut impl Transport,
    head: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    framing: Framing,
    limits: Limits,
    splicer: &Splicer,
) -> Result<u64, RelayError> {
    let Framing { body, dechunk } = framing;
    let mut sent = 0u64;
    let mut remaining = match body {
        BodyKind::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunked = ChunkedDecoder::new();
    let mut path_chosen = false;
    loop {
        // Bytes in `head` before this round's decoded payload (a message head not yet sent).
        let prefix = head.len();
        // How many buffered bytes belong to the body, whether they are forwarded as they are
        // (rather than decoded into `head`), and whether the body ends with them.
        let (take, raw, done) = match body {
            BodyKind::Empty => (0, true, true),
            BodyKind::Length(_) => {
                let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                remaining -= take as u64;
                (take, true, remaining == 0)
            }
            BodyKind::Chunked => {
                let scan = if dechunk {
                    chunked.decode(buf, head)
                } else {
                    chunked.scan(buf)
                }
                .map_err(RelayError::Invalid)?;
                if limits.max_len.is_some_and(|max| chunked.data_len() > max) {
                    return Err(RelayError::TooLarge);
                }
                (scan.consumed, !dechunk, scan.done)
            }
            BodyKind::CloseDelimited => (buf.len(), true, false),
        };
        if !head.is_empty() {
            sent += if raw { take } else { head.len() - prefix } as u64;
            if raw {
                head.extend_from_slice(&buf[..take]);
            }
            write_all(dst, head, limits.write)
                .await
                .map_err(|_| RelayError::Sink)?;
            head.clear();
        } else if raw && take > 0 {
            write_all(dst, &buf[..take], limits.write)
                .await
                .map_err(|_| RelayError::Sink)?;
            sent += take as u64;
        }
        buf.drain(..take);
        if done {
            return Ok(sent);
        }
        if !std::mem::replace(&mut path_chosen, true) {
            let sockets = src.tcp().zip(dst.tcp());
            let rest = body_path::Rest {
                splice_on: splicer.on,
                // Only clear-text sockets carry the body's bytes as they are (not TLS records).
                clear_text: sockets.is_some(),
                body,
                dechunk,
                left: remaining,
            };
            if let (Some((from, to)), body_path::Path::Splice) = (sockets, body_path::path(rest)) {
                let left = (body != BodyKind::CloseDelimited).then_some(remaining);
                // Boxed: its readiness and timer futures would otherwise sit in every
                // connection's future, idle ones included (`a_connection_future_stays_small`);
                // one allocation per body of at least `SPLICE_MIN` bytes costs nothing beside it.
                let waits = (limits.read, limits.write);
                let splice = Box::pin(splicer.relay(from, to, left, buf, waits));
                if let Some(spliced) = splice.await {
                    return match spliced {
                        Ok(n) => Ok(sent + n),
                        Err(Fault::Sender) => Err(RelayError::Source),
                        Err(Fault::Receiver) => Err(RelayError::Sink),
                    };
                }
            }
        }
        match read_more(src, buf, limits.read).await {
            Ok(0) if body == BodyKind::CloseDelimited => return Ok(sent),
            Ok(0) | Err(_) => return Err(RelayError::Source),
            Ok(_) => {}
        }
    }
}

/// Joins two connections into a byte tunnel after a `101 Switching Protocols`, until either side
/// closes. Bytes each side sent early (already buffered) are delivered first. Returns the bytes
/// carried (to the client, to the upstream), the early ones included, for the access log.
pub(crate) async fn tunnel(
    client: &mut impl Transport,
    upstream: &mut impl Transport,
    to_client: &[u8],
    to_upstream: &[u8],
    limits: Limits,
) -> io::Result<(u64, u64)> {
    write_all(client, to_client, limits.write).await?;
    write_all(upstream, to_upstream, limits.write).await?;
    let (up, down) = tokio::io::copy_bidirectional(client, upstream).await?;
    Ok((down + to_client.len() as u64, up + to_upstream.len() as u64))
}
