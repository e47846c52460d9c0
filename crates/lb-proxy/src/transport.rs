//! The byte streams HTTP/1.1 runs over: a clear-text [`TcpStream`], or a TLS stream over one
//! ([`TlsStream`]). The connection code (`h1`, its `client`, `relay`) is generic over
//! [`Transport`], so the clear-text path is compiled for `TcpStream` alone: no dynamic dispatch
//! and not one system call more than before TLS existed.
//!
//! Invariants: [`Transport::tcp`] is `Some` only when the bytes on the TCP socket are the HTTP
//! bytes themselves, so a zero-copy path (splice) taken on it can never bypass TLS; nothing
//! here reads or writes behind the TLS session's back.

use lb_http::Scheme;
use socket2::SockRef;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ProtocolVersion;
use tokio_rustls::server::TlsStream;

/// Bytes the read at accept may take: enough for nearly every request head, few enough that
/// zeroing them first (the price of a safe read into a `Vec`) costs little.
const FIRST_READ: usize = 4096;

/// A stream an HTTP/1.1 connection runs over.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// The TCP socket when it carries the HTTP bytes as they are (clear text); `None` over TLS.
    fn tcp(&self) -> Option<&TcpStream>;

    /// Writes what the stream takes at once, without waiting, and returns how many bytes of
    /// `bytes` it took (`Ok(0)` when none); the caller writes the rest the ordinary way and
    /// flushes, or only flushes when [`Transport::unsent`] says bytes it took are still held.
    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize>;

    /// Bytes taken by [`Transport::write_now`] are still held by the stream (TLS records the
    /// socket could not take yet); never for a clear-text socket.
    fn unsent(&self) -> bool;

    /// Appends to `buf` what the peer has already sent, without waiting; the bytes read (0 when
    /// nothing was there, or on an error, which the next ordinary read reports).
    fn read_waiting(&mut self, buf: &mut Vec<u8>) -> usize;

    /// Waits until the peer has sent something or closed. `unconfirmed` says the socket was
    /// read behind tokio's back ([`Transport::read_waiting`]).
    async fn readable(&mut self, unconfirmed: &mut bool) -> io::Result<()>;

    /// The address the client connected to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The negotiated TLS version as the access log names it (`1.2`, `1.3`); `-` in clear text.
    fn tls_version(&self) -> &'static str;

    /// The scheme requests come in by (`X-Forwarded-Proto`): clear text is `http`.
    fn scheme(&self) -> Scheme {
        match self.tcp() {
            Some(_) => Scheme::Http,
            None => Scheme::Https,
        }
    }
}

impl Transport for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }

    fn tls_version(&self) -> &'static str {
        "-"
    }

    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.try_write(bytes) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    fn unsent(&self) -> bool {
        false
    }

    /// One `recv` straight on the socket. Asking tokio instead would answer "would block"
    /// without trying, since it has seen no readiness event for a socket it has just registered.
    fn read_waiting(&mut self, buf: &mut Vec<u8>) -> usize {
        let start = buf.len();
        buf.resize(start + FIRST_READ, 0);
        let n = (&*SockRef::from(&*self))
            .read(&mut buf[start..])
            .unwrap_or(0);
        buf.truncate(start + n);
        n
    }

    /// When `unconfirmed`, the first readiness tokio reports may be the event for bytes already
    /// read, so it is checked once with a one-byte peek. Without that, an idle keep-alive
    /// connection would look busy, take its buffers and wait under the header timeout instead
    /// of the idle one.
    async fn readable(&mut self, unconfirmed: &mut bool) -> io::Result<()> {
        loop {
            TcpStream::readable(self).await?;
            if !std::mem::take(unconfirmed) {
                return Ok(());
            }
            let mut byte = [MaybeUninit::uninit()];
            // `try_io` clears tokio's readiness when the peek would block.
            match self.try_io(Interest::READABLE, || SockRef::from(&*self).peek(&mut byte)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                _ => return Ok(()),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::local_addr(self)
    }
}

/// A socket as a `Write` that never waits: "would block" comes back as an error, and tokio's
/// readiness is cleared so the next ordinary write waits for the socket.
struct NonBlocking<'s>(&'s TcpStream);

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for TlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }

    fn tls_version(&self) -> &'static str {
        match self.get_ref().1.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => "1.2",
            Some(ProtocolVersion::TLSv1_3) => "1.3",
            _ => "?",
        }
    }

    /// Encrypts into the session what its buffer takes, then sends the records with
    /// non-blocking writes on the socket until it would block: an answer that fits the socket
    /// buffer costs no timer and no wait, as in clear text.
    fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (socket, session) = self.get_mut();
        let taken = session.writer().write(bytes)?;
        while session.wants_write() {
            match session.write_tls(&mut NonBlocking(socket)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    fn unsent(&self) -> bool {
        self.get_ref().1.wants_write()
    }

    /// The handshake may have brought the first request with the client's last flight: it is
    /// decrypted by the first ordinary read ([`Transport::readable`] says it is there).
    fn read_waiting(&mut self, _buf: &mut Vec<u8>) -> usize {
        0
    }

    /// Ready when the session already holds decrypted bytes (they came with the handshake or
    /// with an earlier record) or the peer closed; otherwise when the socket is readable. A
    /// record that carries no request bytes (a key update) then makes the connection wait
    /// under the header timeout rather than the idle one.
    async fn readable(&mut self, _unconfirmed: &mut bool) -> io::Result<()> {
        let (socket, session) = self.get_mut();
        match session.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {
                TcpStream::readable(socket).await
            }
            // Buffered bytes, a close, or an error the next read reports.
            _ => Ok(()),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().0.local_addr()
    }
}
