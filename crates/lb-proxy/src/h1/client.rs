//! The HTTP/1.1 side of an exchange: the client's socket and the bytes read from it, and how an
//! exchange reaches them ([`Client`]): bodies framed as HTTP/1.1, response heads in HTTP/1.1
//! form (de-chunked for HTTP/1.0 clients), interim heads only to clients that take them.
//!
//! Invariants: the request body is read from `inbuf` (the bytes after the consumed head) and
//! then the socket, and its framing ends the read, so nothing of a pipelined next request is
//! taken; every wait on the client (a read, a write) is bounded by the idle timeout, except in a
//! tunnel, which lasts until either side closes.

use crate::exchange::Client;
use crate::relay::{relay_body, tunnel, write_all, Framing, Limits, RelayError};
use crate::transport::Transport;
use crate::worker::Worker;
use lb_http::{dechunk_for, write_response_head, BodyKind, ClientSide, ResponseHead};
use std::io;
use std::time::Duration;
use tokio::net::TcpStream;

/// lb's own interim response for a client waiting on `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The client's socket and bytes: what an exchange reaches through [`Client`].
pub(super) struct H1Client<'w, S> {
    pub(super) worker: &'w Worker,
    pub(super) socket: S,
    /// Client bytes not yet consumed (a request head, body bytes, pipelined requests).
    pub(super) inbuf: Vec<u8>,
    /// The current request's version and keep-alive wish.
    pub(super) side: ClientSide,
    /// The first request was read at accept, past tokio: its readiness event is still to come.
    pub(super) unconfirmed: bool,
}

impl<S: Transport> Client for H1Client<'_, S> {
    fn accepts_interim(&self) -> bool {
        self.side.accepts_interim()
    }

    fn response_head(&mut self, head: &ResponseHead<'_, '_>, keep_alive: bool, out: &mut Vec<u8>) {
        let side = ClientSide {
            keep_alive,
            ..self.side
        };
        write_response_head(head, side, out);
    }

    async fn send(&mut self, head: &[u8]) -> io::Result<()> {
        write_all(&mut self.socket, head, self.worker.cfg.tuning.idle()).await
    }

    async fn send_continue(&mut self) -> io::Result<()> {
        write_all(&mut self.socket, CONTINUE, self.worker.cfg.tuning.idle()).await
    }

    async fn send_body(
        &mut self,
        upstream: &mut TcpStream,
        head: &mut Vec<u8>,
        body: BodyKind,
        write_timeout: Duration,
    ) -> Result<u64, RelayError> {
        let tuning = &self.worker.cfg.tuning;
        let limits = Limits {
            read: tuning.idle(),
            write: write_timeout,
            max_len: tuning.max_body(),
        };
        relay_body(
            &mut self.socket,
            upstream,
            head,
            &mut self.inbuf,
            Framing {
                body,
                dechunk: false,
            },
            limits,
            &self.worker.splicer,
        )
        .await
    }

    async fn relay_response(
        &mut self,
        upstream: &mut TcpStream,
        head: &mut Vec<u8>,
        buf: &mut Vec<u8>,
        body: BodyKind,
        read_timeout: Duration,
    ) -> Result<u64, RelayError> {
        let limits = Limits {
            read: read_timeout,
            write: self.worker.cfg.tuning.idle(),
            max_len: None,
        };
        let framing = Framing {
            body,
            dechunk: dechunk_for(self.side, body),
        };
        let splicer = &self.worker.splicer;
        relay_body(
            upstream,
            &mut self.socket,
            head,
            buf,
            framing,
            limits,
            splicer,
        )
        .await
    }

    async fn tunnel(
        &mut self,
        upstream: &mut TcpStream,
        to_client: &[u8],
        write_timeout: Duration,
    ) -> io::Result<(u64, u64)> {
        let limits = Limits {
            read: self.worker.cfg.tuning.idle(),
            write: write_timeout,
            max_len: None,
        };
        tunnel(&mut self.socket, upstream, to_client, &self.inbuf, limits).await
    }
}
