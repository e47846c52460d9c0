//! The access log: one line per request, written through `tracing` (target `lb::access`) by a
//! thread of its own.
//!
//! Workers never block on log I/O: each request's [`Record`] goes into a bounded channel with
//! `try_send`, and when the writer falls behind, records are dropped and counted (a slow disk
//! must not slow proxying). The writer emits each record as one event whose fields are the
//! record's (`worker`, `client`, `request`, `status`, `target`, `bytes`, `bytes_up`,
//! `duration_ms`, `request_id`, `tls`: the TLS version, `-` in clear text) and which has no message: the subscriber prints them as
//! `key=value` in text mode and as JSON fields with `--log-format json`, so the two formats can
//! never disagree. Off by default; when off, nothing here runs and nothing is allocated.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Records the channel holds before new ones are dropped.
const CAPACITY: usize = 64 * 1024;

/// The workers' end: cheap to clone, one per worker.
#[derive(Debug, Clone)]
pub struct AccessLog {
    records: Sender<Record>,
    dropped: Arc<AtomicU64>,
}

/// The writer's end: run it on a thread of its own with [`AccessLogWriter::run_tracing`].
#[derive(Debug)]
pub struct AccessLogWriter {
    records: Receiver<Record>,
}

/// A new access log channel.
pub fn access_log() -> (AccessLog, AccessLogWriter) {
    let (tx, rx) = bounded(CAPACITY);
    (
        AccessLog {
            records: tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        AccessLogWriter { records: rx },
    )
}

/// What one log line says about one request, as a worker hands it over (borrowed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub(crate) worker: usize,
    pub(crate) client: IpAddr,
    /// `METHOD target` as the client sent them.
    pub(crate) request: &'a str,
    pub(crate) status: u16,
    /// The upstream that answered; `None` when lb answered itself.
    pub(crate) target: Option<SocketAddr>,
    /// Response body bytes sent to the client (for a tunnel: every byte after the `101`).
    pub(crate) bytes: u64,
    /// Request body bytes sent to the upstream (for a tunnel: every byte after the request).
    pub(crate) bytes_up: u64,
    pub(crate) elapsed: Duration,
    /// The request's `X-Request-ID`, as sent upstream.
    pub(crate) request_id: &'a str,
    /// The connection's TLS version (`1.2`, `1.3`), `-` in clear text.
    pub(crate) tls: &'static str,
}

/// One request's line as the writer thread receives it (owned: it crosses threads).
#[derive(Debug)]
struct Record {
    worker: usize,
    client: IpAddr,
    request: String,
    status: u16,
    target: Option<SocketAddr>,
    bytes: u64,
    bytes_up: u64,
    elapsed: Duration,
    request_id: String,
    tls: &'static str,
}

impl Record {
    fn new(e: Entry<'_>) -> Record {
        Record {
            worker: e.worker,
            client: e.client,
            request: e.request.to_owned(),
            status: e.status,
            target: e.target,
            bytes: e.bytes,
            bytes_up: e.bytes_up,
            elapsed: e.elapsed,
            request_id: e.request_id.to_owned(),
            tls: e.tls,
        }
    }

    /// Milliseconds, to the microsecond.
    fn duration_ms(&self) -> f64 {
        self.elapsed.as_micros() as f64 / 1000.0
    }

    /// The record as one event of target `lb::access` at INFO, one field per part.
    fn emit(&self) {
        tracing::info!(
            target: "lb::access",
            worker = self.worker,
            client = %self.client,
            request = self.request.as_str(),
            status = self.status,
            target = %Target(self.target),
            bytes = self.bytes,
            bytes_up = self.bytes_up,
            duration_ms = self.duration_ms(),
            request_id = self.request_id.as_str(),
            tls = %self.tls,
        );
    }
}

impl fmt::Display for Record {
    /// The line as the text subscriber prints the event's fields (what tests read).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker={} client={} request={:?} status={} target={} bytes={} bytes_up={} \
             duration_ms={} request_id={:?} tls={}",
            self.worker,
            self.client,
            self.request,
            self.status,
            Target(self.target),
            self.bytes,
            self.bytes_up,
            self.duration_ms(),
            self.request_id,
            self.tls,
        )
    }
}

/// The upstream that answered, `-` when lb answered itself.
struct Target(Option<SocketAddr>);

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_char('-'),
        }
    }
}

impl AccessLog {
    /// Queues one line; drops it (and counts the drop) when the writer is behind.
    pub(crate) fn log(&self, e: Entry<'_>) {
        if let Err(TrySendError::Full(_)) = self.records.try_send(Record::new(e)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AccessLogWriter {
    /// Emits every record as a `tracing` event (target `lb::access`, level INFO) until every
    /// [`AccessLog`] handle is gone. The subscriber's I/O happens on this thread, never on a
    /// worker.
    pub fn run_tracing(self) {
        while let Ok(record) = self.records.recv() {
            record.emit();
        }
    }

    /// Hands every line, as the text format prints it, to `sink` until every [`AccessLog`]
    /// handle is gone: what a test reads the lines with.
    pub fn run(self, mut sink: impl FnMut(String)) {
        while let Ok(record) = self.records.recv() {
            sink(record.to_string());
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
            bytes_up: 7,
            elapsed: Duration::from_micros(1500),
            request_id: "a1-7",
            tls: "1.3",
        }
    }

    #[test]
    fn line_says_who_what_and_how_it_went() {
        assert_eq!(
            Record::new(entry()).to_string(),
            "worker=1 client=10.0.0.1 request=\"GET /a?b=\\\"c\\\"\" status=200 target=127.0.0.1:9001 \
             bytes=42 bytes_up=7 duration_ms=1.5 request_id=\"a1-7\" tls=1.3"
        );
        let own = Entry {
            status: 503,
            target: None,
            ..entry()
        };
        assert!(Record::new(own)
            .to_string()
            .contains(" status=503 target=- "));
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
