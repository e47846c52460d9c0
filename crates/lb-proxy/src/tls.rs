//! A TLS connection's start: tell a TLS client from a confused one, complete the handshake
//! within the header timeout, then hand the decrypted stream to the protocol ALPN chose.
//!
//! Order: accept -> peek the first byte ([`opening`]): a byte that starts an HTTP method
//! (plain HTTP sent to the TLS port) gets a clear-text `400` saying so, then the connection
//! closes -> handshake -> [`protocol`] picks the connection code (`h1` today; `h2` is one more
//! arm). One deadline, fixed at accept, covers the handshake and the first request head (SPEC),
//! so a client that stalls mid-handshake is closed like a slowloris one.
//!
//! Invariants: a failed handshake (garbage, a stall, a reset) ends this connection only and is
//! counted once by reason ([`Failure`]); nothing is written in clear text on a TLS connection
//! except the plain-HTTP `400`.

use crate::h1;
use crate::h2;
use crate::tls_stats::{Failure, Version};
use crate::transport::Transport;
use crate::worker::Worker;
use lb_http::{error_response, ErrorKind, Scheme};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::rustls::{self, HandshakeKind, ProtocolVersion};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// A TLS record of type handshake (RFC 8446 §5.1): how every ClientHello begins.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What lb says to plain HTTP on its TLS port.
const PLAIN_HTTP_DETAIL: &str = "this port speaks HTTPS (TLS); plain HTTP is not served here";

/// How long the plain-HTTP answer waits for its client to read it and close.
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(1);

/// How a connection opens, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// A TLS record, or something rustls will judge.
    Tls,
    /// The first letter of an HTTP method.
    PlainHttp,
}

/// The opening of a connection whose first byte is `first`. Methods are upper-case tokens in
/// practice (RFC 9110 §9.1); a TLS record never starts with a letter.
fn opening(first: u8) -> Opening {
    if first != HANDSHAKE_RECORD && first.is_ascii_uppercase() {
        Opening::PlainHttp
    } else {
        Opening::Tls
    }
}

/// The connection code for the ALPN protocol the handshake chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// The protocol for ALPN's choice `alpn` (none: the client did not ask, HTTP/1.1).
fn protocol(alpn: Option<&[u8]>) -> Option<Protocol> {
    match alpn {
        None | Some(b"http/1.1") => Some(Protocol::Http1),
        Some(b"h2") => Some(Protocol::Http2),
        Some(_) => None,
    }
}

/// Why a handshake that returned `error` failed: rustls' own errors are the client's protocol;
/// the rest are the connection going away.
fn failure(error: &io::Error) -> Failure {
    let rustls_error = error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    if rustls_error || error.kind() == io::ErrorKind::InvalidData {
        Failure::Protocol
    } else {
        Failure::Closed
    }
}

/// Serves one accepted TLS connection until it closes.
pub(crate) async fn serve(
    worker: &Rc<Worker>,
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let stats = &worker.stats.tls;
    let deadline = Instant::now() + worker.cfg.tuning.header();
    let mut first = [0u8];
    match timeout_at(deadline, socket.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(Ok(_) | Err(_)) => return stats.failed(Failure::Closed),
        Err(_) => return stats.failed(Failure::Timeout),
    }
    if opening(first[0]) == Opening::PlainHttp {
        stats.failed(Failure::PlainHttp);
        debug!(worker = worker.cfg.id, %peer, "plain HTTP on the TLS port");
        return answer_plain_http(worker, socket).await;
    }
    let mut accept = acceptor.accept(socket);
    let stream = match timeout_at(deadline, &mut accept).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            debug!(worker = worker.cfg.id, %peer, %error, "TLS handshake failed");
            return stats.failed(failure(&error));
        }
        // Counted before `accept` (holding the socket) drops: the count moves before the close.
        Err(_) => return stats.failed(Failure::Timeout),
    };
    let session = stream.get_ref().1;
    let version = match session.protocol_version() {
        Some(ProtocolVersion::TLSv1_2) => Version::Tls12,
        _ => Version::Tls13,
    };
    stats.handshake(
        version,
        session.handshake_kind() == Some(HandshakeKind::Resumed),
    );
    match protocol(session.alpn_protocol()) {
        Some(Protocol::Http1) => h1::serve(worker, stream, peer, Some(deadline)).await,
        Some(Protocol::Http2) => {
            let link = h2::Link {
                addr: peer,
                scheme: Scheme::Https,
                tls: stream.tls_version(),
            };
            worker.stats.accepted();
            // Boxed like the clear-text hand-off: HTTP/2's state stays out of HTTP/1.1's future.
            Box::pin(h2::serve(worker, stream, link)).await;
            worker.stats.closed();
        }
        None => {}
    }
}

/// Reads what the client sent, answers `400` in clear text saying why, and closes once the
/// client has had [`PLAIN_HTTP_LINGER`] to read it.
async fn answer_plain_http(worker: &Worker, mut socket: TcpStream) {
    let mut buf = worker.buffers.take();
    buf.clear();
    let _ = timeout(PLAIN_HTTP_LINGER, socket.read_buf(&mut buf)).await;
    buf.clear();
    error_response(ErrorKind::BadRequest, PLAIN_HTTP_DETAIL, true, &mut buf);
    let answer = async {
        socket.write_all(&buf).await?;
        socket.shutdown().await?;
        // Discard until the client closes, so unread bytes do not turn the close into a reset
        // that would destroy the answer before it is read.
        loop {
            buf.clear();
            if socket.read_buf(&mut buf).await? == 0 {
                return Ok::<_, io::Error>(());
            }
        }
    };
    let _ = timeout(PLAIN_HTTP_LINGER, answer).await;
    buf.clear();
    worker.buffers.give(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_by_first_byte() {
        let cases = [
            (HANDSHAKE_RECORD, Opening::Tls),
            (b'G', Opening::PlainHttp),
            (b'P', Opening::PlainHttp),
            (b'H', Opening::PlainHttp),
            (b'D', Opening::PlainHttp),
            (0x15, Opening::Tls),
            (0x80, Opening::Tls),
            (b'g', Opening::Tls),
            (0, Opening::Tls),
        ];
        for (byte, want) in cases {
            assert_eq!(opening(byte), want, "first byte {byte:#x}");
        }
    }

    #[test]
    fn protocols_by_alpn() {
        assert_eq!(protocol(None), Some(Protocol::Http1));
        assert_eq!(protocol(Some(b"http/1.1")), Some(Protocol::Http1));
        assert_eq!(protocol(Some(b"h2")), Some(Protocol::Http2));
        assert_eq!(protocol(Some(b"spdy/3")), None);
    }

    #[test]
    fn failures_by_error() {
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("x".into()),
        );
        let cases = [
            (tls, Failure::Protocol),
            (io::ErrorKind::InvalidData.into(), Failure::Protocol),
            (io::ErrorKind::UnexpectedEof.into(), Failure::Closed),
            (io::ErrorKind::ConnectionReset.into(), Failure::Closed),
        ];
        for (error, want) in cases {
            assert_eq!(failure(&error), want, "{error}");
        }
    }
}
