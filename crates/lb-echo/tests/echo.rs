//! The echo backend over real sockets: keep-alive, pipelining, bodies, HEAD, close, shutdown.

// A failed step should fail the test loudly; clippy's test exemption does not reach helpers.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Generous bound on every network wait, so a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

struct Echo {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start(name: &str) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(lb_echo::serve(listener, Arc::from(name), async move {
            let _ = stopped.await;
        }));
        Echo { addr, stop, task }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task).await.unwrap().unwrap();
    }

    async fn connect(&self) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .unwrap()
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    async fn send(&mut self, raw: &[u8]) {
        timeout(WAIT, self.stream.write_all(raw))
            .await
            .unwrap()
            .unwrap();
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response; `head_only` for answers to HEAD, which have no body.
    async fn reply(&mut self, head_only: bool) -> Reply {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = response.parse(&self.buf).unwrap() {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8(h.value.to_vec()).unwrap();
                        (h.name.to_string(), value)
                    })
                    .collect();
                let status = response.code.unwrap();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let length = if head_only || status == 100 {
                    0
                } else {
                    length
                };
                while self.buf.len() < head_len + length {
                    assert!(self.fill().await > 0, "closed inside a body");
                }
                let body = String::from_utf8(self.buf[head_len..head_len + length].to_vec());
                self.buf.drain(..head_len + length);
                return Reply {
                    status,
                    headers,
                    body: body.unwrap(),
                };
            }
            assert!(self.fill().await > 0, "closed before a response head");
        }
    }

    async fn assert_closed(&mut self) {
        assert_eq!(self.fill().await, 0, "expected EOF, got {:?}", self.buf);
    }
}

fn assert_echo(reply: &Reply, path: &str, body_bytes: u64) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-backend"), Some("alpha"));
    assert_eq!(reply.header("x-path"), Some(path));
    assert_eq!(
        reply.header("x-body-bytes"),
        Some(body_bytes.to_string().as_str())
    );
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("content-length"), Some("6"));
    assert_eq!(reply.body, "alpha\n");
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    for i in 0..5 {
        let path = format!("/r/{i}?q=%20x");
        client
            .send(format!("GET {path} HTTP/1.1\r\nHost: e\r\n\r\n").as_bytes())
            .await;
        let reply = client.reply(false).await;
        assert_echo(&reply, &path, 0);
        assert_eq!(reply.header("connection"), None);
    }
    echo.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_in_one_write_are_answered_in_order() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: e\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"POST /body HTTP/1.1\r\nHost: e\r\nContent-Length: 4\r\n\r\nabcd");
    client.send(&batch).await;
    for i in 0..50 {
        assert_echo(&client.reply(false).await, &format!("/p{i}"), 0);
    }
    assert_echo(&client.reply(false).await, "/body", 4);
    echo.shutdown().await;
}

#[tokio::test]
async fn content_length_bodies_are_discarded() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    let body = vec![b'x'; 300_000];
    client
        .send(
            format!(
                "PUT /up HTTP/1.1\r\nHost: e\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    client.send(&body).await;
    assert_echo(&client.reply(false).await, "/up", 300_000);
    // The body was not mistaken for requests: the connection is still in step.
    client.send(b"GET /next HTTP/1.1\r\nHost: e\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/next", 0);
    echo.shutdown().await;
}

// Needs lb_http::ChunkedDecoder::scan (implemented in lb-http).
#[tokio::test]
async fn chunked_bodies_are_discarded() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    client
        .send(b"POST /c HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    client.send(b"5\r\nhello\r\n").await;
    client.send(b"1000\r\n").await;
    client.send(&[b'y'; 0x1000]).await;
    client
        .send(b"\r\n0\r\nTrailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: e\r\n\r\n")
        .await;
    assert_echo(&client.reply(false).await, "/c", 5 + 0x1000);
    assert_echo(&client.reply(false).await, "/after", 0);
    echo.shutdown().await;
}

#[tokio::test]
async fn head_gets_the_headers_without_a_body() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    client.send(b"HEAD /h HTTP/1.1\r\nHost: e\r\n\r\n").await;
    let reply = client.reply(true).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-path"), Some("/h"));
    assert_eq!(reply.header("content-length"), Some("6"));
    // Had a body been sent, it would be read as the next response's head here.
    client.send(b"GET /g HTTP/1.1\r\nHost: e\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/g", 0);
    echo.shutdown().await;
}

#[tokio::test]
async fn connection_close_and_http10_close_after_the_answer() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    client
        .send(b"GET /bye HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n")
        .await;
    let reply = client.reply(false).await;
    assert_echo(&reply, "/bye", 0);
    assert_eq!(reply.header("connection"), Some("close"));
    client.assert_closed().await;

    let mut client = echo.connect().await;
    client.send(b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/old", 0);
    client.assert_closed().await;

    let mut client = echo.connect().await;
    for _ in 0..2 {
        client
            .send(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let reply = client.reply(false).await;
        assert_echo(&reply, "/ka", 0);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
    echo.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_close() {
    let echo = Echo::start("alpha").await;
    for raw in [
        &b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut client = echo.connect().await;
        client.send(raw).await;
        let reply = client.reply(false).await;
        assert_eq!(reply.status, 400, "{raw:?}");
        assert_eq!(reply.header("connection"), Some("close"));
        client.assert_closed().await;
    }
    echo.shutdown().await;
}

#[tokio::test]
async fn heads_split_across_reads_and_large_heads() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    client.send(b"GET /sp").await;
    client.send(b"lit HTTP/1.1\r\nHo").await;
    client.send(b"st: e\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/split", 0);
    // A 40 KiB head outgrows the initial read buffer but not the head limit.
    let big = format!(
        "GET /big HTTP/1.1\r\nHost: e\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(40 * 1024)
    );
    client.send(big.as_bytes()).await;
    assert_echo(&client.reply(false).await, "/big", 0);
    // Over the limit: 431 and close.
    let huge = format!(
        "GET /huge HTTP/1.1\r\nHost: e\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(70 * 1024)
    );
    client.send(huge.as_bytes()).await;
    assert_eq!(client.reply(false).await.status, 431);
    client.assert_closed().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let echo = Echo::start("alpha").await;
    let mut client = echo.connect().await;
    client.send(b"GET / HTTP/1.1\r\nHost: e\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/", 0);
    let addr = echo.addr;
    echo.shutdown().await;
    client.assert_closed().await;
    assert!(TcpStream::connect(addr).await.is_err());
}
