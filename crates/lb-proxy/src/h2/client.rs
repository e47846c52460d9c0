//! The HTTP/2 side of an exchange: one stream, and how an exchange reaches it ([`Client`]):
//! the request body from the stream's DATA frames to the upstream (as it came, or chunked when
//! the client gave no length), the response head as an HTTP/2 HEADERS frame, the response body
//! de-framed into DATA frames under the stream's flow control.
//!
//! Invariants: flow-control credit goes back to the client only after the upstream took the
//! bytes, and DATA goes out only for credit the client granted (`reserve_capacity`), so a stream
//! buffers at most one window each way and a client that stops reading stalls its own stream,
//! never the connection; every wait on the client is bounded by the idle timeout; a client
//! RST_STREAM ends the relay at once, and the upstream connection is then not pooled.

use crate::exchange::Client;
use crate::relay::{read_more, write_all, RelayError};
use crate::worker::Worker;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, VIA};
use http::{Response, StatusCode};
use lb_http::{BodyKind, ChunkedDecoder, ResponseHead};
use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::debug;

/// lb's `Via` entry on responses to HTTP/2 clients (RFC 9110 §7.6.3). The upstream's version
/// is not named: HTTP/2 has no place for it, and an upstream is HTTP/1.1 or 1.0 alike here.
const VIA_LB: HeaderValue = HeaderValue::from_static("1.1 lb");

/// One stream: what an exchange reaches through [`Client`].
pub(super) struct H2Client<'w> {
    pub(super) worker: &'w Worker,
    /// The request body's DATA frames.
    pub(super) body: RecvStream,
    /// Where the response head goes; after it, `send` takes the body.
    pub(super) respond: SendResponse<Bytes>,
    /// The head [`Client::response_head`] built, until it is sent.
    pub(super) head: Option<Response<()>>,
    /// The response body's stream, once the final head went out.
    pub(super) send: Option<SendStream<Bytes>>,
}

impl<'w> H2Client<'w> {
    pub(super) fn new(worker: &'w Worker, body: RecvStream, respond: SendResponse<Bytes>) -> Self {
        H2Client {
            worker,
            body,
            respond,
            head: None,
            send: None,
        }
    }
}

impl H2Client<'_> {
    /// Whether the client reset the stream (with an error code: a NO_ERROR reset only says it
    /// needs no more of a request body lb did not read). Looks without waiting.
    pub(super) async fn reset_by_client(&mut self) -> bool {
        let reset = poll_fn(|cx| Poll::Ready(self.respond.poll_reset(cx))).await;
        matches!(reset, Poll::Ready(Ok(reason)) if reason != Reason::NO_ERROR)
    }
}

impl Client for H2Client<'_> {
    /// RFC 9113 §8.1: a response may start with any number of interim (1xx) heads.
    fn accepts_interim(&self) -> bool {
        true
    }

    fn response_head(&mut self, head: &ResponseHead<'_, '_>, _: bool, _: &mut Vec<u8>) {
        self.head = Some(response(head));
    }

    async fn send(&mut self, _: &[u8]) -> io::Result<()> {
        let head = self.head.take().ok_or(io::ErrorKind::InvalidInput)?;
        self.respond
            .send_informational(head)
            .map_err(|_| io::ErrorKind::BrokenPipe.into())
    }

    async fn send_continue(&mut self) -> io::Result<()> {
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::CONTINUE;
        self.respond
            .send_informational(head)
            .map_err(|_| io::ErrorKind::BrokenPipe.into())
    }

    async fn send_body(
        &mut self,
        upstream: &mut TcpStream,
        head: &mut Vec<u8>,
        body: BodyKind,
        write_timeout: Duration,
    ) -> Result<u64, RelayError> {
        let tuning = &self.worker.cfg.tuning;
        let (read_timeout, max_len) = (tuning.idle(), tuning.max_body());
        let chunked = body == BodyKind::Chunked;
        let mut sent = 0u64;
        loop {
            let data = match timeout(read_timeout, self.body.data()).await {
                Ok(Some(Ok(data))) => data,
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => return Err(RelayError::Source),
            };
            sent += data.len() as u64;
            if max_len.is_some_and(|max| sent > max) {
                return Err(RelayError::TooLarge);
            }
            if data.is_empty() {
                continue;
            }
            if chunked {
                put_chunk(head, &data);
            } else {
                head.extend_from_slice(&data);
            }
            write_all(upstream, head, write_timeout)
                .await
                .map_err(|_| RelayError::Sink)?;
            head.clear();
            // The upstream took the bytes: the client may send as many again.
            let _ = self.body.flow_control().release_capacity(data.len());
        }
        if chunked {
            head.extend_from_slice(b"0\r\n\r\n");
        }
        if !head.is_empty() {
            write_all(upstream, head, write_timeout)
                .await
                .map_err(|_| RelayError::Sink)?;
            head.clear();
        }
        Ok(sent)
    }

    async fn relay_response(
        &mut self,
        upstream: &mut TcpStream,
        scratch: &mut Vec<u8>,
        buf: &mut Vec<u8>,
        body: BodyKind,
        read_timeout: Duration,
    ) -> Result<u64, RelayError> {
        let head = self.head.take().ok_or(RelayError::Sink)?;
        let ended = body == BodyKind::Empty;
        let send = self
            .respond
            .send_response(head, ended)
            .map_err(|_| RelayError::Sink)?;
        let send = self.send.insert(send);
        if ended {
            return Ok(0);
        }
        let write_timeout = self.worker.cfg.tuning.idle();
        let mut remaining = match body {
            BodyKind::Length(n) => n,
            _ => u64::MAX,
        };
        let mut chunks = ChunkedDecoder::new();
        let mut sent = 0u64;
        loop {
            // The body bytes in `buf`, as payload, and whether the body ends with them.
            scratch.clear();
            let done = match body {
                BodyKind::Empty => true,
                BodyKind::Length(_) => {
                    let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    remaining -= take as u64;
                    scratch.extend(buf.drain(..take));
                    remaining == 0
                }
                BodyKind::Chunked => {
                    let scan = chunks.decode(buf, scratch).map_err(RelayError::Invalid)?;
                    buf.drain(..scan.consumed);
                    scan.done
                }
                BodyKind::CloseDelimited => {
                    scratch.append(buf);
                    false
                }
            };
            sent += scratch.len() as u64;
            send_all(send, scratch, done, write_timeout).await?;
            if done {
                return Ok(sent);
            }
            let read = tokio::select! {
                read = read_more(upstream, buf, read_timeout) => read,
                reset = poll_fn(|cx| send.poll_reset(cx)) => {
                    debug!(worker = self.worker.cfg.id, ?reset, "client reset the stream mid-response");
                    return Err(RelayError::Sink);
                }
            };
            match read {
                Ok(0) if body == BodyKind::CloseDelimited => {
                    send_all(send, &[], true, write_timeout).await?;
                    return Ok(sent);
                }
                Ok(0) | Err(_) => return Err(RelayError::Source),
                Ok(_) => {}
            }
        }
    }

    /// HTTP/2 has no protocol switch: an exchange of an HTTP/2 stream never asks for one.
    async fn tunnel(&mut self, _: &mut TcpStream, _: &[u8], _: Duration) -> io::Result<(u64, u64)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The client's HTTP/2 form of an upstream response head: its status, its end-to-end fields
/// (names lowercased, RFC 9113 §8.2.2), the length when known and lb's `Via`. A field HTTP/2
/// cannot carry is left out rather than failing the response.
fn response(head: &ResponseHead<'_, '_>) -> Response<()> {
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let fields = resp.headers_mut();
    for h in head.end_to_end_fields() {
        match (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            (Ok(name), Ok(value)) => {
                fields.append(name, value);
            }
            _ => debug!(
                field = h.name,
                "response field not valid in HTTP/2; dropped"
            ),
        }
    }
    if let Some(len) = head.client_length() {
        fields.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    fields.append(VIA, VIA_LB);
    resp
}

/// Appends one chunk of `data` (RFC 9112 §7.1: size in hex, CRLF, data, CRLF).
fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Sends `data` as DATA frames, each only as large as the credit the client granted
/// (`reserve_capacity`, then waiting for it), so nothing beyond the window is queued; `end`
/// ends the stream with the last frame. Waits for credit at most `limit` each time.
async fn send_all(
    send: &mut SendStream<Bytes>,
    data: &[u8],
    end: bool,
    limit: Duration,
) -> Result<(), RelayError> {
    let mut rest = data;
    if rest.is_empty() {
        return match end {
            true => send
                .send_data(Bytes::new(), true)
                .map_err(|_| RelayError::Sink),
            false => Ok(()),
        };
    }
    while !rest.is_empty() {
        send.reserve_capacity(rest.len());
        let mut granted = send.capacity();
        if granted == 0 {
            granted = match timeout(limit, poll_fn(|cx| send.poll_capacity(cx))).await {
                Ok(Some(Ok(n))) => n,
                Ok(Some(Err(_)) | None) | Err(_) => return Err(RelayError::Sink),
            };
        }
        let n = granted.min(rest.len());
        let (frame, after) = rest.split_at(n);
        rest = after;
        send.send_data(Bytes::copy_from_slice(frame), end && rest.is_empty())
            .map_err(|_| RelayError::Sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_http::{parse_response, EMPTY_HEADER, MAX_HEADERS};

    fn converted(raw: &[u8], head_request: bool) -> Response<()> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let head = parse_response(raw, &mut headers, head_request)
            .expect("valid")
            .expect("complete");
        response(&head)
    }

    fn fields(resp: &Response<()>) -> Vec<(String, String)> {
        resp.headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect()
    }

    #[test]
    fn hop_by_hop_fields_go_and_the_length_is_rewritten() {
        let resp = converted(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\
              Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(
            fields(&resp),
            [
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("content-length", "3"),
                ("via", "1.1 lb"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn lengths_follow_the_http11_rules() {
        let cases: [(&[u8], bool, Option<&str>); 5] = [
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                None,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                true,
                Some("9"),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                Some("9"),
            ),
            (
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                false,
                None,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, None),
        ];
        for (raw, head_request, want) in cases {
            let resp = converted(raw, head_request);
            let got = resp
                .headers()
                .get(CONTENT_LENGTH)
                .map(|v| v.to_str().unwrap());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn chunks_are_framed_in_hex() {
        let mut out = Vec::new();
        put_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(out, b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
    }
}
