//! In-process tests of the tokio servers (lb-admin's control plane, lb-echo): a server spawned on
//! the test's runtime, and a raw HTTP/1.1 client for it. Behind the `tokio` feature, so the
//! black-box kit itself stays std-only.
//!
//! Why not [`Conn`](crate::Conn): a `#[tokio::test]` runs the server on the test's own
//! (current-thread) runtime, where a blocking read would stop the server it waits for. Every wait
//! here is bounded by [`IO_TIMEOUT`], so a server that hangs fails the test instead of hanging it.

use crate::client::IO_TIMEOUT;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A server task on `127.0.0.1:0`, stopped through its shutdown future.
#[derive(Debug)]
pub struct ServerTask {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The shutdown future handed to a server: resolves when [`ServerTask::shutdown`] is called (or
/// the [`ServerTask`] is dropped).
#[derive(Debug)]
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl ServerTask {
    /// Binds `127.0.0.1:0` and spawns `serve(listener, shutdown)` on the current runtime.
    pub async fn spawn<S, F>(serve: S) -> ServerTask
    where
        S: FnOnce(TcpListener, Shutdown) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Shutdown(stopped)));
        ServerTask { addr, stop, task }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks the server to stop and waits until its future has returned.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        timeout(IO_TIMEOUT, self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task ends without a panic");
    }

    /// A fresh client connection to the server.
    pub async fn connect(&self) -> AsyncConn {
        AsyncConn::connect(self.addr).await
    }
}

/// A client connection that can carry many requests and keeps the bytes it has not consumed.
#[derive(Debug)]
pub struct AsyncConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One response as the client received it.
#[derive(Debug)]
pub struct AsyncReply {
    /// Status code.
    pub status: u16,
    /// Header fields in order, values as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; none for 1xx and answers to HEAD).
    pub body: Vec<u8>,
}

impl AsyncReply {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, which must be UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is UTF-8")
    }
}

impl AsyncConn {
    /// A fresh client connection to a server on `addr` (one this kit did not spawn, such as a
    /// `!Send` server on a `LocalSet`).
    pub async fn connect(addr: SocketAddr) -> AsyncConn {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        AsyncConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Closes the writing half: the server reads end of stream, and may still answer.
    pub async fn shutdown_write(&mut self) {
        timeout(IO_TIMEOUT, self.stream.shutdown())
            .await
            .expect("shut down in time")
            .expect("shut down");
    }

    /// Writes all of `raw`.
    pub async fn send(&mut self, raw: &[u8]) {
        timeout(IO_TIMEOUT, self.stream.write_all(raw))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// Reads what the server sent next; 0 at end of stream.
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .expect("read in time")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response, framed by `Content-Length`; `head_only` for answers to HEAD, which
    /// have no body.
    pub async fn reply(&mut self, head_only: bool) -> AsyncReply {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response.parse(&self.buf).expect("a valid response head");
            if let httparse::Status::Complete(head_len) = parsed {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8(h.value.to_vec()).expect("UTF-8 value");
                        (h.name.to_string(), value)
                    })
                    .collect();
                let status = response.code.expect("a complete head has a status");
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().expect("a numeric Content-Length"))
                    .unwrap_or(0);
                let length = if head_only || status == 100 {
                    0
                } else {
                    length
                };
                while self.buf.len() < head_len + length {
                    assert!(self.fill().await > 0, "closed inside a body");
                }
                let body = self.buf[head_len..head_len + length].to_vec();
                self.buf.drain(..head_len + length);
                return AsyncReply {
                    status,
                    headers,
                    body,
                };
            }
            assert!(self.fill().await > 0, "closed before a response head");
        }
    }

    /// Asserts that the server closes the connection (a clean end of stream, not a reset) with
    /// nothing more to read.
    pub async fn assert_closed(&mut self) {
        assert_eq!(self.fill().await, 0, "expected EOF, got {:?}", self.buf);
    }
}
