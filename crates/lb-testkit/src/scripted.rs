//! A scripted origin: an upstream that does exactly what a test says, byte by byte (a
//! `100 Continue`, a `101` and a tunnel, a response cut short, garbage), and reports what it saw
//! while it happens.
//!
//! Why beside [`crate::Backend`]: a `Backend` answers well-formed HTTP by design and records what
//! arrived for the test to read afterwards; these tests need an upstream that misbehaves on cue
//! and lets the test sync with it mid-exchange. A script reports events over a channel and the
//! test waits for them ([`Scripted::expect_event`]): that is how it syncs with the upstream
//! without sleeping. A script reads and writes through a [`Conn`], the kit's raw client, so both
//! ends of a test keep unread bytes the same way.

use crate::client::Conn;
use crate::wait::WAIT;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One accepted connection as a script sees it: a [`Conn`] (through `Deref`, so a script reads
/// like client code), its accept order and the channel to report events on.
#[derive(Debug)]
pub struct Peer {
    conn: Conn,
    /// Accept order on the scripted backend (0 for the first connection).
    pub id: u64,
    events: Sender<String>,
}

impl Peer {
    /// Reports `what` to the test (see [`Scripted::next_event`]).
    pub fn event(&self, what: impl Into<String>) {
        let _ = self.events.send(what.into());
    }
}

impl Deref for Peer {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Peer {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// What a scripted backend runs for every connection it accepts.
pub type Script = dyn Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static;

/// An origin on `127.0.0.1:0` that runs a script per connection and reports events.
///
/// Dropping it stops it: the accept thread is woken by a connection to itself, shuts every open
/// connection down (which ends the scripts' blocking reads) and joins their threads. std only:
/// the shared state is a channel, atomics, and handles owned by one thread.
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

    /// Waits (up to [`WAIT`]) for the next event and asserts it is `expected`.
    pub fn expect_event(&self, expected: &str) {
        match self.next_event(WAIT) {
            Some(e) => assert_eq!(e, expected, "unexpected upstream event"),
            None => panic!("no upstream event within {WAIT:?}, expected {expected:?}"),
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
    loop {
        let next = listener.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok((stream, peer)) = next else { continue };
        let id = accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            open.push(clone);
        }
        let events = events.clone();
        let script = Arc::clone(script);
        threads.push(std::thread::spawn(move || {
            // Setting socket options on a fresh socket does not fail in practice; if it did, the
            // connection could not honour the kit's timeouts and is not served.
            let Ok(conn) = Conn::from_stream(stream, peer) else {
                return;
            };
            let mut peer = Peer { conn, id, events };
            let _ = script(&mut peer);
            // The accept loop holds a clone of the socket, so dropping this one would not close
            // the connection: a script that returns has finished with it.
            let _ = peer.stream().shutdown(Shutdown::Both);
        }));
    }
    for s in &open {
        let _ = s.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
}
