//! A worker's idle upstream connections, per target.
//!
//! LIFO: the most recently used connection is reused first (warm in caches, least likely to have hit
//! the upstream's idle timeout), the oldest expire. Bounded per target; a connection is only given
//! back after a complete, reusable exchange. Before reuse, a connection the upstream has closed (or
//! that holds unexpected bytes) is discarded, which avoids most stale keep-alive races.
//!
//! Owned by one worker: `RefCell`, never shared across threads.

use crate::stats::WorkerStats;
use std::cell::RefCell;
use std::collections::HashMap;
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

/// Idle upstream connections of one worker.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    idle: RefCell<AddrMap<Vec<Idle>>>,
    max_per_target: usize,
    idle_timeout: Duration,
}

impl UpstreamPool {
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
        while let Some(conn) = list.pop() {
            if now.duration_since(conn.since) < self.idle_timeout && is_quiet(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Gives back a connection that finished a complete exchange and may be reused.
    pub(crate) fn give(&self, addr: SocketAddr, stream: Upstream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(addr).or_default();
        if list.len() >= self.max_per_target {
            // Drop the oldest: the newest stays warm.
            list.remove(0);
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
        });
    }

    /// Closes connections idle longer than the idle timeout or closed by their upstream.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            list.retain(|c| now.duration_since(c.since) < self.idle_timeout && is_quiet(&c.stream));
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
