//! A TCP relay a test can cut: lb reaches etcd through it, and [`Relay::cut`] makes etcd
//! unreachable for that one node (every connection through it closed, new ones closed at once)
//! while etcd itself goes on serving the others; [`Relay::restore`] lets connections through
//! again. Threads and `std::net` only; everything stops on drop.

use parking_lot::Mutex;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cuttable relay to one upstream address.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    cut: AtomicBool,
    stopped: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn close_all(&self) {
        for stream in self.open.lock().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Relay {
    /// Listens on a free loopback port and relays each connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Relay {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("relay bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relay addr: {e}"));
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accepting.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let _ = relay(client, upstream, &accepting);
            }
        });
        Relay { addr, shared }
    }

    /// Where to connect (`http://` + this, for `--cluster-etcd`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every relayed connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wake the accept loop so that it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut open = shared.open.lock();
        open.push(client.try_clone()?);
        open.push(server.try_clone()?);
    }
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
    Ok(())
}
