//! The zero-copy body path: the rest of a body moves socket -> pipe -> socket with `splice(2)`,
//! never through user space, when [`policy::body_path`] says so (clear text both sides, a body
//! passed on as it is, long enough to be worth it).
//!
//! Each round fills an empty pipe from the sender, then empties it into the receiver, so a
//! "would block" is never ambiguous: filling, the sender has nothing; emptying, the receiver
//! takes nothing. Readiness is tokio's (`try_io`, which clears it on "would block"); every wait
//! is bounded by the relay's read or write timeout, like the copy path's.
//!
//! Invariants: a pipe goes back to the worker's pool only empty (one an error left bytes in is
//! closed, so those bytes never reach another exchange); a body framed by Content-Length takes
//! exactly its length from the sender, and bytes the sender already sent past it are read into
//! the relay's buffer, where the exchange sees them (a stray byte keeps an upstream out of the
//! pool; a pipelined request is the client's next one).
//!
//! [`policy::body_path`]: crate::policy::body_path

use crate::stats::WorkerStats;
use lb_socket::Pipe;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Bytes each pipe is asked to hold: one fill and one empty per this many body bytes. Provisional
/// (four times the kernel's default, within the default `pipe-max-size` of 1 MiB); the lead
/// measures it with `scripts/bench.sh bigbody`.
const PIPE_SIZE: usize = 256 * 1024;

/// Empty pipes a worker keeps for the next spliced body; beyond this, returned pipes are closed.
const MAX_FREE: usize = 64;

/// Which side stopped a spliced body: the sender failed, closed early or went silent past the
/// read timeout; or the receiver failed or took nothing within the write timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Sender,
    Receiver,
}

/// A worker's pipes and its splice switch (single-threaded: one per worker).
#[derive(Debug)]
pub(crate) struct Splicer {
    /// Whether this worker splices at all (off only as a benchmark knob, `LB_SPLICE=off`).
    pub(crate) on: bool,
    free: RefCell<Vec<Pipe>>,
    stats: Arc<WorkerStats>,
}

impl Splicer {
    pub(crate) fn new(on: bool, stats: Arc<WorkerStats>) -> Self {
        Splicer {
            on,
            free: RefCell::new(Vec::new()),
            stats,
        }
    }

    /// An empty pipe: a pooled one, or a new one. `None` when the process has no descriptor to
    /// spare; the body then takes the copy path.
    fn take(&self) -> Option<Pipe> {
        let pooled = self.free.borrow_mut().pop();
        pooled.or_else(|| Pipe::new(PIPE_SIZE).ok())
    }

    /// Returns a pipe: kept only when it holds nothing and the pool has room.
    fn give(&self, pipe: Pipe) {
        let mut free = self.free.borrow_mut();
        if pipe.held() == 0 && free.len() < MAX_FREE {
            free.push(pipe);
        }
    }

    /// Splices the rest of a body from `src` to `dst`: `left` bytes (`None`: until `src`
    /// closes), waiting at most `read` for `src` and `write` for `dst` each time. Returns the
    /// bytes moved, or `None` when no pipe could be had (nothing was moved: the caller copies
    /// instead). Bytes `src` sent past `left` end up in `buf`.
    pub(crate) async fn relay(
        &self,
        src: &TcpStream,
        dst: &TcpStream,
        left: Option<u64>,
        buf: &mut Vec<u8>,
        (read, write): (Duration, Duration),
    ) -> Option<Result<u64, Fault>> {
        let mut pipe = self.take()?;
        let moved = self.pump(&mut pipe, (src, read), (dst, write), left).await;
        self.give(pipe);
        if moved.is_ok() && left.is_some() {
            // What the sender already sent past the body joins `buf`, as on the copy path, so
            // the exchange decides on it when it gives the upstream back (not only the pool at
            // its next take). Through tokio, so a "would block" clears the readiness the fills
            // left. An error or the end of the stream shows at the connection's next read.
            let _ = src.try_read_buf(buf);
        }
        Some(moved)
    }

    async fn pump(
        &self,
        pipe: &mut Pipe,
        (src, read): (&TcpStream, Duration),
        (dst, write): (&TcpStream, Duration),
        left: Option<u64>,
    ) -> Result<u64, Fault> {
        let mut moved = 0u64;
        loop {
            let want = left.map_or(usize::MAX, |left| {
                usize::try_from(left - moved).unwrap_or(usize::MAX)
            });
            if want == 0 {
                return Ok(moved);
            }
            let filled =
                when_ready(src, Interest::READABLE, read, || pipe.fill_from(src, want)).await;
            match filled {
                Ok(0) if left.is_none() => return Ok(moved),
                Ok(0) | Err(_) => return Err(Fault::Sender),
                Ok(_) => {}
            }
            while pipe.held() > 0 {
                let n = when_ready(dst, Interest::WRITABLE, write, || pipe.drain_into(dst))
                    .await
                    .map_err(|_| Fault::Receiver)?;
                moved += n as u64;
                self.stats.spliced(n as u64);
            }
        }
    }
}

/// Runs `op` on `stream` once tokio says it is ready for `interest`, within `limit` (`TimedOut`
/// when it passes). The first try costs no wait: a socket that is ready is used at once, and the
/// timer is armed only when it is not.
async fn when_ready<R>(
    stream: &TcpStream,
    interest: Interest,
    limit: Duration,
    mut op: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    match stream.try_io(interest, &mut op) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        done => return done,
    }
    let wait = async {
        loop {
            stream.ready(interest).await?;
            match stream.try_io(interest, &mut op) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
        }
    };
    match timeout(limit, wait).await {
        Ok(done) => done,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
