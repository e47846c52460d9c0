//! A streaming, validating scanner for `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1).
//!
//! lb forwards chunked bodies byte for byte; the scanner only tells where the body ends and
//! rejects anything malformed (non-hex or overflowing sizes, missing CRLF, bare CR/LF, oversized
//! size lines, malformed or oversized trailers), whatever way the bytes are split across reads.
//! For an HTTP/1.0 client, which cannot read chunked, [`ChunkedDecoder::decode`] does the same
//! and also hands out the chunk payloads, so the body goes on close-delimited; chunk extensions
//! and trailer fields are then dropped (RFC 9112 §7.1.2 lets a recipient discard trailers it
//! does not merge, and no field lb forwards needs them).
//!
//! Invariants: the scanner's state after any split of the input is the same as after one call
//! with all of it; chunk data is skipped with one slice operation per read, every other byte is
//! examined once; nothing allocates and no input panics.

use crate::fields::is_tchar;
use crate::{ErrorKind, HttpError};

/// Longest chunk-size line lb accepts, extensions and CRLF included.
const MAX_SIZE_LINE: usize = 4 * 1024;
/// Largest trailer section lb accepts, final CRLF included.
const MAX_TRAILER: usize = 64 * 1024;

/// Result of scanning one slice of body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// How many bytes from the start of the input belong to the body (forward these).
    pub consumed: usize,
    /// Whether the body ended within them (after the last chunk and trailer section).
    pub done: bool,
}

/// Where the scanner is in the chunked grammar:
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Within the hex digits of a chunk size.
    Size,
    /// Whitespace after the size, which only a chunk extension may follow.
    SizeSpace,
    /// Within chunk extensions, up to the CR.
    Extension,
    /// After the CR ending a size line.
    SizeLf,
    /// Within chunk data.
    Data,
    /// After chunk data, expecting its CR.
    DataCr,
    /// After the CR following chunk data.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Within a trailer field name.
    TrailerName,
    /// Within a trailer field value.
    TrailerLine,
    /// After the CR ending a trailer field line.
    TrailerLf,
    /// After the CR of the final empty line.
    FinalLf,
    /// The body has ended.
    Done,
}

/// State of one chunked body being scanned.
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk size being read, then the data bytes left in the current chunk.
    remaining: u64,
    /// Bytes of the current chunk-size line so far.
    line_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
    /// Chunk data bytes seen so far.
    data_len: u64,
}

impl ChunkedDecoder {
    /// A scanner at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next bytes of the body. Consumes all of `input` unless the body ends inside it.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scan, HttpError> {
        self.run(input, |_| {})
    }

    /// Like [`ChunkedDecoder::scan`] (same validation, same `consumed` and `done`), and also
    /// appends the chunk payload bytes among the consumed ones to `out`: size lines, extensions,
    /// CRLFs and trailers are left out. On an error, `out` may hold payload bytes that preceded
    /// the fault in `input`; the caller ends the body there anyway.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Scan, HttpError> {
        self.run(input, |data| out.extend_from_slice(data))
    }

    /// The scanner, handing each run of chunk data in `input` to `data`.
    fn run(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<Scan, HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let avail = input.len() - pos;
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    data(input.get(pos..pos + n).unwrap_or_default());
                    pos += n;
                    // `n` is at most `remaining`, which is a u64.
                    let n = n as u64;
                    self.remaining -= n;
                    self.data_len += n;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    if let Some(&b) = input.get(pos) {
                        self.step(b)?;
                    }
                    pos += 1;
                }
            }
        }
        Ok(Scan {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    /// Body data bytes seen so far (chunk payloads only), for body-size limits.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Advances by one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        match self.state {
            State::SizeStart
            | State::Size
            | State::SizeSpace
            | State::Extension
            | State::SizeLf => {
                self.line_len += 1;
                if self.line_len > MAX_SIZE_LINE {
                    return Err(invalid("chunk size line too long"));
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerLine
            | State::TrailerLf
            | State::FinalLf => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILER {
                    return Err(invalid("trailer section too large"));
                }
            }
            State::Data | State::DataCr | State::DataLf | State::Done => {}
        }
        self.state = match (self.state, b) {
            // chunk-size = 1*HEXDIG
            (State::SizeStart, _) => {
                self.remaining = u64::from(hex(b).ok_or(invalid("invalid chunk size"))?);
                State::Size
            }
            (State::Size, b';') => State::Extension,
            (State::Size, b' ' | b'\t') => State::SizeSpace,
            (State::Size, b'\r') => State::SizeLf,
            (State::Size, _) => {
                let digit = hex(b).ok_or(invalid("invalid chunk size"))?;
                // Leading zeros are harmless; more than 16 significant digits overflow.
                if self.remaining > u64::MAX >> 4 {
                    return Err(invalid("chunk size too large"));
                }
                self.remaining = (self.remaining << 4) | u64::from(digit);
                State::Size
            }
            // BWS is only allowed before ";" (RFC 9112 §7.1.1).
            (State::SizeSpace, b' ' | b'\t') => State::SizeSpace,
            (State::SizeSpace, b';') => State::Extension,
            (State::SizeSpace, _) => return Err(invalid("invalid chunk extension")),
            // lb ignores extensions but keeps control bytes out of them, so the line ends at
            // the same place for every reader.
            (State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\n') => return Err(invalid("bare LF in chunked body")),
            (State::Extension, _) if is_ctl(b) => return Err(invalid("invalid chunk extension")),
            (State::Extension, _) => State::Extension,
            (State::SizeLf, b'\n') => {
                self.line_len = 0;
                if self.remaining == 0 {
                    // last-chunk: the trailer section follows.
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::SizeStart,
            (State::DataCr | State::DataLf, _) => {
                return Err(invalid("missing CRLF after chunk data"))
            }
            // trailer-section = *( field-line CRLF ), then the final CRLF, where
            // field-line = field-name ":" OWS field-value OWS (RFC 9112 §5, §7.1.2): the same
            // strictness as in a head (no space before the colon, no control bytes), so a
            // trailer reads the same to every hop that forwards or merges it.
            (State::TrailerStart, b'\r') => State::FinalLf,
            (State::TrailerLine, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::TrailerName | State::TrailerLine, b'\n') => {
                return Err(invalid("bare LF in chunked body"))
            }
            (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerLine,
            (State::TrailerStart | State::TrailerName, _) => {
                return Err(invalid("invalid trailer field"))
            }
            (State::TrailerLine, _) if is_ctl(b) => return Err(invalid("invalid trailer field")),
            (State::TrailerLine, _) => State::TrailerLine,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::FinalLf, b'\n') => State::Done,
            (State::SizeLf | State::TrailerLf | State::FinalLf, _) => {
                return Err(invalid("bare CR in chunked body"))
            }
            // `scan` never steps in these states; staying put keeps that harmless.
            (State::Data | State::Done, _) => self.state,
        };
        Ok(())
    }
}

/// A 400 for a malformed chunked body (the proxy remaps it for upstream bodies).
fn invalid(detail: &'static str) -> HttpError {
    HttpError::new(ErrorKind::BadRequest, detail)
}

/// The value of a hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Control bytes other than HTAB, which no field or extension may contain (CR and LF included).
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

#[cfg(test)]
mod tests;
