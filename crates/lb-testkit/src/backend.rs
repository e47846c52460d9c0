//! A recording origin server: the "upstream" side of every proxy test.
//!
//! [`Backend`] listens on `127.0.0.1:0`, serves each connection on its own thread, and records
//! every request exactly as it arrived (method, target, raw head, body length and checksum, which
//! connection carried it). Tests then assert on what lb *forwarded* rather than on what lb says it
//! did: round-robin counts, rewritten targets, dropped hop-by-hop headers, bodies passed through
//! intact, upstream connection reuse. The answer is chosen with [`Reply`]: a normal small response,
//! a big streamed body, no answer at all (for 504), an immediate close (for 502), and so on.
//!
//! Dropping a `Backend` stops it: a stop flag is set, every open connection is shut down (which
//! wakes the threads blocked in `read`), and a connection to itself wakes the accept loop, so a
//! failing test never leaves threads or ports behind.

use crate::checksum::{Checksum, Pattern};
use crate::wire::{Framing, Headers, WireReader};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much of each request body a [`Recorded`] keeps verbatim (the checksum covers all of it).
pub const KEPT_BODY_BYTES: usize = 64 * 1024;

/// What a [`Backend`] answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200` with `X-Backend: NAME`, `X-Path: <target seen>`, `X-Conn: <connection id>`, and the
    /// body `NAME`, framed by Content-Length. The default.
    Name,
    /// This status, these headers and this body. Content-Length is added unless the headers carry
    /// framing already or the status has no body (1xx, 204, 304); no body is sent to `HEAD`.
    Fixed {
        /// Status code.
        status: u16,
        /// Extra header fields.
        headers: Vec<(String, String)>,
        /// Body bytes.
        body: Vec<u8>,
    },
    /// `200` with the first `len` bytes of the test pattern, streamed with Content-Length or
    /// chunked; the client compares against [`Pattern::checksum`].
    Big {
        /// Body length.
        len: u64,
        /// Use chunked framing instead of Content-Length.
        chunked: bool,
    },
    /// `200` without Content-Length or chunked: the body ends when the backend closes.
    CloseDelimited {
        /// Body bytes.
        body: Vec<u8>,
    },
    /// Reads and records the request, then never answers (lb must time out with 504).
    NeverAnswer,
    /// Accepts the connection and closes it at once without reading (lb must answer 502).
    CloseImmediately,
    /// Records the request and answers like [`Reply::Name`] only after [`Backend::release`].
    Hold,
    /// Answers like [`Reply::Name`] after this pause: a slow origin, so that many exchanges
    /// are in flight at once (upstream pool sizing).
    Slow(Duration),
}

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Which accepted connection carried it (0 for the first connection).
    pub conn_id: u64,
    /// Position on its connection (0 for the first request).
    pub seq_on_conn: u64,
    /// Method.
    pub method: String,
    /// Request target as received (after lb's rewrite).
    pub target: String,
    /// Minor HTTP version (`1` for HTTP/1.1).
    pub minor_version: u8,
    /// Header fields in order.
    pub headers: Headers,
    /// The raw head bytes, through the empty line.
    pub head: Vec<u8>,
    /// How the body was framed.
    pub framing: Framing,
    /// Body length after chunked decoding.
    pub body_len: u64,
    /// FNV-1a 64 of the whole body.
    pub body_checksum: u64,
    /// The first [`KEPT_BODY_BYTES`] of the body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// First value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    addr: SocketAddr,
    reply: Reply,
    stop: AtomicBool,
    accepted: AtomicU64,
    requests: Mutex<Vec<Recorded>>,
    recorded: Condvar,
    open: Mutex<HashMap<u64, TcpStream>>,
    released: Mutex<bool>,
    release_cv: Condvar,
}

/// A recording HTTP/1.1 origin on `127.0.0.1:0`; see the module docs.
#[derive(Debug)]
pub struct Backend {
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    conn_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Backend {
    /// Starts a backend answering [`Reply::Name`].
    pub fn start(name: &str) -> Backend {
        Backend::start_with(name, Reply::Name)
    }

    /// Starts a backend answering `reply` to every request.
    pub fn start_with(name: &str, reply: Reply) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("backend: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("backend: local_addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            addr,
            reply,
            stop: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            recorded: Condvar::new(),
            open: Mutex::new(HashMap::new()),
            released: Mutex::new(false),
            release_cv: Condvar::new(),
        });
        let conn_threads = Arc::new(Mutex::new(Vec::new()));
        let accept_thread = {
            let shared = Arc::clone(&shared);
            let conn_threads = Arc::clone(&conn_threads);
            std::thread::Builder::new()
                .name(format!("backend-{name}"))
                .spawn(move || accept_loop(listener, shared, conn_threads))
                .expect("backend: spawn accept thread")
        };
        Backend {
            shared,
            accept_thread: Some(accept_thread),
            conn_threads,
        }
    }

    /// The backend's name (its `X-Backend` value).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Port it listens on.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Connections accepted so far (including ones closed at once by [`Reply::CloseImmediately`]).
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Requests recorded so far.
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().len()
    }

    /// A copy of every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().clone()
    }

    /// The most recent request; panics if there is none.
    pub fn last_request(&self) -> Recorded {
        self.shared
            .requests
            .lock()
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("backend {} received no request", self.shared.name))
    }

    /// Waits until at least `n` requests were recorded; `false` on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requests = self.shared.requests.lock();
        while requests.len() < n {
            if self
                .shared
                .recorded
                .wait_until(&mut requests, deadline)
                .timed_out()
            {
                return requests.len() >= n;
            }
        }
        true
    }

    /// Lets every request held by [`Reply::Hold`] (and every later one) be answered.
    pub fn release(&self) {
        *self.shared.released.lock() = true;
        self.shared.release_cv.notify_all();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release();
        for stream in self.shared.open.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wake the accept loop; it sees the stop flag and returns.
        let _ = TcpStream::connect_timeout(&self.shared.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *self.conn_threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    conn_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
        if matches!(shared.reply, Reply::CloseImmediately) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        if let Ok(clone) = stream.try_clone() {
            shared.open.lock().insert(id, clone);
        }
        // Drop sets the flag before it shuts the open streams down: a stream inserted after that
        // sweep is seen here, so no connection thread is left blocked in `read`.
        if shared.stop.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let thread_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("backend-{}-{id}", shared.name))
            .spawn(move || {
                let _ = serve(stream, id, &thread_shared);
                thread_shared.open.lock().remove(&id);
            });
        let mut threads = conn_threads.lock();
        threads.retain(|t| !t.is_finished());
        if let Ok(t) = spawned {
            threads.push(t);
        }
    }
}

/// Serves one connection until the peer closes, asks to close, or the backend stops.
fn serve(stream: TcpStream, conn_id: u64, shared: &Shared) -> io::Result<()> {
    let mut reader = WireReader::new(stream);
    let mut seq = 0;
    loop {
        let Some(head) = reader.read_head()? else {
            return Ok(());
        };
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut fields);
        let parsed = req.parse(&head);
        if !matches!(parsed, Ok(httparse::Status::Complete(_))) {
            reader.get_mut().write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        let method = req.method.unwrap_or("").to_string();
        let target = req.path.unwrap_or("").to_string();
        let minor_version = req.version.unwrap_or(1);
        let headers = Headers::from_httparse(req.headers);
        let framing = match Framing::from_headers(&headers, true) {
            Ok(f) => f,
            Err(_) => {
                reader.get_mut().write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        };
        let mut sum = Checksum::new();
        let mut kept = Vec::new();
        reader.read_body(framing, &mut |piece| {
            sum.update(piece);
            let room = KEPT_BODY_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&piece[..piece.len().min(room)]);
        })?;
        let conn_tokens = headers.tokens("connection");
        let close = conn_tokens.iter().any(|t| t == "close")
            || (minor_version == 0 && !conn_tokens.iter().any(|t| t == "keep-alive"));
        let is_head = method == "HEAD";
        let recorded = Recorded {
            conn_id,
            seq_on_conn: seq,
            method,
            target: target.clone(),
            minor_version,
            headers,
            head,
            framing,
            body_len: sum.len(),
            body_checksum: sum.value(),
            body: kept,
        };
        seq += 1;
        // Record before answering, so a client holding the response can rely on the record.
        shared.requests.lock().push(recorded);
        shared.recorded.notify_all();

        let out = reader.get_mut();
        let conn_header = if close { "Connection: close\r\n" } else { "" };
        match &shared.reply {
            Reply::Name => write_name(out, shared, &target, conn_id, conn_header, is_head)?,
            Reply::Hold => {
                let mut released = shared.released.lock();
                while !*released && !shared.stop.load(Ordering::SeqCst) {
                    shared.release_cv.wait(&mut released);
                }
                drop(released);
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                write_name(out, shared, &target, conn_id, conn_header, is_head)?;
            }
            Reply::Slow(pause) => {
                std::thread::sleep(*pause);
                write_name(out, shared, &target, conn_id, conn_header, is_head)?;
            }
            Reply::Fixed {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(*status));
                let mut has_framing = false;
                for (k, v) in headers {
                    has_framing |= k.eq_ignore_ascii_case("content-length")
                        || k.eq_ignore_ascii_case("transfer-encoding");
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                let bodyless = *status / 100 == 1 || *status == 204 || *status == 304;
                if !has_framing && !bodyless {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                head.push_str(conn_header);
                head.push_str("\r\n");
                let mut bytes = head.into_bytes();
                if !is_head && !bodyless {
                    bytes.extend_from_slice(body);
                }
                out.write_all(&bytes)?;
            }
            Reply::Big { len, chunked } => {
                let framing = if *chunked {
                    "Transfer-Encoding: chunked\r\n".to_string()
                } else {
                    format!("Content-Length: {len}\r\n")
                };
                out.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nX-Backend: {}\r\n{framing}{conn_header}\r\n",
                        shared.name
                    )
                    .as_bytes(),
                )?;
                if !is_head {
                    let mut pattern = Pattern::new(*len);
                    let mut buf = Vec::with_capacity(64 * 1024 + 16);
                    while let Some(piece) = pattern.next_piece(60_000) {
                        if *chunked {
                            buf.clear();
                            buf.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                            buf.extend_from_slice(piece);
                            buf.extend_from_slice(b"\r\n");
                            out.write_all(&buf)?;
                        } else {
                            out.write_all(piece)?;
                        }
                    }
                    if *chunked {
                        out.write_all(b"0\r\n\r\n")?;
                    }
                }
            }
            Reply::CloseDelimited { body } => {
                let mut bytes = format!(
                    "HTTP/1.1 200 OK\r\nX-Backend: {}\r\nConnection: close\r\n\r\n",
                    shared.name
                )
                .into_bytes();
                if !is_head {
                    bytes.extend_from_slice(body);
                }
                out.write_all(&bytes)?;
                out.flush()?;
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::NeverAnswer => {
                // Keep reading: returns when lb gives up and closes, or the backend is dropped.
                continue;
            }
            Reply::CloseImmediately => return Ok(()),
        }
        out.flush()?;
        if close {
            let _ = out.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

fn write_name(
    out: &mut TcpStream,
    shared: &Shared,
    target: &str,
    conn_id: u64,
    conn_header: &str,
    is_head: bool,
) -> io::Result<()> {
    let name = &shared.name;
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nX-Path: {target}\r\nX-Conn: {conn_id}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n{conn_header}\r\n",
        name.len()
    )
    .into_bytes();
    if !is_head {
        bytes.extend_from_slice(name.as_bytes());
    }
    out.write_all(&bytes)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}
