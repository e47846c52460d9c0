//! A backend whose health endpoint can be switched between good and bad while it runs; tests
//! wait for lb to notice with [`crate::wait::poll_until`].
//!
//! [`SwitchBackend`] answers `GET <health path>` with the status set by
//! [`SwitchBackend::set_health`] (200 at start) and every other request with `200`,
//! `X-Backend: NAME` and the body `NAME`, one request per connection (`Connection: close`). It
//! counts the two kinds separately, so tests can check where real traffic went without counting
//! lb's probes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug)]
struct Shared {
    name: String,
    health_path: String,
    health_status: AtomicU16,
    probes: AtomicU64,
    requests: AtomicU64,
    stop: AtomicBool,
}

/// A backend with a switchable health endpoint; stops on drop.
#[derive(Debug)]
pub struct SwitchBackend {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl SwitchBackend {
    /// Starts on `127.0.0.1:0`, healthy, with its health endpoint at `health_path`.
    pub fn start(name: &str, health_path: &str) -> SwitchBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("switch backend: bind");
        let addr = listener.local_addr().expect("switch backend: addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            health_path: health_path.to_string(),
            health_status: AtomicU16::new(200),
            probes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || answer(stream, &shared));
                    }
                }
            })
        };
        SwitchBackend {
            shared,
            addr,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status the health endpoint answers from now on.
    pub fn set_health(&self, status: u16) {
        self.shared.health_status.store(status, Ordering::SeqCst);
    }

    /// Health probes received so far.
    pub fn probes(&self) -> u64 {
        self.shared.probes.load(Ordering::SeqCst)
    }

    /// Other requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

impl Drop for SwitchBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head, answers it and closes.
fn answer(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let reply = if target == shared.health_path {
        shared.probes.fetch_add(1, Ordering::SeqCst);
        let status = shared.health_status.load(Ordering::SeqCst);
        format!("HTTP/1.1 {status} Health\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    } else {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let name = &shared.name;
        format!(
            "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
            name.len()
        )
    };
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Wait for the peer's close so our close never resets an answer it has not read yet.
    let _ = stream.read(&mut buf);
}
