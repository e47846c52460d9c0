//! The access log: one line per request, written through `tracing` (target `lb::access`) by a
//! thread of its own.
//!
//! Workers never block on log I/O: each line goes into a bounded channel with `try_send`, and
//! when the writer falls behind, lines are dropped and counted (a slow disk must not slow
//! proxying). Off by default; when off, nothing here runs and nothing is allocated.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Lines the channel holds before new ones are dropped.
const CAPACITY: usize = 64 * 1024;

/// The workers' end: cheap to clone, one per worker.
#[derive(Debug, Clone)]
pub struct AccessLog {
    lines: Sender<String>,
    dropped: Arc<AtomicU64>,
}

/// The writer's end: run it on a thread of its own with [`AccessLogWriter::run_tracing`].
#[derive(Debug)]
pub struct AccessLogWriter {
    lines: Receiver<String>,
}

/// A new access log channel.
pub fn access_log() -> (AccessLog, AccessLogWriter) {
    let (tx, rx) = bounded(CAPACITY);
    (
        AccessLog {
            lines: tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        AccessLogWriter { lines: rx },
    )
}

/// What one log line says about one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) worker: usize,
    pub(crate) client: IpAddr,
    /// `METHOD target` as the client sent them.
    pub(crate) request: &'a str,
    pub(crate) status: u16,
    /// The upstream that answered; `None` when lb answered itself.
    pub(crate) target: Option<SocketAddr>,
    /// Response body bytes sent to the client.
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
}

impl AccessLog {
    /// Queues one line; drops it (and counts the drop) when the writer is behind.
    pub(crate) fn log(&self, e: Entry<'_>) {
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line(e)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One access log line (the timestamp comes from the `tracing` subscriber).
fn line(e: Entry<'_>) -> String {
    let mut line = String::with_capacity(96 + e.request.len());
    let _ = write!(
        line,
        "worker={} client={} \"{}\" status={} target=",
        e.worker,
        e.client,
        e.request.escape_debug(),
        e.status,
    );
    match e.target {
        Some(t) => {
            let _ = write!(line, "{t}");
        }
        None => line.push('-'),
    }
    let _ = write!(
        line,
        " bytes={} duration_ms={:.3}",
        e.bytes,
        e.elapsed.as_secs_f64() * 1000.0
    );
    line
}

impl AccessLogWriter {
    /// Emits every line as a `tracing` event (target `lb::access`, level INFO) until every
    /// [`AccessLog`] handle is gone. The subscriber's I/O happens on this thread, never on a
    /// worker.
    pub fn run_tracing(self) {
        self.run(|line| tracing::info!(target: "lb::access", "{line}"));
    }

    /// Hands every line to `sink` until every [`AccessLog`] handle is gone: the writer behind
    /// [`AccessLogWriter::run_tracing`], and what a test reads the lines with.
    pub fn run(self, mut sink: impl FnMut(String)) {
        while let Ok(line) = self.lines.recv() {
            sink(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            worker: 1,
            client: [10, 0, 0, 1].into(),
            request: "GET /a?b=\"c\"",
            status: 200,
            target: Some(SocketAddr::from(([127, 0, 0, 1], 9001))),
            bytes: 42,
            elapsed: Duration::from_micros(1500),
        }
    }

    #[test]
    fn line_says_who_what_and_how_it_went() {
        assert_eq!(
            line(entry()),
            "worker=1 client=10.0.0.1 \"GET /a?b=\\\"c\\\"\" status=200 target=127.0.0.1:9001 bytes=42 duration_ms=1.500"
        );
        let own = Entry {
            status: 503,
            target: None,
            ..entry()
        };
        assert!(line(own).contains(" status=503 target=- "));
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let (log, writer) = access_log();
        for _ in 0..CAPACITY + 3 {
            log.log(entry());
        }
        assert_eq!(log.dropped(), 3);
        drop(writer);
    }
}
