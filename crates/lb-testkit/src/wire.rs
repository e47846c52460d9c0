//! HTTP/1.1 reading shared by the kit's client and its recording backend.
//!
//! [`WireReader`] keeps one buffer per connection, so bytes that arrive after a message (the next
//! pipelined request, or a response lb should not have sent) are kept rather than lost, and a test
//! can tell "lb sent too much" from "lb sent nothing". Bodies are delivered to a callback piece by
//! piece and never held whole, so 64 MiB bodies cost the kit no memory.
//!
//! This is test code: it is strict where a lenient parser would hide a proxy bug (a chunk without
//! its CRLF is an error, not something to skip over) and reports every problem as an `io::Error`
//! with a message saying what was wrong.

use std::io::{self, Read};

/// Largest head the kit accepts; lb's own limit is 64 KiB, so anything larger is a bug.
pub const MAX_HEAD: usize = 1024 * 1024;

/// Header fields in order, names as sent, values lossily decoded as UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// True when `name` appears at least once.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The comma-separated tokens of every `name` field, trimmed and lower-cased
    /// (`Connection: close, Foo` -> `["close", "foo"]`).
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Builds from httparse's parsed fields.
    pub(crate) fn from_httparse(fields: &[httparse::Header<'_>]) -> Self {
        Headers(
            fields
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )
    }
}

/// A message head as received, split leniently into its start line and fields: the kit's view
/// of heads a test expects to be odd (lb's own answers read raw, what lb forwards to a scripted
/// upstream), where a strict parser would fail before the assertion could say what arrived.
#[derive(Debug, Clone)]
pub struct Head {
    /// The request or status line, without CRLF.
    pub line: String,
    /// The fields in order; a line without a colon is a name with an empty value.
    pub fields: Headers,
    /// Everything through the empty line.
    pub raw: Vec<u8>,
}

impl Head {
    /// Splits `raw` (a head through its empty line).
    pub fn parse(raw: Vec<u8>) -> Head {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.split("\r\n");
        let line = lines.next().unwrap_or("").to_string();
        let fields = lines
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((n, v)) => (n.to_string(), v.trim().to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        Head {
            line,
            fields: Headers(fields),
            raw,
        }
    }

    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name)
    }

    /// The raw head as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The status code of a response head (0 if the line is not one).
    pub fn status(&self) -> u16 {
        self.line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The request target of a request head.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

/// Raw response bytes split at the first empty line: the head as text (through the empty line)
/// and the bytes after it; all of it is head when there is no empty line.
pub fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    match find(raw, b"\r\n\r\n") {
        Some(end) => (
            String::from_utf8_lossy(&raw[..end + 4]).into_owned(),
            raw[end + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(raw).into_owned(), Vec::new()),
    }
}

/// How a message body is delimited (RFC 9112 §6.3), as the kit reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
}

impl Framing {
    /// Framing of a message with these headers; `Err` for a combination a correct proxy never
    /// sends (both Transfer-Encoding and Content-Length, differing lengths, unknown codings).
    pub fn from_headers(headers: &Headers, is_request: bool) -> io::Result<Framing> {
        let te = headers.tokens("transfer-encoding");
        let cls = headers.get_all("content-length");
        if !te.is_empty() {
            if !cls.is_empty() {
                return Err(invalid(
                    "message has both Transfer-Encoding and Content-Length",
                ));
            }
            if te.last().map(String::as_str) != Some("chunked") {
                return Err(invalid(&format!(
                    "Transfer-Encoding {te:?} does not end in chunked"
                )));
            }
            return Ok(Framing::Chunked);
        }
        if let Some(first) = cls.first() {
            let n: u64 = first
                .trim()
                .parse()
                .map_err(|_| invalid(&format!("bad Content-Length {first:?}")))?;
            if cls.iter().any(|v| v.trim() != first.trim()) {
                return Err(invalid(&format!("differing Content-Length values {cls:?}")));
            }
            return Ok(if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            });
        }
        Ok(if is_request {
            Framing::Empty
        } else {
            Framing::UntilClose
        })
    }
}

/// Makes an `InvalidData` error with `msg`.
pub(crate) fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// A buffered reader over one connection that understands HTTP/1.1 message boundaries.
#[derive(Debug)]
pub struct WireReader<S> {
    inner: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S: Read> WireReader<S> {
    /// Wraps `inner` with a 64 KiB buffer.
    pub fn new(inner: S) -> Self {
        WireReader {
            inner,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably (to write requests on the same socket).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Removes and returns every buffered byte.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let out = self.buffered().to_vec();
        self.start = self.end;
        out
    }

    /// Reads more bytes into the buffer, behind those already there; returns how many (0 at end
    /// of stream).
    pub fn read_more(&mut self) -> io::Result<usize> {
        self.fill()
    }

    /// Removes and returns the next `n` bytes, reading until they are there. On an early end of
    /// stream the bytes that did arrive stay buffered, so the caller can still see them.
    pub fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.end - self.start < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {} of {n} bytes", self.end - self.start),
                ));
            }
        }
        let out = self.buf[self.start..self.start + n].to_vec();
        self.start += n;
        Ok(out)
    }

    /// Reads more bytes; returns how many (0 at end of stream).
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let new_len = self.buf.len() * 2;
                self.buf.resize(new_len, 0);
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one message head, through the empty line. `Ok(None)` when the peer closed cleanly
    /// before sending any byte of a new message (the normal end of a keep-alive connection).
    pub fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut searched: usize = 0;
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(pos) = find(&window[searched.saturating_sub(3)..], b"\r\n\r\n") {
                let head_end = searched.saturating_sub(3) + pos + 4;
                let head = window[..head_end].to_vec();
                self.start += head_end;
                return Ok(Some(head));
            }
            searched = window.len();
            if searched > MAX_HEAD {
                return Err(invalid("message head over 1 MiB"));
            }
            if self.fill()? == 0 {
                if self.start == self.end {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed inside a message head after {:?}",
                        String::from_utf8_lossy(self.buffered())
                    ),
                ));
            }
        }
    }

    /// Reads one CRLF-terminated line (without the CRLF).
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut searched: usize = 0;
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(pos) = find(&window[searched.saturating_sub(1)..], b"\r\n") {
                let end = searched.saturating_sub(1) + pos;
                let line = window[..end].to_vec();
                self.start += end + 2;
                return Ok(line);
            }
            searched = window.len();
            if searched > 64 * 1024 {
                return Err(invalid("line over 64 KiB in a chunked body"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body line",
                ));
            }
        }
    }

    /// Passes exactly `n` bytes to `sink`.
    fn read_exact_to(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end && self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed with {n} body bytes still expected"),
                ));
            }
            let avail = self.end - self.start;
            let take = usize::try_from(n).map_or(avail, |n| n.min(avail));
            sink(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// Passes everything up to the end of the stream to `sink`.
    fn read_to_end_to(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        loop {
            if self.start < self.end {
                sink(&self.buf[self.start..self.end]);
                self.start = self.end;
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }

    /// Decodes a chunked body (RFC 9112 §7.1), passing the data to `sink`; returns the trailer
    /// section's raw lines.
    fn read_chunked_to(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<String>> {
        loop {
            let line = self.read_line()?;
            let text = String::from_utf8_lossy(&line);
            let size_part = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_part, 16)
                .map_err(|_| invalid(&format!("bad chunk size line {text:?}")))?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let t = self.read_line()?;
                    if t.is_empty() {
                        return Ok(trailers);
                    }
                    trailers.push(String::from_utf8_lossy(&t).into_owned());
                }
            }
            self.read_exact_to(size, sink)?;
            let crlf = self.read_line()?;
            if !crlf.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }

    /// Reads a body with the given framing into `sink`.
    pub fn read_body(&mut self, framing: Framing, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        match framing {
            Framing::Empty => Ok(()),
            Framing::Length(n) => self.read_exact_to(n, sink),
            Framing::Chunked => self.read_chunked_to(sink).map(|_| ()),
            Framing::UntilClose => self.read_to_end_to(sink),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its data a few bytes at a time, to exercise every boundary.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn heads_and_bodies_across_tiny_reads() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n\
                     Transfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n1\r\nf\r\n0\r\nT: 1\r\n\r\nrest";
        for step in [1, 2, 3, 7, 1000] {
            let mut r = WireReader::new(Trickle(data, step));
            let head = r.read_head().expect("head").expect("some");
            assert!(head.ends_with(b"Content-Length: 3\r\n\r\n"));
            let mut body = Vec::new();
            r.read_body(Framing::Length(3), &mut |b| body.extend_from_slice(b))
                .expect("body");
            assert_eq!(body, b"abc");
            let head = r.read_head().expect("head").expect("some");
            assert!(head.starts_with(b"HTTP/1.1 200 OK\r\nTransfer"));
            let mut body = Vec::new();
            let trailers = r
                .read_chunked_to(&mut |b| body.extend_from_slice(b))
                .expect("chunked");
            assert_eq!(body, b"def");
            assert_eq!(trailers, vec!["T: 1".to_string()]);
            let mut rest = Vec::new();
            r.read_body(Framing::UntilClose, &mut |b| rest.extend_from_slice(b))
                .expect("rest");
            assert_eq!(rest, b"rest");
            assert!(r.read_head().expect("eof").is_none());
        }
    }

    #[test]
    fn eof_inside_a_head_or_body_is_an_error() {
        let mut r = WireReader::new(Trickle(b"HTTP/1.1 200 OK\r\n", 4));
        assert!(r.read_head().is_err());
        let mut r = WireReader::new(Trickle(b"ab", 4));
        assert!(r.read_body(Framing::Length(3), &mut |_| {}).is_err());
    }

    #[test]
    fn framing_rules() {
        let h = |v: &[(&str, &str)]| {
            Headers(
                v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            Framing::from_headers(&h(&[]), true).expect("ok"),
            Framing::Empty
        );
        assert_eq!(
            Framing::from_headers(&h(&[]), false).expect("ok"),
            Framing::UntilClose
        );
        assert_eq!(
            Framing::from_headers(&h(&[("content-length", "5")]), false).expect("ok"),
            Framing::Length(5)
        );
        assert_eq!(
            Framing::from_headers(&h(&[("Transfer-Encoding", "chunked")]), true).expect("ok"),
            Framing::Chunked
        );
        assert!(Framing::from_headers(
            &h(&[("Transfer-Encoding", "chunked"), ("Content-Length", "1")]),
            true
        )
        .is_err());
        assert!(Framing::from_headers(
            &h(&[("Content-Length", "1"), ("Content-Length", "2")]),
            true
        )
        .is_err());
    }
}
