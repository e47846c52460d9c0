//! The echo backend over real sockets: keep-alive, pipelining, bodies, HEAD, close, shutdown.

use lb_testkit::tokio_conn::{AsyncReply, ServerTask};
use std::sync::Arc;
use tokio::net::TcpStream;

/// An `lb echo` server named `name` on the test's runtime.
async fn echo(name: &str) -> ServerTask {
    let name = Arc::from(name);
    ServerTask::spawn(|listener, shutdown| lb_echo::serve(listener, name, shutdown)).await
}

fn assert_echo(reply: &AsyncReply, path: &str, body_bytes: u64) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-backend"), Some("alpha"));
    assert_eq!(reply.header("x-path"), Some(path));
    assert_eq!(
        reply.header("x-body-bytes"),
        Some(body_bytes.to_string().as_str())
    );
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("content-length"), Some("6"));
    assert_eq!(reply.text(), "alpha\n");
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
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
    let echo = echo("alpha").await;
    let mut client = echo.connect().await;
    client.send(b"GET / HTTP/1.1\r\nHost: e\r\n\r\n").await;
    assert_echo(&client.reply(false).await, "/", 0);
    let addr = echo.addr();
    echo.shutdown().await;
    client.assert_closed().await;
    assert!(TcpStream::connect(addr).await.is_err());
}
