//! `X-Request-ID`: the id that ties a client's request to the upstream's logs and lb's access log.
//!
//! A sane id the client sent is kept (a caller tracing its own requests expects to find it
//! upstream); anything else is replaced by one of lb's: `PROCESS-RUN-N`, where `PROCESS` is a
//! tag of this process (its start time and pid), `RUN` numbers the starts of worker runtimes in
//! this process (a respawned worker gets a new one) and `N` counts the run's requests. So ids are
//! unique across workers, respawns and restarts without any shared write per request.
//!
//! Invariants: an id is visible ASCII (`!`..=`~`) of at most [`MAX_LEN`] bytes, so it can go into
//! a header and a log line as it is; making one never allocates (the per-request budget).

use lb_http::Header;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest client id kept; longer ones are replaced. Room for a UUID, a W3C trace id, or two.
pub(crate) const MAX_LEN: usize = 128;

/// Bytes of lb's own ids at most: 16 hex digits, then two more numbers of at most 16 each.
const OWN_LEN: usize = 16 + 1 + 16 + 1 + 16;

/// The field's name as lb writes it.
pub(crate) const FIELD: &str = "X-Request-ID";

/// Worker runtimes started in this process so far.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// The id the client sent, when it sent exactly one and it is sane: 1 to [`MAX_LEN`] bytes of
/// visible ASCII. Several fields, or one that could break a log line or a header, are replaced.
pub(crate) fn kept<'b>(headers: &[Header<'b>]) -> Option<&'b [u8]> {
    let mut ids = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(FIELD));
    let id = ids.next()?.value;
    let sane =
        !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (b'!'..=b'~').contains(b));
    (sane && ids.next().is_none()).then_some(id)
}

/// One worker run's id source.
#[derive(Debug)]
pub(crate) struct RequestIds {
    /// `PROCESS-RUN-`, written once: only the counter changes from id to id, so a request
    /// pays for copying this and formatting one number.
    prefix: OwnId,
    next: Cell<u64>,
}

/// One of lb's ids, on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnId {
    bytes: [u8; OWN_LEN],
    len: usize,
}

impl OwnId {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl RequestIds {
    /// The source of a worker runtime starting now in this process.
    pub(crate) fn start() -> RequestIds {
        // Relaxed: only uniqueness matters, which the RMW gives whatever the ordering.
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        RequestIds::new(process_tag(), run)
    }

    /// A source for run `run` of the process tagged `process` (time and pid are injected).
    pub(crate) fn new(process: u64, run: u64) -> RequestIds {
        let mut prefix = OwnId {
            bytes: [0; OWN_LEN],
            len: 0,
        };
        push_hex(&mut prefix, process, 16);
        prefix.bytes[prefix.len] = b'-';
        prefix.len += 1;
        push_hex(&mut prefix, run, 1);
        prefix.bytes[prefix.len] = b'-';
        prefix.len += 1;
        RequestIds {
            prefix,
            next: Cell::new(0),
        }
    }

    /// The next id of this run.
    pub(crate) fn next(&self) -> OwnId {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        let mut id = self.prefix;
        push_hex(&mut id, n, 1);
        id
    }
}

/// Appends `v` in lower-case hex, at least `width` digits (at most 16).
fn push_hex(id: &mut OwnId, v: u64, width: usize) {
    let digits = ((64 - v.leading_zeros() as usize).div_ceil(4)).max(width);
    for i in (0..digits).rev() {
        let nibble = ((v >> (i * 4)) & 0xf) as usize;
        id.bytes[id.len] = b"0123456789abcdef"[nibble];
        id.len += 1;
    }
}

/// This process's tag: its start (as first asked, in nanoseconds) mixed with its pid, so two
/// processes, or one before and after a restart, do not share it.
fn process_tag() -> u64 {
    static TAG: OnceLock<u64> = OnceLock::new();
    *TAG.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'b>(name: &'b str, value: &'b [u8]) -> Header<'b> {
        Header { name, value }
    }

    #[test]
    fn a_client_id_is_kept_only_when_single_and_sane() {
        let long = [b'a'; MAX_LEN + 1];
        let max = [b'a'; MAX_LEN];
        let table: [(&[Header<'_>], Option<&[u8]>); 8] = [
            (&[], None),
            (&[header("x-request-id", b"abc-123")], Some(b"abc-123")),
            (&[header("X-Request-Id", &max)], Some(&max)),
            (&[header("X-Request-ID", &long)], None),
            (&[header("X-Request-ID", b"")], None),
            (&[header("X-Request-ID", b"a b")], None),
            (&[header("X-Request-ID", b"caf\xc3\xa9")], None),
            (
                &[header("X-Request-ID", b"a"), header("x-request-id", b"b")],
                None,
            ),
        ];
        for (headers, want) in table {
            assert_eq!(kept(headers), want, "{headers:?}");
        }
    }

    #[test]
    fn own_ids_name_process_run_and_count() {
        let ids = RequestIds::new(0xab, 3);
        assert_eq!(ids.next().as_bytes(), b"00000000000000ab-3-0");
        assert_eq!(ids.next().as_bytes(), b"00000000000000ab-3-1");
        let ids = RequestIds::new(u64::MAX, u64::MAX);
        ids.next.set(u64::MAX);
        let id = ids.next();
        assert_eq!(id.as_bytes().len(), OWN_LEN);
        assert!(id.as_bytes().iter().all(|b| (b'!'..=b'~').contains(b)));
        assert_eq!(
            ids.next().as_bytes(),
            b"ffffffffffffffff-ffffffffffffffff-0"
        );
    }

    #[test]
    fn two_runs_never_share_an_id() {
        let (a, b) = (RequestIds::start(), RequestIds::start());
        assert_ne!(a.next().as_bytes(), b.next().as_bytes());
    }
}
