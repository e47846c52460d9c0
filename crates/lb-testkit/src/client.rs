//! Raw-socket HTTP/1.1 client: tests write exact bytes and read exact responses.
//!
//! No HTTP client library sits between a test and lb, because the point is to see what lb really
//! sends: a stray header, an extra byte after a body, a connection closed too early. Every socket
//! has read and write timeouts ([`IO_TIMEOUT`]), so a proxy that hangs fails the test with a
//! message instead of hanging the suite.

use crate::checksum::{Checksum, Pattern};
use crate::wait::poll_until;
use crate::wire::{invalid, Framing, Head, Headers, WireReader};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Per-read and per-write timeout on every kit socket; generous because CI machines are loaded.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One response as the client received it.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Minor HTTP version (`1` for HTTP/1.1).
    pub minor_version: u8,
    /// Header fields in order.
    pub headers: Headers,
    /// The raw head, through the empty line.
    pub head: Vec<u8>,
    /// The body, if it was kept (see [`Conn::read_response_digest`]).
    pub body: Vec<u8>,
    /// Body length as received (after chunked decoding).
    pub body_len: u64,
    /// FNV-1a 64 of the body as received.
    pub body_checksum: u64,
    /// How the body was delimited.
    pub framing: Framing,
}

impl Response {
    /// First value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body in the message if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// True when the response announces that the connection will close.
    pub fn closes(&self) -> bool {
        self.headers
            .tokens("connection")
            .iter()
            .any(|t| t == "close")
    }
}

/// A byte stream a [`Conn`] speaks HTTP/1.1 over: a TCP socket, or a test's TLS stream over one
/// (a type of the test's own wrapping its TLS client), with the socket for timeouts and shutdown.
pub trait Wire: Read + Write {
    /// The TCP socket the bytes travel on.
    fn socket(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

/// A client connection that can carry many requests (keep-alive) and keeps unread bytes.
#[derive(Debug)]
pub struct Conn<S: Wire = TcpStream> {
    reader: WireReader<S>,
    peer: SocketAddr,
}

impl Conn {
    /// Connects to `addr` with the kit's timeouts and `TCP_NODELAY`.
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        Conn::from_stream(TcpStream::connect_timeout(&addr, IO_TIMEOUT)?, addr)
    }

    /// Wraps a connected or accepted socket to `peer`, with the kit's timeouts and `TCP_NODELAY`.
    pub fn from_stream(stream: TcpStream, peer: SocketAddr) -> io::Result<Conn> {
        Conn::over(stream, peer)
    }

    /// Like [`Conn::connect`], panicking with the address on failure.
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }
}

impl<S: Wire> Conn<S> {
    /// Wraps `stream`, connected to `peer`, with the kit's timeouts and `TCP_NODELAY` on its
    /// socket.
    pub fn over(stream: S, peer: SocketAddr) -> io::Result<Conn<S>> {
        let socket = stream.socket();
        socket.set_read_timeout(Some(IO_TIMEOUT))?;
        socket.set_write_timeout(Some(IO_TIMEOUT))?;
        socket.set_nodelay(true)?;
        Ok(Conn {
            reader: WireReader::new(stream),
            peer,
        })
    }

    /// The stream itself (e.g. a TLS session's state).
    pub fn wire(&self) -> &S {
        self.reader.get_ref()
    }

    /// The stream itself, to act on it (e.g. to end a TLS session with `close_notify`).
    pub fn wire_mut(&mut self) -> &mut S {
        self.reader.get_mut()
    }

    /// The address this connection went to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The underlying socket (e.g. to shut down its write half).
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref().socket()
    }

    /// Sets the read timeout (e.g. short, to check that nothing more arrives).
    pub fn set_read_timeout(&self, t: Duration) {
        // set_read_timeout only fails for a zero duration, which callers never pass.
        let _ = self
            .stream()
            .set_read_timeout(Some(t.max(Duration::from_millis(1))));
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.reader.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads one response, keeping its body. `head_request` says the request was `HEAD`, whose
    /// response has no body whatever its headers say.
    pub fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        self.read_response_inner(head_request, true)
    }

    /// Reads one response, keeping only the body's length and checksum (for huge bodies).
    pub fn read_response_digest(&mut self, head_request: bool) -> io::Result<Response> {
        self.read_response_inner(head_request, false)
    }

    fn read_response_inner(&mut self, head_request: bool, keep: bool) -> io::Result<Response> {
        let head = self.reader.read_head()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )
        })?;
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Response::new(&mut fields);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(invalid("partial response head")),
            Err(e) => {
                return Err(invalid(&format!(
                    "invalid response head ({e}): {:?}",
                    String::from_utf8_lossy(&head)
                )))
            }
        }
        let status = parsed.code.unwrap_or(0);
        let reason = parsed.reason.unwrap_or("").to_string();
        let minor_version = parsed.version.unwrap_or(1);
        let headers = Headers::from_httparse(parsed.headers);
        let framing = if head_request || status / 100 == 1 || status == 204 || status == 304 {
            Framing::Empty
        } else {
            Framing::from_headers(&headers, false)?
        };
        let mut body = Vec::new();
        let mut sum = Checksum::new();
        self.reader.read_body(framing, &mut |piece| {
            sum.update(piece);
            if keep {
                body.extend_from_slice(piece);
            }
        })?;
        Ok(Response {
            status,
            reason,
            minor_version,
            headers,
            head,
            body,
            body_len: sum.len(),
            body_checksum: sum.value(),
            framing,
        })
    }

    /// Sends `raw` and reads the response, panicking with context on any error.
    pub fn request(&mut self, raw: &[u8]) -> Response {
        let head_request = raw.starts_with(b"HEAD ");
        self.send(raw)
            .unwrap_or_else(|e| panic!("send to {}: {e}", self.peer));
        self.read_response(head_request).unwrap_or_else(|e| {
            panic!(
                "reading the response from {} to {:?}: {e}",
                self.peer,
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            )
        })
    }

    /// `GET target` on this connection (keep-alive), panicking on error.
    pub fn get(&mut self, target: &str) -> Response {
        self.request(&request("GET", target, &[], b""))
    }

    /// Reads one head through its empty line, split leniently (see [`Head`]): for heads that
    /// may be malformed, and for requests a scripted upstream receives. `Ok(None)` on a clean
    /// close before any byte of it.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        Ok(self.reader.read_head()?.map(Head::parse))
    }

    /// Reads exactly `n` bytes; on an early close the bytes that did arrive stay buffered (for
    /// [`Conn::read_until_close`]).
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        self.reader.read_exact_bytes(n)
    }

    /// The buffered bytes, or else the next bytes to arrive; empty when the peer closed.
    pub fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.reader.buffered().is_empty() {
            self.reader.read_more()?;
        }
        Ok(self.reader.take_buffered())
    }

    /// Reads until the peer closes (a clean close or a reset) or `timeout` passes. Returns every
    /// byte that arrived, buffered ones included, and whether the peer closed: what a client
    /// really got from a response cut short.
    pub fn read_until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.set_read_timeout(left);
            match self.reader.read_more() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) => break is_close(&e),
            }
        };
        self.set_read_timeout(IO_TIMEOUT);
        (self.reader.take_buffered(), closed)
    }

    /// True if nothing arrives within `quiet`: only for showing that something does not happen,
    /// which no event can announce.
    pub fn silent_for(&mut self, quiet: Duration) -> bool {
        if !self.reader.buffered().is_empty() {
            return false;
        }
        self.set_read_timeout(quiet);
        let silent = matches!(
            self.reader.read_more(),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        );
        self.set_read_timeout(IO_TIMEOUT);
        silent
    }

    /// Waits up to `timeout` for the peer to close. `true` on a clean close (EOF) or a reset;
    /// `false` if bytes arrived or nothing happened in time.
    pub fn peer_closed_within(&mut self, timeout: Duration) -> bool {
        self.set_read_timeout(timeout);
        let closed = match self.reader.read_head() {
            Ok(None) => true,
            Ok(Some(_)) => false,
            Err(e) => is_close(&e),
        };
        self.set_read_timeout(IO_TIMEOUT);
        closed
    }

    /// Bytes received after the last message and not consumed.
    pub fn leftover(&self) -> &[u8] {
        self.reader.buffered()
    }
}

/// True for the errors a read or write gets when the peer closed or reset the connection.
fn is_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Builds a request: request line, `Host: lb.test` unless `headers` has a Host, the given
/// headers, `Content-Length` for a non-empty body unless framing is already given, and the body.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        out.push_str("Host: lb.test\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One `GET target` with `Connection: close` on a fresh connection.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    send_raw(
        addr,
        &request("GET", target, &[("Connection", "close")], b""),
    )
}

/// Sends `raw` on a fresh connection and reads one response, panicking on error.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    Conn::open(addr).request(raw)
}

/// Sends a request whose body is the first `len` bytes of the test [`Pattern`], framed by
/// Content-Length or, with `chunked`, as chunks of varying size; returns the response with its body.
pub fn upload_pattern(addr: SocketAddr, target: &str, len: u64, chunked: bool) -> Response {
    upload_pattern_on(&mut Conn::open(addr), target, len, chunked)
}

/// [`upload_pattern`] on an open connection (over TLS, for one).
pub fn upload_pattern_on<S: Wire>(
    conn: &mut Conn<S>,
    target: &str,
    len: u64,
    chunked: bool,
) -> Response {
    let addr = conn.peer();
    let length = len.to_string();
    let framing: (&str, &str) = if chunked {
        ("Transfer-Encoding", "chunked")
    } else {
        ("Content-Length", &length)
    };
    conn.send(&request("POST", target, &[framing], b""))
        .unwrap_or_else(|e| panic!("send upload head to {addr}: {e}"));
    let mut pattern = Pattern::new(len);
    // Varying piece sizes, so chunk boundaries fall everywhere relative to lb's buffers.
    let sizes = [65_536usize, 1, 16_384, 333, 131_072, 4_095];
    let mut i = 0;
    let mut buf = Vec::with_capacity(256 * 1024);
    while let Some(piece) = pattern.next_piece(sizes[i % sizes.len()]) {
        i += 1;
        buf.clear();
        if chunked {
            buf.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            buf.extend_from_slice(piece);
            buf.extend_from_slice(b"\r\n");
        } else {
            buf.extend_from_slice(piece);
        }
        conn.send(&buf).unwrap_or_else(|e| {
            panic!("upload to {addr} failed after {i} pieces: {e}; lb answered early or closed")
        });
    }
    if chunked {
        conn.send(b"0\r\n\r\n")
            .unwrap_or_else(|e| panic!("send last chunk to {addr}: {e}"));
    }
    conn.read_response(false)
        .unwrap_or_else(|e| panic!("reading the upload response from {addr}: {e}"))
}

/// An address on which nothing listens: binds port 0, notes the port and closes the listener.
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local_addr");
    drop(l);
    addr
}

/// Waits until `addr` accepts connections; panics after `timeout`.
pub fn wait_until_accepting(addr: SocketAddr, timeout: Duration) {
    poll_until(timeout, &format!("{addr} accepting connections"), || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map(|s| {
                let _ = s.shutdown(Shutdown::Both);
            })
            .map_err(|e| e.to_string())
    });
}

/// True when `addr` refuses connections right now.
pub fn is_refusing(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
    )
}
