//! A streaming, validating scanner for `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1).
//!
//! lb forwards chunked bodies byte for byte; the scanner only tells where the body ends and
//! rejects anything malformed (non-hex or overflowing sizes, missing CRLF, bare CR/LF, oversized
//! size lines or trailers), whatever way the bytes are split across reads.

use crate::HttpError;

/// Result of scanning one slice of body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// How many bytes from the start of the input belong to the body (forward these).
    pub consumed: usize,
    /// Whether the body ended within them (after the last chunk and trailer section).
    pub done: bool,
}

/// State of one chunked body being scanned.
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {
    _private: (),
}

impl ChunkedDecoder {
    /// A scanner at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next bytes of the body. Consumes all of `input` unless the body ends inside it.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scan, HttpError> {
        let _ = input;
        todo!("lb-http: ChunkedDecoder::scan")
    }

    /// Body data bytes seen so far (chunk payloads only), for body-size limits.
    pub fn data_len(&self) -> u64 {
        todo!("lb-http: ChunkedDecoder::data_len")
    }
}
