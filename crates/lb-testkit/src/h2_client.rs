//! An HTTP/2 client for the black-box tests of lb's HTTP/2 side: the `h2` crate over clear text
//! with prior knowledge (h2c), on a current-thread runtime the test owns, and a raw frame writer
//! (RFC 9113 §4.1) for what no well-behaved client sends (floods, malformed streams).
//!
//! Conventions as in the rest of the kit: every wait has a deadline ([`IO_TIMEOUT`]), so a
//! stalled lb fails the test instead of hanging it; bodies are checksummed ([`Checksum`]) so
//! 64 MiB transfers are compared without holding them.

use crate::{Checksum, IO_TIMEOUT};
use h2::client::{self, SendRequest};
use h2::RecvStream;
use http::{HeaderMap, Method, Request};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::time::timeout;
/// Re-exported so tests build requests and bodies without depending on these crates themselves.
pub use {bytes::Bytes, h2, http, tokio};

/// The HTTP/2 connection preface a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A runtime for a test's HTTP/2 clients (current thread, timers and sockets on).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Opens an h2c connection (prior knowledge) to `addr`; a task on the current runtime drives it.
/// Call from within [`Runtime::block_on`].
pub async fn connect(addr: SocketAddr) -> SendRequest<Bytes> {
    connect_with(addr, &client::Builder::new()).await
}

/// [`connect`] with the client's own settings (windows, stream limits).
pub async fn connect_with(addr: SocketAddr, builder: &client::Builder) -> SendRequest<Bytes> {
    let tcp = timeout(IO_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let (send, conn) = timeout(IO_TIMEOUT, builder.handshake(tcp))
        .await
        .expect("HTTP/2 handshake timed out")
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// A request for `path` on lb at `authority` (`:authority`), without a body yet.
pub fn request(method: Method, authority: &str, path: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(format!("http://{authority}{path}"))
        .body(())
        .expect("a valid request")
}

/// A response read to its end.
#[derive(Debug)]
pub struct H2Response {
    /// Status code.
    pub status: u16,
    /// Its fields.
    pub headers: HeaderMap,
    /// The first [`KEPT`] bytes of the body.
    pub body: Vec<u8>,
    /// Length and checksum of the whole body.
    pub checksum: Checksum,
}

/// How much of a body an [`H2Response`] keeps verbatim.
pub const KEPT: usize = 64 * 1024;

impl H2Response {
    /// The first value of field `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `req` with `body` (none: the HEADERS frame ends the stream) and reads the whole
/// response. `Err` when the stream was reset or the connection failed.
pub async fn send(
    client: &mut SendRequest<Bytes>,
    req: Request<()>,
    body: Option<Bytes>,
) -> Result<H2Response, h2::Error> {
    let client = timeout(IO_TIMEOUT, client.clone().ready())
        .await
        .expect("HTTP/2 connection not ready in time")?;
    let mut client = client;
    let (response, mut stream) = client.send_request(req, body.is_none())?;
    if let Some(body) = body {
        send_body(&mut stream, body).await?;
    }
    let response = timeout(IO_TIMEOUT, response)
        .await
        .expect("no response head in time")?;
    let (parts, recv) = response.into_parts();
    let (body, checksum) = read_body(recv).await?;
    Ok(H2Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        checksum,
    })
}

/// Sends `body` on `stream` under flow control, ending the stream with it.
pub async fn send_body(
    stream: &mut h2::SendStream<Bytes>,
    mut body: Bytes,
) -> Result<(), h2::Error> {
    if body.is_empty() {
        return stream.send_data(body, true);
    }
    while !body.is_empty() {
        stream.reserve_capacity(body.len());
        let mut granted = stream.capacity();
        if granted == 0 {
            let polled = std::future::poll_fn(|cx| stream.poll_capacity(cx));
            granted = match timeout(IO_TIMEOUT, polled)
                .await
                .expect("no send window in time")
            {
                Some(granted) => granted?,
                None => return stream.send_data(Bytes::new(), true),
            };
        }
        let frame = body.split_to(granted.min(body.len()));
        stream.send_data(frame, body.is_empty())?;
    }
    Ok(())
}

/// Reads a body to its end, giving the window back as it goes.
pub async fn read_body(mut recv: RecvStream) -> Result<(Vec<u8>, Checksum), h2::Error> {
    let mut kept = Vec::new();
    let mut checksum = Checksum::new();
    loop {
        let data = timeout(IO_TIMEOUT, recv.data())
            .await
            .expect("response body stalled");
        let Some(data) = data else { break };
        let data = data?;
        checksum.update(&data);
        let room = KEPT.saturating_sub(kept.len()).min(data.len());
        kept.extend_from_slice(&data[..room]);
        let _ = recv.flow_control().release_capacity(data.len());
    }
    Ok((kept, checksum))
}

/// A raw HTTP/2 connection for what the `h2` client would never send: frames written byte by
/// byte with [`frame`], and lb's frames read back with [`RawH2::read_frame`].
#[derive(Debug)]
pub struct RawH2 {
    tcp: TcpStream,
}

/// One frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type (0 DATA, 1 HEADERS, 3 RST_STREAM, 4 SETTINGS, 6 PING, 7 GOAWAY, ...).
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Frame types the tests write and look for.
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0;
    /// HEADERS.
    pub const HEADERS: u8 = 1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 4;
    /// PING.
    pub const PING: u8 = 6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 9;
}

/// The bytes of one frame (RFC 9113 §4.1).
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame block for `GET path` on `authority`, HPACK-encoded with literal fields
/// without indexing (RFC 7541 §6.2.2) and the static table's `:method GET` / `:scheme http`.
pub fn get_block(authority: &str, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (index, value) in [(4u8, path), (1u8, authority)] {
        block.push(index); // literal without indexing, indexed name (:path 4, :authority 1)
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

impl RawH2 {
    /// Connects to `addr` and sends the preface and an empty SETTINGS frame.
    pub fn connect(addr: SocketAddr) -> RawH2 {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        tcp.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        tcp.set_nodelay(true).expect("nodelay");
        let mut raw = RawH2 { tcp };
        raw.send(PREFACE);
        raw.send(&frame(kind::SETTINGS, 0, 0, &[]));
        raw
    }

    /// Writes `bytes`; false when lb closed the connection meanwhile.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.tcp.write_all(bytes).is_ok()
    }

    /// Writes `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("write to lb");
    }

    /// The next frame lb sent; `None` at end of stream or after `wait` without one.
    pub fn read_frame_within(&mut self, wait: Duration) -> Option<Frame> {
        self.tcp.set_read_timeout(Some(wait)).ok()?;
        let mut head = [0u8; 9];
        self.tcp.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        self.tcp.read_exact(&mut payload).ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// A frame lb has already sent (its header at least is buffered), without waiting for one;
    /// never splits a frame.
    pub fn try_read_frame(&mut self) -> Option<Frame> {
        self.tcp.set_nonblocking(true).ok()?;
        let mut head = [0u8; 9];
        let peeked = self.tcp.peek(&mut head);
        self.tcp.set_nonblocking(false).ok()?;
        match peeked {
            Ok(9) => self.read_frame(),
            _ => None,
        }
    }

    /// The next frame lb sent, within [`IO_TIMEOUT`].
    pub fn read_frame(&mut self) -> Option<Frame> {
        self.read_frame_within(IO_TIMEOUT)
    }

    /// Reads frames until a GOAWAY (returned) or the end of the connection (`None`).
    pub fn until_goaway(&mut self) -> Option<Frame> {
        while let Some(frame) = self.read_frame() {
            if frame.kind == kind::GOAWAY {
                return Some(frame);
            }
        }
        None
    }
}

/// A GOAWAY's error code (RFC 9113 §6.8).
pub fn goaway_code(frame: &Frame) -> Option<u32> {
    let code = frame.payload.get(4..8)?;
    Some(u32::from_be_bytes([code[0], code[1], code[2], code[3]]))
}
