//! The echo protocol for one connection, sans I/O: request bytes in, response bytes out.
//!
//! [`Exchange::advance`] takes whatever the connection has buffered, answers every request that
//! is complete in it (so pipelined requests are answered in order, in one batch), and reports how
//! many bytes it used; the caller keeps the rest for the next call. Bodies are framed per RFC 9112
//! §6.3 and discarded as they arrive, so a body of any size needs no buffer. Anything ambiguous
//! (both Content-Length and Transfer-Encoding, differing lengths, a coding other than a final
//! `chunked`) is answered `400` and the connection closed.
//!
//! The per-request path does not allocate once the connection's buffers have warmed up: the
//! constant part of the answer is pre-rendered in a shared [`Template`], the request target is
//! copied into a reused `Vec`, and numbers are formatted straight into the output buffer.

use lb_http::{error_response, ChunkedDecoder, ErrorKind, HttpError, MAX_HEADERS, MAX_HEAD_BYTES};
use std::io::Write;
use std::sync::Arc;

/// The parts of every answer that depend only on the backend's name, rendered once per server.
#[derive(Debug)]
pub(crate) struct Template {
    /// Status line and fixed headers, ending with `X-Path: ` (the target follows).
    prefix: Box<[u8]>,
    /// `NAME\n`.
    body: Box<[u8]>,
}

impl Template {
    /// Renders the fixed parts for `name`. Control characters become `?` in the header copy, so
    /// that no name can split or inject headers; the body keeps the name as given.
    pub(crate) fn new(name: &str) -> Self {
        let header_name: String = name
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let body = format!("{name}\n");
        let prefix = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             X-Backend: {header_name}\r\nX-Path: ",
            body.len()
        );
        Template {
            prefix: prefix.into_bytes().into(),
            body: body.into_bytes().into(),
        }
    }
}

/// What one call to [`Exchange::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes of the input used up; the rest starts an incomplete request head.
    pub(crate) consumed: usize,
    /// Write out the answers, then close the connection.
    pub(crate) close: bool,
}

/// Where the connection is in the request it is reading.
#[derive(Debug)]
enum State {
    /// Waiting for a request head.
    Head,
    /// Discarding a Content-Length body (0 for a request without a body).
    Length { remaining: u64 },
    /// Discarding a chunked body.
    Chunked(ChunkedDecoder),
}

/// Whether the connection stays open after an answer, and what the answer says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// HTTP/1.0 that asked for keep-alive: confirm it, or the client will not reuse.
    KeepAlive10,
    /// Close after this answer.
    Close,
}

impl Persistence {
    fn header(self) -> &'static [u8] {
        match self {
            Persistence::KeepAlive => b"",
            Persistence::KeepAlive10 => b"Connection: keep-alive\r\n",
            Persistence::Close => b"Connection: close\r\n",
        }
    }
}

/// One connection's protocol state.
#[derive(Debug)]
pub(crate) struct Exchange {
    template: Arc<Template>,
    state: State,
    /// The request target of the request being read, as received (reused across requests).
    target: Vec<u8>,
    /// The request is HEAD: answer without the body.
    head_only: bool,
    persistence: Persistence,
    /// Content-Length of the request being read (chunked bodies count in their decoder).
    length: u64,
}

impl Exchange {
    /// A connection waiting for its first request.
    pub(crate) fn new(template: Arc<Template>) -> Self {
        Exchange {
            template,
            state: State::Head,
            target: Vec::with_capacity(256),
            head_only: false,
            persistence: Persistence::KeepAlive,
            length: 0,
        }
    }

    /// Consumes complete requests (and body bytes) from `input`, appending their answers to `out`.
    pub(crate) fn advance(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut pos = 0;
        loop {
            let body_bytes = match &mut self.state {
                State::Head => {
                    if pos == input.len() {
                        return Progress {
                            consumed: pos,
                            close: false,
                        };
                    }
                    match self.start(&input[pos..], out) {
                        Ok(Some(head_len)) => pos += head_len,
                        Ok(None) => {
                            return Progress {
                                consumed: pos,
                                close: false,
                            }
                        }
                        Err(error) => return refuse(error, input.len(), out),
                    }
                    continue;
                }
                State::Length { remaining } => {
                    let available = (input.len() - pos) as u64;
                    let take = available.min(*remaining);
                    // `take` is at most `available`, a usize.
                    pos += take as usize;
                    *remaining -= take;
                    if *remaining > 0 {
                        return Progress {
                            consumed: pos,
                            close: false,
                        };
                    }
                    self.length
                }
                State::Chunked(decoder) => match decoder.scan(&input[pos..]) {
                    Ok(scan) => {
                        pos += scan.consumed;
                        if !scan.done {
                            return Progress {
                                consumed: pos,
                                close: false,
                            };
                        }
                        decoder.data_len()
                    }
                    Err(error) => return refuse(error, input.len(), out),
                },
            };
            self.state = State::Head;
            self.respond(body_bytes, out);
            if self.persistence == Persistence::Close {
                // Whatever follows is never answered, so it counts as used.
                return Progress {
                    consumed: input.len(),
                    close: true,
                };
            }
        }
    }

    /// Parses the head at the start of `input` and sets up reading its body; `Ok(None)` when the
    /// head is not complete yet.
    fn start(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(input) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
            Ok(httparse::Status::Partial) if input.len() < MAX_HEAD_BYTES => return Ok(None),
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::new(
                    ErrorKind::HeadersTooLarge,
                    "request head over its limit",
                ))
            }
            Err(_) => return Err(bad("malformed request head")),
        };
        // A complete parse always fills these three; the check only keeps this free of unwraps.
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(bad("malformed request line"));
        };
        let http11 = minor == 1;

        let mut length: Option<u64> = None;
        let (mut codings, mut chunked_count, mut last_is_chunked) = (0, 0, false);
        let (mut close, mut keep_alive, mut expect_continue) = (false, false, false);
        for header in req.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = content_length(header.value).ok_or(bad("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("differing Content-Length values"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                for coding in tokens(header.value) {
                    codings += 1;
                    last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    chunked_count += usize::from(last_is_chunked);
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in tokens(header.value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue |= header
                    .value
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"100-continue");
            }
        }

        // RFC 9112 §6.3: a Transfer-Encoding with a Content-Length may be a smuggling attempt,
        // a request whose final coding is not chunked cannot be framed, and 1.0 has no codings.
        let body_expected = if codings > 0 {
            if length.is_some() {
                return Err(bad("both Content-Length and Transfer-Encoding"));
            }
            if !http11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            if !(last_is_chunked && chunked_count == 1) {
                return Err(bad("Transfer-Encoding does not end in a single chunked"));
            }
            self.state = State::Chunked(ChunkedDecoder::new());
            true
        } else {
            let length = length.unwrap_or(0);
            self.state = State::Length { remaining: length };
            self.length = length;
            length > 0
        };
        // RFC 9112 §9.3: 1.1 persists unless `close`; 1.0 only when it asks for `keep-alive`.
        self.persistence = match (http11, close, keep_alive) {
            (_, true, _) | (false, false, false) => Persistence::Close,
            (true, false, _) => Persistence::KeepAlive,
            (false, false, true) => Persistence::KeepAlive10,
        };
        self.head_only = method == "HEAD";
        self.target.clear();
        self.target.extend_from_slice(target.as_bytes());
        // RFC 9110 §10.1.1: a client that expects 100-continue may wait for it before the body.
        if expect_continue && http11 && body_expected {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        Ok(Some(head_len))
    }

    /// Appends the answer to the request just read.
    fn respond(&self, body_bytes: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.template.prefix);
        out.extend_from_slice(&self.target);
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\r\nX-Body-Bytes: {body_bytes}\r\n");
        out.extend_from_slice(self.persistence.header());
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(&self.template.body);
        }
    }
}

/// Answers a request that cannot be read and tells the caller to close.
fn refuse(error: HttpError, input_len: usize, out: &mut Vec<u8>) -> Progress {
    error_response(error.kind, error.detail, true, out);
    Progress {
        consumed: input_len,
        close: true,
    }
}

fn bad(detail: &'static str) -> HttpError {
    HttpError::new(ErrorKind::BadRequest, detail)
}

/// A Content-Length value: `1*DIGIT`, or a list of identical values (RFC 9110 §8.6).
fn content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

/// The non-empty, trimmed elements of a comma-separated header list.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        Exchange::new(Arc::new(Template::new("e1")))
    }

    /// Feeds `input` in one call; returns the answers as text and the progress.
    fn feed(exchange: &mut Exchange, input: &str) -> (String, Progress) {
        let mut out = Vec::new();
        let progress = exchange.advance(input.as_bytes(), &mut out);
        (String::from_utf8(out).unwrap(), progress)
    }

    fn answer(target: &str, body_bytes: u64, connection: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
             X-Backend: e1\r\nX-Path: {target}\r\nX-Body-Bytes: {body_bytes}\r\n\
             {connection}\r\n{body}"
        )
    }

    #[test]
    fn answers_a_get_exactly() {
        let input = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        let (out, progress) = feed(&mut exchange(), input);
        assert_eq!(out, answer("/a?b=1", 0, "", "e1\n"));
        assert_eq!(
            progress,
            Progress {
                consumed: input.len(),
                close: false
            }
        );
    }

    #[test]
    fn answers_pipelined_requests_in_order_and_keeps_a_partial_head() {
        let input =
            "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HT";
        let (out, progress) = feed(&mut exchange(), input);
        assert_eq!(
            out,
            answer("/1", 0, "", "e1\n") + &answer("/2", 3, "", "e1\n")
        );
        assert_eq!(
            progress,
            Progress {
                consumed: input.len() - "GET /3 HT".len(),
                close: false
            }
        );
    }

    #[test]
    fn discards_a_length_body_across_calls() {
        let mut e = exchange();
        let input = "PUT /u HTTP/1.1\r\nContent-Length: 10\r\n\r\n1234";
        let (out, progress) = feed(&mut e, input);
        assert_eq!((out.as_str(), progress.consumed), ("", input.len()));
        let (out, progress) = feed(&mut e, "56789");
        assert_eq!((out.as_str(), progress.consumed), ("", 5));
        let (out, progress) = feed(&mut e, "0GET /n HTTP/1.1\r\n\r\n");
        assert_eq!(
            out,
            answer("/u", 10, "", "e1\n") + &answer("/n", 0, "", "e1\n")
        );
        assert_eq!(progress.consumed, 20);
    }

    #[test]
    fn head_gets_headers_only() {
        let (out, _) = feed(&mut exchange(), "HEAD / HTTP/1.1\r\n\r\n");
        assert_eq!(out, answer("/", 0, "", ""));
    }

    #[test]
    fn persistence_follows_version_and_connection() {
        let (out, progress) = feed(
            &mut exchange(),
            "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
        );
        assert_eq!(out, answer("/", 0, "Connection: close\r\n", "e1\n"));
        assert!(progress.close);
        let (out, progress) = feed(&mut exchange(), "GET / HTTP/1.0\r\n\r\n");
        assert_eq!(out, answer("/", 0, "Connection: close\r\n", "e1\n"));
        assert!(progress.close);
        let (out, progress) = feed(
            &mut exchange(),
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        assert_eq!(out, answer("/", 0, "Connection: keep-alive\r\n", "e1\n"));
        assert!(!progress.close);
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        let mut e = exchange();
        let (out, _) = feed(
            &mut e,
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        );
        assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
        let (out, _) = feed(&mut e, "x");
        assert_eq!(out, answer("/", 1, "", "e1\n"));
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        for input in [
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let (out, progress) = feed(&mut exchange(), input);
            assert!(out.starts_with("HTTP/1.1 400 "), "{input:?}: {out}");
            assert!(out.contains("Connection: close\r\n"));
            assert_eq!(
                progress,
                Progress {
                    consumed: input.len(),
                    close: true
                }
            );
        }
    }

    #[test]
    fn refuses_oversized_heads() {
        let mut input = "GET / HTTP/1.1\r\nX: ".to_string();
        input.push_str(&"a".repeat(MAX_HEAD_BYTES));
        let (out, progress) = feed(&mut exchange(), &input);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(progress.close);
    }

    #[test]
    fn control_characters_never_reach_the_header() {
        let template = Template::new("a\r\nX-Evil: 1");
        assert!(String::from_utf8_lossy(&template.prefix).contains("X-Backend: a??X-Evil: 1\r\n"));
    }

    // Needs lb_http::ChunkedDecoder (implemented in lb-http).
    #[test]
    fn discards_a_chunked_body_and_counts_its_data() {
        let mut e = exchange();
        let (out, progress) = feed(
            &mut e,
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        );
        assert_eq!((out.as_str(), progress.close), ("", false));
        let (out, progress) = feed(&mut e, "0\r\n\r\nGET /n HTTP/1.1\r\n\r\n");
        assert_eq!(
            out,
            answer("/c", 5, "", "e1\n") + &answer("/n", 0, "", "e1\n")
        );
        assert_eq!(progress.consumed, 24);
    }

    // Needs lb_http::ChunkedDecoder (implemented in lb-http).
    #[test]
    fn refuses_a_malformed_chunked_body() {
        let (out, progress) = feed(
            &mut exchange(),
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(progress.close);
    }
}
