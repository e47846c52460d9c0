//! A worker's idle upstream connections, per target.
//!
//! LIFO: the most recently used connection is reused first (warm in caches, least likely to have hit
//! the upstream's idle timeout), the oldest expire. A connection is only given back after a
//! complete, reusable exchange. Before reuse, a connection the upstream has closed (or that holds
//! unexpected bytes) is discarded, which avoids most stale keep-alive races.
//!
//! The pool follows the worker's concurrency rather than a small fixed size: a new connection is
//! only opened when every pooled one to that target is in use, so as long as the pool closes
//! nothing the worker's own load needs again, a target sees no more connections than the peak
//! number of exchanges in flight toward it (HAProxy's `http-reuse always`). What is no longer
//! needed goes two ways: a connection idle longer than the idle timeout is closed (LIFO keeps the
//! unneeded ones at the bottom, where they age), and a sweep trims each target's idle list to the
//! number of client connections the worker still serves, since only an open client connection can
//! send the next request ([`surplus`]). A hard cap per target bounds file descriptors whatever
//! happens.
//!
//! An idle connection holds no buffer, only its socket, its reactor registration and a timestamp:
//! 56 bytes in the list plus tokio's cache-padded registration, about 300 bytes of heap in all,
//! so 4,000 of them cost about 1.2 MiB (the kernel's socket memory is not in lb's RSS).
//!
//! Owned by one worker: `RefCell`, never shared across threads.

use crate::stats::WorkerStats;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// An upstream connection, counted in its worker's open-upstream gauge for as long as it exists
/// (in use or idle in the pool).
#[derive(Debug)]
pub(crate) struct Upstream {
    stream: TcpStream,
    stats: Arc<WorkerStats>,
}

impl Upstream {
    pub(crate) fn new(stream: TcpStream, stats: &Arc<WorkerStats>) -> Self {
        stats.upstream_opened();
        Upstream {
            stream,
            stats: stats.clone(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stats.upstream_closed();
    }
}

impl Deref for Upstream {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl DerefMut for Upstream {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// The pool's hasher: two lookups per request hash a `SocketAddr`, and its keys come from the
/// route table, not from clients, so SipHash's flood resistance buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type AddrMap<V> = HashMap<SocketAddr, V, BuildHasherDefault<AddrHasher>>;

#[derive(Debug)]
struct Idle {
    stream: Upstream,
    since: Instant,
}

/// How many of a target's `idle` connections (the oldest) to close: beyond the `clients` the
/// worker still serves, an idle connection can only wait for its idle timeout, and beyond `cap`
/// it is over the hard limit.
fn surplus(idle: usize, clients: usize, cap: usize) -> usize {
    idle.saturating_sub(clients.min(cap))
}

/// Idle upstream connections of one worker; per target, oldest at the front, newest at the back.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    idle: RefCell<AddrMap<VecDeque<Idle>>>,
    max_per_target: usize,
    idle_timeout: Duration,
}

impl UpstreamPool {
    /// A pool that keeps at most `max_per_target` idle connections per target (the hard cap),
    /// each for at most `idle_timeout`.
    pub(crate) fn new(max_per_target: usize, idle_timeout: Duration) -> Self {
        UpstreamPool {
            idle: RefCell::new(AddrMap::default()),
            max_per_target,
            idle_timeout,
        }
    }

    /// The most recently returned live connection to `addr`, if any.
    pub(crate) fn take(&self, addr: SocketAddr) -> Option<Upstream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(conn) = list.pop_back() {
            if now.duration_since(conn.since) < self.idle_timeout && is_quiet(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Gives back a connection that finished a complete exchange and may be reused. Its client
    /// connection is still open, so only the hard cap can turn it away.
    pub(crate) fn give(&self, addr: SocketAddr, stream: Upstream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(addr).or_default();
        list.push_back(Idle {
            stream,
            since: Instant::now(),
        });
        // Beyond the cap, drop the oldest: the newest stays warm.
        let close = surplus(list.len(), usize::MAX, self.max_per_target);
        list.drain(..close);
    }

    /// Closes connections idle longer than the idle timeout or closed by their upstream, then the
    /// oldest of each target's beyond the `clients` connections the worker serves now.
    pub(crate) fn sweep(&self, clients: usize) {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            list.retain(|c| now.duration_since(c.since) < self.idle_timeout && is_quiet(&c.stream));
            let close = surplus(list.len(), clients, self.max_per_target);
            list.drain(..close);
        }
        idle.retain(|_, list| !list.is_empty());
    }
}

/// True when an idle connection has nothing to read: no EOF, no stray bytes. Uses the reactor's
/// readiness, so a quiet connection costs no system call.
fn is_quiet(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn surplus_keeps_what_open_clients_can_use_up_to_the_cap() {
        // (idle, clients, cap, close)
        let table = [
            (0, 0, 10, 0),
            (5, 0, 10, 5),           // every client gone: nothing left to reuse them
            (5, 5, 10, 0),           // one per open client
            (5, 3, 10, 2),           // two clients left since
            (5, 100, 10, 0),         // more clients than idle connections
            (12, 100, 10, 2),        // the hard cap wins over many clients
            (11, usize::MAX, 10, 1), // a give at the cap drops one
            (10, usize::MAX, 10, 0),
        ];
        for (idle, clients, cap, close) in table {
            assert_eq!(
                surplus(idle, clients, cap),
                close,
                "idle {idle}, clients {clients}, cap {cap}"
            );
        }
    }

    /// A pool with cap `cap` that was given `n` connections to one listener, oldest first; the
    /// accepted ends stay open, so the connections stay quiet.
    struct Given {
        pool: UpstreamPool,
        addr: SocketAddr,
        /// The connections' local ports, in the order they were given.
        ports: Vec<u16>,
        _accepted: Vec<TcpStream>,
    }

    impl Given {
        async fn new(n: usize, cap: usize) -> Given {
            let stats = Arc::new(WorkerStats::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let pool = UpstreamPool::new(cap, Duration::from_secs(60));
            let (mut ports, mut accepted) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let stream = TcpStream::connect(addr).await.unwrap();
                ports.push(stream.local_addr().unwrap().port());
                accepted.push(listener.accept().await.unwrap().0);
                pool.give(addr, Upstream::new(stream, &stats));
            }
            Given {
                pool,
                addr,
                ports,
                _accepted: accepted,
            }
        }

        /// The local ports of every connection the pool hands out, in the order it does.
        fn take_all(&self) -> Vec<u16> {
            std::iter::from_fn(|| self.pool.take(self.addr))
                .map(|u| u.local_addr().unwrap().port())
                .collect()
        }
    }

    #[tokio::test]
    async fn the_pool_keeps_every_connection_below_the_cap_and_gives_the_newest_first() {
        let given = Given::new(100, 1000).await;
        let newest_first: Vec<u16> = given.ports.iter().rev().copied().collect();
        assert_eq!(given.take_all(), newest_first);
    }

    #[tokio::test]
    async fn a_give_at_the_cap_closes_the_oldest() {
        let given = Given::new(5, 3).await;
        let p = &given.ports;
        assert_eq!(given.take_all(), vec![p[4], p[3], p[2]]);
    }

    #[tokio::test]
    async fn a_pool_capped_at_zero_keeps_nothing() {
        let given = Given::new(3, 0).await;
        assert_eq!(given.take_all(), Vec::<u16>::new());
    }

    #[tokio::test]
    async fn a_sweep_closes_the_oldest_beyond_the_open_clients() {
        let given = Given::new(5, 1000).await;
        given.pool.sweep(2);
        let p = &given.ports;
        assert_eq!(given.take_all(), vec![p[4], p[3]]);
    }

    #[test]
    fn addresses_that_differ_hash_apart() {
        let build = BuildHasherDefault::<AddrHasher>::default();
        let addrs: Vec<SocketAddr> = [
            "127.0.0.1:9001",
            "127.0.0.1:9002",
            "127.0.0.2:9001",
            "[::1]:9001",
            "[::2]:9001",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let hashes: std::collections::HashSet<u64> =
            addrs.iter().map(|a| build.hash_one(a)).collect();
        assert_eq!(hashes.len(), addrs.len());
    }
}
