//! The zero-copy body path: the rest of a body moves socket -> pipe -> socket with `splice(2)`,
//! never through user space, when [`body_path::path`] says so (clear text both sides, a body
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
//! [`body_path::path`]: crate::body_path::path

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
                // splice(2) takes some bytes or fails while the pipe holds any; were it ever to
                // take none, trying again would spin, so it counts as the receiver failing.
                if n == 0 {
                    return Err(Fault::Receiver);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = listener.accept().await.unwrap();
        (a, b)
    }

    const WAITS: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(5));

    /// Exactly `left` bytes cross; what the sender sent past them is in `buf`; the count is
    /// exact and the pipe goes back to the pool for the next body.
    #[tokio::test]
    async fn a_body_crosses_whole_and_what_follows_it_stays_behind() {
        let stats = Arc::new(WorkerStats::default());
        let splicer = Splicer::new(true, stats.clone());
        let (mut sender, src) = pair().await;
        let (dst, mut receiver) = pair().await;
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut sent = body.clone();
        sent.extend_from_slice(b"NEXT");
        let writer = tokio::spawn(async move { sender.write_all(&sent).await.map(|()| sender) });
        let reader = tokio::spawn(async move {
            let mut got = vec![0; 300_000];
            receiver.read_exact(&mut got).await.map(|_| got)
        });
        let mut buf = Vec::with_capacity(1024);
        let moved = splicer
            .relay(&src, &dst, Some(300_000), &mut buf, WAITS)
            .await;
        assert_eq!(moved.unwrap().unwrap(), 300_000);
        let _sender = writer.await.unwrap().unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), body);
        // "NEXT" may still be on its way when the body ends; whatever came is in `buf`, and the
        // rest is still in the socket, never in the pipe.
        assert!(b"NEXT".starts_with(&buf), "{buf:?}");
        assert_eq!(splicer.free.borrow().len(), 1);
        assert_eq!(splicer.free.borrow()[0].held(), 0);
        let mut out = String::new();
        WorkerStats::render_all(&[stats], &mut out);
        assert!(
            out.contains("lb_worker_spliced_bytes_total{worker=\"0\"} 300000\n"),
            "{out}"
        );
    }

    /// A receiver that takes nothing is a receiver fault at the write timeout, and the pipe
    /// full of its bytes is closed rather than kept for another body.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_receiver_times_out_and_its_pipe_is_closed() {
        let splicer = Splicer::new(true, Arc::default());
        let (mut sender, src) = pair().await;
        let (dst, _receiver) = pair().await;
        let len = 64 << 20;
        let writer = tokio::spawn(async move {
            let block = vec![7u8; 1 << 20];
            while sender.write_all(&block).await.is_ok() {}
        });
        let mut buf = Vec::new();
        let moved = splicer.relay(&src, &dst, Some(len), &mut buf, WAITS).await;
        assert_eq!(moved.unwrap().unwrap_err(), Fault::Receiver);
        assert_eq!(
            splicer.free.borrow().len(),
            0,
            "a pipe with bytes in it is not kept"
        );
        writer.abort();
    }

    /// A sender that closes before Content-Length is a sender fault; one whose close ends a
    /// close-delimited body is the body's end.
    #[tokio::test]
    async fn a_close_ends_a_close_delimited_body_and_cuts_a_counted_one() {
        for (left, expected) in [(Some(10), Err(Fault::Sender)), (None, Ok(4))] {
            let splicer = Splicer::new(true, Arc::default());
            let (mut sender, src) = pair().await;
            let (dst, mut receiver) = pair().await;
            sender.write_all(b"four").await.unwrap();
            drop(sender);
            let mut buf = Vec::new();
            let moved = splicer.relay(&src, &dst, left, &mut buf, WAITS).await;
            assert_eq!(moved.unwrap(), expected, "{left:?}");
            drop(dst);
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"four");
            assert_eq!(splicer.free.borrow().len(), 1, "an empty pipe is kept");
        }
    }
}
