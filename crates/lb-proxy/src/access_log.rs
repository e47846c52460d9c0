//! The access log: one line per request, written by a thread of its own (through `tracing`, target
//! `lb::access`, or to any writer).
//!
//! Workers never block on log I/O: each line goes into a bounded channel with `try_send`, and
//! when the writer falls behind, lines are dropped and counted (a slow disk must not slow
//! proxying). Off by default; when off, nothing here runs and nothing is allocated.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::fmt::Write as _;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines the channel holds before new ones are dropped.
const CAPACITY: usize = 64 * 1024;

/// The workers' end: cheap to clone, one per worker.
#[derive(Debug, Clone)]
pub struct AccessLog {
    lines: Sender<String>,
    dropped: Arc<AtomicU64>,
}

/// The writer's end: run it on a thread of its own with [`AccessLogWriter::run`].
#[derive(Debug)]
pub struct AccessLogWriter {
    lines: Receiver<String>,
    dropped: Arc<AtomicU64>,
}

/// A new access log channel.
pub fn access_log() -> (AccessLog, AccessLogWriter) {
    let (tx, rx) = bounded(CAPACITY);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        AccessLog {
            lines: tx,
            dropped: dropped.clone(),
        },
        AccessLogWriter { lines: rx, dropped },
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = String::with_capacity(128 + e.request.len());
        let _ = write!(
            line,
            "{}.{:03} worker={} client={} \"{}\" status={} target=",
            now.as_secs(),
            now.subsec_millis(),
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
        let _ = writeln!(
            line,
            " bytes={} duration_ms={:.3}",
            e.bytes,
            e.elapsed.as_secs_f64() * 1000.0
        );
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AccessLogWriter {
    /// Writes lines to `out` until every [`AccessLog`] handle is gone; flushes when the channel
    /// runs empty, so lines appear promptly without a write per line under load.
    pub fn run(self, mut out: impl Write) {
        while let Ok(line) = self.lines.recv() {
            if out.write_all(line.as_bytes()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            while let Ok(line) = self.lines.try_recv() {
                if out.write_all(line.as_bytes()).is_err() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = out.flush();
        }
    }

    /// Emits every line as a `tracing` event (target `lb::access`, level INFO) until every
    /// [`AccessLog`] handle is gone. The subscriber's I/O happens on this thread, never on a
    /// worker.
    pub fn run_tracing(self) {
        while let Ok(line) = self.lines.recv() {
            tracing::info!(target: "lb::access", "{}", line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_in_order_and_end_when_senders_go() {
        let (log, writer) = access_log();
        let entry = Entry {
            worker: 1,
            client: [10, 0, 0, 1].into(),
            request: "GET /a?b=\"c\"",
            status: 200,
            target: Some(SocketAddr::from(([127, 0, 0, 1], 9001))),
            bytes: 42,
            elapsed: Duration::from_micros(1500),
        };
        log.log(entry);
        log.log(Entry {
            status: 503,
            target: None,
            ..entry
        });
        drop(log);
        let mut out = Vec::new();
        writer.run(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(
            " worker=1 client=10.0.0.1 \"GET /a?b=\\\"c\\\"\" status=200 target=127.0.0.1:9001 bytes=42 duration_ms=1.500"
        ), "{}", lines[0]);
        assert!(lines[1].contains(" status=503 target=- "), "{}", lines[1]);
    }
}
