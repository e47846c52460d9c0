//! One control-plane connection: HTTP/1.1 keep-alive, one request at a time.
//!
//! The read buffer holds at most one head (64 KiB) and one body (64 KiB) plus what a single read
//! brought in after them; pipelined requests wait in it and are answered in order. A request that
//! cannot be framed is answered and the connection closed, since nothing after it can be trusted.
//! Shutdown closes the connection whenever it waits for bytes from the client; an answer that is
//! being written is finished first, and carries `Connection: close`.

use crate::response::Response;
use crate::{api, head, ControlPlane};
use lb_socket::{linger, Stop};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// Serves requests on `stream` until the client closes, asks to close, sends something
/// unframeable, or `stop` turns true.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    plane: Arc<ControlPlane>,
    mut stop: Stop,
) {
    if let Err(error) = run(&mut stream, &plane, &mut stop).await {
        debug!(%error, "admin connection ended with an error");
    }
}

async fn run(stream: &mut TcpStream, plane: &ControlPlane, stop: &mut Stop) -> io::Result<()> {
    // Answers are tiny and written whole; don't let Nagle hold them back.
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    loop {
        let head = loop {
            match head::parse(&buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(refusal) => return refuse(stream, &refusal, &mut out, stop).await,
            }
            if !read_more(stream, &mut buf, stop).await? {
                return Ok(());
            }
        };
        let end = head.head_len + head.body_len;
        if head.expect_continue && buf.len() < end {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        while buf.len() < end {
            if !read_more(stream, &mut buf, stop).await? {
                return Ok(());
            }
        }
        let response = api::handle(&head, &buf[head.head_len..end], plane).await;
        let close = !head.keep_alive || *stop.borrow();
        response.write(head.method == "HEAD", close, &mut out);
        stream.write_all(&out).await?;
        out.clear();
        if close {
            return linger(stream, stop).await;
        }
        buf.drain(..end);
    }
}

/// Reads more bytes into `buf`; `false` when the client closed or shutdown began.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &mut Stop) -> io::Result<bool> {
    tokio::select! {
        read = stream.read_buf(buf) => Ok(read? > 0),
        // An error means the server is gone, which is a stop as well.
        _ = stop.wait_for(|&stop| stop) => Ok(false),
    }
}

/// Answers a request that could not be framed, then closes.
async fn refuse(
    stream: &mut TcpStream,
    refusal: &Response,
    out: &mut Vec<u8>,
    stop: &mut Stop,
) -> io::Result<()> {
    debug!(status = refusal.status(), "admin request refused");
    refusal.write(false, true, out);
    stream.write_all(out).await?;
    linger(stream, stop).await
}
