//! How the rest of a body moves from one socket to the other: through user space (the copy
//! path, `relay`) or kernel to kernel with `splice(2)` (`splice`). One pure function over plain
//! values, called from one place (`relay::relay_body`), pinned down by a table test, like
//! `policy`'s decisions.
//!
//! Invariant: only bytes lb passes on exactly as they came are spliced (lb never sees them):
//! clear text on both sockets (a TLS side needs its bytes in user space), framing that needs no
//! decoding (Content-Length, close-delimited) and no de-chunking for an HTTP/1.0 client.
//! Chunked bodies stay on the copy path: their framing is checked chunk by chunk.

use lb_http::BodyKind;

/// Body bytes still to come from the sender below which a Content-Length body is copied: the
/// pipe's two system calls per round cost more than a copy of a few KiB. Provisional (four of
/// the copy path's 16 KiB buffers); the lead measures it with `scripts/bench.sh bigbody`.
pub(crate) const SPLICE_MIN: u64 = 64 * 1024;

/// What is known of a body when the bytes read with its head have been passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rest {
    /// The worker splices at all (off only as a benchmark knob).
    pub(crate) splice_on: bool,
    /// Both sockets carry clear text.
    pub(crate) clear_text: bool,
    /// The body's framing.
    pub(crate) body: BodyKind,
    /// The body is decoded on its way (chunked for an HTTP/1.0 client).
    pub(crate) dechunk: bool,
    /// Bytes of a Content-Length body still to be read from the sender.
    pub(crate) left: u64,
}

/// The way the rest of a body takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Socket -> pipe -> socket, in the kernel.
    Splice,
    /// Read into a buffer, written from it.
    Copy,
}

/// Which path the rest of a body takes. A close-delimited body is spliced whatever its size:
/// its length is unknown, and a round costs two system calls on either path.
pub(crate) fn path(rest: Rest) -> Path {
    let untouched = rest.splice_on && rest.clear_text && !rest.dechunk;
    match rest.body {
        BodyKind::Length(_) if untouched && rest.left >= SPLICE_MIN => Path::Splice,
        BodyKind::CloseDelimited if untouched => Path::Splice,
        BodyKind::Empty | BodyKind::Length(_) | BodyKind::Chunked | BodyKind::CloseDelimited => {
            Path::Copy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_table() {
        let big = SPLICE_MIN;
        let rest = |splice_on, clear_text, body, dechunk, left| Rest {
            splice_on,
            clear_text,
            body,
            dechunk,
            left,
        };
        let length = BodyKind::Length(10 * big);
        let close = BodyKind::CloseDelimited;
        let table = [
            // Clear text, passed on untouched, long enough: spliced.
            (rest(true, true, length, false, big), Path::Splice),
            (rest(true, true, length, false, 10 * big), Path::Splice),
            (rest(true, true, close, false, 0), Path::Splice),
            // Below the threshold (most of it came with the head, or it is small): copied.
            (rest(true, true, length, false, big - 1), Path::Copy),
            (rest(true, true, length, false, 0), Path::Copy),
            // TLS on either side: the bytes must pass through user space.
            (rest(true, false, length, false, 10 * big), Path::Copy),
            (rest(true, false, close, false, 0), Path::Copy),
            // Chunked framing is checked as it streams, and de-chunking rewrites it.
            (rest(true, true, BodyKind::Chunked, false, 0), Path::Copy),
            (rest(true, true, BodyKind::Chunked, true, 0), Path::Copy),
            (rest(true, true, BodyKind::Empty, false, 0), Path::Copy),
            // The benchmark knob: the copy path for everything.
            (rest(false, true, length, false, 10 * big), Path::Copy),
            (rest(false, true, close, false, 0), Path::Copy),
        ];
        for (rest, expected) in table {
            assert_eq!(path(rest), expected, "{rest:?}");
        }
    }
}
