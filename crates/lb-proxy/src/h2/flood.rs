//! The floods `h2` does not bound itself. PING and SETTINGS: each costs lb an answer (a PING
//! ACK, a SETTINGS ACK) and does nothing for any request, so a client may send only a few: a
//! burst of [`BURST`], then [`PER_SECOND`] a second. Streams the client resets after lb took
//! them on (routed, an upstream asked): `h2` counts only those reset before lb accepted them
//! (Rapid Reset's burst form), so a client that waits for each stream to be accepted before
//! resetting it would make lb work for nothing at will; it may reset [`RESET_BURST`] at once,
//! then [`RESETS_PER_SECOND`] a second (a browser cancels a few on a page change). Past either
//! budget the connection is abusive and ends with GOAWAY(ENHANCE_YOUR_CALM) (the connection
//! task, told through [`Abuse`]). CONTINUATION and MadeYouReset floods are `h2`'s own limits
//! (`h2::builder`).
//!
//! [`Guard`] reads the client's bytes on their way to `h2` and splits them into frames
//! ([`Frames`], RFC 9113 §4.1: only the 9-byte frame headers are looked at, payloads are
//! skipped), so the count is exact whatever way the bytes arrive. Pure parts ([`Frames`],
//! [`Budget`]) take bytes and time as values and carry the unit tests.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Control frames a connection may send at once: more than any client sends at start (one
/// SETTINGS, a PING to measure the round trip) and far below the 1,024 frames of the limit.
pub(super) const BURST: u32 = 64;

/// Control frames a connection may send per second after the burst (keep-alive PINGs are one
/// per several seconds).
pub(super) const PER_SECOND: u32 = 8;

/// Streams a client may reset after lb accepted them, at once.
pub(super) const RESET_BURST: u32 = 128;

/// Streams a client may reset after lb accepted them, per second after the burst.
pub(super) const RESETS_PER_SECOND: u32 = 32;

/// Length of the client connection preface (RFC 9113 §3.4), which precedes the first frame.
const PREFACE_LEN: usize = 24;

const FRAME_HEAD: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// Splits a client's byte stream into frames and counts the control frames that ask lb for an
/// answer (PING and SETTINGS without ACK).
#[derive(Debug)]
pub(super) struct Frames {
    /// Preface bytes still to skip.
    preface: usize,
    head: [u8; FRAME_HEAD],
    /// Bytes of `head` filled.
    filled: usize,
    /// Payload bytes of the current frame still to skip.
    payload: usize,
}

impl Frames {
    pub(super) fn new() -> Self {
        Frames {
            preface: PREFACE_LEN,
            head: [0; FRAME_HEAD],
            filled: 0,
            payload: 0,
        }
    }

    /// Reads `bytes`, the next bytes of the stream; returns how many control frames began in
    /// them.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> u32 {
        let mut control = 0;
        let skip = self.preface.min(bytes.len());
        self.preface -= skip;
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            if self.payload > 0 {
                let skip = self.payload.min(bytes.len());
                self.payload -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (FRAME_HEAD - self.filled).min(bytes.len());
            self.head[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == FRAME_HEAD {
                self.filled = 0;
                let [l0, l1, l2, kind, flags, ..] = self.head;
                self.payload = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                if matches!(kind, SETTINGS | PING) && flags & ACK == 0 {
                    control += 1;
                }
            }
        }
        control
    }
}

/// A token bucket: `burst` at first, refilled at `per_second`.
#[derive(Debug)]
pub(super) struct Budget {
    tokens: u32,
    burst: u32,
    per_second: u32,
    /// When the last token was added (or the bucket began).
    refilled: Instant,
}

impl Budget {
    pub(super) fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        Budget {
            tokens: burst,
            burst,
            per_second,
            refilled: now,
        }
    }

    /// Spends `n` tokens at `now`; false once the connection spent more than it may.
    pub(super) fn spend(&mut self, n: u32, now: Instant) -> bool {
        let step = Duration::from_secs(1) / self.per_second.max(1);
        let earned = now.saturating_duration_since(self.refilled).as_nanos() / step.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.refilled = now;
        }
        match self.tokens.checked_sub(n) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => {
                self.tokens = 0;
                false
            }
        }
    }
}

/// Tells the connection task that its client flooded it; once told, it stays told. Also holds
/// the connection's budget of streams reset by the client, which its streams spend.
#[derive(Debug)]
pub(super) struct Abuse {
    seen: Cell<bool>,
    notify: Notify,
    resets: RefCell<Budget>,
}

impl Abuse {
    pub(super) fn new(now: Instant) -> Self {
        Abuse {
            seen: Cell::new(false),
            notify: Notify::new(),
            resets: RefCell::new(Budget::new(RESET_BURST, RESETS_PER_SECOND, now)),
        }
    }

    /// A stream lb had taken on was reset by the client.
    pub(super) fn stream_reset(&self) {
        if !self.resets.borrow_mut().spend(1, Instant::now()) {
            self.report();
        }
    }

    fn report(&self) {
        if !self.seen.replace(true) {
            self.notify.notify_one();
        }
    }

    /// Completes once the client flooded the connection.
    pub(super) async fn reported(&self) {
        self.notify.notified().await;
    }
}

/// The client's stream as `h2` reads it, with the control frames counted on the way. After a
/// flood it hands `h2` no more bytes (reads stay pending), so nothing more of the flood is
/// answered while the GOAWAY goes out.
#[derive(Debug)]
pub(super) struct Guard<T> {
    io: T,
    frames: Frames,
    budget: Budget,
    abuse: Rc<Abuse>,
}

impl<T> Guard<T> {
    pub(super) fn new(io: T, abuse: Rc<Abuse>) -> Self {
        Guard {
            io,
            frames: Frames::new(),
            budget: Budget::new(BURST, PER_SECOND, Instant::now()),
            abuse,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.abuse.seen.get() {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if polled.is_ready() {
            let control = this.frames.feed(&buf.filled()[before..]);
            if control > 0 && !this.budget.spend(control, Instant::now()) {
                this.abuse.report();
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: usize) -> Vec<u8> {
        let mut out = vec![
            0,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        out.resize(FRAME_HEAD + payload, 0xAA);
        out
    }

    #[test]
    fn control_frames_are_counted_however_the_bytes_are_split() {
        let mut stream = vec![b'P'; PREFACE_LEN];
        for (kind, flags, len) in [
            (SETTINGS, 0, 12),
            (SETTINGS, ACK, 0),
            (PING, 0, 8),
            (PING, ACK, 8),
            (0x0, 0, 300), // DATA whose payload could look like frame headers
            (0x1, 0x4, 20),
            (PING, 0, 8),
        ] {
            stream.extend(frame(kind, flags, len));
        }
        for split in [1, 2, 7, 9, 10, 64, stream.len()] {
            let mut frames = Frames::new();
            let counted: u32 = stream.chunks(split).map(|c| frames.feed(c)).sum();
            assert_eq!(counted, 3, "split every {split} bytes");
        }
    }

    #[test]
    fn the_budget_allows_a_burst_then_a_rate() {
        let start = Instant::now();
        let mut budget = Budget::new(BURST, PER_SECOND, start);
        assert!(budget.spend(BURST, start));
        assert!(!budget.spend(1, start), "the burst is spent");
        let mut budget = Budget::new(BURST, PER_SECOND, start);
        assert!(budget.spend(BURST, start));
        let later = start + Duration::from_secs(1);
        assert!(budget.spend(PER_SECOND, later), "a second earns PER_SECOND");
        assert!(!budget.spend(1, later));
        let much_later = later + Duration::from_secs(3600);
        assert!(budget.spend(BURST, much_later), "refilled to the burst");
        assert!(!budget.spend(1, much_later), "never above the burst");
    }

    /// A keep-alive PING every second, forever, never runs out.
    #[test]
    fn a_steady_ping_is_never_a_flood() {
        let start = Instant::now();
        let mut budget = Budget::new(BURST, PER_SECOND, start);
        for s in 0..10_000 {
            assert!(
                budget.spend(1, start + Duration::from_secs(s)),
                "second {s}"
            );
        }
    }
}
