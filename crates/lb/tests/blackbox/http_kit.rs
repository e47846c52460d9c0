//! Test pieces for the issue-3 HTTP tests: a scripted origin that does exactly what a test says
//! byte by byte (a `100 Continue`, a `101` and a tunnel, a response cut short, garbage), and raw
//! client reads that keep whatever arrived before a close.
//!
//! Why not `lb_testkit::Backend`: it answers well-formed HTTP by design; these tests need an
//! upstream that misbehaves on cue and reports what it saw while it happens. A script reports
//! events over a channel, and the test waits for them: that is how it syncs with the upstream
//! without sleeping. std only: the clippy configuration bans `std::sync::Mutex`, so the shared
//! state is a channel, atomics, and handles owned by one thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One side of a connection with a read buffer, so bytes past a head are never lost.
#[derive(Debug)]
pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Accept order on the scripted backend (0 for the first connection); 0 on clients.
    pub id: u64,
    events: Option<Sender<String>>,
}

/// A message head as received: the start line, the fields in order, the raw bytes.
#[derive(Debug, Clone)]
pub struct Head {
    /// The request or status line, without CRLF.
    pub line: String,
    /// `(name, value)` in order, names as sent.
    pub fields: Vec<(String, String)>,
    /// Everything through the empty line.
    pub raw: Vec<u8>,
}

impl Head {
    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw head as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The status code of a response head (0 if the line is not one).
    pub fn status(&self) -> u16 {
        self.line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The request target of a request head.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

impl Peer {
    /// Connects to `addr` as a client, with the kit's timeouts.
    pub fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect_timeout(&addr, lb_testkit::IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Peer::wrap(stream, 0, None)
    }

    fn wrap(stream: TcpStream, id: u64, events: Option<Sender<String>>) -> Peer {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(lb_testkit::IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(lb_testkit::IO_TIMEOUT));
        Peer {
            stream,
            buf: Vec::new(),
            id,
            events,
        }
    }

    /// The socket (to shut a half down, or change its timeouts).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Reports `what` to the test (scripted backends only).
    pub fn event(&self, what: impl Into<String>) {
        if let Some(tx) = &self.events {
            let _ = tx.send(what.into());
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads more bytes into the buffer; 0 at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one head through its empty line. `Ok(None)` on a clean EOF before any byte of it.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(Some(parse_head(raw)));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed inside a head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {} of {n} bytes", self.buf.len()),
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Buffered bytes, or the next bytes to arrive; empty at EOF.
    pub fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads until the peer closes (EOF or reset) or `timeout` passes. Returns every byte that
    /// arrived (buffered ones included) and whether the peer closed.
    pub fn read_until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if is_close(&e) => break true,
                Err(_) => break false,
            }
        };
        let _ = self.stream.set_read_timeout(Some(lb_testkit::IO_TIMEOUT));
        (std::mem::take(&mut self.buf), closed)
    }

    /// True if nothing arrives within `quiet` (used only to show that something does not happen).
    pub fn silent_for(&mut self, quiet: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(quiet));
        let silent = matches!(
            self.fill(),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        );
        let _ = self.stream.set_read_timeout(Some(lb_testkit::IO_TIMEOUT));
        silent
    }
}

fn is_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(raw: Vec<u8>) -> Head {
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("").to_string();
    let fields = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    Head { line, fields, raw }
}

/// What a scripted backend runs for every connection it accepts.
pub type Script = dyn Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static;

/// An origin on `127.0.0.1:0` that runs a script per connection and reports events.
///
/// Dropping it stops it: the accept thread is woken by a connection to itself, shuts every open
/// connection down (which ends the scripts' blocking reads) and joins their threads.
#[derive(Debug)]
pub struct Scripted {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    events: Receiver<String>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Scripted {
    /// Starts the backend; `script` runs on its own thread for each accepted connection.
    pub fn start(script: impl Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("scripted: bind");
        let addr = listener.local_addr().expect("scripted: local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (tx, events) = channel();
        let script: Arc<Script> = Arc::new(script);
        let accept_thread = {
            let stop = Arc::clone(&stop);
            let accepted = Arc::clone(&accepted);
            std::thread::spawn(move || accept_loop(&listener, &stop, &accepted, &tx, &script))
        };
        Scripted {
            addr,
            stop,
            accepted,
            events,
            accept_thread: Some(accept_thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next event, or `None` after `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<String> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Waits for the next event and asserts it is `expected`.
    pub fn expect_event(&self, expected: &str) {
        match self.next_event(crate::WAIT) {
            Some(e) => assert_eq!(e, expected, "unexpected upstream event"),
            None => panic!(
                "no upstream event within {:?}, expected {expected:?}",
                crate::WAIT
            ),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    accepted: &AtomicU64,
    events: &Sender<String>,
    script: &Arc<Script>,
) {
    let mut open: Vec<TcpStream> = Vec::new();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            open.push(clone);
        }
        let events = events.clone();
        let script = Arc::clone(script);
        threads.push(std::thread::spawn(move || {
            let mut peer = Peer::wrap(stream, id, Some(events));
            let _ = script(&mut peer);
            // The accept loop holds a clone of the socket, so dropping this one would not close
            // the connection: a script that returns has finished with it.
            let _ = peer.stream.shutdown(Shutdown::Both);
        }));
    }
    for s in &open {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
}

/// A response head and body as raw bytes, split at the empty line.
pub fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    match find(raw, b"\r\n\r\n") {
        Some(end) => (
            String::from_utf8_lossy(&raw[..end + 4]).into_owned(),
            raw[end + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(raw).into_owned(), Vec::new()),
    }
}
